"""Clients: profiles, per-client keys and the per-compartment sealed indexes.

Each client has a compartment ``records`` (and, once used, ``psychotherapy``),
each with its own X25519 key. The key is an age identity file sealed to the
owner (and, later, to grantees); the compartment's index — the profile and
the list of notes — is sealed to that key. The owner-only root index maps
client IDs to these objects and keeps the names for lookup.
"""

from __future__ import annotations

import secrets
from typing import Any

from confvault import age
from confvault.errors import (
    AmbiguousNameError,
    ClientNotFoundError,
    IntegrityError,
    VaultExistsError,
)
from confvault.vault.model import names
from confvault.vault.model.note_format import PSYCHOTHERAPY, RECORDS
from confvault.vault.model.results import ClientInfo
from confvault.vault.store import sealing, transaction

INDEX_FORMAT = "confvault/index/v1"
ID_BYTES = 8  # 16 hex characters


class Compartment:
    """An opened compartment: its key, its index, and where they live."""

    def __init__(
        self,
        client_id: str,
        name: str,
        entry: dict[str, Any],
        key: age.X25519Identity,
        index: dict[str, Any],
    ) -> None:
        self.client_id = client_id
        self.name = name
        self.entry = entry
        self.key = key
        self.index = index

    @property
    def notes(self) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = self.index["notes"]
        return notes


class ClientsMixin:
    """Client operations of ``Vault``."""

    # provided by VaultCore
    store: Any
    _reading: Any
    _writing: Any
    _root_doc: Any
    _write_root: Any
    _owner: Any
    _note_audit: Any
    _audit_read: Any
    _identities: Any
    _signers: Any
    now: Any

    # --- compartments -------------------------------------------------------------

    def _key_recipients(
        self, root: dict[str, Any], client_id: str, compartment: str
    ) -> list[age.Recipient]:
        recipients: list[age.Recipient] = [self._owner().recipient]
        for grant in root.get("grants", []):
            if _grant_covers(grant, client_id, compartment):
                recipients.append(age.parse_recipient(grant["recipient"]))
        return recipients

    def _new_compartment(
        self,
        txn: transaction.Transaction,
        root: dict[str, Any],
        client_id: str,
        compartment: str,
        profile: dict[str, Any] | None,
    ) -> Compartment:
        key = age.X25519Identity.generate()
        created = self.now()
        key_text = sealing.client_key_text(
            client_id, compartment, created, key.encode()
        )
        recipients = self._key_recipients(root, client_id, compartment)
        entry = {
            "key": txn.put(sealing.seal_key_file(key_text, recipients)),
            "key_created": created,
            "notes": 0,
            "drafts": 0,
        }
        index: dict[str, Any] = {
            "format": INDEX_FORMAT,
            "client": client_id,
            "compartment": compartment,
            "notes": [],
        }
        if profile is not None:
            index["profile"] = profile
        comp = Compartment(client_id, compartment, entry, key, index)
        self._write_index(txn, comp)
        root["clients"][client_id]["compartments"][compartment] = entry
        return comp

    def _open_compartment(
        self, root: dict[str, Any], client_id: str, compartment: str
    ) -> Compartment | None:
        entry = root["clients"][client_id]["compartments"].get(compartment)
        if entry is None:
            return None
        key = self._open_client_key(entry["key"])
        index = sealing.open_document(self.store.get(entry["index"]), [key], "index")
        if index.get("client") != client_id or index.get("compartment") != compartment:
            raise IntegrityError(f"the index of client {client_id[:8]} was swapped")
        return Compartment(client_id, compartment, entry, key, index)

    def _open_client_key(self, digest: str) -> age.X25519Identity:
        text = age.decrypt(self.store.get(digest), self._identities()).decode("utf-8")
        return age.parse_identities(text)[0]

    def _write_index(self, txn: transaction.Transaction, comp: Compartment) -> None:
        txn.retire(comp.entry.get("index"))
        comp.entry["index"] = txn.put_document(comp.index, [comp.key.recipient])
        comp.entry["notes"] = sum(1 for n in comp.notes if n["status"] == "signed")
        comp.entry["drafts"] = sum(1 for n in comp.notes if n["status"] == "draft")
        comp.entry["attachments"] = sum(
            1 for n in comp.notes if n["kind"] == "attachment"
        )

    # --- resolution -------------------------------------------------------------------

    def _resolve_client(self, root: dict[str, Any], ref: str) -> str:
        """A whole client ID, else a name, else a unique prefix of an ID."""
        clients = root["clients"]
        if ref.strip().lower() in clients:  # without a scan of every client
            return ref.strip().lower()
        wanted = ref.strip().casefold()
        by_name = [cid for cid, c in clients.items() if c["name"].casefold() == wanted]
        if len(by_name) == 1:
            return by_name[0]
        by_id = (
            [cid for cid in clients if cid.startswith(ref.strip().lower())]
            if ref.strip()
            else []
        )
        if len(by_id) == 1:
            return by_id[0]
        if len(by_id) > 1:
            raise AmbiguousNameError(
                f"{len(by_id)} clients have IDs starting with {ref!r}; give more characters"
            )
        raise ClientNotFoundError("no client with that name or ID prefix")

    def _client_info(
        self,
        root: dict[str, Any],
        client_id: str,
        profile: dict[str, Any] | None = None,
    ) -> ClientInfo:
        client = root["clients"][client_id]
        comps = client["compartments"]
        records_entry = comps.get(RECORDS, {})
        pt_entry = comps.get(PSYCHOTHERAPY, {})
        return ClientInfo(
            id=client_id,
            name=client["name"],
            created=client["created"],
            notes=records_entry.get("notes", 0),
            drafts=records_entry.get("drafts", 0) + pt_entry.get("drafts", 0),
            psychotherapy_notes=pt_entry.get("notes", 0),
            fields=dict((profile or {}).get("fields", {})),
            last_note=client.get("last_note"),
        )

    # --- public operations ------------------------------------------------------------

    def add_client(self, name: str, fields: dict[str, str] | None = None) -> ClientInfo:
        """Add a client; the name must not already be in use."""
        name = names.client_name(name)
        clean_fields = dict(names.field(f"{k}={v}") for k, v in (fields or {}).items())
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            if any(
                c["name"].casefold() == name.casefold()
                for c in root["clients"].values()
            ):
                raise VaultExistsError("a client with that name already exists")
            client_id = secrets.token_hex(ID_BYTES)
            root["clients"][client_id] = {
                "name": name,
                "created": self.now(),
                "compartments": {},
            }
            profile = {"name": name, "fields": clean_fields, "created": self.now()}
            self._new_compartment(txn, root, client_id, RECORDS, profile)
            self._note_audit("client-add", client_id)
            self._write_root(txn, root)
            return self._client_info(root, client_id, profile)

    def clients(self) -> list[ClientInfo]:
        """All clients, by name."""
        with self._reading() as current:
            root = self._root_doc(current)
            infos = [self._client_info(root, cid) for cid in root["clients"]]
        self._audit_read("client-list", None, clients=len(infos))
        return sorted(infos, key=lambda c: c.name.casefold())

    def client(self, ref: str) -> ClientInfo:
        """One client, with the profile fields (from the sealed index)."""
        with self._reading() as current:
            root = self._root_doc(current)
            client_id = self._resolve_client(root, ref)
            comp = self._open_compartment(root, client_id, RECORDS)
            profile = comp.index.get("profile") if comp else None
            info = self._client_info(root, client_id, profile)
        self._audit_read("client-show", client_id)
        return info

    def rename_client(self, ref: str, new_name: str) -> ClientInfo:
        """Rename a client (root index and profile change together)."""
        new_name = names.client_name(new_name)
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            client_id = self._resolve_client(root, ref)
            for cid, c in root["clients"].items():
                if cid != client_id and c["name"].casefold() == new_name.casefold():
                    raise VaultExistsError("a client with that name already exists")
            comp = self._open_compartment(root, client_id, RECORDS)
            if comp is None:
                raise IntegrityError(f"client {client_id[:8]} has no records index")
            root["clients"][client_id]["name"] = new_name
            comp.index["profile"]["name"] = new_name
            self._note_audit("client-rename", client_id)
            self._write_index(txn, comp)
            self._write_root(txn, root)
            return self._client_info(root, client_id, comp.index["profile"])


def _grant_covers(grant: dict[str, Any], client_id: str, compartment: str) -> bool:
    if compartment == PSYCHOTHERAPY and not grant.get("psychotherapy", False):
        return False
    return bool(grant.get("all")) or client_id in grant.get("clients", [])
