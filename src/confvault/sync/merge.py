"""The merge of two devices' changes, where one side changed nothing but the
audit trail (every owner read commits an audit entry, so this is the common
case: one device wrote, the other read).

``audit_extension(a, x)`` says whether the state ``a`` is the state ``x``
plus audit entries appended after ``x``'s last entry (the same pointers but
``audit``, the same signer, and every object that differs an audit segment
of one side's chain), and returns those entries. The merge then takes the
other side's state and appends the entries to its chain, each kept as it was
written (time, actor, action, client, note, details), re-linked so that the
chain verifies; the merged manifest is signed at a generation above both.

Records changed on both sides are merged by ``records_merge`` (on top of
``commit_merge``); what it cannot decide is refused by the caller
(``SyncConflictError``): docs/SYNC.md.
"""

from __future__ import annotations

import hmac
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from confvault import age
from confvault.vault.model import sealed
from confvault.vault.model.audit import AuditEvent, ChainEntry, Segment, Stamped
from confvault.vault.session import trail
from confvault.vault.session.core import Session
from confvault.vault.store import manifest
from confvault.vault.store.transaction import Transaction

AUDIT = "audit"


@dataclass(frozen=True)
class Side:
    """One state of the vault: its manifest, every object it names, and a
    way to read (and check) one of them."""

    manifest: manifest.Manifest
    names: frozenset[str]
    get: Callable[[str], bytes]

    @property
    def head(self) -> str | None:
        return self.manifest.pointer(AUDIT)


class Source:
    """A side's objects as the vault's readers (``sealed``, ``root_index``)
    want them: each read through the side's checked getter."""

    def __init__(self, s: Side) -> None:
        self.side = s

    def get(self, digest: str) -> bytes:
        return self.side.get(digest)

    def open_checked(self, digest: str) -> BinaryIO:
        return io.BytesIO(self.side.get(digest))


def side(current: manifest.Manifest, get: Callable[[str], bytes]) -> Side:
    names = current.all_objects() | set(current.body.pointers.values())
    return Side(current, frozenset(names), get)


def _segments_until(
    s: Side, owner: age.Identity, stop: Callable[[str, Segment], bool]
) -> list[tuple[str, Segment]]:
    """``s``'s segments from the newest back, up to and including the first
    for which ``stop`` is true (or the oldest)."""
    out: list[tuple[str, Segment]] = []
    digest = s.head
    while digest is not None and len(out) <= len(s.names):
        segment = sealed.open_segment(s.get(digest), [owner])
        out.append((digest, segment))
        if stop(digest, segment):
            break
        digest = segment.previous
    return out


def audit_extension(a: Side, x: Side, owner: age.Identity) -> list[ChainEntry] | None:
    """The audit entries ``a`` holds after ``x``'s last one, when ``a`` is
    ``x`` plus those entries and nothing else; None otherwise."""
    pa, px = dict(a.manifest.body.pointers), dict(x.manifest.body.pointers)
    pa.pop(AUDIT, None)
    px.pop(AUDIT, None)
    body_a, body_x = a.manifest.body, x.manifest.body
    if pa != px or body_a.signer != body_x.signer:
        return None
    if body_a.endorsements != body_x.endorsements:
        return None
    changed = a.names ^ x.names
    if not changed:
        return []
    after = chain_after(a, x, owner)
    if after is None or not changed <= after[1]:
        return None
    return after[0]


def chain_after(
    a: Side, x: Side, owner: age.Identity
) -> tuple[list[ChainEntry], set[str]] | None:
    """The audit entries ``a``'s chain holds after ``x``'s last one, and the
    segments either chain holds that the other lacks; None when ``a``'s
    chain does not extend ``x``'s."""
    mine = _segments_until(a, owner, lambda d, _: d in x.names)
    theirs = _segments_until(x, owner, lambda d, _: d in a.names)
    segments = {d for d, _ in mine} | {d for d, _ in theirs}
    segments &= a.names ^ x.names
    last = theirs[0][1].last if theirs else None
    floor = -1 if last is None else last.seq
    entries: list[ChainEntry] = []
    found = last is None
    for digest, segment in _segments_until(
        a, owner, lambda _, seg: bool(seg.entries) and seg.entries[0].seq <= floor
    ):
        del digest
        for entry in reversed(segment.entries):
            if entry.seq > floor:
                entries.append(entry)
            elif last is not None and entry.seq == floor:
                found = hmac.compare_digest(entry.hash, last.hash)
        if (
            segment.carry is not None
            and last is not None
            and segment.carry.seq == floor
        ):
            found = found or hmac.compare_digest(segment.carry.hash, last.hash)
    if not found:
        return None
    return sorted(entries, key=lambda e: e.seq), segments


def stamped(entries: list[ChainEntry]) -> list[Stamped]:
    """Entries to append to another chain, each as it was written (its
    device kept)."""
    return [
        Stamped(
            AuditEvent(e.action, e.client, e.note, e.details),
            e.time,
            e.actor,
            e.signed,
            e.device,
        )
        for e in entries
    ]


def commit_merge(
    s: Session,
    local: manifest.Manifest,
    onto: Side | None,
    entries: list[ChainEntry],
    floor: int,
    extra: Callable[[Transaction], None] | None = None,
) -> manifest.Manifest:
    """Commit the merged state in this vault (writer lock held): ``onto``'s
    state (None: the local one), changed by ``extra`` if given, with
    ``entries`` appended to its chain, signed at generation ``floor`` or
    above."""
    txn: Transaction = s.transaction(local, local.body.vault_id)
    try:
        if onto is not None:
            mine = side(local, s.store.get).names
            for name in sorted(onto.names - mine):
                txn.put(onto.get(name))
            for name in sorted(mine - onto.names):
                txn.retire(name)
            wanted = onto.manifest.body.pointers
            for key, value in sorted(wanted.items()):
                txn.point(key, value)
            for key in sorted(local.body.pointers.keys() - wanted.keys()):
                txn.point(key, None)
        if extra is not None:
            extra(txn)
        s.audit_stamped = stamped(entries)
        folded = trail.fold_audit(s, txn)
        txn.changes.generation_floor = floor
    except BaseException:
        txn.abort()
        s.audit_stamped.clear()
        raise
    s.commit(txn, local.body.vault_id)
    s.root_cache = None
    trail.after_audit_commit(s, folded)
    if s.manifest is None:
        raise RuntimeError("the merge committed no manifest")
    return s.manifest
