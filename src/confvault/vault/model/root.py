"""The root record: every client with its compartments, the grants and the
settings; sealed by ``store.root_index`` as a top document and client buckets.

Records are values: a change is a new record (``with_client``,
``with_compartment``, ``with_grants``, ...), so a record cached by the
session never changes under it. ``to_doc`` writes exactly the keys
``from_doc`` read (absent keys stay absent), so a record read and written
back is byte-identical once sealed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from confvault import age
from confvault.vault.model import _doc, keykind, requests, retention
from confvault.vault.model.custody import Custody
from confvault.vault.model.grant import Grant
from confvault.vault.model.requests import RecordsRequest
from confvault.vault.model.retention import Hold, RetentionRule
from confvault.vault.store.documents import JSONObject, JSONValue

ROOT_V1 = "confvault/root/v1"  # every client inline
ROOT_V2 = "confvault/root/v2"  # clients in buckets (store.root_index)

_ENTRY_KEYS = frozenset(("key", "key_created", "notes", "drafts", "index"))
_ENTRY_OPTIONAL = frozenset(("attachments",))
_CLIENT_KEYS = frozenset(("name", "created", "compartments"))
_CLIENT_OPTIONAL = frozenset(("last_note", "hold", "retention", "released"))
_SETTINGS_KEYS = frozenset(("work_factor", "created"))
_SETTINGS_OPTIONAL = frozenset(
    (
        "max_key_age_days",
        "recovery_recipient",
        "identity_rotated",
        "unlock_idle",
        "unlock_max",
        "keys",
        "retention",
        "request_days",
    )
)
_ROOT_KEYS = frozenset(("format", "vault", "grants", "settings"))
_ROOT_OPTIONAL = frozenset(("pending_rotation", "clients", "custodians", "requests"))


@dataclass(frozen=True)
class CompartmentEntry:
    """A compartment as the root lists it: its key file, its index and counts."""

    key: str  # object name of the sealed client key file
    key_created: str
    notes: int  # signed notes
    drafts: int
    index: str  # object name of the sealed compartment index
    # Attachments; absent in entries not rewritten since they were counted.
    attachments: int | None = None

    @classmethod
    def from_doc(cls, value: JSONValue, what: str) -> CompartmentEntry:
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, _ENTRY_KEYS, what, _ENTRY_OPTIONAL)
        return _doc.build(
            cls,
            {
                "key": _doc.text(doc, "key", what),
                "key_created": _doc.text(doc, "key_created", what),
                "notes": _doc.number(doc, "notes", what),
                "drafts": _doc.number(doc, "drafts", what),
                "index": _doc.text(doc, "index", what),
                "attachments": _doc.optional_number(doc, "attachments", what),
            },
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {
            "key": self.key,
            "key_created": self.key_created,
            "notes": self.notes,
            "drafts": self.drafts,
            "index": self.index,
        }
        if self.attachments is not None:
            doc["attachments"] = self.attachments
        return doc


@dataclass(frozen=True)
class ClientRecord:
    """A client as the root lists it (the profile is in the records index)."""

    name: str
    created: str
    compartments: Mapping[str, CompartmentEntry]
    last_note: str | None = None  # absent before the client's first note
    hold: Hold | None = None  # a legal hold (absent: none)
    retention: RetentionRule | None = None  # overrides the vault's rule
    # The end of the latest legal hold: the retention clock starts again there
    # (absent: never released).
    released: str | None = None

    @classmethod
    def from_doc(cls, value: JSONValue, client_id: str) -> ClientRecord:
        what = f"entry of client {client_id[:8]} in the root index"
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, _CLIENT_KEYS, what, _CLIENT_OPTIONAL)
        comps = _doc.mapping(doc, "compartments", what)
        return _doc.build(
            cls,
            {
                "name": _doc.text(doc, "name", what),
                "created": _doc.text(doc, "created", what),
                "compartments": {
                    name: CompartmentEntry.from_doc(
                        entry, f"{name} compartment of client {client_id[:8]}"
                    )
                    for name, entry in comps.items()
                },
                "last_note": _doc.optional_text(doc, "last_note", what),
                "hold": retention.optional_hold(doc, "hold", what),
                "retention": retention.optional_rule(doc, "retention", what),
                "released": _doc.optional_text(doc, "released", what),
            },
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {
            "name": self.name,
            "created": self.created,
            "compartments": {n: e.to_doc() for n, e in self.compartments.items()},
        }
        if self.last_note is not None:
            doc["last_note"] = self.last_note
        if self.hold is not None:
            doc["hold"] = self.hold.to_doc()
        if self.retention is not None:
            doc["retention"] = self.retention.to_doc()
        if self.released is not None:
            doc["released"] = self.released
        return doc

    def with_compartment(self, name: str, entry: CompartmentEntry) -> ClientRecord:
        return replace(self, compartments={**self.compartments, name: entry})


@dataclass(frozen=True, slots=True)
class Settings:
    """The vault's settings (public facts, sealed with the root)."""

    work_factor: int
    created: str
    # Each absent in roots written before it was recorded.
    max_key_age_days: int | None = None
    recovery_recipient: str | _doc.AbsentKey | None = _doc.ABSENT  # None: no key
    identity_rotated: str | None = None
    # `confvault unlock`'s default lifetimes (seconds), set by `unlock --remember`
    unlock_idle: int | None = None
    unlock_max: int | None = None
    # The kind of every key (model/keykind); absent in classic vaults made
    # before post-quantum keys existed.
    keys: str | None = None
    # The retention rule (absent: none, nothing is ever due) and the records
    # request clock's days (absent: requests.DEFAULT_DAYS).
    retention: RetentionRule | None = None
    request_days: int | None = None

    @property
    def key_kind(self) -> str:
        """``keykind.POSTQUANTUM`` or ``keykind.CLASSIC``."""
        return self.keys or keykind.CLASSIC

    @classmethod
    def from_doc(cls, value: JSONValue) -> Settings:
        what = "settings record of the root index"
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, _SETTINGS_KEYS, what, _SETTINGS_OPTIONAL)
        recovery: str | _doc.AbsentKey | None = _doc.ABSENT
        if "recovery_recipient" in doc:
            recovery = _doc.text_or_null(doc, "recovery_recipient", what)
        return cls(
            work_factor=_doc.number(doc, "work_factor", what),
            created=_doc.text(doc, "created", what),
            max_key_age_days=_doc.optional_number(doc, "max_key_age_days", what),
            recovery_recipient=recovery,
            identity_rotated=_doc.optional_text(doc, "identity_rotated", what),
            unlock_idle=_doc.optional_number(doc, "unlock_idle", what),
            unlock_max=_doc.optional_number(doc, "unlock_max", what),
            keys=_keys(doc, what),
            retention=retention.optional_rule(doc, "retention", what),
            request_days=_doc.optional_number(doc, "request_days", what),
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {"work_factor": self.work_factor, "created": self.created}
        if self.max_key_age_days is not None:
            doc["max_key_age_days"] = self.max_key_age_days
        if self.recovery_recipient is not _doc.ABSENT:
            doc["recovery_recipient"] = self.recovery_recipient
        if self.identity_rotated is not None:
            doc["identity_rotated"] = self.identity_rotated
        if self.unlock_idle is not None:
            doc["unlock_idle"] = self.unlock_idle
        if self.unlock_max is not None:
            doc["unlock_max"] = self.unlock_max
        if self.keys is not None:
            doc["keys"] = self.keys
        if self.retention is not None:
            doc["retention"] = self.retention.to_doc()
        if self.request_days is not None:
            doc["request_days"] = self.request_days
        return doc

    @property
    def recovery(self) -> str | None:
        """The recovery key's public recipient, if the vault has one."""
        return (
            None if self.recovery_recipient is _doc.ABSENT else self.recovery_recipient
        )


def _keys(doc: JSONObject, what: str) -> str | None:
    keys = _doc.optional_text(doc, "keys", what)
    if keys is not None and keys not in keykind.KINDS:
        raise _doc.malformed(what, f"unknown key kind {keys!r}")
    return keys


Pending = tuple[tuple[str, str], ...]  # (client ID, compartment) still to rotate


@dataclass(frozen=True)
class RootRecord:
    """Everything the root index holds (a grantee's view: see ``GranteeDirectory``)."""

    vault: str
    clients: Mapping[str, ClientRecord]
    grants: tuple[Grant, ...]
    settings: Settings | None  # None only in a grantee's view
    # Key rotations recorded and not yet done (absent until first recorded).
    pending_rotation: Pending | None = None
    custody: Custody | None = None  # "custodians", absent until the first (issue 18)
    # Records requests, open and closed (absent until the first one).
    requests: tuple[RecordsRequest, ...] | None = None

    @classmethod
    def from_doc(
        cls, doc: JSONObject, clients: Mapping[str, ClientRecord] | None = None
    ) -> RootRecord:
        """The root from its top document, with ``clients`` from the buckets
        (version 2) or, when not given, from the document itself (version 1)."""
        what = "root index"
        _doc.check_keys(doc, _ROOT_KEYS, what, _ROOT_OPTIONAL)
        if clients is None:
            inline = _doc.mapping(doc, "clients", what)
            clients = {c: ClientRecord.from_doc(v, c) for c, v in inline.items()}
        elif "clients" in doc:
            raise _doc.malformed(what, "clients both inline and in buckets")
        grants = doc["grants"]
        if type(grants) is not list:
            raise _doc.malformed(what, "'grants' is not a list")
        return cls(
            vault=_doc.text(doc, "vault", what),
            clients=clients,
            grants=tuple(Grant.from_doc(g) for g in grants),
            settings=Settings.from_doc(doc["settings"]),
            pending_rotation=_pending(doc.get("pending_rotation"), what),
            custody=(
                Custody.from_doc(doc["custodians"]) if "custodians" in doc else None
            ),
            requests=requests.from_list(doc.get("requests"), what),
        )

    def top_doc(self) -> JSONObject:
        """The document without its clients (the top document of version 2)."""
        doc: JSONObject = {
            "format": ROOT_V2,
            "vault": self.vault,
            "grants": [g.to_doc() for g in self.grants],
            "settings": self.settings.to_doc() if self.settings else {},
        }
        if self.pending_rotation is not None:
            doc["pending_rotation"] = [[c, n] for c, n in self.pending_rotation]
        if self.custody is not None:
            doc["custodians"] = self.custody.to_doc()
        if self.requests is not None:
            doc["requests"] = [r.to_doc() for r in self.requests]
        return doc

    def to_doc(self) -> JSONObject:
        """The whole root as one document (every client inline)."""
        doc = self.top_doc()
        doc["clients"] = {cid: c.to_doc() for cid, c in self.clients.items()}
        return doc

    @property
    def key_kind(self) -> str:
        """The kind every new key of this vault has (model/keykind)."""
        return self.settings.key_kind if self.settings else keykind.CLASSIC

    def new_key(self) -> age.AnyIdentity:
        """A new client key: the one place its kind is chosen."""
        return keykind.new_identity(self.key_kind)

    def compartment_keys(self) -> Iterator[tuple[str, str]]:
        """Every (client ID, compartment) there is."""
        for cid, client in self.clients.items():
            for name in client.compartments:
                yield cid, name

    def entry(self, client_id: str, compartment: str) -> CompartmentEntry | None:
        return self.clients[client_id].compartments.get(compartment)

    def with_client(self, client_id: str, client: ClientRecord) -> RootRecord:
        return replace(self, clients={**self.clients, client_id: client})

    def without_client(self, client_id: str) -> RootRecord:
        clients = {c: v for c, v in self.clients.items() if c != client_id}
        return replace(self, clients=clients)

    def with_compartment(
        self, client_id: str, name: str, entry: CompartmentEntry
    ) -> RootRecord:
        client = self.clients[client_id].with_compartment(name, entry)
        return self.with_client(client_id, client)

    def with_grants(self, grants: tuple[Grant, ...]) -> RootRecord:
        return replace(self, grants=grants)

    def with_custody(self, custody: Custody) -> RootRecord:
        return replace(self, custody=custody)

    def with_pending(self, pending: Pending) -> RootRecord:
        return replace(self, pending_rotation=pending)

    def pending_with(self, more: list[tuple[str, str]]) -> Pending:
        """The recorded rotations, and those of ``more`` not yet among them."""
        pending = self.pending_rotation or ()
        return pending + tuple(p for p in more if p not in pending)


def _pending(value: JSONValue, what: str) -> Pending | None:
    if value is None:
        return None
    if type(value) is not list:
        raise _doc.malformed(what, "'pending_rotation' is not a list")
    out = []
    for pair in value:
        if type(pair) is not list or len(pair) != 2:
            raise _doc.malformed(what, "a pending rotation is not a pair")
        cid, name = pair
        if type(cid) is not str or type(name) is not str:
            raise _doc.malformed(what, "a pending rotation is not a pair of text")
        out.append((cid, name))
    return tuple(out)
