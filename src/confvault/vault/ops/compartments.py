"""A client's compartments (records, psychotherapy): keys, sealed indexes, and client lookup."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from confvault import age
from confvault.errors import (
    AmbiguousClientError,
    ClientNotFoundError,
    RotationPendingError,
)
from confvault.vault.model import names, sealed
from confvault.vault.model.index import (
    INDEX_FORMAT,
    CompartmentIndex,
    NoteEntry,
    Profile,
)
from confvault.vault.model.note_format import PSYCHOTHERAPY, RECORDS
from confvault.vault.model.results import ClientInfo
from confvault.vault.model.root import CompartmentEntry, RootRecord
from confvault.vault.store import sealing, transaction

if TYPE_CHECKING:
    from confvault.vault.session.core import Session

__all__ = ["ID_BYTES", "INDEX_FORMAT", "Compartment"]

ID_BYTES = 8  # 16 hex characters


@dataclass(frozen=True)
class Compartment:
    """An opened compartment: its key, its index, and the root's entry for it."""

    client_id: str
    name: str
    entry: CompartmentEntry
    key: age.AnyIdentity = field(repr=False)
    index: CompartmentIndex
    # The root lists this compartment as still to be rotated: its key may be
    # one a revoked grantee holds, so nothing new is sealed to it.
    pending: bool = False

    @property
    def notes(self) -> tuple[NoteEntry, ...]:
        return self.index.notes

    def require_writable(self) -> None:
        """Refuse to seal anything to a key that is pending rotation."""
        if self.pending:
            raise RotationPendingError(
                f"the {self.name} key of client {self.client_id[:8]} is still to "
                "be rotated (a revoke, an expired grant or a re-key did not "
                "finish); nothing is written under the old key"
            )


def key_recipients(
    s: Session, root: RootRecord, client_id: str, compartment: str
) -> list[age.Recipient]:
    recipients: list[age.Recipient] = [s.require_owner().recipient]
    for grant in root.grants:
        if grant.covers(client_id, compartment):
            recipients.append(age.parse_recipient(grant.recipient))
    return recipients


def new_compartment(
    s: Session,
    txn: transaction.Transaction,
    root: RootRecord,
    client_id: str,
    compartment: str,
    profile: Profile | None,
) -> tuple[RootRecord, Compartment]:
    """A new key and an empty index; the root with the compartment added."""
    key = root.new_key()
    created = s.now()
    key_text = sealing.client_key_text(client_id, compartment, created, key.encode())
    recipients = key_recipients(s, root, client_id, compartment)
    key_file = txn.put(sealing.seal_key_file(key_text, recipients))
    index = CompartmentIndex(client_id, compartment, (), profile)
    digest = txn.put_document(index.to_doc(), [key.recipient])
    entry = CompartmentEntry(key_file, created, 0, 0, digest, attachments=0)
    comp = Compartment(client_id, compartment, entry, key, index)
    return root.with_compartment(client_id, compartment, entry), comp


def open_compartment(
    s: Session, root: RootRecord, client_id: str, compartment: str
) -> Compartment | None:
    entry = root.entry(client_id, compartment)
    if entry is None:
        return None
    key = sealed.open_client_key(s.store, entry.key, s.identities())
    index = sealed.open_index(s.store, entry, key, client_id, compartment)
    pending = (client_id, compartment) in (root.pending_rotation or ())
    return Compartment(client_id, compartment, entry, key, index, pending)


def write_index(
    s: Session,
    txn: transaction.Transaction,
    comp: Compartment,
    index: CompartmentIndex | None = None,
) -> Compartment:
    """Seal ``index`` (by default the compartment's own) to the compartment's
    key; the compartment with its new index and the root's entry counting it."""
    comp.require_writable()
    index = comp.index if index is None else index
    txn.retire(comp.entry.index)
    digest = txn.put_document(index.to_doc(), [comp.key.recipient])
    notes, drafts, attachments = index.counts()
    entry = replace(
        comp.entry, index=digest, notes=notes, drafts=drafts, attachments=attachments
    )
    return replace(comp, entry=entry, index=index)


def resolve_client(s: Session, root: RootRecord, ref: str) -> str:
    """A whole client ID, else a whole name, else the one client whose ID
    begins with ``ref`` or whose name (or a word of it) begins with it, any
    case. More than one: :class:`AmbiguousClientError` with the candidates;
    none: :class:`ClientNotFoundError`; a reference nothing could match
    (empty, control characters, too long): :class:`ClientReferenceError`."""
    clients = root.clients
    wanted = names.client_ref(ref)
    if wanted.lower() in clients:  # without a scan of every client
        return wanted.lower()
    folded = wanted.casefold()
    by_name = [cid for cid, c in clients.items() if c.name.casefold() == folded]
    if len(by_name) == 1:
        return by_name[0]
    found = [
        cid
        for cid, c in clients.items()
        if cid.startswith(wanted.lower()) or names.name_matches(c.name, folded)
    ]
    if len(found) == 1:
        return found[0]
    if found:
        candidates = sorted(
            ((cid, clients[cid].name) for cid in found),
            key=lambda c: (c[1].casefold(), c[0]),
        )
        raise AmbiguousClientError(
            f"{len(found)} clients match that reference; give more of the name "
            "or of the ID",
            tuple(candidates),
        )
    raise ClientNotFoundError("no client with that name or ID prefix")


def client_info(
    s: Session,
    root: RootRecord,
    client_id: str,
    profile: Profile | None = None,
) -> ClientInfo:
    client = root.clients[client_id]
    records = client.compartments.get(RECORDS)
    pt = client.compartments.get(PSYCHOTHERAPY)
    return ClientInfo(
        id=client_id,
        name=client.name,
        created=client.created,
        notes=records.notes if records else 0,
        drafts=(records.drafts if records else 0) + (pt.drafts if pt else 0),
        psychotherapy_notes=pt.notes if pt else 0,
        fields=dict(profile.fields) if profile else {},
        last_note=client.last_note,
        born=profile.born if profile else None,
        hold=client.hold,
    )
