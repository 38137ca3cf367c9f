"""The record-level merge of two devices' changes (issue 16).

``read(x, base, owner)`` reads one side's state when, since ``base``, it
changed only what this merge knows (its records and its audit trail: the
same pointers but ``root`` and ``audit``, the same signer and endorsements,
settings, grants (none: a grantee's directory would change too), pending
rotations, custody and requests); None otherwise.

``plan(ours, theirs, base)`` then merges three ways, record by record:
clients by ID (a client one side added is taken as it is; the client's
fields merge when one side changed them), each client's compartments by
name (a compartment one side created, with its key, is taken as it is; one
changed on one side only is that side's, as it is), and each compartment
both sides changed by note ID (its index rebuilt: the base's entries in
their order, each as the side that changed it left it, then both sides'
new entries in note ID order). Anything it cannot decide (a record changed
differently on both sides but a draft, a client or compartment gone, a key
changed) makes it None: the caller refuses. A draft changed on both sides
keeps the signed or later-edited version; the other is listed in
``Plan.conflicts`` and kept by the commit (``records_commit``) as a
conflict draft. The same two states give the same records whichever device
merges.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypeVar

from confvault import age
from confvault.errors import NoIdentityMatchError
from confvault.sync.merge import AUDIT, Side, Source, chain_after
from confvault.vault.model import sealed
from confvault.vault.model.audit import ChainEntry
from confvault.vault.model.index import CompartmentIndex, NoteEntry
from confvault.vault.model.root import ClientRecord, CompartmentEntry, RootRecord
from confvault.vault.store import root_index

ROOT = "root"
Key = tuple[str, str]  # (client ID, compartment)
T = TypeVar("T")
_WRITES = frozenset(("note-add", "draft-edit", "note-sign"))  # audit actions


@dataclass(frozen=True)
class State:
    """One side's state as the merge reads it."""

    side: Side
    root: RootRecord
    buckets: root_index.Buckets
    entries: list[ChainEntry]  # its audit entries after the base's


@dataclass
class Plan:
    """The merged records, on top of the other side's state."""

    clients: dict[str, ClientRecord]
    # compartments whose merged index is written anew: (entry, index, key)
    writes: dict[Key, tuple[CompartmentEntry, CompartmentIndex, age.AnyIdentity]]
    copy: set[str] = field(default_factory=set)  # this side's objects kept
    retire: set[str] = field(default_factory=set)  # the other's not kept
    changed: set[str] = field(default_factory=set)  # clients unlike theirs
    # drafts changed on both sides: the version that lost, and its side,
    # kept as a new conflict draft
    conflicts: list[tuple[Key, NoteEntry, Side]] = field(default_factory=list)


def _root(x: Side, owner: age.Identity) -> tuple[RootRecord, root_index.Buckets]:
    digest = x.manifest.pointer(ROOT)
    if digest is None:
        raise ValueError("no root")
    return root_index.read(Source(x), owner, digest, x.manifest.body.vault_id)


def same_frame(x: Side, y: Side) -> bool:
    """The same pointers but root and audit, the same signer and endorsements."""
    px, py = dict(x.manifest.body.pointers), dict(y.manifest.body.pointers)
    for p in (px, py):
        p.pop(AUDIT, None)
        p.pop(ROOT, None)
    bx, by = x.manifest.body, y.manifest.body
    return (
        px == py
        and bx.signer == by.signer
        and bx.endorsements == by.endorsements
        and x.manifest.pointer(ROOT) is not None
        and y.manifest.pointer(ROOT) is not None
    )


def read(x: Side, base: Side, owner: age.Identity) -> State | None:
    """``x``'s state when it changed only records and audit since ``base``."""
    if not same_frame(x, base):
        return None
    chain = chain_after(x, base, owner)
    if chain is None:
        return None
    root_x, buckets_x = _root(x, owner)
    root_b, _ = _root(base, owner)
    if root_b.grants or replace(root_x, clients=root_b.clients) != root_b:
        return None
    return State(x, root_x, buckets_x, chain[0])


def contains(x: Side, y: Side, base: Side, owner: age.Identity) -> bool:
    """Whether ``x`` already holds every change ``y`` made since ``base`` (a
    merge of ``y`` committed here and not yet pushed, or the other way
    round): its audit chain extends ``y``'s, and each record ``y`` changed
    is in ``x`` as ``y`` left it (a draft's version that lost as a conflict
    copy). The chain alone is no proof: two devices may write identical
    entries (the same action on the same client in the same second).
    False when a side does not open with ``owner`` (a side or the base of
    an identity rotation, sealed to the other owner key: ``keys_merge``
    decides those)."""
    try:
        return _contains(x, y, base, owner)
    except NoIdentityMatchError:
        return False


def _contains(x: Side, y: Side, base: Side, owner: age.Identity) -> bool:
    if not same_frame(x, y) or chain_after(x, y, owner) is None:
        return False
    rx, ry, rb = (_root(v, owner)[0] for v in (x, y, base))
    for cid, cy in ry.clients.items():
        cx, cb = rx.clients.get(cid), rb.clients.get(cid)
        if cx is None:
            return False
        changed = cb is None or _fields(cy) != _fields(cb)
        if changed and _fields(cy) != _fields(cx):
            return False
        for name, ey in cy.compartments.items():
            ex = cx.compartments.get(name)
            eb = None if cb is None else cb.compartments.get(name)
            if ex is None:
                return False
            if ey not in (ex, eb) and not _index_kept(
                (x, y, base), (ex, ey, eb), (cid, name), owner
            ):
                return False
    return True


def _index_kept(
    sides: tuple[Side, Side, Side],
    entries: tuple[CompartmentEntry, CompartmentEntry, CompartmentEntry | None],
    where: Key,
    owner: age.Identity,
) -> bool:
    """Every note (and the profile) ``y`` changed in one compartment is in
    ``x``'s index as ``y`` left it, or kept there as a conflict copy."""
    x, y, base = sides
    ex, ey, eb = entries
    if (ex.key, ex.key_created) != (ey.key, ey.key_created):
        return False
    key = sealed.open_client_key(Source(y), ey.key, [owner])
    ix = sealed.open_index(Source(x), ex, key, *where)
    iy = sealed.open_index(Source(y), ey, key, *where)
    ib = None if eb is None else sealed.open_index(Source(base), eb, key, *where)
    was = {} if ib is None else {e.id: e for e in ib.notes}
    if iy.profile != (ib.profile if ib else None) and iy.profile != ix.profile:
        return False
    held = {e.id: e for e in ix.notes}
    copies = {(e.conflict, e.body_sha256) for e in ix.notes if e.conflict}
    for e in iy.notes:
        if was.get(e.id) == e or held.get(e.id) == e:
            continue
        if e.status != "draft" or (e.id, e.body_sha256) not in copies:
            return False
    return True


def pick(base: T, ours: T, theirs: T) -> tuple[T] | None:
    """The three-way choice of one value; None when both changed it apart."""
    if ours in (theirs, base):
        return (theirs,)
    if theirs == base:
        return (ours,)
    return None


def _fields(c: ClientRecord) -> ClientRecord:
    return replace(c, compartments={}, last_note=None)


def _later(a: str | None, b: str | None) -> str | None:
    return max((v for v in (a, b) if v is not None), default=None)


class _UndecidedError(Exception):
    """A change the merge cannot decide: the caller refuses."""


def plan(ours: State, theirs: State, base: State, owner: age.Identity) -> Plan | None:
    """The merged records (see the module's docstring); None when undecided."""
    out = Plan(dict(theirs.root.clients), {})
    try:
        for cid in sorted(ours.root.clients.keys() | theirs.root.clients.keys()):
            _client(out, cid, ours, theirs, base, owner)
    except _UndecidedError:
        return None
    return out


def _client(
    out: Plan, cid: str, ours: State, theirs: State, base: State, owner: age.Identity
) -> None:
    co, ct = ours.root.clients.get(cid), theirs.root.clients.get(cid)
    cb = base.root.clients.get(cid)
    if cb is None:
        if co is not None and ct is not None:
            raise _UndecidedError  # the same new ID on both sides
        if co is not None:  # added here: taken as it is
            out.clients[cid] = co
            out.changed.add(cid)
            for name, entry in sorted(co.compartments.items()):
                out.copy |= _objects(ours.side, cid, name, entry, owner)
        return
    if co is None or ct is None:
        raise _UndecidedError  # a client gone (shredded) on one side
    chosen = pick(_fields(cb), _fields(co), _fields(ct))
    if chosen is None:
        raise _UndecidedError
    comps = dict(ct.compartments)
    for name in sorted(co.compartments.keys() | ct.compartments.keys()):
        eo, et = co.compartments.get(name), ct.compartments.get(name)
        eb = cb.compartments.get(name)
        if eo is None or eo in (et, eb):
            if et is None or (eb is not None and eo is None):
                raise _UndecidedError  # a compartment gone on one side
            continue  # theirs, as it is
        if et is None:  # a first note of a kind here: taken with its key
            if eb is not None:
                raise _UndecidedError
            comps[name] = eo
            out.copy |= _objects(ours.side, cid, name, eo, owner)
            continue
        if eb is None:
            raise _UndecidedError  # the same kind's first note on both sides
        _compartment(out, comps, (cid, name), (eb, eo, et), (ours, theirs, base), owner)
    merged = replace(
        chosen[0],
        compartments=comps,
        last_note=_later(co.last_note, ct.last_note),
    )
    if merged != ct:
        out.clients[cid] = merged
        out.changed.add(cid)


def _objects(
    x: Side, cid: str, name: str, entry: CompartmentEntry, owner: age.Identity
) -> set[str]:
    """Every object of one compartment: its key file, its index, its notes."""
    key = sealed.open_client_key(Source(x), entry.key, [owner])
    index = sealed.open_index(Source(x), entry, key, cid, name)
    return {entry.key, entry.index} | _note_objects(index)


def _note_objects(index: CompartmentIndex) -> set[str]:
    return {e.object for e in index.notes if e.damaged is None}


def _compartment(
    out: Plan,
    comps: dict[str, CompartmentEntry],
    where: Key,
    entries: tuple[CompartmentEntry, CompartmentEntry, CompartmentEntry],
    states: tuple[State, State, State],
    owner: age.Identity,
) -> None:
    """One compartment both sides hold, changed on this side at least."""
    eb, eo, et = entries
    ours, theirs, base = states
    if not eb.key == eo.key == et.key or not (
        eb.key_created == eo.key_created == et.key_created
    ):
        raise _UndecidedError  # a key rotated on one side (keys_merge)
    cid, name = where
    key = sealed.open_client_key(Source(base.side), eb.key, [owner])
    io_ = sealed.open_index(Source(ours.side), eo, key, cid, name)
    it = sealed.open_index(Source(theirs.side), et, key, cid, name)
    if et == eb:  # changed here only: this side's, as it is
        comps[name] = eo
        out.copy |= ({eo.index} | _note_objects(io_)) - theirs.side.names
        out.retire |= ({et.index} | _note_objects(it)) - (
            {eo.index} | _note_objects(io_)
        )
        return
    ib = sealed.open_index(Source(base.side), eb, key, cid, name)
    merged = merge_index(ib, (io_, ours), (it, theirs), where, out)
    kept = _note_objects(merged)
    out.copy |= kept - theirs.side.names
    out.retire |= _note_objects(it) - kept  # and its index, when written
    out.writes[where] = (et, merged, key)
    out.changed.add(cid)
    comps[name] = et  # its index and counts set when written


def _edited(x: State, note: str) -> str:
    """When ``x`` last changed a note (its audit entries since the base)."""
    return max(
        (e.time for e in x.entries if e.note == note and e.action in _WRITES),
        default="",
    )


def _decide(
    e: NoteEntry,
    o: NoteEntry,
    t: NoteEntry,
    ours: State,
    theirs: State,
    where: Key,
    out: Plan,
) -> NoteEntry:
    """A draft both sides changed: the main version is the signed one, else
    the later edit (ties: the object name), whichever device merges; the
    other is kept as a conflict draft unless it holds the same text."""
    if e.status != "draft":
        raise _UndecidedError
    ranked = sorted(
        [
            (o.status == "signed", _edited(ours, e.id), o.object, o, ours.side),
            (t.status == "signed", _edited(theirs, e.id), t.object, t, theirs.side),
        ],
        key=lambda r: r[:3],
    )
    (*_, loser, side), (*_, winner, _) = ranked
    if (loser.body_sha256, loser.title) == (winner.body_sha256, winner.title):
        return winner
    if loser.status != "draft":
        raise _UndecidedError  # both signed, apart
    out.conflicts.append((where, loser, side))
    return winner


def merge_index(
    ib: CompartmentIndex,
    ours: tuple[CompartmentIndex, State],
    theirs: tuple[CompartmentIndex, State],
    where: Key,
    out: Plan,
) -> CompartmentIndex:
    """Both sides' changes to one index, note by note."""
    io_, it = ours[0], theirs[0]
    profile = pick(ib.profile, io_.profile, it.profile)
    if profile is None:
        raise _UndecidedError
    bo = {e.id: e for e in io_.notes}
    bt = {e.id: e for e in it.notes}
    was = {e.id for e in ib.notes}
    if len(bo) != len(io_.notes) or len(bt) != len(it.notes):
        raise _UndecidedError
    notes: list[NoteEntry] = []
    for e in ib.notes:
        o, t = bo.get(e.id), bt.get(e.id)
        if o is None or t is None:
            raise _UndecidedError  # a note gone on one side
        chosen = pick(e, o, t)
        if chosen is None:
            chosen = (_decide(e, o, t, ours[1], theirs[1], where, out),)
        notes.append(chosen[0])
    new_o = [e for e in io_.notes if e.id not in was]
    new_t = [e for e in it.notes if e.id not in was]
    if {e.id for e in new_o} & {e.id for e in new_t}:
        raise _UndecidedError
    if any(e.damaged is not None for e in (*new_o, *new_t)):
        raise _UndecidedError
    notes += sorted((*new_o, *new_t), key=lambda e: e.id)
    return replace(it, notes=tuple(notes), profile=profile[0])
