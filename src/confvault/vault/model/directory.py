"""A grantee's directory: the clients one grant covers, sealed to the
grantee's key, so that it can find and open their compartments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from confvault.vault.model import _doc
from confvault.vault.model.grant import Grant
from confvault.vault.model.root import ClientRecord, RootRecord
from confvault.vault.store.documents import JSONObject

GRANTEE_FORMAT = "confvault/grantee/v1"

_KEYS = frozenset(("format", "vault", "grant", "label", "clients"))
_OPTIONAL = frozenset(("owner_recipient", "inbox_key"))


@dataclass(frozen=True)
class GranteeDirectory:
    """What one grantee sees: each covered client's name, creation time and
    covered compartments (no note dates, no profile)."""

    vault: str
    grant: str  # the grant's ID
    label: str
    clients: Mapping[str, ClientRecord]
    # The owner's key, to seal the grantee's audit entries to (absent in
    # directories sealed before it was recorded).
    owner_recipient: str | None
    # The grant's audit-inbox MAC key (absent for grants made before it).
    inbox_key: str | None = None

    @classmethod
    def of(
        cls, root: RootRecord, grant: Grant, owner_recipient: str
    ) -> GranteeDirectory:
        clients = {}
        for cid, client in root.clients.items():
            covered = {
                name: entry
                for name, entry in client.compartments.items()
                if grant.covers(cid, name)
            }
            if covered:
                clients[cid] = replace(
                    client,
                    compartments=covered,
                    last_note=None,
                    hold=None,
                    retention=None,
                    released=None,
                )
        return cls(
            root.vault, grant.id, grant.label, clients, owner_recipient, grant.inbox_key
        )

    @classmethod
    def from_doc(cls, doc: JSONObject) -> GranteeDirectory:
        what = "grantee directory"
        _doc.check_keys(doc, _KEYS, what, _OPTIONAL)
        clients = _doc.mapping(doc, "clients", what)
        return cls(
            vault=_doc.text(doc, "vault", what),
            grant=_doc.text(doc, "grant", what),
            label=_doc.text(doc, "label", what),
            clients={c: ClientRecord.from_doc(v, c) for c, v in clients.items()},
            owner_recipient=_doc.optional_text(doc, "owner_recipient", what),
            inbox_key=_doc.optional_text(doc, "inbox_key", what),
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {
            "format": GRANTEE_FORMAT,
            "vault": self.vault,
            "grant": self.grant,
            "label": self.label,
            "clients": {cid: c.to_doc() for cid, c in self.clients.items()},
        }
        if self.owner_recipient is not None:
            doc["owner_recipient"] = self.owner_recipient
        if self.inbox_key is not None:
            doc["inbox_key"] = self.inbox_key
        return doc

    def as_root(self) -> RootRecord:
        """The grantee's view of the root: these clients, no grants, no settings."""
        return RootRecord(self.vault, self.clients, grants=(), settings=None)
