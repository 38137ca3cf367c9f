"""Grants: who may read which client, giving and revoking access."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import TYPE_CHECKING

from confvault import age
from confvault.errors import (
    AmbiguousNameError,
    NotFoundError,
    UnsafeInputError,
)
from confvault.vault.model import keykind
from confvault.vault.model.clock import parse_date
from confvault.vault.model.grant import Grant
from confvault.vault.model.note_format import RECORDS
from confvault.vault.model.results import (
    ClientExposure,
    GrantInfo,
    Progress,
    RevokeReport,
)
from confvault.vault.model.root import RootRecord
from confvault.vault.ops import (
    compartments,
    rotation,
)
from confvault.vault.store import signing

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


def _grant_info(grant: Grant, root: RootRecord) -> GrantInfo:
    covered = sorted(
        client.name
        for cid, client in root.clients.items()
        if grant.covers(cid, RECORDS)
    )
    return GrantInfo(
        id=grant.id,
        recipient=grant.recipient,
        label=grant.label,
        all_clients=grant.all_clients,
        clients=tuple(covered),
        psychotherapy=grant.psychotherapy,
        since=grant.since,
        until=grant.until,
        key_kind=keykind.of_recipient(age.parse_recipient(grant.recipient)),
    )


def grant(
    s: Session,
    recipient: str,
    *,
    clients: list[str] | None = None,
    all_clients: bool = False,
    label: str | None = None,
    until: str | None = None,
    psychotherapy: bool = False,
) -> GrantInfo:
    """Give ``recipient`` (an age1pq1… key in a post-quantum vault, an age1…
    key in a classic one) read access; re-wraps client keys only."""
    key = age.parse_recipient(recipient)
    if not all_clients and not clients:
        raise UnsafeInputError("name the clients to grant (--client), or --all")
    until_iso = parse_date(until) if until else None
    if until_iso and len(until or "") <= 10:
        until_iso = until_iso[:10] + "T23:59:59Z"
    with s.writing() as txn:
        root = s.root_record(txn.current)
        keykind.check_grantee(root.key_kind, key)
        if str(key) == str(s.require_owner().recipient):
            raise UnsafeInputError("that is the owner's own key; it already has access")
        ids = [compartments.resolve_client(s, root, c) for c in clients or []]
        old = next((g for g in root.grants if g.recipient == str(key)), None)
        if old is None:
            old = Grant(
                id=secrets.token_hex(8),
                recipient=str(key),
                label=label or str(key)[:16],
                clients=(),
                all_clients=False,
                psychotherapy=False,
                since=s.now(),
                until=until_iso,
                inbox_key=signing.b64(secrets.token_bytes(32)),
            )
            root = root.with_grants((*root.grants, old))
        before = {k for k in root.compartment_keys() if old.covers(*k)}
        new = replace(
            old,
            clients=tuple(sorted(set(old.clients) | set(ids))),
            all_clients=old.all_clients or all_clients,
            psychotherapy=old.psychotherapy or psychotherapy,
            until=until_iso or old.until,
            label=label or old.label,
        )
        root = root.with_grants(tuple(new if g is old else g for g in root.grants))
        for cid, name in list(root.compartment_keys()):
            if new.covers(cid, name) and (cid, name) not in before:
                root = rotation.rewrap_key(s, txn, root, cid, name)
        s.note_audit("grant", None, None, grant=new.id, label=new.label)
        root = s.write_root(txn, root)
        return _grant_info(new, root)


def grants(s: Session) -> list[GrantInfo]:
    """Every grant: who, to what, since when, until when."""
    with s.reading() as current:
        root = s.root_record(current)
        return [_grant_info(g, root) for g in root.grants]


def _find_grant(s: Session, root: RootRecord, who: str) -> Grant:
    matches = [g for g in root.grants if who in (g.recipient, g.label, g.id)]
    if len(matches) > 1:
        raise AmbiguousNameError(f"{len(matches)} grants match; give the age1… key")
    if not matches:
        raise NotFoundError("no grant for that key or label")
    return matches[0]


def revoke(
    s: Session,
    who: str,
    *,
    clients: list[str] | None = None,
    progress: Progress | None = None,
) -> RevokeReport:
    """Remove a grant (or some of its clients) and rotate every affected key.

    Rerunning it after an interruption finishes the rotations the first
    run recorded, even though the grant itself is already gone.
    """
    with s.reading() as current:
        root = s.root_record(current)
        unfinished = bool(root.pending_rotation)
        known = any(who in (g.recipient, g.label, g.id) for g in root.grants)
    if unfinished and not known:
        finished = rotation.finish_pending(s, progress)
        return RevokeReport(
            recipient=who,
            label=who,
            grant_removed=True,
            exposure=(),
            rotated=tuple(finished.rotated),
            failed=finished.failed,
        )
    with s.writing() as txn:
        root = s.root_record(txn.current)
        grant = _find_grant(s, root, who)
        covered = [k for k in root.compartment_keys() if grant.covers(*k)]
        if clients:
            ids = {compartments.resolve_client(s, root, c) for c in clients}
            affected = [(cid, n) for cid, n in covered if cid in ids]
            if grant.all_clients:
                kept = tuple(sorted(set(root.clients) - ids))
                narrowed = replace(grant, all_clients=False, clients=kept)
            else:
                kept = tuple(sorted(set(grant.clients) - ids))
                narrowed = replace(grant, clients=kept)
            removed = not narrowed.clients and not narrowed.all_clients
        else:
            affected, removed, narrowed = covered, True, grant
        if removed:
            root = root.with_grants(tuple(g for g in root.grants if g is not grant))
        else:
            root = root.with_grants(
                tuple(narrowed if g is grant else g for g in root.grants)
            )
        exposure = _exposure(s, root, affected, grant)
        root = root.with_pending(root.pending_with(affected))
        s.note_audit(
            "revoke",
            None,
            None,
            grant=grant.id,
            label=grant.label,
            clients=sorted({c for c, _ in affected}),
        )
        s.write_root(txn, root)
    finished = rotation.finish_pending(s, progress)
    return RevokeReport(
        recipient=grant.recipient,
        label=grant.label,
        grant_removed=removed,
        exposure=tuple(exposure),
        rotated=tuple(finished.rotated),
        failed=finished.failed,
    )


def _exposure(
    s: Session,
    root: RootRecord,
    affected: list[tuple[str, str]],
    grant: Grant,
) -> list[ClientExposure]:
    out = []
    for cid in sorted({cid for cid, _ in affected}):
        names = [n for c, n in affected if c == cid]
        dates: list[str] = []
        for name in names:
            comp = compartments.open_compartment(s, root, cid, name)
            dates += [e.date for e in comp.notes] if comp else []
        out.append(
            ClientExposure(
                client=cid,
                client_name=root.clients[cid].name,
                compartments=tuple(names),
                notes=len(dates),
                first_note=min(dates) if dates else None,
                last_note=max(dates) if dates else None,
                since=grant.since,
                until=s.now(),
            )
        )
    return out
