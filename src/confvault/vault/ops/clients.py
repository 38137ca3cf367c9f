"""Clients: add, list, show and rename (profiles live in the sealed records index)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING

from confvault.errors import IntegrityError, UnsafeInputError, VaultExistsError
from confvault.vault.model import names
from confvault.vault.model.index import Profile
from confvault.vault.model.note_format import RECORDS
from confvault.vault.model.results import ClientInfo
from confvault.vault.model.root import ClientRecord
from confvault.vault.ops import compartments
from confvault.vault.session import trail

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


def add_client(
    s: Session,
    name: str,
    fields: dict[str, str] | None = None,
    born: str | None = None,
) -> ClientInfo:
    """Add a client; the name must not already be in use. ``born``: the date
    of birth (YYYY-MM-DD), kept in the sealed profile."""
    name = names.client_name(name)
    born = _birth_date(born)
    clean_fields = dict(names.field(f"{k}={v}") for k, v in (fields or {}).items())
    with s.writing() as txn:
        root = s.root_record(txn.current)
        if any(c.name.casefold() == name.casefold() for c in root.clients.values()):
            raise VaultExistsError("a client with that name already exists")
        client_id = secrets.token_hex(compartments.ID_BYTES)
        root = root.with_client(client_id, ClientRecord(name, s.now(), {}))
        profile = Profile(name, clean_fields, s.now(), born)
        root, _ = compartments.new_compartment(
            s, txn, root, client_id, RECORDS, profile
        )
        s.note_audit("client-add", client_id)
        root = s.write_root(txn, root)
        return compartments.client_info(s, root, client_id, profile)


def _birth_date(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError as err:
        raise UnsafeInputError(
            f"{text[:40]!r} is not a date of birth (use YYYY-MM-DD)"
        ) from err


def set_born(s: Session, ref: str, born: str | None) -> ClientInfo:
    """Record (``None``: forget) the client's date of birth in their profile."""
    born = _birth_date(born)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        client_id = compartments.resolve_client(s, root, ref)
        comp = compartments.open_compartment(s, root, client_id, RECORDS)
        if comp is None or comp.index.profile is None:
            raise IntegrityError(f"client {client_id[:8]} has no records index")
        profile = replace(comp.index.profile, born=born)
        s.note_audit("client-edit", client_id, None, born=born is not None)
        comp = compartments.write_index(s, txn, comp, comp.index.with_profile(profile))
        client = root.clients[client_id].with_compartment(RECORDS, comp.entry)
        root = s.write_root(txn, root.with_client(client_id, client), [client_id])
        return compartments.client_info(s, root, client_id, profile)


def clients(s: Session) -> list[ClientInfo]:
    """All clients, by name."""
    with s.reading() as current:
        root = s.root_record(current)
        infos = [compartments.client_info(s, root, cid) for cid in root.clients]
    trail.audit_read(s, "client-list", None, clients=len(infos))
    return sorted(infos, key=lambda c: c.name.casefold())


def client(s: Session, ref: str) -> ClientInfo:
    """One client, with the profile fields (from the sealed index)."""
    with s.reading() as current:
        root = s.root_record(current)
        client_id = compartments.resolve_client(s, root, ref)
        comp = compartments.open_compartment(s, root, client_id, RECORDS)
        profile = comp.index.profile if comp else None
        info = compartments.client_info(s, root, client_id, profile)
    trail.audit_read(s, "client-show", client_id)
    return info


def rename_client(s: Session, ref: str, new_name: str) -> ClientInfo:
    """Rename a client (root index and profile change together)."""
    new_name = names.client_name(new_name)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        client_id = compartments.resolve_client(s, root, ref)
        for cid, c in root.clients.items():
            if cid != client_id and c.name.casefold() == new_name.casefold():
                raise VaultExistsError("a client with that name already exists")
        comp = compartments.open_compartment(s, root, client_id, RECORDS)
        if comp is None or comp.index.profile is None:
            raise IntegrityError(f"client {client_id[:8]} has no records index")
        profile = replace(comp.index.profile, name=new_name)
        s.note_audit("client-rename", client_id)
        comp = compartments.write_index(s, txn, comp, comp.index.with_profile(profile))
        client = replace(root.clients[client_id], name=new_name)
        root = root.with_client(client_id, client.with_compartment(RECORDS, comp.entry))
        root = s.write_root(txn, root)
        return compartments.client_info(s, root, client_id, profile)
