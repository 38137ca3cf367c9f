"""The owner identity (an age key + Ed25519), its passphrase-sealed file and the
recovery key. The age key is post-quantum (``AGE-SECRET-KEY-PQ-1...``) in a
post-quantum vault, X25519 (``AGE-SECRET-KEY-1...``) in a classic one.

The owner key file is an age file sealed with the passphrase (scrypt). Its
plaintext is a valid age identity file, so the stock tool can use it:

    # confvault owner identity
    # vault: <vault id>
    # ed25519-signing-seed: <base64>
    AGE-SECRET-KEY-PQ-1...   (AGE-SECRET-KEY-1... in a classic vault)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from confvault import age
from confvault.errors import (
    IntegrityError,
    KeyFormatError,
    NoIdentityMatchError,
    WrongPassphraseError,
)
from confvault.vault.model import keykind
from confvault.vault.model.policy import (  # noqa: F401 - importable from here too
    DEFAULT_WORK_FACTOR,
    MAX_WORK_FACTOR,
    MIN_PASSPHRASE_CHARS,
    MIN_WORK_FACTOR,
    check_passphrase_strength,
    check_work_factor,
)
from confvault.vault.store import signing

_SEED_PREFIX = "# ed25519-signing-seed: "

# The labels ``mac_key`` derives a key for (HMAC-SHA-256 of the signing seed):
# the journals' MAC (store.transaction) and the read spool's (session.spool).
JOURNAL_MAC_LABEL = b"confvault/journal-mac/v1"
SPOOL_MAC_LABEL = b"confvault/read-spool-mac/v1"
MAC_LABELS = frozenset((JOURNAL_MAC_LABEL, SPOOL_MAC_LABEL))
# The labels ``agree`` derives a key for: a grantee's audit-inbox MAC.
INBOX_MAC_LABEL = b"confvault/audit-inbox-mac/v1"
AGREE_LABELS = frozenset((INBOX_MAC_LABEL,))


class OwnerKeys(Protocol):
    """What the vault needs of the owner's secret keys, wherever they are held.

    ``OwnerIdentity`` holds them in this process; an unlock agent's client
    (``confvault.agent``) asks the agent process, which holds them instead.
    Being an ``age.Identity`` (``unwrap``), it opens files sealed to the owner.
    """

    @property
    def recipient(self) -> age.AnyRecipient:
        """What the owner's records are sealed to (public)."""
        ...

    @property
    def signer(self) -> bytes:
        """The Ed25519 public key that signs notes and manifests."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` with the owner's Ed25519 key."""
        ...

    def unwrap(self, stanzas: Sequence[age.Stanza]) -> bytes:
        """The file key of a file sealed to the owner (``age.Identity``)."""
        ...

    def mac_key(self, label: bytes) -> bytes:
        """HMAC-SHA-256(signing seed, ``label``), for a label of ``MAC_LABELS``."""
        ...

    def agree(self, peer: age.X25519Recipient, label: bytes) -> bytes:
        """X25519 agreement with ``peer`` (``AGREE_LABELS``): see ``X25519Identity.agree``."""
        ...


@dataclass(frozen=True)
class OwnerIdentity:
    """The practitioner's keys: decryption (hybrid or X25519) and authorship
    (Ed25519). It is itself an age identity (``unwrap``)."""

    key: age.AnyIdentity
    signing_seed: bytes = field(repr=False)

    @classmethod
    def generate(cls, kind: str = keykind.POSTQUANTUM) -> OwnerIdentity:
        """New owner keys from the CSPRNG, the decryption key of ``kind``."""
        return cls(keykind.new_identity(kind), secrets.token_bytes(32))

    @property
    def kind(self) -> str:
        """``keykind.POSTQUANTUM`` or ``keykind.CLASSIC``."""
        return keykind.of_recipient(self.recipient)

    @property
    def recipient(self) -> age.AnyRecipient:
        """What the owner's records are sealed to."""
        return self.key.recipient

    def unwrap(self, stanzas: Sequence[age.Stanza]) -> bytes:
        """The file key of a file sealed to the owner (``age.Identity``)."""
        return self.key.unwrap(stanzas)

    @cached_property
    def signer(self) -> bytes:
        """The Ed25519 public key that signs notes and manifests."""
        return signing.public_key(self.signing_seed)

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` with the owner's Ed25519 key."""
        return signing.sign(self.signing_seed, message)

    def mac_key(self, label: bytes) -> bytes:
        """A MAC key only the owner's keys can derive, one per allowed label."""
        if label not in MAC_LABELS:
            raise ValueError("not a MAC label of the owner's keys")
        return hmac.new(self.signing_seed, label, hashlib.sha256).digest()

    def agree(self, peer: age.X25519Recipient, label: bytes) -> bytes:
        """An X25519 agreement with ``peer`` (classic owner keys only, allowed
        labels only): the audit-inbox MAC key of a grant made before grants
        carried their own."""
        if label not in AGREE_LABELS:
            raise ValueError("not an agreement label of the owner's keys")
        if not isinstance(self.key, age.X25519Identity):
            raise KeyFormatError("a post-quantum owner key makes no X25519 agreement")
        return self.key.agree(peer, label)

    def to_text(self, vault_id: str) -> str:
        """The identity-file text (usable by the stock age tool as ``-i``)."""
        return (
            "# confvault owner identity\n"
            f"# vault: {vault_id}\n"
            f"{_SEED_PREFIX}{signing.b64(self.signing_seed)}\n"
            f"{self.key.encode()}\n"
        )

    @classmethod
    def from_text(cls, text: str) -> OwnerIdentity:
        """Parse the identity-file text written by ``to_text``."""
        seed = None
        for line in text.splitlines():
            if line.startswith(_SEED_PREFIX):
                try:
                    seed = signing.unb64(line[len(_SEED_PREFIX) :].strip())
                except ValueError as err:
                    raise IntegrityError("owner key file has a malformed seed") from err
        if seed is None or len(seed) != signing.SEED_SIZE:
            raise IntegrityError("owner key file has no signing key")
        try:
            key = age.parse_identities(text)[0]
        except KeyFormatError as err:
            raise IntegrityError("owner key file holds no age key") from err
        return cls(key, seed)

    def seal_with_passphrase(
        self, vault_id: str, passphrase: bytes, work_factor: int
    ) -> bytes:
        """The owner key file: this identity sealed with the passphrase."""
        recipient = age.ScryptRecipient(passphrase, work_factor)
        return age.encrypt(self.to_text(vault_id).encode(), [recipient])

    def seal_to(self, vault_id: str, recipient: age.AnyRecipient) -> bytes:
        """This identity sealed to another key (the recovery key)."""
        return age.encrypt(self.to_text(vault_id).encode(), [recipient])


def unseal_with_passphrase(sealed: bytes, passphrase: bytes) -> OwnerIdentity:
    """Open the owner key file; WrongPassphraseError when it does not open."""
    try:
        plain = age.decrypt(sealed, [age.ScryptIdentity(passphrase, MAX_WORK_FACTOR)])
    except NoIdentityMatchError as err:
        raise WrongPassphraseError("the passphrase does not open this vault") from err
    return OwnerIdentity.from_text(plain.decode("utf-8"))


def unseal_with_identity(sealed: bytes, identity: age.AnyIdentity) -> OwnerIdentity:
    """Open an owner key copy sealed to ``identity`` (the recovery key)."""
    return unseal_with_identities(sealed, [identity])


def unseal_with_identities(
    sealed: bytes, identities: Sequence[age.AnyIdentity]
) -> OwnerIdentity:
    """Open an owner key copy sealed to one of ``identities``."""
    try:
        plain = age.decrypt(sealed, identities)
    except NoIdentityMatchError as err:
        raise WrongPassphraseError(
            "that key does not open this vault's owner key"
        ) from err
    return OwnerIdentity.from_text(plain.decode("utf-8"))
