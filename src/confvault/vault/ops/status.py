"""The dashboard (``status``) and ``verify`` of an open vault."""

from __future__ import annotations

from typing import TYPE_CHECKING

from confvault import age
from confvault.vault.model.results import Progress, VaultStatus, VerifyReport
from confvault.vault.session import trail
from confvault.vault.store import fs

if TYPE_CHECKING:
    from confvault.vault.session.core import Session
    from confvault.vault.store.manifest import Manifest


def status(s: Session) -> VaultStatus:
    """Counts, key ages, grants and the last verify, for the dashboard."""
    with s.reading() as current:
        root = s.root_record(current)
        comps = [
            (name, entry)
            for c in root.clients.values()
            for name, entry in c.compartments.items()
        ]
        keys = sorted(entry.key_created for _, entry in comps)
        last = s.seen.last_verify(current.body.vault_id)
        return VaultStatus(
            path=str(s.root),
            vault_id=current.body.vault_id,
            generation=current.generation,
            clients=len(root.clients),
            notes=sum(e.notes for _, e in comps),
            drafts=sum(e.drafts for _, e in comps),
            psychotherapy_notes=sum(e.notes for n, e in comps if n == "psychotherapy"),
            attachments=sum(e.attachments or 0 for _, e in comps),
            objects=current.body.objects,
            last_change=current.body.time,
            last_verify=(
                f"{last[0]} ({'ok' if last[1] else 'PROBLEMS FOUND'})" if last else None
            ),
            oldest_key=keys[0] if keys else None,
            newest_key=keys[-1] if keys else None,
            grants=len(root.grants),
            work_factor=root.settings.work_factor if root.settings else None,
            recovery_key=current.pointer("recovery") is not None,
            owner_key=s.owner_key_fingerprint(current),
            pending_rotations=tuple(
                f"{root.clients[cid].name if cid in root.clients else cid} ({name})"
                for cid, name in root.pending_rotation or ()
            ),
            key_kind=root.key_kind,
            classic_objects=classic_objects(s, current),
        )


def merge_flags(s: Session) -> dict[str, object]:
    """What a sync's merge left to look at (issue 16): ``conflicts``, the
    note IDs of conflict drafts (another device's version of a draft), and
    ``duplicates``, groups of client IDs sharing a name (clients added on
    two devices with the same name are both kept). IDs only: no names."""
    from confvault.vault.ops import compartments

    with s.reading() as current:
        root = s.root_record(current)
        by_name: dict[str, list[str]] = {}
        for cid, client in sorted(root.clients.items()):
            by_name.setdefault(client.name.casefold(), []).append(cid)
        conflicts = []
        for cid, name in sorted(root.compartment_keys()):
            entry = root.entry(cid, name)
            if entry is None or not entry.drafts:
                continue  # a conflict copy is a draft
            comp = compartments.open_compartment(s, root, cid, name)
            if comp is not None:
                conflicts += [n.id for n in comp.index.notes if n.conflict]
    duplicates = sorted(ids for ids in by_name.values() if len(ids) > 1)
    return {"conflicts": conflicts, "duplicates": duplicates}


def classic_objects(s: Session, current: Manifest) -> int:
    """How many live objects are sealed only to classic (X25519) keys, as
    their age headers' stanza types say."""
    return sum(
        age.sealed_only_classic(s.store.head(digest))
        for digest in sorted(current.all_objects())
    )


def verify(
    s: Session, *, deep: bool = False, progress: Progress | None = None
) -> VerifyReport:
    """Keyless checks, and with ``deep`` every note decrypted and its signature checked."""
    from confvault.vault.check import keyless
    from confvault.vault.check.deep import DeepChecker

    with fs.locked(s.root, exclusive=False, timeout=s.lock_timeout):
        report, current = keyless.verify_keyless(s.root, seen=s.seen, progress=progress)
        if deep and current is not None and s.owner is not None:
            s.manifest = current
            checker = DeepChecker(current, s.store, s.owner, s.signers(), progress)
            report = checker.check(report)
        # Under the lock: a writer committing in between would otherwise have
        # its generation overwritten by this read-modify-write of the memory.
        s.seen.record_verify(report.vault_id or s.vault_id, s.now(), report.ok)
    if deep and report.ok:
        trail.audit_read(s, "verify-deep", notes=report.notes_checked)
    return report
