"""Reads of a vault that cannot be written: recorded on this machine, folded
into the vault's audit trail when it is next opened writable here.

A vault on read-only media (a restored backup on a write-protected disk, an
executor's read-only copy) is found so once, when it is opened
(``store.spool.vault_writable``); the session is then ``read_only``: every
write is refused (``VaultReadOnlyError``) and every read's audit entry goes
to this machine's spool (``store.spool``, under the state directory) instead
of the vault:

- an owner's read: its entry (action, client, note, details, time, actor)
  sealed to the owner's recipient, with an HMAC keyed from the owner's
  signing key over the file name, the vault ID and the entry: the journals'
  scheme (``transaction.owner_mac``) under its own label;
- a grantee's read: the very audit-inbox entry the grantee would have left
  in the vault (sealed to the owner, the inbox's MAC), kept as ``g-<name>``.

On the next writable open of the same vault (same vault ID) here, grantee
entries are moved into ``audit-inbox/`` (where the owner's next command folds
them, as any inbox entry), and the owner's entries are checked and folded
into the chain with their original time, each once: before the commit each
is renamed to name the chain entry it becomes (``.<seq>.folding``), after it
the file is removed; a mark whose commit did not happen is folded again. An
entry that fails its check is never folded: it is renamed ``.refused``, kept,
and reported (a ``spool-refused`` audit entry and ``Session.spool_refused``).
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from confvault import age
from confvault.errors import ConfvaultError
from confvault.vault.model import sealed
from confvault.vault.model.audit import AuditEvent, ChainEntry, Stamped
from confvault.vault.store import fs, inbox, sealing, signing, transaction
from confvault.vault.store.documents import JSONValue
from confvault.vault.store.spool import ENTRY, GRANTEE, MARKED, OWNER, Spool

if TYPE_CHECKING:
    from confvault.vault.session.core import Session

_SPOOL_MAC = b"confvault/read-spool-mac/v1"
_FIELDS = ("action", "client", "note", "details", "time", "actor")


@dataclass
class SpoolState:
    """A session's dealings with the spool."""

    spooled: int = 0  # reads this session recorded in the spool
    refused: list[str] = field(default_factory=list)  # entries that failed their check
    # owner entries taken into the open transaction: (file name, entry)
    taken: list[tuple[str, Stamped]] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)  # their names once marked


def _spool(s: Session) -> Spool:
    return Spool(s.seen.directory, s.vault_id)


def record(s: Session, event: AuditEvent) -> None:
    """Spool an owner's read of a read-only vault."""
    owner = s.require_owner()
    # time first: the spool is folded in the order its names sort
    name = f"{OWNER}-{time.time_ns():016x}{os.urandom(4).hex()}.age"
    body: dict[str, object] = {
        "action": event.action,
        "client": event.client,
        "note": event.note,
        "details": event.details,
        "time": s.now(),
        "actor": "owner:" + signing.b64(owner.signer)[:16],
    }
    key = transaction.owner_mac_key(owner.signing_seed, _SPOOL_MAC)
    doc = dict(body, mac=transaction.owner_mac(key, name, s.vault_id, body))
    data = age.encrypt(sealing.pad_text(json.dumps(doc).encode()), [owner.recipient])
    _spool(s).put(name, data)
    s.spooling.spooled += 1


def record_grantee(s: Session, inbox_name: str, entry: bytes) -> None:
    """Spool a grantee's read of a read-only vault: its sealed inbox entry."""
    _spool(s).put(f"{GRANTEE}-{inbox_name}", entry)
    s.spooling.spooled += 1


def waiting(s: Session) -> bool:
    """True when this machine holds spooled reads of this vault still to fold."""
    return any(ENTRY.fullmatch(n) or MARKED.fullmatch(n) for n in _spool(s).names())


def fold_on_open(s: Session) -> None:
    """On a writable open: fold what waits in the spool (the owner), or move
    the grantee entries into the vault's audit inbox (a grantee)."""
    if s.read_only or not waiting(s):
        return
    if s.owner is not None:
        with s.writing():
            pass  # take, mark and clear run in every write (Session.writing)
    else:
        _to_inbox(s, _spool(s))


def _to_inbox(s: Session, spool: Spool) -> None:
    for name in spool.names():
        found = ENTRY.fullmatch(name)
        if found and found[1] == GRANTEE:
            s.disk.dir(inbox.INBOX_DIR, create=True)
            fs.atomic_write(
                s.disk, inbox.INBOX_DIR, f"{found[2]}.age", spool.read(name)
            )
            spool.remove(name)


def take(s: Session, txn: transaction.Transaction) -> None:
    """In a write of the owner: the spooled reads of this vault, checked, to
    be folded by ``trail.fold_audit`` (``Session.audit_stamped``); grantee
    entries moved into the inbox, which the same fold reads."""
    if s.owner is None or s.read_only or txn.current is None:
        return
    spool = _spool(s)
    names = spool.names()
    if not names:
        return
    _to_inbox(s, spool)
    head = txn.current.pointer("audit")
    for name in names:
        marked = MARKED.fullmatch(name)
        found = marked or ENTRY.fullmatch(name)
        if found is None or (not marked and found[1] != OWNER):
            continue
        ident = found[1] if marked else found[2]
        stamped = _open(s, spool, name, f"{OWNER}-{ident}.age")
        if stamped is None:
            _refuse(s, spool, name, f"{OWNER}-{ident}.refused")
        elif marked and _in_chain(s, head, int(marked[2]), stamped):
            spool.remove(name)  # its commit happened: folded once already
        else:
            s.spooling.taken.append((name, stamped))
            s.audit_stamped.append(stamped)


def _open(s: Session, spool: Spool, name: str, signed_name: str) -> Stamped | None:
    """The owner's entry in ``name`` if its MAC is the owner's, for this vault."""
    owner = s.require_owner()
    try:
        doc: JSONValue = json.loads(age.decrypt(spool.read(name), [owner]))
        if not isinstance(doc, dict):
            return None
        body = {k: doc.get(k) for k in _FIELDS}
        key = transaction.owner_mac_key(owner.signing_seed, _SPOOL_MAC)
        mac = transaction.owner_mac(key, signed_name, s.vault_id, body)
        if not hmac.compare_digest(str(doc.get("mac")), mac):
            return None
        return dataclasses.replace(Stamped.from_inbox(body), signed=True)
    except (ConfvaultError, ValueError, OSError):
        return None


def _refuse(s: Session, spool: Spool, name: str, refused: str) -> None:
    spool.rename(name, refused)
    s.spooling.refused.append(name)
    s.note_audit("spool-refused", file=name)


def _same(entry: ChainEntry, stamped: Stamped) -> bool:
    event = stamped.event
    return (entry.action, entry.client, entry.note, entry.details) == (
        event.action,
        event.client,
        event.note,
        event.details,
    ) and (entry.time, entry.actor, entry.signed) == (
        stamped.time,
        stamped.actor,
        stamped.signed,
    )


def _in_chain(s: Session, head: str | None, seq: int, stamped: Stamped) -> bool:
    """True when chain entry ``seq`` (from the segment ``head`` back) is ``stamped``."""
    identities = [s.require_owner()]
    while head is not None:
        segment = sealed.open_segment(s.store.get(head), identities)
        if segment.entries and segment.entries[0].seq <= seq:
            index = seq - segment.entries[0].seq
            return index < len(segment.entries) and _same(
                segment.entries[index], stamped
            )
        head = segment.previous
    return False


def mark(s: Session, txn: transaction.Transaction) -> None:
    """After the fold, before the commit: rename each taken entry to name the
    chain entry it became, so that it is folded once whatever happens next."""
    wanted = list(s.spooling.taken)
    if not wanted:
        return
    spool, identities = _spool(s), [s.require_owner()]
    digest = txn.changes.pointers.get("audit")
    while wanted and digest is not None:
        data = txn.pending_bytes(digest)
        if data is None:
            break  # a segment of an earlier commit: nothing of this fold is there
        segment = sealed.open_segment(data, identities)
        for entry in reversed(segment.entries):
            for i, (name, stamped) in enumerate(wanted):
                if _same(entry, stamped):
                    ident = name[2:26]
                    new = f"{OWNER}-{ident}.{entry.seq}.folding"
                    if new != name:
                        spool.rename(name, new)
                    s.spooling.marked.append(new)
                    del wanted[i]
                    break
        digest = segment.previous
    s.spooling.taken.clear()


def after_commit(s: Session) -> None:
    """The commit happened: the folded entries leave the spool."""
    if s.spooling.marked:
        spool = _spool(s)
        for name in s.spooling.marked:
            spool.remove(name)
    forget(s)


def forget(s: Session) -> None:
    """The write failed: nothing taken is folded (marks stay, checked next time)."""
    s.spooling.taken.clear()
    s.spooling.marked.clear()
    s.audit_stamped.clear()
