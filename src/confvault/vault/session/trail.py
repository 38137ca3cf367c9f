"""The audit trail's writing side: every command that reads or changes records leaves an entry.

Entries live in sealed segments chained by hash and anchored in the manifest; a grantee's
reads go to ``audit-inbox/`` sealed to the owner and are folded in by the owner's next command
(see SECURITY.md). ``ops.audit`` reads and checks the chain."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import TYPE_CHECKING, Any

from confvault import age
from confvault.errors import ConfvaultError, IntegrityError
from confvault.vault.store import fs, layout, sealing, signing, transaction
from confvault.vault.store.manifest import canonical

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


def _inbox_mac(key: bytes, name: str, entry: dict[str, Any]) -> str:
    """A grantee's MAC over one inbox entry and its file name."""
    body = {k: entry.get(k) for k in _INBOX_FIELDS}
    return hmac.new(key, canonical([name, body]), hashlib.sha256).hexdigest()


def entry_hash(entry: dict[str, Any]) -> str:
    doc = dict(entry)
    doc.pop("hash", None)
    return hashlib.sha256(canonical(doc)).hexdigest()


AUDIT_FORMAT = "confvault/audit/v1"


INBOX_DIR = layout.INBOX


_INBOX_MAC = b"confvault/audit-inbox-mac/v1"


_INBOX_FIELDS = ("action", "client", "note", "details", "time", "actor", "from")


SEGMENT_SIZE = 256


GENESIS = "0" * 64


def _actor(s: Session) -> str:
    if s.owner is not None:
        return "owner:" + signing.b64(s.owner.signer)[:16]
    return "grantee:" + str(s.reader.recipient)


def _segment(
    s: Session, digest: str | None, txn: transaction.Transaction | None = None
) -> dict[str, Any] | None:
    if digest is None:
        return None
    data = (txn.pending_bytes(digest) if txn else None) or s.store.get(digest)
    return sealing.open_document(data, [s.require_owner().x25519], "audit")


def inbox_names(s: Session) -> list[str]:
    """Entries waiting in audit-inbox/ (a checked directory; exact names only)."""
    return [n for n in s.disk.names(INBOX_DIR) if layout.INBOX_ENTRY.fullmatch(n)]


def fold_audit(s: Session, txn: transaction.Transaction) -> list[str]:
    """Append queued entries (and the grantee inbox) to the chain in ``txn``.

    Returns the inbox entries folded in: only those authenticated as
    written by a grantee of this vault, which alone may be removed.
    """
    inbox_entries = []
    waiting = inbox_names(s) if s.owner and txn.current else []
    if waiting:
        try:
            root = s.root_doc(txn.current)
        except ConfvaultError:
            root = {}  # re-keyed in this transaction: the next command folds them
        grantees = {g["recipient"] for g in root.get("grants", [])}
        for name in waiting:
            entry = _inbox_entry(s, name, grantees)
            if entry is not None:
                inbox_entries.append((name, entry))
    inbox = [name for name, _ in inbox_entries]
    if not s.audit_pending and not inbox:
        return []
    vault_id = txn.current.body.vault_id if txn.current else s.new_vault_id
    owner = [s.require_owner().recipient]
    if "audit" in txn.changes.pointers:  # re-sealed earlier in this transaction
        head = txn.changes.pointers["audit"]
    else:
        head = txn.current.pointer("audit") if txn.current else None
    segment = _segment(s, head, txn) or {
        "format": AUDIT_FORMAT,
        "vault": vault_id,
        "number": 0,
        "previous": None,
        "entries": [],
    }
    entries = [entry for _, entry in inbox_entries]
    now = s.now()
    entries += [
        dict(e, time=now, actor=_actor(s), signed=True) for e in s.audit_pending
    ]
    s.audit_pending.clear()
    last = segment["entries"][-1] if segment["entries"] else segment.get("carry")
    dirty = False
    for entry in entries:
        if len(segment["entries"]) >= SEGMENT_SIZE:
            if dirty:
                txn.retire(head)
                head = txn.put_document(segment, owner)
            segment = {
                "format": AUDIT_FORMAT,
                "vault": vault_id,
                "number": segment["number"] + 1,
                "previous": head,
                "entries": [],
                "carry": {"seq": last["seq"], "hash": last["hash"]},
            }
            head, dirty = None, False
        entry["seq"] = last["seq"] + 1 if last else 0
        entry["prev"] = last["hash"] if last else GENESIS
        entry["hash"] = entry_hash(entry)
        segment["entries"].append(entry)
        last, dirty = entry, True
    txn.retire(head)
    txn.point("audit", txn.put_document(segment, owner))
    return inbox


def _inbox_entry(s: Session, name: str, grantees: set[str]) -> dict[str, Any] | None:
    """The entry in ``audit-inbox/name`` if a grantee of this vault wrote it.

    None for anything else (unreadable, not sealed to the owner, written by
    a key that holds no grant, or altered): it stays where it is, never
    folded or removed, and ``verify`` keeps reporting it.
    """
    try:
        doc = json.loads(
            age.decrypt(s.disk.read(INBOX_DIR, name), [s.require_owner().x25519])
        )
        sender = doc["from"]
        if sender not in grantees:
            return None
        key = s.require_owner().x25519.agree(age.parse_recipient(sender), _INBOX_MAC)
        body = {k: doc.get(k) for k in _INBOX_FIELDS}
        if not hmac.compare_digest(str(doc["mac"]), _inbox_mac(key, name, body)):
            return None
    except (ConfvaultError, ValueError, KeyError, TypeError, OSError):
        return None
    entry = {k: body[k] for k in _INBOX_FIELDS if k != "from"}
    entry["details"] = entry["details"] or {}
    entry["signed"] = False
    return entry


def after_audit_commit(s: Session, folded: list[str]) -> None:
    for name in folded:
        s.disk.remove(INBOX_DIR, name)


def audit_read(
    s: Session,
    action: str,
    client: str | None = None,
    note: str | None = None,
    **details: Any,
) -> None:
    """Record a read: owner reads are committed; grantee reads go to the inbox."""
    if s.owner is not None:
        with s.writing():
            s.audit_pending.append(
                {
                    "action": action,
                    "client": client,
                    "note": note,
                    "details": details,
                }
            )
        return
    directory = s.root_doc(_load_manifest_for_inbox(s))
    owner = directory.get("owner_recipient")
    if not owner:
        raise IntegrityError("the grantee directory does not name the owner's key")
    owner_recipient = age.parse_recipient(owner)
    entry = {
        "action": action,
        "client": client,
        "note": note,
        "details": details,
        "time": s.now(),
        "actor": _actor(s),
        "from": str(s.reader.recipient),
    }
    name = f"{os.urandom(12).hex()}.age"
    key = s.reader.agree(owner_recipient, _INBOX_MAC)
    entry["mac"] = _inbox_mac(key, name, entry)
    # padded like every sealed object: the size says nothing of the entry
    sealed = age.encrypt(
        sealing.pad_text(json.dumps(entry).encode()), [owner_recipient]
    )
    s.disk.dir(INBOX_DIR, create=True)
    fs.atomic_write(s.disk, INBOX_DIR, name, sealed)


def _load_manifest_for_inbox(s: Session) -> Any:
    with s.reading() as current:
        return current


def segments(s: Session) -> list[tuple[str, dict[str, Any]]]:
    """Every segment, oldest first."""
    out = []
    with s.reading() as current:
        digest = current.pointer("audit")
        seen: set[str] = set()
        while digest is not None:
            if digest in seen:
                raise IntegrityError("the audit chain loops")
            seen.add(digest)
            segment = _segment(s, digest)
            out.append((digest, segment))
            digest = segment.get("previous")
    return list(reversed(out))


def reseal_audit(
    s: Session,
    txn: transaction.Transaction,
    old_identity: age.X25519Identity,
    new_recipient: age.X25519Recipient,
) -> None:
    """Re-seal every segment to a new owner key (identity rotation)."""
    digest = txn.current.pointer("audit") if txn.current else None
    chain = []
    while digest is not None:
        doc = sealing.open_document(s.store.get(digest), [old_identity], "audit")
        chain.append((digest, doc))
        digest = doc.get("previous")
    previous = None
    for old_digest, doc in reversed(chain):
        doc["previous"] = previous
        txn.retire(old_digest)
        previous = txn.put_document(doc, [new_recipient])
    if previous is not None:
        txn.point("audit", previous)
