"""``migrate --pq``: a classic (X25519) vault converted in place to
post-quantum keys, resumable like a re-key.

The first commit swaps in post-quantum owner keys (``rekey.swap_owner``
with ``kind``): the owner key file, the recovery copy to a new post-quantum
recovery key, the root, the audit trail and every client key file are
re-sealed, the vault's settings say ``keys: postquantum`` from then on, and
every client key is recorded as still to rotate. Grants to classic keys are
dropped in that commit (no file can be sealed to both kinds): each such
grantee must send a post-quantum key (``age1pq1...``) and be granted again.
Then every client key is rotated to a new post-quantum key and every note
re-sealed, in batches of commits (``rotation.finish_pending``). A run cut
short anywhere is finished by running ``migrate --pq`` (or ``rotate``) again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from confvault.vault.model import keykind
from confvault.vault.model.results import Progress, RotateReport
from confvault.vault.ops import rekey, rotation, status

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


@dataclass(frozen=True)
class MigrateReport:
    """What ``migrate_pq`` did: the swap (unless an earlier run did it) and
    the rotation of the client keys."""

    switched: bool  # this run swapped the owner keys (else an earlier one had)
    recovery_key: str | None = field(repr=False)  # new, shown once; None: none
    had_recovery: bool
    dropped_grants: tuple[str, ...]  # labels of grants to classic keys
    rotation: RotateReport
    classic_objects: int  # live objects still sealed only to X25519 keys

    REGRANT = (
        "grants to classic keys were dropped: ask each of these grantees for a "
        "post-quantum key (`confvault age keygen --pq`, or `age-keygen -pq` with "
        "age 1.3 or later) and grant it again"
    )

    @property
    def outcome(self) -> str:
        """done | nothing-to-do | partly-done | failed (as ``rotate``'s)."""
        if self.rotation.failed:
            return "partly-done" if self.switched or self.rotation.rotated else "failed"
        if not self.switched and not self.rotation.rotated:
            return "nothing-to-do"
        return "done"

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "outcome": self.outcome,
            "keys": keykind.POSTQUANTUM,
            "switched": self.switched,
            "recovery_key": (
                "replaced"
                if self.recovery_key
                else ("none" if not self.had_recovery else "kept")
            ),
            "dropped_grants": list(self.dropped_grants),
            "client_keys_rotated": len(self.rotation.rotated),
            "notes_resealed": sum(max(r.notes, 0) for r in self.rotation.rotated),
            "failed": list(self.rotation.failed),
            "classic_objects": self.classic_objects,
        }
        return doc


def migrate_pq(
    s: Session,
    passphrase: bytes,
    *,
    progress: Progress | None = None,
    on_switched: Callable[[str | None], None] | None = None,
) -> MigrateReport:
    """Convert the vault to post-quantum keys, or finish an earlier run.

    ``passphrase`` (the current one) re-seals the new owner key file.
    ``on_switched`` is told the new recovery key as soon as the first
    commit made it the only one that works, before the long rotation.
    """
    with s.reading() as current:
        root = s.root_record(current)
        switched = root.key_kind != keykind.POSTQUANTUM
        had_recovery = root.settings is not None and bool(root.settings.recovery)
    recovery: str | None = None
    dropped: tuple[str, ...] = ()
    if switched:
        s.note_audit("migrate", None, None, keys=keykind.POSTQUANTUM)
        swapped = rekey.swap_owner(
            s, passphrase, None, None, rekey=True, kind=keykind.POSTQUANTUM
        )
        recovery, dropped = swapped.recovery_key, swapped.dropped_grants
        if on_switched is not None:
            on_switched(recovery)
    finished = rotation.finish_pending(s, progress)
    with s.reading() as current:
        classic = status.classic_objects(s, current)
    return MigrateReport(switched, recovery, had_recovery, dropped, finished, classic)
