"""Reading and checking the audit trail: ``audit`` (filtered entries) and ``verify_audit``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from confvault.errors import AgeError, ConfvaultError, DeviceNotFoundError
from confvault.vault.model.audit import chain_findings, inbox_findings
from confvault.vault.model.clock import parse_date
from confvault.vault.model.results import AuditEntry, Finding
from confvault.vault.ops import compartments
from confvault.vault.session import trail

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


def audit(
    s: Session,
    *,
    client: str | None = None,
    since: str | None = None,
    action: str | None = None,
    device: str | None = None,
) -> list[AuditEntry]:
    """The audit trail, oldest first, filtered (``device``: its name or ID;
    ``DeviceNotFoundError`` when no entry names it and it is not this one)."""

    with s.reading() as current:
        root = s.root_record(current)
        client_id = compartments.resolve_client(s, root, client) if client else None
        names = {cid: c.name for cid, c in root.clients.items()}
    lower = parse_date(since) if since else None
    out = []
    known = False
    for _, segment in trail.segments(s):
        for e in segment.entries:
            if device is not None:
                if e.device is None or not e.device.matches(device):
                    continue
                known = True
            if client_id and e.client != client_id:
                continue
            if action and e.action != action:
                continue
            if lower and e.time < lower:
                continue
            out.append(
                AuditEntry(
                    seq=e.seq,
                    time=e.time,
                    actor=e.actor,
                    action=e.action,
                    client=e.client,
                    client_name=names.get(e.client or ""),
                    note=e.note,
                    signed=e.signed,
                    details=dict(e.details),
                    device=None if e.device is None else e.device.to_doc(),
                )
            )
    if device is not None and not known:
        this = trail.this_device(s, current.body.vault_id)
        if this is None or not this.matches(device):
            raise DeviceNotFoundError(
                f"no audit entry was written by a device named {device!r} "
                "(a device's name or ID, as `confvault status` shows it)"
            )
    trail.audit_read(s, "audit-show", client_id)
    return out


def verify_audit(s: Session) -> list[Finding]:
    """Walk the whole chain: sequence, hashes and segment links."""
    try:
        segments = trail.segments(s)
    except (ConfvaultError, AgeError) as err:
        return [Finding("error", "audit-segment", "audit", str(err))]
    findings = chain_findings(segments, s.vault_id)
    findings += inbox_findings(trail.inbox_names(s))
    return findings
