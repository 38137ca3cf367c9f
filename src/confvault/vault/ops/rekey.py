"""Owner key changes: a new passphrase, new owner keys, and the full re-key."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from confvault import age
from confvault.errors import (
    IntegrityError,
    ReadOnlyError,
    VaultNotFoundError,
    WeakPassphraseError,
)
from confvault.vault.model import identity, keykind, policy
from confvault.vault.model.grant import Grant
from confvault.vault.model.results import (
    OwnerRotation,
    PassphraseReport,
    Progress,
    RekeyReport,
)
from confvault.vault.model.root import RootRecord, Settings
from confvault.vault.ops import (
    compartments,
    custody,
    rotation,
)
from confvault.vault.session import trail
from confvault.vault.store import root_index, sealing, signing
from confvault.vault.store.manifest import Manifest, endorsement_message
from confvault.vault.store.transaction import Transaction

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


def _check_new_secret(
    passphrase: bytes, work_factor: int | None, allow_weak_work_factor: bool
) -> None:
    """Refuse a weak passphrase or an out-of-bounds work factor before any change."""
    weakness = policy.check_passphrase_strength(passphrase)
    if weakness:
        raise WeakPassphraseError(f"passphrase too weak: {weakness}")
    if work_factor is not None:
        policy.check_work_factor(work_factor, allow_weak=allow_weak_work_factor)


def change_passphrase(
    s: Session,
    new_passphrase: bytes,
    *,
    work_factor: int | None = None,
    allow_weak_work_factor: bool = False,
) -> PassphraseReport:
    """Re-seal only the owner key file with a new passphrase.

    The owner keys stay: a copy of the vault taken before still opens with
    the old passphrase and its keys open what is written afterwards
    (``PassphraseReport.DOES_NOT_PROTECT``). ``rekey`` changes them too.
    """
    _check_new_secret(new_passphrase, work_factor, allow_weak_work_factor)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        settings = _settings(root)
        if work_factor is not None:
            settings = replace(settings, work_factor=work_factor)
        factor = settings.work_factor
        owner = _local_owner(s)
        txn.retire(_current(txn).pointer("owner"))
        txn.point(
            "owner",
            txn.put(owner.seal_with_passphrase(root.vault, new_passphrase, factor)),
        )
        s.note_audit("passphrase-change", None, None)
        if work_factor is not None:
            s.write_root(txn, replace(root, settings=settings))
    return PassphraseReport(work_factor=factor)


def rotate_identity(
    s: Session, passphrase: bytes, progress: Progress | None = None
) -> OwnerRotation:
    """New owner keys in one commit; client keys re-wrapped to them, not changed.

    Root, client keys, audit, recovery and owner files are re-sealed; the
    old signing key endorses the new one. Returns what was done.
    ``rekey`` also rotates every client key.
    """
    return _new_owner(s, passphrase, None, progress, rekey=False)


def rekey(
    s: Session,
    passphrase: bytes,
    *,
    passphrase_changed: bool = True,
    work_factor: int | None = None,
    allow_weak_work_factor: bool = False,
    progress: Progress | None = None,
) -> RekeyReport:
    """The full re-key: new owner keys sealed with ``passphrase``, then every
    client key rotated and every note re-sealed.

    ``passphrase`` is a new one, or (``passphrase_changed=False``, which
    only changes what the report says) the current one: identity rotation.
    Afterwards the keys of a copy of the vault taken before, and with a new
    passphrase the old one, open no file in the vault and nothing written
    later.
    The first commit (the new owner keys) records every client key as
    still to rotate, so an interrupted run is finished by ``rotate``; the
    rotation commits in batches like ``revoke``'s.
    """
    _check_new_secret(passphrase, work_factor, allow_weak_work_factor)
    owner = _new_owner(s, passphrase, work_factor, progress, rekey=True)
    finished = rotation.finish_pending(s, progress)
    return RekeyReport(owner, finished.rotated, finished.failed, passphrase_changed)


def _new_owner(
    s: Session,
    passphrase: bytes,
    work_factor: int | None,
    progress: Progress | None,
    *,
    rekey: bool,
) -> OwnerRotation:
    """Swap in new owner keys in one commit; with ``rekey``, queue every client key."""
    return swap_owner(s, passphrase, work_factor, progress, rekey=rekey).rotation


@dataclass(frozen=True)
class Swapped:
    """What ``swap_owner`` did: the owner rotation, and for a change of key
    kind the new recovery key (shown once) and the grants it dropped."""

    rotation: OwnerRotation
    recovery_key: str | None = field(default=None, repr=False)
    dropped_grants: tuple[str, ...] = ()


def swap_owner(
    s: Session,
    passphrase: bytes,
    work_factor: int | None,
    progress: Progress | None,
    *,
    rekey: bool,
    kind: str | None = None,
) -> Swapped:
    """Swap in new owner keys in one commit; with ``rekey``, queue every client key.

    The new keys are of the vault's kind, or of ``kind``: then the vault's
    kind changes in the same commit (``ops.migrate``), a recovery key is
    replaced by a new one of that kind, and grants to keys of the other
    kind are dropped (no file can be sealed to both kinds).
    """
    # Grantees seal their audit-inbox entries to the owner key. Fold them
    # into the chain while that is still the key here (an empty write
    # commits nothing): after the swap no key here opens them.
    with s.writing():
        pass
    old = s.require_owner()
    new_recovery: age.AnyIdentity | None = None
    dropped: tuple[str, ...] = ()
    with s.writing() as txn:
        current = _current(txn)
        root = s.root_record(current)
        vault_id = root.vault
        settings = _settings(root)
        if work_factor is not None:
            settings = replace(settings, work_factor=work_factor)
        kind = kind or root.key_kind
        new = identity.OwnerIdentity.generate(kind)
        if kind != root.key_kind:
            settings = replace(settings, keys=kind)
            if settings.recovery:
                new_recovery = keykind.new_identity(kind)
                settings = replace(
                    settings, recovery_recipient=str(new_recovery.recipient)
                )
            kept = [g for g in root.grants if _grant_kind(g) == kind]
            dropped = tuple(g.label for g in root.grants if g not in kept)
            root = replace(root.with_grants(tuple(kept)), settings=settings)
        keys = list(root.compartment_keys())
        texts = {
            (cid, name): age.decrypt(
                s.store.get(root.clients[cid].compartments[name].key), [old]
            )
            for cid, name in keys
        }
        s.owner = new
        try:
            for number, (cid, name) in enumerate(keys, start=1):
                entry = root.clients[cid].compartments[name]
                txn.retire(entry.key)
                sealed_key = sealing.seal_key_file(
                    texts[(cid, name)], compartments.key_recipients(s, root, cid, name)
                )
                entry = replace(entry, key=txn.put(sealed_key))
                root = root.with_compartment(cid, name, entry)
                if progress:
                    progress(number, len(keys))
            if rekey:
                root = root.with_pending(root.pending_with(keys))
            txn.retire(current.pointer("owner"))
            txn.point(
                "owner",
                txn.put(
                    new.seal_with_passphrase(vault_id, passphrase, settings.work_factor)
                ),
            )
            recovery = settings.recovery
            if recovery and current.pointer("recovery"):
                txn.retire(current.pointer("recovery"))
                txn.point(
                    "recovery",
                    txn.put(new.seal_to(vault_id, age.parse_recipient(recovery))),
                )
            root = custody.reseal_executor(s, txn, current, root, new)
            new_signer = signing.b64(new.signer)
            txn.changes.endorsement = {
                "from": signing.b64(old.signer),
                "to": new_signer,
                "signature": signing.b64(
                    old.sign(endorsement_message(vault_id, new_signer))
                ),
            }
            settings = replace(settings, identity_rotated=s.now())
            trail.reseal_audit(s, txn, old, new.recipient)
            s.note_audit("identity-rotate", None, None, rekey=rekey)
            # Every client bucket is re-sealed to the new key, changed or not.
            for digest in s.root_buckets.objects:
                txn.retire(digest)
            s.root_buckets = root_index.Buckets()
            s.write_root(txn, replace(root, settings=settings))
        except BaseException:
            s.owner = old
            raise
    rotation = OwnerRotation(
        work_factor=settings.work_factor,
        client_keys_rewrapped=len(keys),
        recovery_key_kept=bool(recovery) and new_recovery is None,
        signer=new_signer,
    )
    return Swapped(rotation, new_recovery.encode() if new_recovery else None, dropped)


def _grant_kind(grant: Grant) -> str:
    return keykind.of_recipient(age.parse_recipient(grant.recipient))


def _local_owner(s: Session) -> identity.OwnerIdentity:
    """The owner identity itself (its text is sealed again), not an agent's keys."""
    owner = s.require_owner()
    if not isinstance(owner, identity.OwnerIdentity):
        raise ReadOnlyError(
            "this needs the owner keys themselves, not an unlock agent's: open "
            "the vault with the passphrase (or the recovery key)"
        )
    return owner


def _settings(root: RootRecord) -> Settings:
    if root.settings is None:
        raise IntegrityError("the root index holds no settings")
    return root.settings


def _current(txn: Transaction) -> Manifest:
    if txn.current is None:
        raise VaultNotFoundError("no manifest to change")
    return txn.current
