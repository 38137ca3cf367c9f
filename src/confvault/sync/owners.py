"""The owner's keys in a merge of an identity rotation (``identity
rotate``) on one device with notes added on the other (issue 16): the
rotated side's files open with the new owner key, the other side's and the
base's with the old one. The device holds one of them; the other is in its
side's owner key file, sealed with the passphrase: the merge opens it with
the passphrase the command has, or says that it needs it
(``OwnerKeyNeededError``, exit 16). A ``passphrase --rekey`` replaces the
owner's key and the passphrase together: the other side's key file then
opens only with the other passphrase (``OtherPassphraseNeededError``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from confvault import age
from confvault.errors import (
    IncorrectIdentityError,
    SyncConflictError,
    WrongPassphraseError,
)
from confvault.sync.merge import Side
from confvault.vault.model.identity import (
    OwnerIdentity,
    OwnerKeys,
    unseal_with_passphrase,
)
from confvault.vault.model.root import Settings
from confvault.vault.store import signing

OWNER = "owner"
RECOVERY = "recovery"


class OwnerKeyNeededError(SyncConflictError):
    """The owner's key was replaced on one side: the merge needs the other
    owner key, in that side's key file, opened with the passphrase."""

    def __init__(self) -> None:
        super().__init__(
            "the owner's key was replaced (`identity rotate`) on one device "
            "while the other wrote: run sync with the passphrase "
            "(--passphrase-file, or on a terminal) to merge; nothing was changed"
        )


class OtherPassphraseNeededError(SyncConflictError):
    """The owner's key was replaced with a new passphrase (``passphrase
    --rekey``) on one device: the merge needs that device's passphrase too."""

    def __init__(self) -> None:
        super().__init__(
            "the owner's key and the passphrase were replaced together "
            "(`passphrase --rekey`) on one device while the other wrote: the "
            "merge needs the passphrase of both devices; run sync with "
            "--other-passphrase-file (or on a terminal) and the passphrase the "
            "other device has; nothing was changed"
        )


class Owners:
    """Opens what either owner key opens (an age identity)."""

    def __init__(self, keys: Sequence[age.Identity]) -> None:
        self.keys = tuple(keys)

    def __repr__(self) -> str:
        return f"Owners({len(self.keys)})"

    def unwrap(self, stanzas: Sequence[age.Stanza]) -> bytes:
        for key in self.keys:
            try:
                return key.unwrap(stanzas)
            except IncorrectIdentityError:
                continue
        raise IncorrectIdentityError("neither owner key")


def rotated(ours: Side, theirs: Side, base: Side) -> Side | None:
    """The side whose owner key was replaced since the base, endorsed by the
    base's (the other side's signer the base's); None when neither was."""
    was = base.manifest.body
    for k, w in ((ours, theirs), (theirs, ours)):
        body = k.manifest.body
        if w.manifest.body.signer != was.signer or body.signer == was.signer:
            continue
        ends = tuple(body.endorsements)
        if ends[:-1] == tuple(was.endorsements) and ends[-1:] == (
            {"from": was.signer, "to": body.signer, "signature": ends[-1]["signature"]},
        ):
            return k
    return None


def both(
    have: OwnerKeys, k: Side, base: Side, passphrases: tuple[bytes, ...]
) -> tuple[OwnerKeys, Owners]:
    """The new owner key (the rotated side ``k``'s) and a reader of both
    sides, the key this device lacks opened from its side's owner key file
    with the first of ``passphrases`` that opens it."""
    if not passphrases:
        raise OwnerKeyNeededError()
    new_signer = k.manifest.body.signer
    if signing.b64(have.signer) == new_signer:
        old = _open(base, passphrases)
        if signing.b64(old.signer) != base.manifest.body.signer:
            raise OwnerKeyNeededError()
        return have, Owners([have, old])
    new = _open(k, passphrases)
    if signing.b64(new.signer) != new_signer:
        raise OwnerKeyNeededError()
    return new, Owners([have, new])


def _open(x: Side, passphrases: tuple[bytes, ...]) -> OwnerIdentity:
    digest = x.manifest.pointer(OWNER)
    if digest is None:
        raise OwnerKeyNeededError()
    sealed = x.get(digest)
    for passphrase in passphrases:
        try:
            return unseal_with_passphrase(sealed, passphrase)
        except WrongPassphraseError:
            continue
    raise OtherPassphraseNeededError()


def unrotated(k: Settings | None, base: Settings | None) -> Settings | None:
    """``k``'s settings with the base's time of the last identity rotation."""
    if k is None or base is None:
        return k
    return replace(k, identity_rotated=base.identity_rotated)
