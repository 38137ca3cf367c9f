"""The merge of a key event on one device with notes added on the other
(issue 16): a client key rotated (``rotate``, a revocation's rotation), a
passphrase changed, or a client shredded on one side, while the other side
only added notes (``notes_merge.additions``).

``key_events(k, base, ...)`` says whether the state ``k`` is ``base`` changed
only by key events: the same pointers but ``root``, ``audit`` and ``owner``
(a new passphrase), the same signer (an identity rotation is refused), the
same settings and records, grants only removed or narrowed, clients only
removed (shredded), and each compartment's index the base's notes, each the
same but where it is stored (re-sealed under a new key) -- plus, after a
merge committed here and not yet pushed, the other side's added notes.

``merge`` then takes the side with the key event as the result (``onto``) and
replays the other side's added notes onto it: each note opened with the key
it was sealed to and sealed again under the current compartment key of the
side with the key event (as it is when that key did not change), appended to
that compartment's index; the audit entries joined as ``merge.commit_merge``
does; one transaction signed at max(local, remote) + 1. Notes added for a
client the other side shredded are left out, never bringing the client back:
``ShreddedNotesError`` unless the caller said to leave them out (the CLI asks,
or with ``--json`` leaves them out and reports it); docs/SYNC.md says where
they stay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

from confvault import age
from confvault.sync import dropped as dropping
from confvault.sync import owners, tree
from confvault.sync.dropped import ShreddedNotesError as ShreddedNotesError
from confvault.sync.git import Repo
from confvault.sync.merge import AUDIT, Side, Source, chain_after, commit_merge, stamped
from confvault.sync.notes_merge import Added
from confvault.sync.written import (
    GRANTEE,
    dropped_grants,
    read_root,
    written,
)
from confvault.vault.model import sealed
from confvault.vault.model.audit import ChainEntry
from confvault.vault.model.index import CompartmentIndex, NoteEntry
from confvault.vault.model.root import RootRecord
from confvault.vault.session.core import Session
from confvault.vault.store import manifest, root_index
from confvault.vault.store.transaction import Transaction

ROOT = "root"
OWNER = "owner"
LEFT_OUT_REF = "refs/confvault/left-out"
Key = tuple[str, str]  # (client ID, compartment)
# The audit actions of the key events a merge reports (the other entries of
# that side are reads, joined as they are).
KEY_EVENTS = frozenset(
    (
        "key-rotate",
        "revoke",
        "grant-expired",
        "passphrase-change",
        "client-shred",
        "identity-rotate",
    )
)


@dataclass(frozen=True)
class KeysMerge:
    """What a key-event merge did (``sync --json``)."""

    events: tuple[str, ...]  # the key events merged (audit actions)
    resealed: int  # notes re-sealed under the current compartment key
    left_out: dict[str, int]  # shredded client ID -> its notes left out
    revoked: tuple[str, ...] = ()  # labels of the grants revoked (they stay so)
    # labels of the grants made on the other side, dropped: the revocation wins
    dropped_grants: tuple[str, ...] = ()


def _stripped(e: NoteEntry) -> NoteEntry:
    return replace(e, object="", file_key=None, damaged=None)


def _index(
    x: Side, root: RootRecord, key: Key, owner: age.Identity
) -> tuple[CompartmentIndex, age.AnyIdentity]:
    entry = root.clients[key[0]].compartments[key[1]]
    opened = sealed.open_client_key(Source(x), entry.key, [owner])
    return sealed.open_index(Source(x), entry, opened, *key), opened


def key_events(
    k: Side, base: Side, owner: age.Identity, w: Added
) -> list[ChainEntry] | None:
    """``k``'s audit entries after ``base``'s when ``k`` is ``base`` changed
    only by key events (and, merged here before, ``w``'s notes); else None."""
    pk, pb = dict(k.manifest.body.pointers), dict(base.manifest.body.pointers)
    for p in (pk, pb):
        for name in [n for n in p if n.startswith(GRANTEE)] + [AUDIT, ROOT, OWNER]:
            p.pop(name, None)
    bk, bb = k.manifest.body, base.manifest.body
    new_owner = owners.rotated(k, base, base) is k
    if new_owner:
        pk.pop(owners.RECOVERY, None)
        pb.pop(owners.RECOVERY, None)
    elif pk != pb or bk.signer != bb.signer or bk.endorsements != bb.endorsements:
        return None
    if pk != pb:
        return None
    if k.manifest.pointer(ROOT) is None or k.manifest.pointer(OWNER) is None:
        return None
    chain = chain_after(k, base, owner)
    if chain is None:
        return None
    root_k, _ = read_root(k, owner)
    root_b, _ = read_root(base, owner)
    same = replace(
        root_k,
        clients=root_b.clients,
        grants=root_b.grants,
        pending_rotation=root_b.pending_rotation,
        settings=owners.unrotated(root_k.settings, root_b.settings),
    )
    if same != root_b or not set(root_k.clients) <= set(root_b.clients):
        return None
    if not {g.id for g in root_k.grants} <= {g.id for g in root_b.grants}:
        return None
    for cid, ck in root_k.clients.items():
        cb = root_b.clients[cid]
        if replace(ck, compartments=cb.compartments, last_note=cb.last_note) != cb:
            return None
        if ck.compartments.keys() != cb.compartments.keys():
            return None
        for name, ek in ck.compartments.items():
            if ek != cb.compartments[name] and not _same_notes(
                k, base, root_k, root_b, (cid, name), owner, w
            ):
                return None
    return chain[0]


def _same_notes(
    k: Side,
    base: Side,
    root_k: RootRecord,
    root_b: RootRecord,
    key: Key,
    owner: age.Identity,
    w: Added,
) -> bool:
    """``k``'s index of the compartment holds ``base``'s notes, each the same
    but where it is stored, and at most ``w``'s added notes besides."""
    ik, _ = _index(k, root_k, key, owner)
    ib, _ = _index(base, root_b, key, owner)
    if replace(ik, notes=ib.notes) != ib:
        return False
    was = {e.id: _stripped(e) for e in ib.notes}
    theirs = {e.id: _stripped(e) for e in w.notes.get(key, ())}
    if len(was) != len(ib.notes) or len({e.id for e in ik.notes}) != len(ik.notes):
        return False
    for e in ik.notes:
        if _stripped(e) != was.get(e.id, theirs.get(e.id)):
            return False
    return was.keys() <= {e.id for e in ik.notes}


@dataclass(frozen=True)
class _Plan:
    root: RootRecord
    buckets: root_index.Buckets
    replay: dict[Key, tuple[NoteEntry, ...]]  # notes the key side lacks
    left_out: dict[str, int]
    exposed: tuple[Key, ...] = ()  # compartments a dropped grant reached


def _plan(k: Side, added: Added, owner: age.Identity) -> _Plan:
    root_k, buckets = read_root(k, owner)
    replay: dict[Key, tuple[NoteEntry, ...]] = {}
    left_out: dict[str, int] = {}
    for (cid, name), notes in sorted(added.notes.items()):
        if cid not in root_k.clients:
            left_out[cid] = left_out.get(cid, 0) + len(notes)
            continue
        ik, _ = _index(k, root_k, (cid, name), owner)
        have = {e.id for e in ik.notes}
        new = tuple(sorted((e for e in notes if e.id not in have), key=lambda e: e.id))
        if new:
            replay[(cid, name)] = new
    return _Plan(root_k, buckets, replay, left_out)


def merge(
    s: Session,
    repo: Repo,
    local: manifest.Manifest,
    ours: Side,
    theirs: Side,
    base: Side,
    floor: int,
    leave_out: bool,
    passphrases: tuple[bytes, ...] = (),
) -> tuple[manifest.Manifest, KeysMerge] | None:
    """The merge of one side's key events with the other's added notes,
    committed here (writer lock held); None when the two changes are not
    that. An identity rotation needs ``passphrases`` (``owners``)."""
    new = s.require_owner()
    owner: age.Identity = new
    if (rotated := owners.rotated(ours, theirs, base)) is not None:
        new, owner = owners.both(new, rotated, base, passphrases)
    newer = local.generation > theirs.manifest.generation
    if newer and (
        written(ours, theirs, owner) is not None or _merged_here(ours, theirs, owner)
    ):
        # ours is theirs plus notes (merged here onto theirs, not yet pushed)
        return local, KeysMerge((), 0, {})
    for k, w in ((ours, theirs), (theirs, ours)):
        added = written(w, base, owner, new_grants=True)
        if added is None or rotated not in (None, k):
            continue
        events = key_events(k, base, owner, added)
        if events is None:
            continue
        plan = _plan(k, added, owner)
        was = read_root(base, owner)[0]
        revoked = tuple(
            sorted({g.label for g in was.grants} - {g.label for g in plan.root.grants})
        )
        dropped = dropped_grants(added.root, was)
        if dropped and not revoked:
            continue  # new grants beside a key event that revoked none
        plan = replace(
            plan,
            exposed=dropping.exposed((k, plan.root), (w, added.root), dropped, owner),
        )
        if plan.root.grants and any(
            g.covers(*key)
            for g in plan.root.grants
            for key in (*plan.replay, *plan.exposed)
        ):
            continue  # a grantee directory to re-seal too: not built yet
        if plan.left_out and not leave_out:
            raise ShreddedNotesError(plan.left_out)
        if plan.left_out and w is ours:
            # This device's state, with the notes left out, kept in the
            # device's sync repository (never pushed): recoverable.
            commit = tree.commit_local(
                repo, s.store, local, None, "confvault: notes left out of a merge\n"
            )
            repo.update_ref(LEFT_OUT_REF, commit)
        had = {_said(e) for e in events}
        entries = [e for e in added.entries if _said(e) not in had]
        theirs_said = {_said(e) for e in added.entries}
        report = KeysMerge(
            tuple(
                sorted(
                    {e.action for e in events if _said(e) not in theirs_said}
                    & KEY_EVENTS
                )
            ),
            sum(
                len(v)
                for key, v in plan.replay.items()
                if key in plan.exposed
                or _key_of(k, plan.root, key, owner)
                != _key_of(w, added.root, key, owner)
            )
            + sum(
                len(_index(k, plan.root, key, owner)[0].notes) for key in plan.exposed
            ),
            plan.left_out,
            revoked,
            tuple(g.label for g in dropped),
        )
        if k is ours and not plan.replay and not plan.exposed and not entries:
            return local, report  # merged here before: push it
        had_owner, s.owner = s.owner, new  # theirs rotated: signed with theirs
        try:
            merged = commit_merge(
                s,
                local,
                None if k is ours else k,
                entries,
                floor,
                partial(_replay, s, k=k, w=w, added=added, plan=plan, owner=owner),
            )
        except BaseException:
            s.owner = had_owner
            raise
        return merged, report
    return None


def _merged_here(ours: Side, theirs: Side, owner: age.Identity) -> bool:
    """``ours`` is ``theirs`` with notes added and compartment keys replaced
    (a dropped grant's, by a merge committed here and not yet pushed)."""
    if chain_after(ours, theirs, owner) is None:
        return False
    root, buckets = read_root(ours, owner)
    was, _ = read_root(theirs, owner)
    notes = {
        key: _index(ours, root, key, owner)[0].notes
        for key in root.compartment_keys()
        if key[0] in was.clients
        and root.clients[key[0]].compartments[key[1]]
        != was.clients[key[0]].compartments.get(key[1])
    }
    return (
        key_events(ours, theirs, owner, Added(root, buckets, {}, notes, [])) is not None
    )


def _said(e: ChainEntry) -> str:
    """An entry as it was written (its place in a chain aside)."""
    return repr(stamped([e])[0])


def _key_of(x: Side, root: RootRecord, key: Key, owner: age.Identity) -> str:
    """The compartment's key, as a key file of ``x`` holds it."""
    digest = root.clients[key[0]].compartments[key[1]].key
    return str(sealed.open_client_key(Source(x), digest, [owner]).encode())


def _replay(
    s: Session,
    txn: Transaction,
    *,
    k: Side,
    w: Side,
    added: Added,
    plan: _Plan,
    owner: age.Identity,
) -> None:
    """Append the planned notes to the key side's indexes, each sealed under
    its compartment's current key, and write the root (and the key side's
    endorsement of a new owner key, when this side lacks it)."""
    ends = k.manifest.body.endorsements
    if len(ends) > len(txn.current.body.endorsements if txn.current else ()):
        txn.changes.endorsement = ends[-1]
    if not plan.replay and not plan.exposed:
        return
    clients = dict(plan.root.clients)
    for cid, name in sorted({*plan.replay, *plan.exposed}):
        notes = plan.replay.get((cid, name), ())
        ik, k_key = _index(k, plan.root, (cid, name), owner)
        entry = clients[cid].compartments[name]
        old_index = entry.index
        w_entry = added.root.clients[cid].compartments[name]
        w_key = sealed.open_client_key(Source(w), w_entry.key, [owner])
        if (cid, name) in plan.exposed:
            entry, merged, k_key = dropping.rotate(
                s,
                txn,
                replace(plan.root, clients=clients),
                (cid, name),
                [(n, dropping.sealed_object(k, n), k_key) for n in ik.notes]
                + [(n, w.get(n.object), w_key) for n in notes],
                ik,
            )
            for n in ik.notes:
                if n.damaged is None:
                    txn.retire(n.object)
            s.note_audit(
                "key-rotate", cid, None, compartments=[name], reason="grant-dropped"
            )
        else:
            merged = replace(
                ik, notes=(*ik.notes, *dropping.moved(txn, w, notes, w_key, k_key))
            )
        txn.retire(old_index)
        index = txn.put_document(merged.to_doc(), [k_key.recipient])
        signed, drafts, attachments = merged.counts()
        entry = replace(
            entry, index=index, notes=signed, drafts=drafts, attachments=attachments
        )
        last = max(
            (
                v
                for v in (clients[cid].last_note, added.root.clients[cid].last_note)
                if v is not None
            ),
            default=None,
        )
        clients[cid] = replace(
            clients[cid].with_compartment(name, entry), last_note=last
        )
    root = replace(plan.root, clients=clients)
    txn.retire(k.manifest.pointer(ROOT))
    digest, _ = root_index.write(
        txn,
        root,
        plan.buckets,
        s.require_owner().recipient,
        sorted({c for c, _ in (*plan.replay, *plan.exposed)}),
    )
    txn.point(ROOT, digest)
