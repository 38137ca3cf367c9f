"""Reading notes: list, show with signature and hash checks, attachments, search."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from confvault import age
from confvault.errors import (
    AmbiguousNameError,
    NoteNotFoundError,
    UnsafeInputError,
)
from confvault.vault.model import note_format as fmt
from confvault.vault.model import sealed
from confvault.vault.model.clock import parse_date
from confvault.vault.model.index import NoteEntry
from confvault.vault.model.results import NoteInfo, NoteView, SearchHit
from confvault.vault.model.root import RootRecord
from confvault.vault.ops import compartments, searching
from confvault.vault.ops.compartments import Compartment
from confvault.vault.session import trail

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


def note_info(
    entry: NoteEntry, client_name: str, addenda: tuple[str, ...] = ()
) -> NoteInfo:
    return NoteInfo(
        id=entry.id,
        client=entry.client,
        client_name=client_name,
        kind=entry.kind,
        title=entry.title,
        date=entry.date,
        created=entry.created,
        status=entry.status,
        size=entry.body_size,
        addendum_of=entry.addendum_of,
        template=entry.template,
        filename=entry.filename,
        addenda=addenda,
    )


def client_compartments(
    s: Session, root: RootRecord, client_ids: Iterable[str], psychotherapy: bool
) -> list[Compartment]:
    wanted = [fmt.RECORDS, fmt.PSYCHOTHERAPY] if psychotherapy else [fmt.RECORDS]
    out = []
    for client_id in client_ids:
        for name in wanted:
            comp = compartments.open_compartment(s, root, client_id, name)
            if comp is not None:
                out.append(comp)
    return out


def find(s: Session, root: RootRecord, ref: str) -> tuple[Compartment, NoteEntry]:
    ref = ref.strip().lower()
    if len(ref) < 4 or not all(c in "0123456789abcdef" for c in ref):
        raise NoteNotFoundError("give at least 4 hex characters of the note ID")
    candidates = (
        [cid for cid in root.clients if cid.startswith(ref[:6])]
        if len(ref) >= 6
        else list(root.clients)
    )
    found = [
        (comp, e)
        for comp in client_compartments(s, root, candidates, True)
        for e in comp.notes
        if e.id.startswith(ref)
    ]
    if not found:
        raise NoteNotFoundError(f"no note with ID {ref}")
    if len(found) > 1:
        raise AmbiguousNameError(
            f"{len(found)} notes have IDs starting with {ref}; give more"
        )
    return found[0]


def read(
    s: Session,
    comp: Compartment,
    entry: NoteEntry,
    *,
    check_signature: bool = True,
    by_identity: bool = False,
) -> tuple[fmt.NoteMeta, bytes]:
    """Decrypt a note and check it is the one the index names (see
    ``sealed.read_note``), its signature by one of this vault's owner keys."""
    return sealed.read_note(
        s.store,
        comp.key,
        entry,
        comp.client_id,
        s.signers(),
        check_signature=check_signature,
        by_identity=by_identity,
    )


def _addenda(s: Session, comp_list: list[Compartment], note_id: str) -> tuple[str, ...]:
    return tuple(e.id for c in comp_list for e in c.notes if e.addendum_of == note_id)


def notes(
    s: Session,
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
    with s.reading() as current:
        root = s.root_record(current)
        ids = (
            [compartments.resolve_client(s, root, client)]
            if client
            else list(root.clients)
        )
        comps = client_compartments(
            s, root, ids, psychotherapy or kind == fmt.PSYCHOTHERAPY
        )
        out = []
        for comp in comps:
            name = root.clients[comp.client_id].name
            for entry in comp.notes:
                if kind and entry.kind != kind:
                    continue
                if (lower and entry.date < lower) or (upper and entry.date > upper):
                    continue
                out.append(note_info(entry, name, _addenda(s, [comp], entry.id)))
    trail.audit_read(s, "note-list", ids[0] if client else None, notes=len(out))
    return sorted(out, key=lambda n: (n.date, n.created, n.id))


def note(s: Session, ref: str) -> NoteView:
    """A note with its body, after checking hash, index match and signature."""
    with s.reading() as current:
        root = s.root_record(current)
        comp, entry = find(s, root, ref)
        meta, body = read(s, comp, entry)
        info = note_info(
            entry, root.clients[comp.client_id].name, _addenda(s, [comp], entry.id)
        )
        status = fmt.signature_status(meta, s.signers())
        view = NoteView(
            info=info, body=body, signature=status, signed_at=meta.signed_at
        )
    trail.audit_read(s, "note-show", info.client, info.id)
    return view


def save_attachment(s: Session, ref: str, dst: age.Writer) -> NoteInfo:
    """Stream an attachment's file into ``dst``; IntegrityError if it is not intact.

    The caller should write to a temporary file and keep it only on success.
    """
    info = stream_attachment(s, ref, dst)
    trail.audit_read(s, "attachment-save", info.client, info.id)
    return info


def stream_attachment(s: Session, ref: str, dst: age.Writer) -> NoteInfo:
    with s.reading() as current:
        root = s.root_record(current)
        comp, entry = find(s, root, ref)
        sealed.stream_attachment(s.store, comp.key, entry, s.signers(), dst)
        return note_info(entry, root.clients[comp.client_id].name)


def search(
    s: Session,
    query: str,
    *,
    client: str | None = None,
    psychotherapy: bool = False,
    split_from: int = searching.SPLIT_NOTES,
) -> list[SearchHit]:
    """Case-insensitive full-text search over note titles and bodies.

    A search of ``split_from`` notes or more opens them in two processes
    (``ops.searching``): the same hits, in the same order."""
    if not query.strip():
        raise UnsafeInputError("the search query is empty")
    with s.reading() as current:
        root = s.root_record(current)
        ids = (
            [compartments.resolve_client(s, root, client)]
            if client
            else list(root.clients)
        )
        comps = client_compartments(s, root, ids, psychotherapy)
        found = searching.search_notes(s.store, comps, query.strip(), split_from)
        hits = [
            SearchHit(note_info(entry, root.clients[comp.client_id].name), snippets)
            for comp, entry, snippets in found
        ]
    trail.audit_read(s, "note-search", ids[0] if client else None, hits=len(hits))
    return sorted(hits, key=lambda h: (h.note.date, h.note.id))
