"""Writing notes: add (signed at once, or as a draft), import, attach, edit drafts, sign, amend."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from confvault import age
from confvault.errors import (
    NoteLockedError,
    UnsafeInputError,
)
from confvault.vault.model import names
from confvault.vault.model import note_format as fmt
from confvault.vault.model.clock import parse_date
from confvault.vault.model.index import NoteEntry
from confvault.vault.model.results import NoteInfo, Progress
from confvault.vault.model.root import RootRecord
from confvault.vault.ops import (
    compartments,
    reading,
)
from confvault.vault.ops.compartments import Compartment
from confvault.vault.store import signing, transaction
from confvault.vault.store.objects import Sink

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


_COPY_BLOCK = 1 << 20


_FRONT = re.compile(rb"\A---\r?\n(.*?)\r?\n---\r?\n", re.DOTALL)


def _check_kind(kind: str) -> None:
    if kind not in fmt.WRITABLE_KINDS:
        raise UnsafeInputError(f"kind must be one of {', '.join(fmt.WRITABLE_KINDS)}")


def _open_input(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as err:
        raise UnsafeInputError(f"cannot read {path}: {err.strerror}") from err


def _hash_file(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with _open_input(path) as f:
        while block := f.read(_COPY_BLOCK):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size


def _load_import(path: Path) -> tuple[str, str, bytes]:
    """(title, date, body) from a text/Markdown file with optional front matter."""
    with _open_input(path) as f:
        data = f.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnsafeInputError(
            f"{path.name} is not UTF-8 text; use `confvault attach`"
        ) from err
    fields: dict[str, str] = {}
    match = _FRONT.match(data)
    if match:
        for line in match.group(1).decode("utf-8").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip().strip("'\"")
        data = data[match.end() :]
    date = fields.get("date")
    if not date:
        mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        date = mtime.replace(microsecond=0).isoformat()
    return fields.get("title") or path.stem, date, data


def _compartment_for_write(
    s: Session,
    txn: transaction.Transaction,
    root: RootRecord,
    client_id: str,
    compartment: str,
) -> tuple[RootRecord, Compartment]:
    comp = compartments.open_compartment(s, root, client_id, compartment)
    if comp is not None:
        comp.require_writable()
        return root, comp
    return compartments.new_compartment(s, txn, root, client_id, compartment, None)


def _seal_note(
    s: Session,
    txn: transaction.Transaction,
    comp: Compartment,
    meta: fmt.NoteMeta,
    body: bytes,
) -> NoteEntry:
    """Seal a note; its index entry (with the object name and file key)."""
    comp.require_writable()
    plaintext = fmt.header_line(meta, len(body)) + body
    return NoteEntry.of(meta, *fmt.seal_object(txn, plaintext, comp.key))


def _new_meta(
    s: Session,
    client_id: str,
    *,
    kind: str,
    title: str | None,
    body: bytes,
    date: str | None,
    compartment: str,
    template: str | None = None,
    addendum_of: str | None = None,
    filename: str | None = None,
    body_sha256: str | None = None,
    body_size: int | None = None,
) -> fmt.NoteMeta:
    created = s.now()
    when = parse_date(date) if date else created
    default_title = f"{kind.capitalize()} note {when[:10]}"
    return fmt.NoteMeta(
        id=client_id[:6] + secrets.token_hex(5),
        client=client_id,
        kind=kind,
        title=names.title(title) if title else default_title,
        date=when,
        created=created,
        status="draft",
        body_size=len(body) if body_size is None else body_size,
        body_sha256=body_sha256 or fmt.body_digest(body),
        author="",
        compartment=compartment,
        addendum_of=addendum_of,
        template=template,
        filename=filename,
    )


def _lock(s: Session, meta: fmt.NoteMeta) -> fmt.NoteMeta:
    owner = s.require_owner()
    return fmt.sign(meta, signing.b64(owner.signer), owner.sign, s.now())


def _store_note(
    s: Session,
    txn: transaction.Transaction,
    root: RootRecord,
    comp: Compartment,
    entries: list[NoteEntry],
    replacing: NoteEntry | None = None,
    *,
    dated: bool = True,
) -> None:
    """Write the compartment's index with ``entries`` added (or one of them in
    place of ``replacing``), and the root with the client's new counts (and,
    when ``dated``, the date of its last note)."""
    if replacing is not None:
        if replacing.damaged is None:  # a damaged note's object is gone already
            txn.retire(replacing.object)
        index = comp.index.replacing(replacing, entries[0])
    else:
        index = comp.index.with_notes(entries)
    comp = compartments.write_index(s, txn, comp, index)
    client = root.clients[comp.client_id].with_compartment(comp.name, comp.entry)
    if entries and dated:
        last = max([client.last_note or ""] + [e.date for e in entries])
        client = replace(client, last_note=last)
    s.write_root(txn, root.with_client(comp.client_id, client), [comp.client_id])


def _store_one(
    s: Session,
    txn: transaction.Transaction,
    root: RootRecord,
    comp: Compartment,
    meta: fmt.NoteMeta,
    body: bytes,
    replacing: NoteEntry | None = None,
    action: str = "note-add",
) -> NoteInfo:
    s.note_audit(action, comp.client_id, meta.id)
    entry = _seal_note(s, txn, comp, meta, body)
    _store_note(s, txn, root, comp, [entry], replacing)
    return reading.note_info(entry, root.clients[comp.client_id].name)


def add_note(
    s: Session,
    client: str,
    body: bytes,
    *,
    kind: str = "progress",
    title: str | None = None,
    template: str | None = None,
    date: str | None = None,
    draft: bool = False,
) -> NoteInfo:
    """Add a note; unless ``draft``, it is signed and locked at once."""
    _check_kind(kind)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        client_id = compartments.resolve_client(s, root, client)
        compartment = fmt.compartment_of(kind)
        root, comp = _compartment_for_write(s, txn, root, client_id, compartment)
        meta = _new_meta(
            s,
            client_id,
            kind=kind,
            title=title,
            body=body,
            date=date,
            compartment=compartment,
            template=template,
        )
        if not draft:
            meta = _lock(s, meta)
        action = "draft-add" if draft else "note-add"
        return _store_one(s, txn, root, comp, meta, body, action=action)


def import_notes(
    s: Session,
    client: str,
    paths: list[Path],
    *,
    kind: str = "progress",
    progress: Progress | None = None,
) -> list[NoteInfo]:
    """Bring existing text/Markdown files in as signed notes, in one commit."""
    return add_notes(
        s, client, [_load_import(path) for path in paths], kind=kind, progress=progress
    )


def add_notes(
    s: Session,
    client: str,
    items: list[tuple[str, str, bytes]],
    *,
    kind: str = "progress",
    progress: Progress | None = None,
) -> list[NoteInfo]:
    """Add many signed notes ``(title, date, body)`` to one client in one commit."""
    _check_kind(kind)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        client_id = compartments.resolve_client(s, root, client)
        compartment = fmt.compartment_of(kind)
        root, comp = _compartment_for_write(s, txn, root, client_id, compartment)
        entries = []
        for number, (title, date, body) in enumerate(items, start=1):
            meta = _lock(
                s,
                _new_meta(
                    s,
                    client_id,
                    kind=kind,
                    title=title,
                    body=body,
                    date=date,
                    compartment=compartment,
                ),
            )
            entries.append(_seal_note(s, txn, comp, meta, body))
            s.note_audit("note-import", client_id, meta.id)
            if progress:
                progress(number, len(items))
        _store_note(s, txn, root, comp, entries)
        name = root.clients[client_id].name
        return [reading.note_info(e, name) for e in entries]


def add_attachment(
    s: Session, client: str, path: Path, *, title: str | None = None
) -> NoteInfo:
    """Seal any file, streamed, as a signed attachment note."""
    digest, size = _hash_file(path)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        client_id = compartments.resolve_client(s, root, client)
        root, comp = _compartment_for_write(s, txn, root, client_id, fmt.RECORDS)
        meta = _lock(
            s,
            _new_meta(
                s,
                client_id,
                kind="attachment",
                title=title or path.name,
                body=b"",
                date=None,
                compartment=fmt.RECORDS,
                filename=names.title(path.name),
                body_sha256=digest,
                body_size=size,
            ),
        )
        key = comp.key

        def write(sink: Sink) -> None:
            sha = hashlib.sha256()
            with (
                age.EncryptWriter(sink, [key.recipient]) as writer,
                _open_input(path) as src,
            ):
                writer.write(fmt.header_line(meta, size))
                while block := src.read(_COPY_BLOCK):
                    sha.update(block)
                    writer.write(block)
                if sha.hexdigest() != digest:
                    raise UnsafeInputError(
                        f"{path.name} changed while it was being sealed"
                    )

        entry = NoteEntry.of(meta, txn.put_stream(write), None)
        s.note_audit("attachment-add", client_id, meta.id)
        _store_note(s, txn, root, comp, [entry], dated=False)
        return reading.note_info(entry, root.clients[client_id].name)


def edit_draft(
    s: Session, ref: str, body: bytes, *, title: str | None = None
) -> NoteInfo:
    """Replace a draft's text (and title). Signed notes never change."""
    with s.writing() as txn:
        root = s.root_record(txn.current)
        comp, entry = reading.find(s, root, ref)
        if entry.status != "draft":
            raise NoteLockedError(
                f"note {entry.id} is signed and locked; add an addendum"
            )
        meta = replace(
            entry.meta,
            body_size=len(body),
            body_sha256=fmt.body_digest(body),
            title=names.title(title) if title else entry.title,
        )
        return _store_one(
            s, txn, root, comp, meta, body, replacing=entry, action="draft-edit"
        )


def sign_note(s: Session, ref: str) -> NoteInfo:
    """Sign and lock a draft."""
    with s.writing() as txn:
        root = s.root_record(txn.current)
        comp, entry = reading.find(s, root, ref)
        if entry.status != "draft":
            raise NoteLockedError(f"note {entry.id} is already signed")
        meta, body = reading.read(s, comp, entry)
        return _store_one(
            s,
            txn,
            root,
            comp,
            _lock(s, meta),
            body,
            replacing=entry,
            action="note-sign",
        )


def amend(
    s: Session, ref: str, body: bytes, *, title: str | None = None, draft: bool = False
) -> NoteInfo:
    """Add an addendum to a signed note (in the original's compartment)."""
    with s.writing() as txn:
        root = s.root_record(txn.current)
        comp, original = reading.find(s, root, ref)
        if original.status != "signed":
            raise NoteLockedError(f"note {original.id} is a draft: edit it instead")
        meta = _new_meta(
            s,
            comp.client_id,
            kind="addendum",
            body=body,
            date=None,
            title=title or f"Addendum to {original.title}"[:200],
            compartment=comp.name,
            addendum_of=original.id,
        )
        if not draft:
            meta = _lock(s, meta)
        return _store_one(s, txn, root, comp, meta, body, action="note-amend")
