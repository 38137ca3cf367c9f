"""Grants: who may read which client, giving and revoking access."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from confvault import age
from confvault.errors import (
    AmbiguousNameError,
    KeyFormatError,
    NotFoundError,
    UnsafeInputError,
)
from confvault.vault.model.clock import parse_date
from confvault.vault.model.grant import grant_covers
from confvault.vault.model.note_format import RECORDS
from confvault.vault.model.results import (
    ClientExposure,
    GrantInfo,
    Progress,
    RevokeReport,
)
from confvault.vault.ops import (
    compartments,
    rotation,
)

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


def _grant_info(grant: dict[str, Any], root: dict[str, Any]) -> GrantInfo:
    covered = sorted(
        root["clients"][cid]["name"]
        for cid in root["clients"]
        if grant_covers(grant, cid, RECORDS)
    )
    return GrantInfo(
        id=grant["id"],
        recipient=grant["recipient"],
        label=grant["label"],
        all_clients=bool(grant.get("all")),
        clients=tuple(covered),
        psychotherapy=bool(grant.get("psychotherapy")),
        since=grant["since"],
        until=grant.get("until"),
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
    """Give ``recipient`` (an age1… key) read access; re-wraps client keys only."""
    key = age.parse_recipient(recipient)
    if not isinstance(key, age.X25519Recipient):
        raise KeyFormatError(
            "grants take X25519 recipients (age1...) for now; post-quantum "
            "grants (age1pq1...) come with the post-quantum vault"
        )
    if not all_clients and not clients:
        raise UnsafeInputError("name the clients to grant (--client), or --all")
    until_iso = parse_date(until) if until else None
    if until_iso and len(until or "") <= 10:
        until_iso = until_iso[:10] + "T23:59:59Z"
    with s.writing() as txn:
        root = s.root_doc(txn.current)
        if str(key) == str(s.require_owner().recipient):
            raise UnsafeInputError("that is the owner's own key; it already has access")
        ids = [compartments.resolve_client(s, root, c) for c in clients or []]
        grants = root.setdefault("grants", [])
        grant = next((g for g in grants if g["recipient"] == str(key)), None)
        if grant is None:
            grant = {
                "id": secrets.token_hex(8),
                "recipient": str(key),
                "label": label or str(key)[:16],
                "clients": [],
                "all": False,
                "psychotherapy": False,
                "since": s.now(),
                "until": until_iso,
            }
            grants.append(grant)
        before = {
            (cid, n)
            for cid in root["clients"]
            for n in root["clients"][cid]["compartments"]
            if grant_covers(grant, cid, n)
        }
        grant["clients"] = sorted(set(grant["clients"]) | set(ids))
        grant["all"] = grant["all"] or all_clients
        grant["psychotherapy"] = grant["psychotherapy"] or psychotherapy
        grant["until"] = until_iso or grant.get("until")
        if label:
            grant["label"] = label
        for cid, client in root["clients"].items():
            for name in client["compartments"]:
                if grant_covers(grant, cid, name) and (cid, name) not in before:
                    rotation.rewrap_key(s, txn, root, cid, name)
        s.note_audit("grant", None, None, grant=grant["id"], label=grant["label"])
        s.write_root(txn, root)
        return _grant_info(grant, root)


def grants(s: Session) -> list[GrantInfo]:
    """Every grant: who, to what, since when, until when."""
    with s.reading() as current:
        root = s.root_doc(current)
        return [_grant_info(g, root) for g in root.get("grants", [])]


def _find_grant(s: Session, root: dict[str, Any], who: str) -> dict[str, Any]:
    matches = [
        g
        for g in root.get("grants", [])
        if who in (g["recipient"], g["label"], g["id"])
    ]
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
        root = s.root_doc(current)
        unfinished = bool(root.get("pending_rotation"))
        known = any(
            who in (g["recipient"], g["label"], g["id"]) for g in root.get("grants", [])
        )
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
        root = s.root_doc(txn.current)
        grant = _find_grant(s, root, who)
        covered = [
            (cid, n)
            for cid in root["clients"]
            for n in root["clients"][cid]["compartments"]
            if grant_covers(grant, cid, n)
        ]
        if clients:
            ids = {compartments.resolve_client(s, root, c) for c in clients}
            affected = [(cid, n) for cid, n in covered if cid in ids]
            if grant.get("all"):
                grant["all"] = False
                grant["clients"] = sorted(set(root["clients"]) - ids)
            else:
                grant["clients"] = sorted(set(grant["clients"]) - ids)
            removed = not grant["clients"] and not grant.get("all")
        else:
            affected, removed = covered, True
        if removed:
            root["grants"] = [g for g in root["grants"] if g is not grant]
        exposure = _exposure(s, root, affected, grant)
        pending = root.setdefault("pending_rotation", [])
        pending.extend([list(p) for p in affected if list(p) not in pending])
        s.note_audit(
            "revoke",
            None,
            None,
            grant=grant["id"],
            label=grant["label"],
            clients=sorted({c for c, _ in affected}),
        )
        s.write_root(txn, root)
    finished = rotation.finish_pending(s, progress)
    return RevokeReport(
        recipient=grant["recipient"],
        label=grant["label"],
        grant_removed=removed,
        exposure=tuple(exposure),
        rotated=tuple(finished.rotated),
        failed=finished.failed,
    )


def _exposure(
    s: Session,
    root: dict[str, Any],
    affected: list[tuple[str, str]],
    grant: dict[str, Any],
) -> list[ClientExposure]:
    out = []
    for cid in sorted({cid for cid, _ in affected}):
        names = [n for c, n in affected if c == cid]
        dates: list[str] = []
        for name in names:
            comp = compartments.open_compartment(s, root, cid, name)
            dates += [e["date"] for e in comp.notes] if comp else []
        out.append(
            ClientExposure(
                client=cid,
                client_name=root["clients"][cid]["name"],
                compartments=tuple(names),
                notes=len(dates),
                first_note=min(dates) if dates else None,
                last_note=max(dates) if dates else None,
                since=grant["since"],
                until=s.now(),
            )
        )
    return out
