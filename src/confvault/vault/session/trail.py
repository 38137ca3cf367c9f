"""The audit trail's writing side: every command that reads or changes records leaves an entry.

Entries live in sealed segments chained by hash and anchored in the manifest; a grantee's
reads go to ``audit-inbox/`` sealed to the owner and are folded in by the owner's next command
(see SECURITY.md). ``ops.audit`` reads and checks the chain."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from confvault import age
from confvault.errors import ConfvaultError, IntegrityError, ReadOnlyError
from confvault.vault.model import sealed
from confvault.vault.model.audit import (
    GENESIS,
    SEGMENT_SIZE,
    AuditEvent,
    Carry,
    ChainEntry,
    Device,
    Segment,
    Stamped,
)
from confvault.vault.model.grant import Grant
from confvault.vault.model.identity import INBOX_MAC_LABEL
from confvault.vault.model.note_format import RECORDS
from confvault.vault.session import spool
from confvault.vault.store import (
    devices,
    fs,
    inbox,
    manifest,
    sealing,
    signing,
    transaction,
)
from confvault.vault.store.documents import JSONValue
from confvault.vault.store.manifest import canonical

if TYPE_CHECKING:
    from confvault.vault.session.core import Session

__all__ = ["GENESIS", "INBOX_DIR", "SEGMENT_SIZE"]

INBOX_DIR = inbox.INBOX_DIR
_INBOX_MAC = INBOX_MAC_LABEL
_INBOX_FIELDS = ("action", "client", "note", "details", "time", "actor", "from")


def _inbox_mac(key: bytes, name: str, entry: Mapping[str, object]) -> str:
    """A grantee's MAC over one inbox entry and its file name."""
    body = {k: entry.get(k) for k in _INBOX_FIELDS}
    return hmac.new(key, canonical([name, body]), hashlib.sha256).hexdigest()


def _actor(s: Session) -> str:
    if s.owner is not None:
        return "owner:" + signing.b64(s.owner.signer)[:16]
    return "grantee:" + str(_reader(s).recipient)


def this_device(s: Session, vault_id: str) -> Device | None:
    """This machine's device for the vault, once it is synced (else None)."""
    found = devices.this_device(s.seen.directory, vault_id)
    return None if found is None else Device(*found)


def _grant_mac_key(s: Session, grant: Grant) -> bytes:
    """The owner's copy of a grant's inbox MAC key (see SECURITY.md)."""
    if grant.inbox_key is not None:
        return signing.unb64(grant.inbox_key)
    sender = age.parse_recipient(grant.recipient)  # a grant from before the key
    if not isinstance(sender, age.X25519Recipient):
        raise IntegrityError("a post-quantum grant without an inbox key")
    return s.require_owner().agree(sender, _INBOX_MAC)


def _grantee_mac_key(s: Session, owner: age.AnyRecipient) -> bytes:
    """The grantee's copy: from its directory, or (older grants) X25519."""
    reader = _reader(s)
    if s.directory is not None and s.directory.inbox_key is not None:
        return signing.unb64(s.directory.inbox_key)
    if isinstance(reader, age.X25519Identity) and isinstance(
        owner, age.X25519Recipient
    ):
        return reader.agree(owner, _INBOX_MAC)
    raise IntegrityError("the grantee directory holds no audit-inbox key")


def _reader(s: Session) -> age.AnyIdentity:
    if s.reader is None:
        raise ReadOnlyError("no key to open the vault with")
    return s.reader


def _segment(
    s: Session, digest: str | None, txn: transaction.Transaction | None = None
) -> Segment | None:
    if digest is None:
        return None
    data = (txn.pending_bytes(digest) if txn else None) or s.store.get(digest)
    return sealed.open_segment(data, [s.require_owner()])


def inbox_names(s: Session) -> list[str]:
    """Entries waiting in audit-inbox/ (a checked directory; exact names only)."""
    return inbox.names(s.disk)


def fold_audit(s: Session, txn: transaction.Transaction) -> list[str]:
    """Append queued entries (and the grantee inbox) to the chain in ``txn``.

    Returns the inbox entries folded in: only those authenticated as
    written by a grantee of this vault, which alone may be removed.
    """
    folded: list[str] = []
    stamped: list[Stamped] = []
    if s.owner and txn.current and (waiting := inbox_names(s)):
        try:
            grants = s.root_record(txn.current).grants
        except ConfvaultError:
            grants = ()  # re-keyed in this transaction: the next command folds them
        now = s.now()
        for name in waiting:
            entry = _inbox_entry(s, name, grants, now)
            if entry is None:
                continue  # not authenticated: left where it is
            folded.append(name)  # in the chain, as itself or as refused
            if isinstance(entry, Stamped):
                stamped.append(entry)
            else:
                sender, reason = entry
                s.note_audit("inbox-refused", file=name, sender=sender, reason=reason)
    if not s.audit_pending and not folded and not s.audit_stamped:
        return []
    vault_id = txn.current.body.vault_id if txn.current else s.new_vault_id
    if vault_id is None:
        raise IntegrityError("no vault to write the audit trail of")
    owner = [s.require_owner().recipient]
    if "audit" in txn.changes.pointers:  # re-sealed earlier in this transaction
        head = txn.changes.pointers["audit"]
    else:
        head = txn.current.pointer("audit") if txn.current else None
    segment = _segment(s, head, txn) or Segment(vault_id, 0, None, ())
    now, actor, device = s.now(), _actor(s), this_device(s, vault_id)
    stamped += s.audit_stamped  # reads spooled on read-only media, as they were
    stamped += [Stamped(event, now, actor, True, device) for event in s.audit_pending]
    s.audit_pending.clear()
    s.audit_stamped.clear()
    last = segment.last
    entries = list(segment.entries)
    dirty = False
    for item in stamped:
        if len(entries) >= SEGMENT_SIZE:
            if dirty:
                txn.retire(head)
                head = txn.put_document(segment.with_entries(entries).to_doc(), owner)
            carry = Carry(last.seq, last.hash) if last else None
            segment = Segment(vault_id, segment.number + 1, head, (), carry)
            entries, head, dirty = [], None, False
        linked = ChainEntry.link(item, last)
        entries.append(linked)
        last, dirty = linked, True
    txn.retire(head)
    txn.point("audit", txn.put_document(segment.with_entries(entries).to_doc(), owner))
    return folded


def _inbox_entry(
    s: Session, name: str, grants: Sequence[Grant], now: str
) -> Stamped | tuple[str, str] | None:
    """The entry in ``audit-inbox/name`` if a grantee of this vault wrote it.

    None for anything not authenticated (unreadable, not sealed to the
    owner, written by a key that holds no grant, altered): it stays where it
    is, never folded or removed, and ``verify`` keeps reporting it. An entry
    a grantee's key did authenticate but that is not exactly one of its
    reads (another actor, a write, a client its grant does not cover, wrong
    types: ``Stamped.from_grantee``) is refused: ``(sender, reason)``,
    recorded as such in the chain, and removed like a folded one.
    """
    try:
        doc: JSONValue = json.loads(
            age.decrypt(s.disk.read(INBOX_DIR, name), [s.require_owner()])
        )
        if not isinstance(doc, dict):
            return None
        sender = doc.get("from")
        grant = next((g for g in grants if g.recipient == sender), None)
        if not isinstance(sender, str) or grant is None:
            return None
        key = _grant_mac_key(s, grant)
        body = {k: doc.get(k) for k in _INBOX_FIELDS}
        if not hmac.compare_digest(str(doc.get("mac")), _inbox_mac(key, name, body)):
            return None
    except (ConfvaultError, ValueError, OSError):
        return None
    try:
        return Stamped.from_grantee(
            doc, sender, lambda client: grant.covers(client, RECORDS), now
        )
    except IntegrityError as err:
        return sender, str(err)


def after_audit_commit(s: Session, folded: list[str]) -> None:
    for name in folded:
        s.disk.remove(INBOX_DIR, name)


def audit_read(
    s: Session,
    action: str,
    client: str | None = None,
    note: str | None = None,
    **details: object,
) -> None:
    """Record a read: owner reads are committed; grantee reads go to the inbox;
    on a read-only vault either goes to this machine's spool (session.spool)."""
    event = AuditEvent.of(action, client, note, details)
    if s.owner is not None:
        if s.read_only:
            spool.record(s, event)
            return
        with s.writing():
            s.audit_pending.append(event)
        return
    s.root_record(_load_manifest_for_inbox(s))
    owner = s.directory.owner_recipient if s.directory else None
    if not owner:
        raise IntegrityError("the grantee directory does not name the owner's key")
    owner_recipient = age.parse_recipient(owner)
    reader = _reader(s)
    entry = {
        "action": event.action,
        "client": event.client,
        "note": event.note,
        "details": event.details,
        "time": s.now(),
        "actor": _actor(s),
        "from": str(reader.recipient),
    }
    name = f"{os.urandom(12).hex()}.age"
    key = _grantee_mac_key(s, owner_recipient)
    entry["mac"] = _inbox_mac(key, name, entry)
    # padded like every sealed object: the size says nothing of the entry
    sealed_entry = age.encrypt(
        sealing.pad_text(json.dumps(entry).encode()), [owner_recipient]
    )
    if s.read_only:
        spool.record_grantee(s, name, sealed_entry)
        return
    s.disk.dir(INBOX_DIR, create=True)
    fs.atomic_write(s.disk, INBOX_DIR, name, sealed_entry)


def _load_manifest_for_inbox(s: Session) -> manifest.Manifest:
    with s.reading() as current:
        return current


def segments(s: Session) -> list[tuple[str, Segment]]:
    """Every segment, oldest first."""
    with s.reading() as current:
        head = current.pointer("audit")
        return sealed.audit_chain(s.store, [s.require_owner()], head)


def reseal_audit(
    s: Session,
    txn: transaction.Transaction,
    old_identity: age.Identity,
    new_recipient: age.AnyRecipient,
) -> None:
    """Re-seal every segment to a new owner key (identity rotation)."""
    head = txn.current.pointer("audit") if txn.current else None
    previous = None
    for old_digest, segment in sealed.audit_chain(s.store, [old_identity], head):
        txn.retire(old_digest)
        doc = segment.with_previous(previous).to_doc()
        previous = txn.put_document(doc, [new_recipient])
    if previous is not None:
        txn.point("audit", previous)
