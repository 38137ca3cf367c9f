"""Records leaving the vault: a client's whole record for a records request, and
crypto-shredding."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, BinaryIO, Protocol

from confvault import age
from confvault.errors import ClientHeldError, ConfvaultError
from confvault.vault.model import note_format as fmt
from confvault.vault.model.index import NoteEntry, Profile
from confvault.vault.model.results import ExportResult, ShredResult
from confvault.vault.ops import (
    compartments,
    export_sinks,
    reading,
)
from confvault.vault.ops.compartments import Compartment
from confvault.vault.session import trail

if TYPE_CHECKING:
    from confvault.vault.model.root import RootRecord
    from confvault.vault.session.core import Session
    from confvault.vault.store.manifest import Manifest
    from confvault.vault.store.transaction import Transaction


SHRED_LIMITS = (
    "shredding destroys the client's keys and every sealed file of theirs in this "
    "vault; backups and copies made before now still hold them, sealed to keys that "
    "the owner's passphrase or recovery key of that backup can still open: delete or "
    "expire those backups too, as your retention policy requires"
)


def _front_matter(meta: fmt.NoteMeta, signature: str, name: str) -> str:
    lines = [
        "---",
        f"note: {meta.id}",
        f"client: {name} ({meta.client})",
        f"kind: {meta.kind}",
        f"title: {meta.title}",
        f"date: {meta.date}",
        f"written: {meta.created}",
        f"status: {meta.status}",
        f"signature: {signature}",
    ]
    if meta.signed_at:
        lines.append(f"signed: {meta.signed_at}")
    if meta.addendum_of:
        lines.append(f"addendum to: {meta.addendum_of}")
    if meta.filename:
        lines.append(f"file: {meta.filename} ({meta.body_size} bytes)")
    lines += [f"sha256: {meta.body_sha256}", "---", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class _Plan:
    """What one export holds, read from one snapshot."""

    cid: str
    name: str
    profile: Profile | None
    items: list[tuple[Compartment, NoteEntry, fmt.NoteMeta]]
    psychotherapy: bool

    @property
    def attachments(self) -> int:
        return sum(meta.kind == "attachment" for _, _, meta in self.items)

    @property
    def notes(self) -> int:
        return len(self.items) - self.attachments

    def ids(self) -> tuple[str, list[str]]:
        return self.cid, [meta.id for _, _, meta in self.items]

    def details(self) -> dict[str, object]:
        return {
            "notes": self.notes,
            "attachments": self.attachments,
            "psychotherapy": self.psychotherapy,
        }


class ClientExporter(Protocol):
    """What ``seal_export`` exports through (a ``Vault``)."""

    def export_client(
        self, client: str, sink: export_sinks.ExportSink, *, psychotherapy: bool = ...
    ) -> ExportResult: ...


def seal_export(
    vault: ClientExporter,
    client: str,
    recipient: age.Recipient,
    out: BinaryIO,
    *,
    psychotherapy: bool = False,
) -> ExportResult:
    """The export as one age file (a tar inside) that ``recipient`` opens with stock age."""
    with age.EncryptWriter(out, [recipient]) as writer:
        result = vault.export_client(
            client, export_sinks.TarExportSink(writer), psychotherapy=psychotherapy
        )
    return result


def export_client(
    s: Session,
    client: str,
    sink: export_sinks.ExportSink,
    *,
    psychotherapy: bool = False,
) -> ExportResult:
    """Write a client's whole record (notes as Markdown, files, an index) to ``sink``.

    The audit entry comes first: it is committed before any plaintext is
    written, so an export is on record as soon as it may have produced
    anything (an entry means "exported, or tried to"), and an export whose
    entry cannot be committed (the vault is locked, ...) writes nothing.
    The files then come from a snapshot that must hold exactly the notes
    the entry counts; on any failure the sink is aborted.
    """
    with s.reading() as current:
        audited = _export_plan(s, current, client, psychotherapy)
    trail.audit_read(s, "export", audited.cid, None, **audited.details())
    try:
        sink.begin()
        with s.reading() as current:
            plan = _export_plan(s, current, audited.cid, psychotherapy, expect=audited)
            _fill_export(s, sink, plan)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    return ExportResult(
        client=plan.cid,
        client_name=plan.name,
        notes=plan.notes,
        attachments=plan.attachments,
        psychotherapy=psychotherapy,
    )


def _export_plan(
    s: Session,
    current: Manifest,
    client: str,
    psychotherapy: bool,
    *,
    expect: _Plan | None = None,
) -> _Plan:
    """The export of ``client`` in snapshot ``current``; with ``expect``,
    refused unless it holds the very notes of that (audited) plan."""
    root = s.root_record(current)
    cid = compartments.resolve_client(s, root, client)
    comps = reading.client_compartments(s, root, [cid], psychotherapy)
    items = [
        (comp, entry, entry.meta)
        for comp in comps
        for entry in sorted(comp.notes, key=lambda e: (e.date, e.id))
    ]
    plan = _Plan(
        cid=cid,
        name=root.clients[cid].name,
        profile=comps[0].index.profile if comps else None,
        items=items,
        psychotherapy=psychotherapy,
    )
    if expect is not None and plan.ids() != expect.ids():
        raise ConfvaultError(
            "the client's record changed after the export was audited; "
            "nothing was exported: run export again"
        )
    return plan


_DAMAGED = (
    "*This note is damaged: its text was unreadable when its compartment key "
    "was rotated ({}), and is no longer in the vault.*\n"
)


def _fill_export(s: Session, sink: export_sinks.ExportSink, plan: _Plan) -> None:
    rows = []
    for comp, entry, meta in plan.items:
        status = fmt.signature_status(meta, s.signers())
        front = _front_matter(meta, status, plan.name).encode()
        stem = f"{export_sinks.safe_name(meta.date[:10])}_{export_sinks.safe_name(meta.id)}"
        if entry.damaged is not None:
            # Its entry is all the vault still holds: exported as what it is.
            file_name = f"notes/{stem}.md"
            sink.add(file_name, front + _DAMAGED.format(entry.damaged).encode())
            status = "damaged"
        elif meta.kind == "attachment":
            file_name = (
                f"attachments/{export_sinks.safe_name(meta.id)}_"
                f"{export_sinks.safe_name(meta.filename or 'file')}"
            )
            sink.add_stream(
                file_name,
                meta.body_size,
                partial(reading.stream_attachment, s, entry.id),
            )
            sink.add(f"notes/{stem}.md", front)
        else:
            _, body = reading.read(s, comp, entry)
            file_name = f"notes/{stem}.md"
            sink.add(file_name, front + body)
        rows.append(
            f"| {meta.date[:10]} | {meta.kind} | {meta.title} | {meta.status} "
            f"| {status} | {file_name} |"
        )
    index = [
        f"# Record of {plan.name}",
        "",
        f"Client ID: {plan.cid}",
        f"Exported: {s.now()}",
        "",
    ]
    fields = plan.profile.fields if plan.profile else {}
    index += [f"- {k}: {v}" for k, v in sorted(fields.items())]
    if not plan.psychotherapy:
        index += [
            "",
            "Psychotherapy notes are not included (export with --psychotherapy).",
        ]
    index += [
        "",
        "| date | kind | title | status | signature | file |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    sink.add("index.md", "\n".join(index).encode())


def shred_client(s: Session, client: str) -> ShredResult:
    """Destroy a client's keys and every sealed file of theirs (crypto-shredding);
    ``ClientHeldError`` for a client under a legal hold."""
    with s.writing() as txn:
        root = s.root_record(txn.current)
        cid = compartments.resolve_client(s, root, client)
        return shred_in(s, txn, root, cid)


def shred_in(
    s: Session, txn: Transaction, root: RootRecord, cid: str, **details: object
) -> ShredResult:
    """The shred of client ``cid`` inside the open transaction ``txn``."""
    if root.clients[cid].hold is not None:
        raise ClientHeldError(
            f"client {cid[:8]} is under a legal hold; nothing was shredded"
        )
    destroyed = 0
    notes = 0
    for name, entry in root.clients[cid].compartments.items():
        comp = compartments.open_compartment(s, root, cid, name)
        for note in comp.notes if comp else ():
            txn.retire(note.object)
            destroyed += 1
            notes += 1
        txn.retire(entry.index)
        txn.retire(entry.key)
        destroyed += 2
    root = root.without_client(cid).with_grants(
        tuple(
            replace(g, clients=tuple(c for c in g.clients if c != cid))
            for g in root.grants
        )
    )
    root = root.with_pending(
        tuple(p for p in root.pending_rotation or () if p[0] != cid)
    )
    s.note_audit("client-shred", cid, None, notes=notes, **details)
    s.write_root(txn, root)
    return ShredResult(
        client=cid, notes=notes, files_destroyed=destroyed, limits=SHRED_LIMITS
    )
