"""Keys of every native kind: one recipient or identity, or a file of them.

Two kinds exist: X25519 (``age1...``, ``AGE-SECRET-KEY-1...``) and the
post-quantum hybrid MLKEM768-X25519 (``age1pq1...``,
``AGE-SECRET-KEY-PQ-1...``). Files hold one key a line, with ``#`` comments
and blank lines, and may mix the kinds as the stock tool's files do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from confvault.age import mlkem768x25519, x25519
from confvault.age.mlkem768x25519 import HybridIdentity, HybridRecipient
from confvault.age.x25519 import X25519Identity, X25519Recipient
from confvault.errors import KeyFormatError

T = TypeVar("T")
AnyRecipient = X25519Recipient | HybridRecipient
AnyIdentity = X25519Identity | HybridIdentity

_HYBRID_RECIPIENT = mlkem768x25519.RECIPIENT_HRP + "1"
_HYBRID_IDENTITY = mlkem768x25519.IDENTITY_HRP + "1"


def parse_recipient(text: str) -> AnyRecipient:
    """Parse an ``age1...`` (X25519) or ``age1pq1...`` (post-quantum) public key."""
    text = text.strip()
    if text.lower().startswith(_HYBRID_RECIPIENT):
        return mlkem768x25519.parse_recipient(text)
    return x25519.parse_recipient(text)


def parse_identity(text: str) -> AnyIdentity:
    """Parse an ``AGE-SECRET-KEY-1...`` or ``AGE-SECRET-KEY-PQ-1...`` secret key."""
    text = text.strip()
    if text.upper().startswith(_HYBRID_IDENTITY):
        return mlkem768x25519.parse_identity(text)
    return x25519.parse_identity(text)


def _parse_key_lines(
    text: str, parse: Callable[[str], T], what: str, plural: str, key: str
) -> list[T]:
    """One key a line; ``#`` comments and blank lines skipped; errors name the line."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            found.append(parse(stripped))
        except KeyFormatError as err:
            raise KeyFormatError(f"{what} file line {number} is not {key}") from err
    if not found:
        raise KeyFormatError(f"{what} file holds no {plural}")
    return found


def parse_identities(text: str) -> list[AnyIdentity]:
    """Parse an identity file: one key a line, ``#`` comments and blank lines."""
    return _parse_key_lines(
        text, parse_identity, "identity", "identities", "an age identity"
    )


def parse_recipients(text: str) -> list[AnyRecipient]:
    """Parse a recipients file: one ``age1...`` or ``age1pq1...`` a line, ``#`` comments."""
    return _parse_key_lines(
        text, parse_recipient, "recipients", "recipients", "an age1 key"
    )
