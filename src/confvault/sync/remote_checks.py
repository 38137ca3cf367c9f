"""The checks of the remote's state that need this device's memory (issue
16, docs/SYNC.md "The remote is not trusted"): its generation against what
this device synced and saw, and this machine's rollback memory before the
remote's state replaces the vault's. Either failing: ``RemoteIntegrityError``
(exit 13), nothing changed."""

from __future__ import annotations

from confvault.errors import IntegrityError, RemoteIntegrityError
from confvault.sync import state, tree
from confvault.vault.session.core import Session
from confvault.vault.store import manifest


def generation(
    snap: tree.Snapshot, synced_raw: bytes | None, device: state.DeviceState
) -> None:
    """The remote's memory check: a new state on the remote has a generation
    above the last one synced here and at least the highest this device saw
    on the remote (its history may grow while its state goes back: a replay)."""
    generation = snap.manifest.generation
    floor = device.remote_generation
    if synced_raw is not None and snap.raw != synced_raw:
        floor = max(floor, manifest.parse(None, synced_raw).generation + 1)
    if generation < floor:
        raise RemoteIntegrityError(
            f"the remote was rolled back: its manifest has generation {generation}, "
            f"older than generation {floor} this device saw or synced before; "
            "nothing was changed here"
        )


def seen(s: Session, snap: tree.Snapshot) -> None:
    """Before the remote's state replaces this vault's: this machine's
    rollback memory of the vault (as opening the vault checks it)."""
    try:
        s.seen.check_manifest(s.root, snap.manifest.body)
    except IntegrityError as err:
        raise RemoteIntegrityError(
            f"the remote presents a manifest this device refuses ({err}); "
            "nothing was changed here"
        ) from err
