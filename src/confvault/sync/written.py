"""What one side added since the last sync when it only added notes: the
check ``notes_merge.additions`` makes, and also in a vault with grants (each
grantee directory that lists the clients written to re-sealed with the note),
for ``keys_merge``: a revocation on one side, notes added on the other.
"""

from __future__ import annotations

from dataclasses import replace

from confvault import age
from confvault.sync.merge import AUDIT, Side, Source, chain_after
from confvault.sync.notes_merge import Added, additions
from confvault.vault.model import sealed
from confvault.vault.model.grant import Grant
from confvault.vault.model.index import CompartmentIndex, NoteEntry
from confvault.vault.model.root import RootRecord
from confvault.vault.store import root_index

ROOT = "root"
GRANTEE = "grantee:"  # manifest pointers to grantee directories
Key = tuple[str, str]  # (client ID, compartment)


def read_root(x: Side, owner: age.Identity) -> tuple[RootRecord, root_index.Buckets]:
    digest = x.manifest.pointer(ROOT)
    if digest is None:
        raise ValueError("no root")
    return root_index.read(Source(x), owner, digest, x.manifest.body.vault_id)


def written(
    w: Side, base: Side, owner: age.Identity, *, new_grants: bool = False
) -> Added | None:
    """What ``w`` added to ``base`` when it only added notes (and audit
    entries): ``notes_merge.additions``, and also in a vault with grants
    (each grantee directory that lists the clients written to re-sealed).
    ``new_grants``: ``w`` may also have made or widened grants (none
    removed; the client-key files they re-wrapped holding the same keys),
    which the caller drops (``dropped_grants`` names them)."""
    added = additions(w, base, owner)
    if added is not None or not base.manifest.pointer(ROOT):
        return added
    pw, pb = dict(w.manifest.body.pointers), dict(base.manifest.body.pointers)
    for p in (pw, pb):
        for name in [n for n in p if n.startswith(GRANTEE) or n in (AUDIT, ROOT)]:
            del p[name]
    bw, bb = w.manifest.body, base.manifest.body
    if pw != pb or bw.signer != bb.signer or bw.endorsements != bb.endorsements:
        return None
    if w.manifest.pointer(ROOT) is None:
        return None
    chain = chain_after(w, base, owner)
    root_w, buckets_w = read_root(w, owner)
    root_b, buckets_b = read_root(base, owner)
    if chain is None or not _grants_kept(root_w, root_b, new_grants):
        return None
    same = replace(root_w, clients=root_b.clients, grants=root_b.grants)
    if same != root_b or root_w.clients.keys() != root_b.clients.keys():
        return None
    found = _added_notes(w, base, owner, root_w, root_b, new_grants)
    if found is None:
        return None
    indexes, notes, new_idx, gone_idx = found
    new_ok = {w.manifest.pointer(ROOT)} | buckets_w.objects | chain[1] | new_idx
    gone_ok = {base.manifest.pointer(ROOT)} | buckets_b.objects | chain[1] | gone_idx
    new_ok |= {v for n, v in w.manifest.body.pointers.items() if n.startswith(GRANTEE)}
    gone_ok |= {
        v for n, v in base.manifest.body.pointers.items() if n.startswith(GRANTEE)
    }
    if not (w.names - base.names) <= new_ok or not (base.names - w.names) <= gone_ok:
        return None
    return Added(root_w, buckets_w, indexes, notes, chain[0])


def _added_notes(
    w: Side,
    base: Side,
    owner: age.Identity,
    root_w: RootRecord,
    root_b: RootRecord,
    rewrapped: bool = False,
) -> (
    tuple[
        dict[Key, CompartmentIndex],
        dict[Key, tuple[NoteEntry, ...]],
        set[str],
        set[str],
    ]
    | None
):
    """Each compartment ``w`` changed only by notes added after the base's,
    its index, its added entries, and the objects that differ because of it;
    ``rewrapped``: its key file may be another holding the same key."""
    new_ok: set[str] = set()
    gone_ok: set[str] = set()
    indexes: dict[Key, CompartmentIndex] = {}
    notes: dict[Key, tuple[NoteEntry, ...]] = {}
    for cid, cw in root_w.clients.items():
        cb = root_b.clients[cid]
        if replace(cw, compartments=cb.compartments, last_note=cb.last_note) != cb:
            return None
        if cw.compartments.keys() != cb.compartments.keys():
            return None
        for name, ew in cw.compartments.items():
            eb = cb.compartments[name]
            if (
                ew.key != eb.key
                and rewrapped
                and _same_key(w, base, ew.key, eb.key, owner)
            ):
                new_ok.add(ew.key)
                gone_ok.add(eb.key)
                ew = replace(ew, key=eb.key)
            if ew == eb:
                continue
            if (ew.key, ew.key_created) != (eb.key, eb.key_created):
                return None
            key = sealed.open_client_key(Source(base), eb.key, [owner])
            iw = sealed.open_index(Source(w), ew, key, cid, name)
            ib = sealed.open_index(Source(base), eb, key, cid, name)
            n = len(ib.notes)
            if replace(iw, notes=ib.notes) != ib or iw.notes[:n] != ib.notes:
                return None
            added = iw.notes[n:]
            ids = {e.id for e in iw.notes}
            if len(ids) != len(iw.notes):
                return None
            if any(e.damaged is not None or e.object in base.names for e in added):
                return None
            indexes[(cid, name)] = iw
            notes[(cid, name)] = added
            new_ok |= {ew.index} | {e.object for e in added}
            gone_ok.add(eb.index)
    return indexes, notes, new_ok, gone_ok


def dropped_grants(w: RootRecord, base: RootRecord) -> list[Grant]:
    """``w``'s grants made or changed since ``base``."""
    was = {g.id: replace(g, directory=None) for g in base.grants}
    return [g for g in w.grants if was.get(g.id) != replace(g, directory=None)]


def _grants_kept(w: RootRecord, base: RootRecord, new_grants: bool) -> bool:
    if new_grants:
        return {g.id for g in base.grants} <= {g.id for g in w.grants}
    return not dropped_grants(w, base) and len(w.grants) == len(base.grants)


def _same_key(w: Side, base: Side, kw: str, kb: str, owner: age.Identity) -> bool:
    """The two client-key files hold the same key (one re-wrapped by a grant)."""
    opened = [
        sealed.open_client_key(Source(x), k, [owner]) for x, k in ((w, kw), (base, kb))
    ]
    return bool(opened[0].encode() == opened[1].encode())
