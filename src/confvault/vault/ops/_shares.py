"""SLIP-0039 shares of the executor key, through ``shamir-mnemonic`` (the
reference implementation of the standard): no Shamir arithmetic here.

One group, K of N members, no SLIP-39 passphrase: the master secret is the
executor key's 32 secret bytes (an X25519 key or a post-quantum seed), and
any K shares give it back. The library's messages quote the first words of a
share, so they never reach the user: ``combine`` says what is wrong itself.
"""

from __future__ import annotations

import shamir_mnemonic

from confvault import age
from confvault.errors import SharesError, UnsafeInputError
from confvault.vault.model.custody import normal_words

MAX_SHARES = 16  # SLIP-39's limit of members in a group


def secret_of(key: age.AnyIdentity) -> bytes:
    """The 32 bytes that make ``key``."""
    if isinstance(key, age.X25519Identity):
        return key.secret_key
    return key.seed


def keys_from(secret: bytes) -> list[age.AnyIdentity]:
    """The keys these 32 bytes make, of either kind (the copy's header
    decides which one opens it)."""
    return [age.X25519Identity(secret), age.HybridIdentity(secret)]


def split(secret: bytes, threshold: int, count: int) -> list[str]:
    """``count`` shares of ``secret``, any ``threshold`` of which give it back."""
    if not 1 <= count <= MAX_SHARES:
        raise UnsafeInputError(
            f"a split needs 1 to {MAX_SHARES} custodians (SLIP-39's limit); "
            f"the vault has {count}"
        )
    if not 1 <= threshold <= count:
        raise UnsafeInputError(
            f"the threshold must be between 1 and the number of custodians ({count})"
        )
    if threshold == 1 and count > 1:
        raise UnsafeInputError(
            "a threshold of 1 would give each custodian the whole key alone; "
            "give --threshold 2 or more (the recovery key is the one-person way)"
        )
    groups = shamir_mnemonic.generate_mnemonics(1, [(threshold, count)], secret)
    return [str(words) for words in groups[0]]


def combine(shares: list[str]) -> bytes:
    """The secret of these shares; ``SharesError`` saying why not."""
    words = [normal_words(s) for s in shares]
    if not words:
        raise SharesError("no share given")
    decoded = []
    for number, text in enumerate(words, start=1):
        try:
            decoded.append(shamir_mnemonic.Share.from_mnemonic(text))
        except (shamir_mnemonic.MnemonicError, ValueError) as err:
            raise SharesError(
                f"share {number} is not a valid SLIP-39 share (a word is "
                "wrong, missing or misspelt: its checksum fails)"
            ) from err
    if len(set(words)) != len(words) or len({d.index for d in decoded}) != len(words):
        raise SharesError("the same share was given twice")
    if len({d.identifier for d in decoded}) > 1:
        raise SharesError(
            "these shares are of different splits: use only shares of the latest "
            "`custodian split`"
        )
    needed = int(decoded[0].member_threshold)
    if len(decoded) < needed:
        raise SharesError(
            f"{len(decoded)} share{'s' if len(decoded) != 1 else ''} given; "
            f"this split needs {needed}: nothing was opened"
        )
    try:
        return bytes(shamir_mnemonic.combine_mnemonics(words))
    except (shamir_mnemonic.MnemonicError, ValueError) as err:
        raise SharesError("these shares do not combine (damaged or altered)") from err
