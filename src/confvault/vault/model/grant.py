"""A grant: read access for one grantee key, as the root index records it,
and the rule of what it covers."""

from __future__ import annotations

from dataclasses import dataclass

from confvault.vault.model import _doc
from confvault.vault.model.note_format import PSYCHOTHERAPY
from confvault.vault.store.documents import JSONObject, JSONValue

_KEYS = frozenset(
    ("id", "recipient", "label", "clients", "all", "psychotherapy", "since", "until")
)
_OPTIONAL = frozenset(("directory", "inbox_key"))


@dataclass(frozen=True, slots=True)
class Grant:
    """Who (an age1… key) may read which clients, since and until when."""

    id: str
    recipient: str
    label: str
    clients: tuple[str, ...]  # client IDs named by the grant
    all_clients: bool  # every client, those added later included
    psychotherapy: bool  # the psychotherapy compartments too
    since: str
    until: str | None
    # The hash of the grantee's directory as last sealed (absent until then).
    directory: str | None = None
    # The key (base64, 32 random bytes) that MACs the grantee's audit-inbox
    # entries, given to it in its directory; absent in grants made before,
    # whose entries are MACed with an X25519 agreement (classic keys only).
    inbox_key: str | None = None

    def covers(self, client_id: str, compartment: str) -> bool:
        """True when this grant lets its key read ``client_id``'s ``compartment``."""
        if compartment == PSYCHOTHERAPY and not self.psychotherapy:
            return False
        return self.all_clients or client_id in self.clients

    @classmethod
    def from_doc(cls, value: JSONValue) -> Grant:
        what = "grant"
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, _KEYS, what, _OPTIONAL)
        return cls(
            id=_doc.text(doc, "id", what),
            recipient=_doc.text(doc, "recipient", what),
            label=_doc.text(doc, "label", what),
            clients=_doc.texts(doc, "clients", what),
            all_clients=_doc.flag(doc, "all", what),
            psychotherapy=_doc.flag(doc, "psychotherapy", what),
            since=_doc.text(doc, "since", what),
            until=_doc.text_or_null(doc, "until", what),
            directory=_doc.optional_text(doc, "directory", what),
            inbox_key=_doc.optional_text(doc, "inbox_key", what),
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {
            "id": self.id,
            "recipient": self.recipient,
            "label": self.label,
            "clients": list[JSONValue](self.clients),
            "all": self.all_clients,
            "psychotherapy": self.psychotherapy,
            "since": self.since,
            "until": self.until,
        }
        if self.directory is not None:
            doc["directory"] = self.directory
        if self.inbox_key is not None:
            doc["inbox_key"] = self.inbox_key
        return doc
