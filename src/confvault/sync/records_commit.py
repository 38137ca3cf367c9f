"""The commit of a record-level merge (``records_merge.plan``): the other
side's state, this side's records the plan keeps, each compartment index
both sides changed written anew (with a conflict copy of each draft whose
version lost), the root's buckets of the changed clients, this side's audit
entries joined (``merge.commit_merge``); one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

from confvault import age
from confvault.sync.merge import commit_merge
from confvault.sync.records_merge import ROOT, Plan, State
from confvault.vault.model import note_format
from confvault.vault.model.index import CompartmentIndex, NoteEntry
from confvault.vault.session.core import Session
from confvault.vault.store import manifest, root_index
from confvault.vault.store.transaction import Transaction


def commit_records_merge(
    s: Session,
    local: manifest.Manifest,
    ours: State,
    theirs: State,
    p: Plan,
    floor: int,
) -> manifest.Manifest:
    """Commit ``theirs`` with ``p``'s records and this side's audit entries
    (writer lock held): one transaction, signed at ``floor`` or above."""

    def apply(txn: Transaction) -> None:
        for name in sorted(p.copy):
            txn.put(s.store.get(name))
        for name in sorted(p.retire):
            txn.retire(name)
        clients = dict(p.clients)
        for (cid, name), (entry, index, key) in sorted(p.writes.items()):
            copies = [
                conflict_copy(txn, loser, side.get(loser.object), key)
                for where, loser, side in p.conflicts
                if where == (cid, name)
            ]
            if copies:
                notes = sorted((*index.notes, *copies), key=_order(index))
                index = replace(index, notes=tuple(notes))
            txn.retire(entry.index)
            digest = txn.put_document(index.to_doc(), [key.recipient])
            signed, drafts, attachments = index.counts()
            written = replace(
                entry,
                index=digest,
                notes=signed,
                drafts=drafts,
                attachments=attachments,
            )
            clients[cid] = clients[cid].with_compartment(name, written)
        root = replace(theirs.root, clients=clients)
        txn.retire(theirs.side.manifest.pointer(ROOT))
        digest, _ = root_index.write(
            txn, root, theirs.buckets, s.require_owner().recipient, sorted(p.changed)
        )
        txn.point(ROOT, digest)

    return commit_merge(s, local, theirs.side, ours.entries, floor, apply)


def conflict_id(loser: NoteEntry) -> str:
    """The conflict copy's note ID: the same on every device that merges."""
    digest = hashlib.sha256(f"{loser.id}:{loser.object}".encode()).hexdigest()
    return loser.id[:6] + digest[:10]


def conflict_copy(
    txn: Transaction, loser: NoteEntry, data: bytes, key: age.AnyIdentity
) -> NoteEntry:
    """The version of a draft that lost, sealed anew as a draft of its own,
    marked as a conflict with the note that won."""
    plain = note_format.open_object(data, loser, key)
    _, body = note_format.parse_recorded(plain, loser.to_doc())
    title = f"{loser.title} (conflict copy)"[: note_format.MAX_TITLE]
    meta = replace(loser.meta, id=conflict_id(loser), title=title)
    sealed_name, file_key = note_format.seal_object(
        txn, note_format.header_line(meta, len(body)) + body, key
    )
    entry = NoteEntry.of(meta, sealed_name, file_key)
    return replace(entry, conflict=loser.id)


def _order(index: CompartmentIndex) -> Callable[[NoteEntry], tuple[int, str]]:
    """Entries already in ``index`` first, in their order; then by note ID."""
    at = {e.id: n for n, e in enumerate(index.notes)}
    return lambda e: (at.get(e.id, len(at)), e.id)
