"""The deep checker: decrypt the root, every client key, index and note, and
check every signature. Problems are gathered as findings, added to the
keyless report this check starts from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confvault.errors import AgeError, ConfvaultError
from confvault.vault.check.keyless import _Report
from confvault.vault.model.results import VerifyReport
from confvault.vault.store import manifest

Progress = Callable[[int, int], None]


def verify_deep(
    vault: Any,
    report_in: VerifyReport,
    current: manifest.Manifest,
    progress: Progress | None = None,
) -> VerifyReport:
    """Decrypt the root, every client key, index and note; check every signature."""
    # Imported here: the keyless checks (and backups) need none of the codec.
    from confvault.vault.model.note_format import PSYCHOTHERAPY, RECORDS

    report = _Report()
    report.findings.extend(report_in.findings)
    reached: set[str] = {d for d in current.body.pointers.values()}
    notes_checked = 0
    try:
        root = vault._root_doc(current)
    except (ConfvaultError, AgeError) as err:
        report.error("root", "root", f"the root index does not open: {err}")
        return VerifyReport(
            report_in.vault,
            report_in.generation,
            report_in.objects_checked,
            0,
            True,
            tuple(report.findings),
            report_in.vault_id,
        )
    reached |= vault._root_buckets.objects
    total = sum(
        c.notes + c.drafts
        for cl in root.clients.values()
        for c in cl.compartments.values()
    )
    for client_id in sorted(root.clients):
        for name in (RECORDS, PSYCHOTHERAPY):
            entry = root.clients[client_id].compartments.get(name)
            if entry is None:
                continue
            reached |= {entry.key, entry.index}
            try:
                comp = vault._open_compartment(root, client_id, name)
            except (ConfvaultError, AgeError) as err:
                report.error(
                    "index",
                    f"{client_id}/{name}",
                    f"the {name} index does not open: {err}",
                )
                continue
            for note in comp.notes:
                reached.add(note.object)
                notes_checked += 1
                try:
                    if note.kind == "attachment":
                        vault._stream_attachment(note.id, _NullSink())
                    else:
                        vault._read(comp, note, by_identity=True)
                except (ConfvaultError, AgeError) as err:
                    report.error("note", note.id, str(err))
                if progress:
                    progress(notes_checked, total)
    try:
        reached |= {digest for digest, _ in vault._segments()}
        report.findings.extend(vault.verify_audit())
    except (ConfvaultError, AgeError) as err:
        report.error("audit", "audit", f"the audit trail does not open: {err}")
    for digest in sorted(current.all_objects() - reached):
        report.warning("orphan", digest, "a live object that no index refers to")
    return VerifyReport(
        report_in.vault,
        report_in.generation,
        report_in.objects_checked,
        notes_checked,
        True,
        tuple(report.findings),
        report_in.vault_id,
    )


class _NullSink:
    def write(self, data: bytes | memoryview) -> int:
        return len(data)
