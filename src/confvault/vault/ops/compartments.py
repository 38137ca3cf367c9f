"""A client's compartments (records, psychotherapy): keys, sealed indexes, and client lookup."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from confvault import age
from confvault.errors import (
    AmbiguousNameError,
    ClientNotFoundError,
    IntegrityError,
)
from confvault.vault.model.grant import grant_covers
from confvault.vault.model.note_format import PSYCHOTHERAPY, RECORDS
from confvault.vault.model.results import ClientInfo
from confvault.vault.store import sealing, transaction

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


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


def key_recipients(
    s: Session, root: dict[str, Any], client_id: str, compartment: str
) -> list[age.Recipient]:
    recipients: list[age.Recipient] = [s.require_owner().recipient]
    for grant in root.get("grants", []):
        if grant_covers(grant, client_id, compartment):
            recipients.append(age.parse_recipient(grant["recipient"]))
    return recipients


def new_compartment(
    s: Session,
    txn: transaction.Transaction,
    root: dict[str, Any],
    client_id: str,
    compartment: str,
    profile: dict[str, Any] | None,
) -> Compartment:
    key = age.X25519Identity.generate()
    created = s.now()
    key_text = sealing.client_key_text(client_id, compartment, created, key.encode())
    recipients = key_recipients(s, root, client_id, compartment)
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
    write_index(s, txn, comp)
    root["clients"][client_id]["compartments"][compartment] = entry
    return comp


def open_compartment(
    s: Session, root: dict[str, Any], client_id: str, compartment: str
) -> Compartment | None:
    entry = root["clients"][client_id]["compartments"].get(compartment)
    if entry is None:
        return None
    key = _open_client_key(s, entry["key"])
    index = sealing.open_document(s.store.get(entry["index"]), [key], "index")
    if index.get("client") != client_id or index.get("compartment") != compartment:
        raise IntegrityError(f"the index of client {client_id[:8]} was swapped")
    return Compartment(client_id, compartment, entry, key, index)


def _open_client_key(s: Session, digest: str) -> age.X25519Identity:
    text = age.decrypt(s.store.get(digest), s.identities()).decode("utf-8")
    return age.parse_identities(text)[0]


def write_index(s: Session, txn: transaction.Transaction, comp: Compartment) -> None:
    txn.retire(comp.entry.get("index"))
    comp.entry["index"] = txn.put_document(comp.index, [comp.key.recipient])
    comp.entry["notes"] = sum(1 for n in comp.notes if n["status"] == "signed")
    comp.entry["drafts"] = sum(1 for n in comp.notes if n["status"] == "draft")
    comp.entry["attachments"] = sum(1 for n in comp.notes if n["kind"] == "attachment")


def resolve_client(s: Session, root: dict[str, Any], ref: str) -> str:
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


def client_info(
    s: Session,
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
