"""The scrypt passphrase recipient type (C2SP age, "The scrypt recipient type")."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from confvault.age._format import Stanza, b64decode, b64encode
from confvault.age._primitives import (
    aead_open_zero_nonce,
    aead_seal_zero_nonce,
    random_bytes,
    scrypt,
)
from confvault.errors import HeaderError, IncorrectIdentityError, ScryptWorkFactorError

SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
STANZA_TYPE = "scrypt"
DEFAULT_WORK_FACTOR = 18  # the stock age tool's default
MIN_WORK_FACTOR = 1
DEFAULT_MAX_WORK_FACTOR = 22  # the stock tool's decrypt bound: 2**22 * 1 KiB = 4 GiB
SALT_SIZE = 16
_DECIMAL = re.compile(r"[1-9][0-9]{0,2}")


@dataclass(frozen=True)
class ScryptRecipient:
    """Seals the file key with a passphrase. Must be a file's only recipient."""

    passphrase: bytes = field(repr=False)
    work_factor: int = DEFAULT_WORK_FACTOR

    def __post_init__(self) -> None:
        if not MIN_WORK_FACTOR <= self.work_factor <= 30:
            raise ValueError("scrypt work factor must be between 1 and 30")

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """One stanza with a fresh salt."""
        salt = random_bytes(SALT_SIZE)
        key = scrypt(self.passphrase, SCRYPT_LABEL + salt, self.work_factor)
        body = aead_seal_zero_nonce(key, file_key)
        return [Stanza(STANZA_TYPE, (b64encode(salt), str(self.work_factor)), body)]


@dataclass(frozen=True)
class ScryptIdentity:
    """Opens passphrase-sealed files, refusing work factors above a bound."""

    passphrase: bytes = field(repr=False)
    max_work_factor: int = DEFAULT_MAX_WORK_FACTOR

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes:
        """Return the file key if the passphrase opens the (only) scrypt stanza."""
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue
            if len(stanzas) != 1:
                raise HeaderError("an scrypt stanza must be the only stanza")
            if len(stanza.args) != 2:
                raise HeaderError("scrypt stanza must have two arguments")
            salt = b64decode(stanza.args[0])
            if len(salt) != SALT_SIZE:
                raise HeaderError("scrypt salt must be 16 bytes")
            if not _DECIMAL.fullmatch(stanza.args[1]):
                raise HeaderError("scrypt work factor is not a plain decimal")
            log_n = int(stanza.args[1])
            if log_n > self.max_work_factor:
                limit = self.max_work_factor
                raise ScryptWorkFactorError(
                    f"scrypt work factor {log_n} exceeds the limit {limit}"
                )
            if len(stanza.body) != 32:
                raise HeaderError("scrypt stanza body must be 32 bytes")
            key = scrypt(self.passphrase, SCRYPT_LABEL + salt, log_n)
            file_key = aead_open_zero_nonce(key, stanza.body)
            if file_key is None:
                raise IncorrectIdentityError(
                    "passphrase does not open the scrypt stanza"
                )
            return file_key
        raise IncorrectIdentityError("no scrypt stanza")
