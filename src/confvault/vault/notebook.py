"""Notes: write (signed at once, or as a draft), list, show with signature
check, search, edit drafts, sign, amend with addenda, import, attach files."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from confvault import age
from confvault.errors import (
    AmbiguousNameError,
    IntegrityError,
    NoteLockedError,
    NoteNotFoundError,
    UnsafeInputError,
)
from confvault.vault.clients import Compartment
from confvault.vault.model import names
from confvault.vault.model import note_format as fmt
from confvault.vault.model.results import NoteInfo, NoteView, SearchHit
from confvault.vault.store import signing, transaction

Progress = Callable[[int, int], None]
_COPY_BLOCK = 1 << 20


def parse_date(text: str) -> str:
    """A user's date (YYYY-MM-DD or ISO 8601) as a UTC ISO timestamp."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise UnsafeInputError(f"{text[:40]!r} is not a date (use YYYY-MM-DD)") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (
        moment.astimezone(dt.UTC)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z")
    )


def _info(
    entry: dict[str, Any], client_name: str, addenda: tuple[str, ...] = ()
) -> NoteInfo:
    return NoteInfo(
        id=entry["id"],
        client=entry["client"],
        client_name=client_name,
        kind=entry["kind"],
        title=entry["title"],
        date=entry["date"],
        created=entry["created"],
        status=entry["status"],
        size=entry["body_size"],
        addendum_of=entry.get("addendum_of"),
        template=entry.get("template"),
        filename=entry.get("filename"),
        addenda=addenda,
    )


def _check_kind(kind: str) -> None:
    if kind not in fmt.WRITABLE_KINDS:
        raise UnsafeInputError(f"kind must be one of {', '.join(fmt.WRITABLE_KINDS)}")


class NotesMixin:
    """Note operations of ``Vault``."""

    store: Any
    _reading: Any
    _writing: Any
    _root_doc: Any
    _write_root: Any
    _owner: Any
    _note_audit: Any
    _audit_read: Any
    _identities: Any
    _signers: Any
    _resolve_client: Any
    _open_compartment: Any
    _new_compartment: Any
    _write_index: Any
    now: Any

    # --- helpers ------------------------------------------------------------------

    def _compartment_for_write(
        self,
        txn: transaction.Transaction,
        root: dict[str, Any],
        client_id: str,
        compartment: str,
    ) -> Compartment:
        comp = self._open_compartment(root, client_id, compartment)
        return comp or self._new_compartment(txn, root, client_id, compartment, None)

    def _seal_note(
        self,
        txn: transaction.Transaction,
        comp: Compartment,
        meta: fmt.NoteMeta,
        body: bytes,
    ) -> dict[str, str]:
        """Seal a note; its storage fields (object name and file key) for the index."""
        return fmt.seal_object(txn, fmt.header_line(meta, len(body)) + body, comp.key)

    def _new_meta(
        self,
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
        created = self.now()
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

    def _lock(self, meta: fmt.NoteMeta) -> fmt.NoteMeta:
        owner = self._owner()
        return fmt.sign(meta, signing.b64(owner.signer), owner.sign, self.now())

    def _store_note(
        self,
        txn: transaction.Transaction,
        root: dict[str, Any],
        comp: Compartment,
        meta: fmt.NoteMeta,
        body: bytes,
        replacing: dict[str, Any] | None = None,
        action: str = "note-add",
    ) -> dict[str, Any]:
        self._note_audit(action, comp.client_id, meta.id)
        entry = meta.to_json() | self._seal_note(txn, comp, meta, body)
        if replacing is not None:
            txn.retire(replacing["object"])
            comp.notes[comp.notes.index(replacing)] = entry
        else:
            comp.notes.append(entry)
        self._write_index(txn, comp)
        client = root["clients"][comp.client_id]
        client["last_note"] = max(client.get("last_note") or "", meta.date)
        self._write_root(txn, root, changed=[comp.client_id])
        return entry

    def _compartments(
        self, root: dict[str, Any], client_ids: Iterable[str], psychotherapy: bool
    ) -> list[Compartment]:
        wanted = [fmt.RECORDS, fmt.PSYCHOTHERAPY] if psychotherapy else [fmt.RECORDS]
        out = []
        for client_id in client_ids:
            for name in wanted:
                comp = self._open_compartment(root, client_id, name)
                if comp is not None:
                    out.append(comp)
        return out

    def _find(
        self, root: dict[str, Any], ref: str
    ) -> tuple[Compartment, dict[str, Any]]:
        ref = ref.strip().lower()
        if len(ref) < 4 or not all(c in "0123456789abcdef" for c in ref):
            raise NoteNotFoundError("give at least 4 hex characters of the note ID")
        candidates = (
            [cid for cid in root["clients"] if cid.startswith(ref[:6])]
            if len(ref) >= 6
            else list(root["clients"])
        )
        found = [
            (comp, e)
            for comp in self._compartments(root, candidates, True)
            for e in comp.notes
            if e["id"].startswith(ref)
        ]
        if not found:
            raise NoteNotFoundError(f"no note with ID {ref}")
        if len(found) > 1:
            raise AmbiguousNameError(
                f"{len(found)} notes have IDs starting with {ref}; give more"
            )
        return found[0]

    def _read(
        self,
        comp: Compartment,
        entry: dict[str, Any],
        *,
        check_signature: bool = True,
        by_identity: bool = False,
    ) -> tuple[fmt.NoteMeta, bytes]:
        """Decrypt a note and check it is the one the index names.

        The object's hash chains up to the signed manifest, so its content is
        authenticated; ``check_signature`` also checks the author signature
        (done by show, sign, deep verify; skipped by search for speed).
        ``by_identity`` opens it with the client key, as stock age would,
        instead of the file key kept in the index.
        """
        data = self.store.get(entry["object"])
        plain = fmt.open_object(data, entry, comp.key, by_identity=by_identity)
        meta, body = fmt.parse_recorded(plain, entry)
        if meta.client != comp.client_id:
            raise IntegrityError(f"note {entry['id']} does not match its index entry")
        if not fmt.body_matches(meta, body):
            raise IntegrityError(
                f"note {entry['id']} body does not match its signed hash"
            )
        if not check_signature:
            return meta, body
        status = fmt.signature_status(meta, self._signers())
        if status not in ("valid", "draft"):
            raise IntegrityError(
                f"note {entry['id']} has an {status} signature; not shown"
            )
        return meta, body

    def _addenda(self, comp_list: list[Compartment], note_id: str) -> tuple[str, ...]:
        return tuple(
            e["id"]
            for c in comp_list
            for e in c.notes
            if e.get("addendum_of") == note_id
        )

    # --- writing -------------------------------------------------------------------

    def add_note(
        self,
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
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            client_id = self._resolve_client(root, client)
            compartment = fmt.compartment_of(kind)
            comp = self._compartment_for_write(txn, root, client_id, compartment)
            meta = self._new_meta(
                client_id,
                kind=kind,
                title=title,
                body=body,
                date=date,
                compartment=compartment,
                template=template,
            )
            if not draft:
                meta = self._lock(meta)
            action = "draft-add" if draft else "note-add"
            entry = self._store_note(txn, root, comp, meta, body, action=action)
            return _info(entry, root["clients"][client_id]["name"])

    def import_notes(
        self,
        client: str,
        paths: list[Path],
        *,
        kind: str = "progress",
        progress: Progress | None = None,
    ) -> list[NoteInfo]:
        """Bring existing text/Markdown files in as signed notes, in one commit."""
        return self.add_notes(
            client, [_load_import(path) for path in paths], kind=kind, progress=progress
        )

    def add_notes(
        self,
        client: str,
        items: list[tuple[str, str, bytes]],
        *,
        kind: str = "progress",
        progress: Progress | None = None,
    ) -> list[NoteInfo]:
        """Add many signed notes ``(title, date, body)`` to one client in one commit."""
        _check_kind(kind)
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            client_id = self._resolve_client(root, client)
            compartment = fmt.compartment_of(kind)
            comp = self._compartment_for_write(txn, root, client_id, compartment)
            entries = []
            for number, (title, date, body) in enumerate(items, start=1):
                meta = self._lock(
                    self._new_meta(
                        client_id,
                        kind=kind,
                        title=title,
                        body=body,
                        date=date,
                        compartment=compartment,
                    )
                )
                entry = meta.to_json() | self._seal_note(txn, comp, meta, body)
                comp.notes.append(entry)
                entries.append(entry)
                self._note_audit("note-import", client_id, meta.id)
                if progress:
                    progress(number, len(items))
            self._write_index(txn, comp)
            client_doc = root["clients"][client_id]
            if entries:
                client_doc["last_note"] = max(
                    [client_doc.get("last_note") or ""] + [e["date"] for e in entries]
                )
            self._write_root(txn, root, changed=[client_id])
            name = client_doc["name"]
            return [_info(e, name) for e in entries]

    def add_attachment(
        self, client: str, path: Path, *, title: str | None = None
    ) -> NoteInfo:
        """Seal any file, streamed, as a signed attachment note."""
        digest, size = _hash_file(path)
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            client_id = self._resolve_client(root, client)
            comp = self._compartment_for_write(txn, root, client_id, fmt.RECORDS)
            meta = self._lock(
                self._new_meta(
                    client_id,
                    kind="attachment",
                    title=title or path.name,
                    body=b"",
                    date=None,
                    compartment=fmt.RECORDS,
                    filename=names.title(path.name),
                    body_sha256=digest,
                    body_size=size,
                )
            )

            def write(sink: Any) -> None:
                sha = hashlib.sha256()
                with (
                    age.EncryptWriter(sink, [comp.key.recipient]) as writer,
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

            entry = meta.to_json() | {"object": txn.put_stream(write)}
            comp.notes.append(entry)
            self._note_audit("attachment-add", client_id, meta.id)
            self._write_index(txn, comp)
            self._write_root(txn, root, changed=[client_id])
            return _info(entry, root["clients"][client_id]["name"])

    def edit_draft(
        self, ref: str, body: bytes, *, title: str | None = None
    ) -> NoteInfo:
        """Replace a draft's text (and title). Signed notes never change."""
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            comp, entry = self._find(root, ref)
            if entry["status"] != "draft":
                raise NoteLockedError(
                    f"note {entry['id']} is signed and locked; add an addendum"
                )
            meta = replace(
                fmt.meta_of_entry(entry),
                body_size=len(body),
                body_sha256=fmt.body_digest(body),
                title=names.title(title) if title else entry["title"],
            )
            new = self._store_note(
                txn, root, comp, meta, body, replacing=entry, action="draft-edit"
            )
            return _info(new, root["clients"][comp.client_id]["name"])

    def sign_note(self, ref: str) -> NoteInfo:
        """Sign and lock a draft."""
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            comp, entry = self._find(root, ref)
            if entry["status"] != "draft":
                raise NoteLockedError(f"note {entry['id']} is already signed")
            meta, body = self._read(comp, entry)
            new = self._store_note(
                txn,
                root,
                comp,
                self._lock(meta),
                body,
                replacing=entry,
                action="note-sign",
            )
            return _info(new, root["clients"][comp.client_id]["name"])

    def amend(
        self, ref: str, body: bytes, *, title: str | None = None, draft: bool = False
    ) -> NoteInfo:
        """Add an addendum to a signed note (in the original's compartment)."""
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            comp, original = self._find(root, ref)
            if original["status"] != "signed":
                raise NoteLockedError(
                    f"note {original['id']} is a draft: edit it instead"
                )
            meta = self._new_meta(
                comp.client_id,
                kind="addendum",
                body=body,
                date=None,
                title=title or f"Addendum to {original['title']}"[:200],
                compartment=comp.name,
                addendum_of=original["id"],
            )
            if not draft:
                meta = self._lock(meta)
            entry = self._store_note(txn, root, comp, meta, body, action="note-amend")
            return _info(entry, root["clients"][comp.client_id]["name"])

    # --- reading -------------------------------------------------------------------

    def notes(
        self,
        client: str | None = None,
        *,
        since: str | None = None,
        until: str | None = None,
        kind: str | None = None,
        psychotherapy: bool = False,
    ) -> list[NoteInfo]:
        """Notes by date; psychotherapy notes only when asked for."""
        lower = parse_date(since) if since else None
        upper = parse_date(until) if until else None
        if upper and len(until or "") <= 10:
            upper = upper[:10] + "T23:59:59Z"
        with self._reading() as current:
            root = self._root_doc(current)
            ids = (
                [self._resolve_client(root, client)]
                if client
                else list(root["clients"])
            )
            comps = self._compartments(
                root, ids, psychotherapy or kind == fmt.PSYCHOTHERAPY
            )
            out = []
            for comp in comps:
                name = root["clients"][comp.client_id]["name"]
                for entry in comp.notes:
                    if kind and entry["kind"] != kind:
                        continue
                    if (lower and entry["date"] < lower) or (
                        upper and entry["date"] > upper
                    ):
                        continue
                    out.append(_info(entry, name, self._addenda([comp], entry["id"])))
        self._audit_read("note-list", ids[0] if client else None, notes=len(out))
        return sorted(out, key=lambda n: (n.date, n.created, n.id))

    def note(self, ref: str) -> NoteView:
        """A note with its body, after checking hash, index match and signature."""
        with self._reading() as current:
            root = self._root_doc(current)
            comp, entry = self._find(root, ref)
            meta, body = self._read(comp, entry)
            info = _info(
                entry,
                root["clients"][comp.client_id]["name"],
                self._addenda([comp], entry["id"]),
            )
            status = fmt.signature_status(meta, self._signers())
            view = NoteView(
                info=info, body=body, signature=status, signed_at=meta.signed_at
            )
        self._audit_read("note-show", info.client, info.id)
        return view

    def save_attachment(self, ref: str, dst: BinaryIO) -> NoteInfo:
        """Stream an attachment's file into ``dst``; IntegrityError if it is not intact.

        The caller should write to a temporary file and keep it only on success.
        """
        info = self._stream_attachment(ref, dst)
        self._audit_read("attachment-save", info.client, info.id)
        return info

    def _stream_attachment(self, ref: str, dst: BinaryIO) -> NoteInfo:
        with self._reading() as current:
            root = self._root_doc(current)
            comp, entry = self._find(root, ref)
            meta = fmt.meta_of_entry(entry)
            if fmt.signature_status(meta, self._signers()) != "valid":
                raise IntegrityError(f"note {entry['id']} has an invalid signature")
            with self.store.open_checked(entry["object"]) as src:
                chunks = age.decrypt_chunks(src, [comp.key])
                head = bytearray()
                sha = hashlib.sha256()
                size = 0
                for chunk in chunks:
                    if meta is not None and b"\n" not in head:
                        head += chunk
                        if b"\n" not in head:
                            continue
                        line, _, rest = bytes(head).partition(b"\n")
                        if fmt.parse_header(line) != meta:
                            raise IntegrityError(
                                f"note {entry['id']} does not match its index"
                            )
                        chunk = memoryview(rest)
                    sha.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
            if size != meta.body_size or sha.hexdigest() != meta.body_sha256:
                raise IntegrityError(
                    f"note {entry['id']} body does not match its signed hash"
                )
            return _info(entry, root["clients"][comp.client_id]["name"])

    def search(
        self, query: str, *, client: str | None = None, psychotherapy: bool = False
    ) -> list[SearchHit]:
        """Case-insensitive full-text search over note titles and bodies."""
        if not query.strip():
            raise UnsafeInputError("the search query is empty")
        needle = query.strip().casefold()
        pattern = re.compile(re.escape(query.strip()), re.IGNORECASE)
        hits = []
        with self._reading() as current:
            root = self._root_doc(current)
            ids = (
                [self._resolve_client(root, client)]
                if client
                else list(root["clients"])
            )
            for comp in self._compartments(root, ids, psychotherapy):
                name = root["clients"][comp.client_id]["name"]
                for entry in comp.notes:
                    if entry["kind"] == "attachment":
                        text = entry["title"]
                    else:
                        data = self.store.get(entry["object"])
                        body = fmt.body_recorded(
                            fmt.open_object(data, entry, comp.key), entry
                        )
                        text = entry["title"] + "\n" + body.decode("utf-8", "replace")
                    if needle not in text.casefold():
                        continue
                    snippets = tuple(_snippet(text, m) for m in pattern.finditer(text))
                    if snippets:
                        hits.append(SearchHit(_info(entry, name), snippets[:5]))
        self._audit_read("note-search", ids[0] if client else None, hits=len(hits))
        return sorted(hits, key=lambda h: (h.note.date, h.note.id))


def _snippet(text: str, match: re.Match[str], width: int = 40) -> tuple[str, str, str]:
    before = re.sub(r"\s+", " ", text[max(0, match.start() - width) : match.start()])
    after = re.sub(r"\s+", " ", text[match.end() : match.end() + width])
    return (before.lstrip(), match.group(0), after.rstrip())


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


_FRONT = re.compile(rb"\A---\r?\n(.*?)\r?\n---\r?\n", re.DOTALL)


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
