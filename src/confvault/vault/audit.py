"""The audit trail: every command that reads or changes records leaves an entry.

Entries live in sealed segments (age files sealed to the owner, up to
``SEGMENT_SIZE`` entries each). Each entry carries its sequence number and the
hash of the previous entry; each segment names the previous segment's object.
The manifest's ``audit`` pointer names the newest segment, so the whole chain
is anchored in the signed manifest: removing, reordering, altering or
truncating entries is detected by ``audit verify`` (and any change to a
segment file by the keyless ``verify``).

A grantee cannot sign the manifest, so a grantee's reads are written to
``audit-inbox/`` as entries sealed to the owner; the owner's next command
folds them into the chain, marked ``"signed": false`` (see SECURITY.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from confvault import age
from confvault.errors import AgeError, ConfvaultError, IntegrityError
from confvault.vault.model.results import AuditEntry, Finding
from confvault.vault.store import fs, layout, sealing, signing, transaction
from confvault.vault.store.manifest import canonical

AUDIT_FORMAT = "confvault/audit/v1"
INBOX_DIR = layout.INBOX
_INBOX_MAC = b"confvault/audit-inbox-mac/v1"
_INBOX_FIELDS = ("action", "client", "note", "details", "time", "actor", "from")


def _inbox_mac(key: bytes, name: str, entry: dict[str, Any]) -> str:
    """A grantee's MAC over one inbox entry and its file name."""
    body = {k: entry.get(k) for k in _INBOX_FIELDS}
    return hmac.new(key, canonical([name, body]), hashlib.sha256).hexdigest()


SEGMENT_SIZE = 256
_GENESIS = "0" * 64


def entry_hash(entry: dict[str, Any]) -> str:
    doc = dict(entry)
    doc.pop("hash", None)
    return hashlib.sha256(canonical(doc)).hexdigest()


class AuditMixin:
    """Appending, reading and verifying the audit trail."""

    root: Path
    disk: fs.Root
    store: Any
    owner: Any
    reader: Any
    manifest: Any
    _audit_pending: list[dict[str, Any]]
    _new_vault_id: str | None
    _reading: Any
    _writing: Any
    _root_doc: Any
    _owner: Any
    _resolve_client: Any
    now: Any

    # --- writing ----------------------------------------------------------------------

    def _actor(self) -> str:
        if self.owner is not None:
            return "owner:" + signing.b64(self.owner.signer)[:16]
        return "grantee:" + str(self.reader.recipient)

    def _segment(
        self, digest: str | None, txn: transaction.Transaction | None = None
    ) -> dict[str, Any] | None:
        if digest is None:
            return None
        data = (txn.pending_bytes(digest) if txn else None) or self.store.get(digest)
        return sealing.open_document(data, [self._owner().x25519], "audit")

    def _inbox_names(self) -> list[str]:
        """Entries waiting in audit-inbox/ (a checked directory; exact names only)."""
        return [
            n for n in self.disk.names(INBOX_DIR) if layout.INBOX_ENTRY.fullmatch(n)
        ]

    def _fold_audit(self, txn: transaction.Transaction) -> list[str]:
        """Append queued entries (and the grantee inbox) to the chain in ``txn``.

        Returns the inbox entries folded in: only those authenticated as
        written by a grantee of this vault, which alone may be removed.
        """
        inbox_entries = []
        waiting = self._inbox_names() if self.owner and txn.current else []
        if waiting:
            try:
                root = self._root_doc(txn.current)
            except ConfvaultError:
                root = {}  # re-keyed in this transaction: the next command folds them
            grantees = {g["recipient"] for g in root.get("grants", [])}
            for name in waiting:
                entry = self._inbox_entry(name, grantees)
                if entry is not None:
                    inbox_entries.append((name, entry))
        inbox = [name for name, _ in inbox_entries]
        if not self._audit_pending and not inbox:
            return []
        vault_id = txn.current.body.vault_id if txn.current else self._new_vault_id
        owner = [self._owner().recipient]
        if "audit" in txn.changes.pointers:  # re-sealed earlier in this transaction
            head = txn.changes.pointers["audit"]
        else:
            head = txn.current.pointer("audit") if txn.current else None
        segment = self._segment(head, txn) or {
            "format": AUDIT_FORMAT,
            "vault": vault_id,
            "number": 0,
            "previous": None,
            "entries": [],
        }
        entries = [entry for _, entry in inbox_entries]
        now = self.now()
        entries += [
            dict(e, time=now, actor=self._actor(), signed=True)
            for e in self._audit_pending
        ]
        self._audit_pending.clear()
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
            entry["prev"] = last["hash"] if last else _GENESIS
            entry["hash"] = entry_hash(entry)
            segment["entries"].append(entry)
            last, dirty = entry, True
        txn.retire(head)
        txn.point("audit", txn.put_document(segment, owner))
        return inbox

    def _inbox_entry(self, name: str, grantees: set[str]) -> dict[str, Any] | None:
        """The entry in ``audit-inbox/name`` if a grantee of this vault wrote it.

        None for anything else (unreadable, not sealed to the owner, written by
        a key that holds no grant, or altered): it stays where it is, never
        folded or removed, and ``verify`` keeps reporting it.
        """
        try:
            doc = json.loads(
                age.decrypt(self.disk.read(INBOX_DIR, name), [self._owner().x25519])
            )
            sender = doc["from"]
            if sender not in grantees:
                return None
            key = self._owner().x25519.agree(age.parse_recipient(sender), _INBOX_MAC)
            body = {k: doc.get(k) for k in _INBOX_FIELDS}
            if not hmac.compare_digest(str(doc["mac"]), _inbox_mac(key, name, body)):
                return None
        except (ConfvaultError, ValueError, KeyError, TypeError, OSError):
            return None
        entry = {k: body[k] for k in _INBOX_FIELDS if k != "from"}
        entry["details"] = entry["details"] or {}
        entry["signed"] = False
        return entry

    def _after_audit_commit(self, folded: list[str]) -> None:
        for name in folded:
            self.disk.remove(INBOX_DIR, name)

    def _audit_read(
        self,
        action: str,
        client: str | None = None,
        note: str | None = None,
        **details: Any,
    ) -> None:
        """Record a read: owner reads are committed; grantee reads go to the inbox."""
        if self.owner is not None:
            with self._writing():
                self._audit_pending.append(
                    {
                        "action": action,
                        "client": client,
                        "note": note,
                        "details": details,
                    }
                )
            return
        directory = self._root_doc(self._load_manifest_for_inbox())
        owner = directory.get("owner_recipient")
        if not owner:
            raise IntegrityError("the grantee directory does not name the owner's key")
        owner_recipient = age.parse_recipient(owner)
        entry = {
            "action": action,
            "client": client,
            "note": note,
            "details": details,
            "time": self.now(),
            "actor": self._actor(),
            "from": str(self.reader.recipient),
        }
        name = f"{os.urandom(12).hex()}.age"
        key = self.reader.agree(owner_recipient, _INBOX_MAC)
        entry["mac"] = _inbox_mac(key, name, entry)
        # padded like every sealed object: the size says nothing of the entry
        sealed = age.encrypt(
            sealing.pad_text(json.dumps(entry).encode()), [owner_recipient]
        )
        self.disk.dir(INBOX_DIR, create=True)
        fs.atomic_write(self.disk, INBOX_DIR, name, sealed)

    def _load_manifest_for_inbox(self) -> Any:
        with self._reading() as current:
            return current

    # --- reading ----------------------------------------------------------------------

    def _segments(self) -> list[tuple[str, dict[str, Any]]]:
        """Every segment, oldest first."""
        out = []
        with self._reading() as current:
            digest = current.pointer("audit")
            seen: set[str] = set()
            while digest is not None:
                if digest in seen:
                    raise IntegrityError("the audit chain loops")
                seen.add(digest)
                segment = self._segment(digest)
                out.append((digest, segment))
                digest = segment.get("previous")
        return list(reversed(out))

    def audit(
        self,
        *,
        client: str | None = None,
        since: str | None = None,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """The audit trail, oldest first, filtered."""
        from confvault.vault.notebook import parse_date

        with self._reading() as current:
            root = self._root_doc(current)
            client_id = self._resolve_client(root, client) if client else None
            names = {cid: c["name"] for cid, c in root["clients"].items()}
        lower = parse_date(since) if since else None
        out = []
        for _, segment in self._segments():
            for e in segment["entries"]:
                if client_id and e.get("client") != client_id:
                    continue
                if action and e["action"] != action:
                    continue
                if lower and e["time"] < lower:
                    continue
                out.append(
                    AuditEntry(
                        seq=e["seq"],
                        time=e["time"],
                        actor=e["actor"],
                        action=e["action"],
                        client=e.get("client"),
                        client_name=names.get(e.get("client") or ""),
                        note=e.get("note"),
                        signed=bool(e.get("signed")),
                        details=dict(e.get("details") or {}),
                    )
                )
        self._audit_read("audit-show", client_id)
        return out

    def verify_audit(self) -> list[Finding]:
        """Walk the whole chain: sequence, hashes and segment links."""
        findings: list[Finding] = []
        try:
            segments = self._segments()
        except (ConfvaultError, AgeError) as err:
            return [Finding("error", "audit-segment", "audit", str(err))]
        last: dict[str, Any] | None = None
        for number, (digest, segment) in enumerate(segments):
            if segment.get("number") != number:
                findings.append(
                    Finding(
                        "error",
                        "audit-sequence",
                        digest,
                        f"segment {segment.get('number')} where {number} was expected",
                    )
                )
            if segment.get("vault") != self.manifest.body.vault_id:
                findings.append(
                    Finding(
                        "error", "audit-foreign", digest, "segment of another vault"
                    )
                )
            for entry in segment["entries"]:
                expected_seq = last["seq"] + 1 if last else 0
                expected_prev = last["hash"] if last else _GENESIS
                if entry.get("seq") != expected_seq:
                    findings.append(
                        Finding(
                            "error",
                            "audit-sequence",
                            str(entry.get("seq")),
                            f"entry {entry.get('seq')} where {expected_seq} was expected",
                        )
                    )
                if entry.get("prev") != expected_prev:
                    findings.append(
                        Finding(
                            "error",
                            "audit-chain",
                            str(entry.get("seq")),
                            "entry does not link to the one before it",
                        )
                    )
                if entry.get("hash") != entry_hash(entry):
                    findings.append(
                        Finding(
                            "error",
                            "audit-altered",
                            str(entry.get("seq")),
                            "entry content does not match its hash",
                        )
                    )
                last = entry
        inbox = self._inbox_names()
        if inbox:
            findings.append(
                Finding(
                    "warning",
                    "audit-inbox",
                    INBOX_DIR,
                    f"{len(inbox)} grantee entries wait to be added by the owner",
                )
            )
        return findings

    def _reseal_audit(
        self,
        txn: transaction.Transaction,
        old_identity: age.X25519Identity,
        new_recipient: age.X25519Recipient,
    ) -> None:
        """Re-seal every segment to a new owner key (identity rotation)."""
        digest = txn.current.pointer("audit") if txn.current else None
        chain = []
        while digest is not None:
            doc = sealing.open_document(self.store.get(digest), [old_identity], "audit")
            chain.append((digest, doc))
            digest = doc.get("previous")
        previous = None
        for old_digest, doc in reversed(chain):
            doc["previous"] = previous
            txn.retire(old_digest)
            previous = txn.put_document(doc, [new_recipient])
        if previous is not None:
            txn.point("audit", previous)
