"""The audit trail's records: events queued by operations, the entries of the
hash chain, the sealed segments that hold them, and the check of the chain.

Each entry's ``hash`` is the SHA-256 of its canonical document without the
hash; ``prev`` is the hash of the entry before it (``GENESIS`` for the first),
and ``seq`` counts from 0 across segments.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from confvault.errors import IntegrityError
from confvault.vault.model import _doc
from confvault.vault.model.results import Finding
from confvault.vault.store.documents import JSONObject, JSONValue
from confvault.vault.store.layout import INBOX
from confvault.vault.store.manifest import canonical

AUDIT_FORMAT = "confvault/audit/v1"
GENESIS = "0" * 64
SEGMENT_SIZE = 256  # entries per segment

_INBOX_KEYS = ("action", "client", "note", "details", "time", "actor")
_ENTRY_KEYS = frozenset((*_INBOX_KEYS, "signed", "seq", "prev", "hash"))
# A grantee's inbox entry as written (its MAC over all but "mac").
GRANTEE_ENTRY_KEYS = frozenset((*_INBOX_KEYS, "from", "mac"))
# What a grantee may record: its reads, each with exactly the details the
# operation gives (ops: clients, reading, export), and of these types.
_GRANTEE_READS: dict[str, dict[str, type]] = {
    "client-list": {"clients": int},
    "client-show": {},
    "note-list": {"notes": int},
    "note-show": {},
    "attachment-save": {},
    "note-search": {"hits": int},
    "export": {"notes": int, "attachments": int, "psychotherapy": bool},
}
# Reads of one client name it; the others may (a list or search of one client).
_NAMES_CLIENT = frozenset(("client-show", "note-show", "attachment-save", "export"))
_NAMES_NOTE = frozenset(("note-show", "attachment-save"))
_ID = re.compile(r"[0-9a-f]{16}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_MAX_COUNT = 10**9
_DEVICE_KEYS = frozenset(("id", "name"))
_SEGMENT_KEYS = frozenset(("format", "vault", "number", "previous", "entries"))
_CARRY_KEYS = frozenset(("seq", "hash"))


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What an operation did, queued until its transaction commits."""

    action: str
    client: str | None
    note: str | None
    details: JSONObject

    @classmethod
    def of(
        cls,
        action: str,
        client: str | None,
        note: str | None,
        details: Mapping[str, object],
    ) -> AuditEvent:
        """An event whose ``details`` (the operation's keyword arguments) are
        copied as JSON; ``IntegrityError`` for a value JSON cannot hold."""
        copied = _doc.json_copy(details, f"details of audit event {action}")
        return cls(action, client, note, _doc.as_object(copied, "audit details"))


@dataclass(frozen=True, slots=True)
class Device:
    """The device that wrote an entry: its sync ID and name (docs/SYNC.md)."""

    id: str
    name: str

    def to_doc(self) -> JSONObject:
        return {"id": self.id, "name": self.name}

    @classmethod
    def from_doc(cls, value: JSONValue, what: str) -> Device:
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, _DEVICE_KEYS, what)
        return cls(_doc.text(doc, "id", what), _doc.text(doc, "name", what))

    def matches(self, wanted: str) -> bool:
        """``wanted`` is this device's name or its ID."""
        return wanted in (self.id, self.name)


@dataclass(frozen=True, slots=True)
class Stamped:
    """An event with its time and author, ready to be chained."""

    event: AuditEvent
    time: str
    actor: str
    signed: bool  # False: written by a grantee, not by the owner's key
    device: Device | None = None  # the synced device that wrote it, if any

    @classmethod
    def from_inbox(cls, doc: Mapping[str, JSONValue]) -> Stamped:
        """A grantee's entry (``action``, ``client``, ``note``, ``details``,
        ``time``, ``actor``; its MAC checked by the caller)."""
        what = "audit inbox entry"
        fields: JSONObject = {k: doc.get(k) for k in _INBOX_KEYS}
        details = fields["details"] or {}
        event = AuditEvent(
            _doc.text(fields, "action", what),
            _doc.text_or_null(fields, "client", what),
            _doc.text_or_null(fields, "note", what),
            _doc.as_object(details, what),
        )
        time, actor = _doc.text(fields, "time", what), _doc.text(fields, "actor", what)
        return cls(event, time, actor, signed=False)

    @classmethod
    def from_grantee(
        cls,
        doc: Mapping[str, JSONValue],
        sender: str,
        covers: Callable[[str], bool],
        fold_time: str,
    ) -> Stamped:
        """The entry a grantee's key ``sender`` authenticated (its MAC checked
        by the caller), as the chain records it: its actor the sender
        (``grantee:<age1…>``), its time the owner's ``fold_time``, the time
        it claims kept apart in ``details["claimed_time"]``.

        ``IntegrityError`` naming the first problem unless it is exactly what
        a grantee's read writes: one of the read actions, on a client
        ``covers`` accepts, with that action's details, of their types.
        """
        if doc.keys() != GRANTEE_ENTRY_KEYS:
            raise IntegrityError("not the keys of a grantee's entry")
        stamped = cls.from_inbox(doc)
        event = stamped.event
        if stamped.actor != f"grantee:{sender}":
            raise IntegrityError("it names another actor than the key that sent it")
        allowed = _GRANTEE_READS.get(event.action)
        if allowed is None:
            raise IntegrityError("not a read a grantee can make")
        if not _TIME.fullmatch(stamped.time):
            raise IntegrityError("its time is not a UTC time")
        client, note = event.client, event.note
        if client is None:
            if event.action in _NAMES_CLIENT:
                raise IntegrityError("it names no client")
        elif not _ID.fullmatch(client) or not covers(client):
            raise IntegrityError("it names a client the sender's grant does not cover")
        if event.action in _NAMES_NOTE:
            if note is None or not _ID.fullmatch(note) or not client:
                raise IntegrityError("it names no note")
            if note[:6] != client[:6]:
                raise IntegrityError("it names a note of another client")
        elif note is not None:
            raise IntegrityError("it names a note where this read has none")
        details = event.details
        if details.keys() != allowed.keys() or any(
            type(details[k]) is not kind for k, kind in allowed.items()
        ):
            raise IntegrityError("its details are not those of this read")
        if any(type(v) is int and not 0 <= v < _MAX_COUNT for v in details.values()):
            raise IntegrityError("a count in its details is out of range")
        recorded = AuditEvent(
            event.action, client, note, {**details, "claimed_time": stamped.time}
        )
        return cls(recorded, fold_time, f"grantee:{sender}", signed=False)


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One entry of the chain, as a segment holds it."""

    action: str
    client: str | None
    note: str | None
    details: JSONObject
    time: str
    actor: str  # "owner:<key>" or "grantee:<age1…>"
    signed: bool  # False: written by a grantee, not by the owner's key
    seq: int
    prev: str
    hash: str
    # The synced device that wrote it; absent in entries of a vault never
    # synced (and in every entry written before devices existed).
    device: Device | None = None

    @classmethod
    def link(cls, stamped: Stamped, last: ChainEntry | Carry | None) -> ChainEntry:
        """``stamped`` as the entry after ``last`` (None: the first one)."""
        event = stamped.event
        unhashed = cls(
            event.action,
            event.client,
            event.note,
            event.details,
            stamped.time,
            stamped.actor,
            stamped.signed,
            seq=last.seq + 1 if last else 0,
            prev=last.hash if last else GENESIS,
            hash="",
            device=stamped.device,
        )
        return replace(unhashed, hash=entry_hash(unhashed.to_doc()))

    @classmethod
    def from_doc(cls, value: JSONValue, what: str) -> ChainEntry:
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, _ENTRY_KEYS, what, frozenset(("device",)))
        device = doc.get("device")
        return cls(
            action=_doc.text(doc, "action", what),
            client=_doc.text_or_null(doc, "client", what),
            note=_doc.text_or_null(doc, "note", what),
            details=_doc.mapping(doc, "details", what),
            time=_doc.text(doc, "time", what),
            actor=_doc.text(doc, "actor", what),
            signed=_doc.flag(doc, "signed", what),
            seq=_doc.number(doc, "seq", what),
            prev=_doc.text(doc, "prev", what),
            hash=_doc.text(doc, "hash", what),
            device=None
            if device is None
            else Device.from_doc(device, f"device of an {what}"),
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {
            "action": self.action,
            "client": self.client,
            "note": self.note,
            "details": self.details,
            "time": self.time,
            "actor": self.actor,
            "signed": self.signed,
            "seq": self.seq,
            "prev": self.prev,
            "hash": self.hash,
        }
        if self.device is not None:  # absent, not null: older entries hash as before
            doc["device"] = self.device.to_doc()
        return doc


def entry_hash(entry: Mapping[str, object]) -> str:
    """The hash an entry (as a document) must carry: over all but ``hash``."""
    doc = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical(doc)).hexdigest()


@dataclass(frozen=True, slots=True)
class Carry:
    """The last entry of the segment before, where a new segment starts."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Segment:
    """A sealed segment of the chain; the newest is the manifest's ``audit``."""

    vault: str
    number: int
    previous: str | None  # object name of the segment before
    entries: tuple[ChainEntry, ...]
    carry: Carry | None = None  # absent in the first segment

    @classmethod
    def from_doc(cls, doc: JSONObject) -> Segment:
        what = "audit segment"
        _doc.check_keys(doc, _SEGMENT_KEYS, what, frozenset(("carry",)))
        entries = doc["entries"]
        if type(entries) is not list:
            raise _doc.malformed(what, "'entries' is not a list")
        carry = None
        if "carry" in doc:
            last = _doc.as_object(doc["carry"], f"carry of the {what}")
            _doc.check_keys(last, _CARRY_KEYS, f"carry of the {what}")
            carry = Carry(_doc.number(last, "seq", what), _doc.text(last, "hash", what))
        return cls(
            vault=_doc.text(doc, "vault", what),
            number=_doc.number(doc, "number", what),
            previous=_doc.text_or_null(doc, "previous", what),
            entries=tuple(
                ChainEntry.from_doc(e, f"entry of the {what}") for e in entries
            ),
            carry=carry,
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {
            "format": AUDIT_FORMAT,
            "vault": self.vault,
            "number": self.number,
            "previous": self.previous,
            "entries": [e.to_doc() for e in self.entries],
        }
        if self.carry is not None:
            doc["carry"] = {"seq": self.carry.seq, "hash": self.carry.hash}
        return doc

    def with_entries(self, entries: Sequence[ChainEntry]) -> Segment:
        return replace(self, entries=tuple(entries))

    def with_previous(self, previous: str | None) -> Segment:
        return replace(self, previous=previous)

    @property
    def last(self) -> ChainEntry | Carry | None:
        """What the next entry links to."""
        return self.entries[-1] if self.entries else self.carry


def chain_findings(
    segments: Sequence[tuple[str, Segment]], vault_id: str
) -> list[Finding]:
    """Sequence, hashes and segment links of the whole chain (oldest first)."""
    findings: list[Finding] = []
    last: ChainEntry | None = None
    for number, (digest, segment) in enumerate(segments):
        if segment.number != number:
            findings.append(
                Finding(
                    "error",
                    "audit-sequence",
                    digest,
                    f"segment {segment.number} where {number} was expected",
                )
            )
        if segment.vault != vault_id:
            findings.append(
                Finding("error", "audit-foreign", digest, "segment of another vault")
            )
        for entry in segment.entries:
            expected_seq = last.seq + 1 if last else 0
            expected_prev = last.hash if last else GENESIS
            if entry.seq != expected_seq:
                findings.append(
                    Finding(
                        "error",
                        "audit-sequence",
                        str(entry.seq),
                        f"entry {entry.seq} where {expected_seq} was expected",
                    )
                )
            if entry.prev != expected_prev:
                findings.append(
                    Finding(
                        "error",
                        "audit-chain",
                        str(entry.seq),
                        "entry does not link to the one before it",
                    )
                )
            if entry.hash != entry_hash(entry.to_doc()):
                findings.append(
                    Finding(
                        "error",
                        "audit-altered",
                        str(entry.seq),
                        "entry content does not match its hash",
                    )
                )
            last = entry
    return findings


def inbox_findings(waiting: Sequence[str]) -> list[Finding]:
    """The warning for grantee entries ``waiting`` in the inbox, if any wait."""
    if not waiting:
        return []
    return [
        Finding(
            "warning",
            "audit-inbox",
            INBOX,
            f"{len(waiting)} grantee entries wait to be added by the owner",
        )
    ]
