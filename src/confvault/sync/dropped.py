"""Grants made on one device while the other revoked (issue 16): the
revocation wins and those grants are dropped from the merge. A grant made
there re-wrapped client keys to its grantee on that device; whichever of
those keys the merged vault would still use (no grant to that grantee kept
there, the key not rotated by the revocation) gets a new key in the merge,
every note of its compartment re-sealed under it, so that the grantee's key
opens no file of the merged vault. Notes added for a client shredded on
the other side are left out (``ShreddedNotesError`` unless the caller said
so). Also: the other side's notes moved
under the key side's compartment key (``moved``)."""

from __future__ import annotations

from dataclasses import replace

from confvault import age
from confvault.errors import SyncConflictError
from confvault.sync.merge import Side, Source
from confvault.vault.model import note_format as fmt
from confvault.vault.model import sealed
from confvault.vault.model.grant import Grant
from confvault.vault.model.index import CompartmentIndex, NoteEntry
from confvault.vault.model.root import CompartmentEntry, RootRecord
from confvault.vault.session.core import Session
from confvault.vault.store import sealing
from confvault.vault.store.transaction import Transaction

Key = tuple[str, str]  # (client ID, compartment)


class ShreddedNotesError(SyncConflictError):
    """The other device added notes for a client shredded here (or the
    reverse): merging them would bring the client back. Nothing changed."""

    def __init__(self, left_out: dict[str, int]) -> None:
        self.left_out = dict(left_out)
        total = sum(left_out.values())
        super().__init__(
            f"{total} note(s) were added on one device for "
            f"{len(left_out)} client(s) shredded on the other; the merge does "
            "not bring a shredded client back: nothing was changed"
        )


def exposed(
    k: tuple[Side, RootRecord],
    w: tuple[Side, RootRecord],
    dropped: list[Grant],
    owner: age.Identity,
) -> tuple[Key, ...]:
    """The compartments of ``k`` whose key a dropped grant of ``w`` gave its
    grantee on ``w``'s device, and which ``k`` neither rotated nor grants
    to that grantee."""
    (ks, kr), (ws, wr) = k, w
    found = []
    for key in kr.compartment_keys():
        if key[0] not in wr.clients:
            continue
        for g in dropped:
            kept = any(h.covers(*key) for h in kr.grants if h.recipient == g.recipient)
            if g.covers(*key) and not kept and _same_key(ks, kr, ws, wr, key, owner):
                found.append(key)
                break
    return tuple(sorted(found))


def _same_key(
    ks: Side, kr: RootRecord, ws: Side, wr: RootRecord, key: Key, owner: age.Identity
) -> bool:
    files = [
        (x, r.clients[key[0]].compartments[key[1]].key) for x, r in ((ks, kr), (ws, wr))
    ]
    opened = [sealed.open_client_key(Source(x), d, [owner]) for x, d in files]
    return bool(opened[0].encode() == opened[1].encode())


def rotate(
    s: Session,
    txn: Transaction,
    root: RootRecord,
    key: Key,
    notes: list[tuple[NoteEntry, bytes, age.AnyIdentity]],
    index: CompartmentIndex,
) -> tuple[CompartmentEntry, CompartmentIndex, age.AnyIdentity]:
    """A new key for the compartment ``key`` of ``root`` (the merged
    state's), its ``notes`` (each with its sealed object and the key that
    opens it) re-sealed under it, written in ``txn`` with its key file; the
    old key file retired. The caller writes the index and retires the
    objects."""
    cid, name = key
    entry = root.clients[cid].compartments[name]
    new_key = root.new_key()
    created = s.now()
    text = sealing.client_key_text(cid, name, created, new_key.encode())
    recipients = [s.require_owner().recipient]
    recipients += [
        age.parse_recipient(g.recipient) for g in root.grants if g.covers(cid, name)
    ]
    resealed = []
    for note, data, opens in notes:
        resealed.append(
            note
            if note.damaged is not None
            else _resealed(txn, data, note, opens, new_key)
        )
    txn.retire(entry.key)
    entry = replace(
        entry, key=txn.put(sealing.seal_key_file(text, recipients)), key_created=created
    )
    return entry, replace(index, notes=tuple(resealed)), new_key


def sealed_object(x: Side, note: NoteEntry) -> bytes:
    """The note's sealed object in ``x`` (none for a damaged note)."""
    return b"" if note.damaged is not None else x.get(note.object)


def moved(
    txn: Transaction,
    w: Side,
    notes: tuple[NoteEntry, ...],
    w_key: age.AnyIdentity,
    k_key: age.AnyIdentity,
) -> list[NoteEntry]:
    """``w``'s notes in ``txn``, each sealed under ``k_key``."""
    moved = []
    for note in notes:
        data = w.get(note.object)
        if w_key.encode() == k_key.encode():  # a key file re-wrapped only
            txn.put(data)
            moved.append(note)
        else:
            moved.append(_resealed(txn, data, note, w_key, k_key))
    return moved


def _resealed(
    txn: Transaction,
    data: bytes,
    note: NoteEntry,
    opens: age.AnyIdentity,
    key: age.AnyIdentity,
) -> NoteEntry:
    """The note's object ``data`` opened with ``opens`` (its signed body
    checked) and sealed in ``txn`` under ``key``, with a new file key."""
    plain = fmt.open_object(data, note, opens)
    fmt.body_recorded(plain, note)
    digest, file_key = fmt.seal_object(txn, plain, key)
    return note.stored_at(digest, file_key)
