"""What one side added over the merge base when it only added notes
(issue 16), for ``keys_merge`` and ``written`` (the record-level merge of
both sides' changes is ``records_merge``).

``additions(x, base)`` says whether the state ``x`` is ``base`` plus added
notes (new note objects, new entries at the end of compartment indexes, the
root's counts and ``last_note``) and audit entries, and nothing else: the
same pointers but ``root`` and ``audit``, the same signer, settings, grants
(none: a grantee's directory would change too) and clients, each compartment
with the same key; every object that differs is one of those. It returns
what was added.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from confvault import age
from confvault.sync.merge import AUDIT, Side, Source, chain_after
from confvault.vault.model import sealed
from confvault.vault.model.audit import ChainEntry
from confvault.vault.model.index import CompartmentIndex, NoteEntry
from confvault.vault.model.root import RootRecord
from confvault.vault.store import root_index

ROOT = "root"
Key = tuple[str, str]  # (client ID, compartment)


@dataclass(frozen=True)
class Added:
    """One side's additions over the base."""

    root: RootRecord
    buckets: root_index.Buckets
    indexes: dict[Key, CompartmentIndex]  # each changed compartment's index
    notes: dict[Key, tuple[NoteEntry, ...]]  # the entries it added
    entries: list[ChainEntry]  # its audit entries after the base's


def _root(x: Side, owner: age.Identity) -> tuple[RootRecord, root_index.Buckets]:
    digest = x.manifest.pointer(ROOT)
    if digest is None:
        raise ValueError("no root")
    return root_index.read(Source(x), owner, digest, x.manifest.body.vault_id)


def additions(x: Side, base: Side, owner: age.Identity) -> Added | None:
    """What ``x`` added to ``base`` when it only added notes (and audit
    entries); None otherwise."""
    px, pb = dict(x.manifest.body.pointers), dict(base.manifest.body.pointers)
    for p in (px, pb):
        p.pop(AUDIT, None)
        p.pop(ROOT, None)
    bx, bb = x.manifest.body, base.manifest.body
    if px != pb or bx.signer != bb.signer or bx.endorsements != bb.endorsements:
        return None
    if x.manifest.pointer(ROOT) is None or base.manifest.pointer(ROOT) is None:
        return None
    chain = chain_after(x, base, owner)
    if chain is None:
        return None
    entries, segments = chain
    root_x, buckets_x = _root(x, owner)
    root_b, buckets_b = _root(base, owner)
    if root_b.grants or replace(root_x, clients=root_b.clients) != root_b:
        return None
    if root_x.clients.keys() != root_b.clients.keys():
        return None
    new_ok = {x.manifest.pointer(ROOT)} | buckets_x.objects | segments
    gone_ok = {base.manifest.pointer(ROOT)} | buckets_b.objects | segments
    found = _compartments(x, base, owner, root_x, root_b)
    if found is None:
        return None
    indexes, notes, new_idx, gone_idx = found
    new_ok |= new_idx
    gone_ok |= gone_idx
    if not (x.names - base.names) <= new_ok or not (base.names - x.names) <= gone_ok:
        return None
    return Added(root_x, buckets_x, indexes, notes, entries)


def _compartments(
    x: Side, base: Side, owner: age.Identity, root_x: RootRecord, root_b: RootRecord
) -> (
    tuple[
        dict[Key, CompartmentIndex],
        dict[Key, tuple[NoteEntry, ...]],
        set[str],
        set[str],
    ]
    | None
):
    """Each compartment ``x`` changed (only by notes added at the end of its
    index), its added entries, and the objects that differ because of it."""
    new_ok: set[str] = set()
    gone_ok: set[str] = set()
    indexes: dict[Key, CompartmentIndex] = {}
    notes: dict[Key, tuple[NoteEntry, ...]] = {}
    for cid, cx in root_x.clients.items():
        cb = root_b.clients[cid]
        if cx == cb:
            continue
        if replace(cx, compartments=cb.compartments, last_note=cb.last_note) != cb:
            return None
        if cx.compartments.keys() != cb.compartments.keys():
            return None
        for name, ex in cx.compartments.items():
            eb = cb.compartments[name]
            if ex == eb:
                continue
            if (ex.key, ex.key_created) != (eb.key, eb.key_created):
                return None
            key = sealed.open_client_key(Source(base), eb.key, [owner])
            ix = sealed.open_index(Source(x), ex, key, cid, name)
            ib = sealed.open_index(Source(base), eb, key, cid, name)
            # every base entry kept as it was (in any order: a merged index
            # holds the base's, then both sides' in note ID order)
            was = {e.id: e for e in ib.notes}
            kept = [e for e in ix.notes if e.id in was]
            if replace(ix, notes=ib.notes) != ib or len(was) != len(ib.notes):
                return None
            if len(kept) != len(was) or any(e != was[e.id] for e in kept):
                return None
            added = tuple(e for e in ix.notes if e.id not in was)
            if len({e.id for e in added}) != len(added):
                return None
            if any(e.damaged is not None or e.object in base.names for e in added):
                return None
            indexes[(cid, name)] = ix
            notes[(cid, name)] = added
            new_ok |= {ex.index} | {e.object for e in added}
            gone_ok.add(eb.index)
    return indexes, notes, new_ok, gone_ok
