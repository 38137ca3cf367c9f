"""Ed25519 signatures (PyNaCl): the vault's only import of nacl."""

from __future__ import annotations

import base64
import hashlib

import nacl.exceptions
import nacl.signing

SEED_SIZE = 32


def public_key(seed: bytes) -> bytes:
    """The 32-byte Ed25519 verify key of ``seed``."""
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def sign(seed: bytes, message: bytes) -> bytes:
    """A 64-byte detached signature of ``message``."""
    return nacl.signing.SigningKey(seed).sign(message).signature


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public``'s signature of ``message``."""
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
    except (
        nacl.exceptions.BadSignatureError,
        nacl.exceptions.ValueError,
        nacl.exceptions.TypeError,
    ):
        return False
    return True


def b64(data: bytes) -> str:
    """Standard base64 text, as stored in vault documents."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Decode base64 text from a vault document (ValueError when malformed)."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def fingerprint(signer: str) -> str:
    """A signing key as a person compares it: 32 hex digits of its SHA-256, in 8 groups.

    ``signer`` is the base64 text of the key, as a manifest names it.
    """
    digest = hashlib.sha256(unb64(signer)).hexdigest()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def normal_fingerprint(text: str) -> str:
    """``text`` as 32 lowercase hex digits (spaces, colons, case ignored), or ""."""
    flat = "".join(c for c in text.lower() if c not in " :-")
    if len(flat) != 32 or any(c not in "0123456789abcdef" for c in flat):
        return ""
    return flat
