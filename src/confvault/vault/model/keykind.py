"""The two kinds of vault keys, and the one place a new key's kind is chosen.

A post-quantum vault (the default) seals everything to hybrid ML-KEM-768 +
X25519 recipients (``age1pq1...``); a classic vault to X25519 (``age1...``),
which any stock age opens. age's label rule forbids a file sealed to both
kinds, so one vault holds one kind: its settings record it (``keys``) and
every new key (owner, recovery, client, decoy) follows it.
"""

from __future__ import annotations

from confvault import age
from confvault.errors import KeyFormatError

CLASSIC = "classic"
POSTQUANTUM = "postquantum"
KINDS = (POSTQUANTUM, CLASSIC)


def new_identity(kind: str) -> age.AnyIdentity:
    """A fresh secret key of ``kind``."""
    if kind == POSTQUANTUM:
        return age.HybridIdentity.generate()
    if kind == CLASSIC:
        return age.X25519Identity.generate()
    raise KeyFormatError(f"unknown key kind {kind!r}")


def of_recipient(recipient: age.AnyRecipient) -> str:
    """The kind of a public key."""
    return POSTQUANTUM if isinstance(recipient, age.HybridRecipient) else CLASSIC


def describe(kind: str) -> str:
    """How the CLI names a kind."""
    if kind == POSTQUANTUM:
        return "post-quantum (ML-KEM-768 + X25519, age1pq1...)"
    return "classic (X25519, age1...)"


def check_grantee(vault_kind: str, recipient: age.AnyRecipient) -> None:
    """Refuse a grantee key a vault of ``vault_kind`` cannot seal to.

    A file cannot be sealed to a post-quantum and a classic key together,
    and a client key file is sealed to the owner and its grantees.
    """
    kind = of_recipient(recipient)
    if kind == vault_kind:
        return
    if vault_kind == POSTQUANTUM:
        raise KeyFormatError(
            "this vault is post-quantum: it can grant only post-quantum keys "
            "(age1pq1...), since a file sealed to a classic key too would be only "
            "as strong as X25519. Ask the grantee for one: `confvault age keygen "
            "--pq`, or `age-keygen -pq` with age 1.3 or later"
        )
    raise KeyFormatError(
        "this vault is classic (X25519): it cannot seal to a post-quantum key "
        "(age1pq1...) beside its own. Convert it first with `confvault migrate "
        "--pq` (then it grants post-quantum keys only), or ask for an age1... key"
    )
