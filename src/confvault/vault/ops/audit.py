"""Reading and checking the audit trail: ``audit`` (filtered entries) and ``verify_audit``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from confvault.errors import AgeError, ConfvaultError
from confvault.vault.model.clock import parse_date
from confvault.vault.model.results import AuditEntry, Finding
from confvault.vault.ops import (
    compartments,
)
from confvault.vault.session import trail

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


def audit(
    s: Session,
    *,
    client: str | None = None,
    since: str | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """The audit trail, oldest first, filtered."""

    with s.reading() as current:
        root = s.root_doc(current)
        client_id = compartments.resolve_client(s, root, client) if client else None
        names = {cid: c["name"] for cid, c in root["clients"].items()}
    lower = parse_date(since) if since else None
    out = []
    for _, segment in trail.segments(s):
        for e in segment["entries"]:
            if client_id and e.get("client") != client_id:
                continue
            if action and e["action"] != action:
                continue
            if lower and e["time"] < lower:
                continue
            out.append(
                AuditEntry(
                    seq=e["seq"],
                    time=e["time"],
                    actor=e["actor"],
                    action=e["action"],
                    client=e.get("client"),
                    client_name=names.get(e.get("client") or ""),
                    note=e.get("note"),
                    signed=bool(e.get("signed")),
                    details=dict(e.get("details") or {}),
                )
            )
    trail.audit_read(s, "audit-show", client_id)
    return out


def verify_audit(s: Session) -> list[Finding]:
    """Walk the whole chain: sequence, hashes and segment links."""
    findings: list[Finding] = []
    try:
        segments = trail.segments(s)
    except (ConfvaultError, AgeError) as err:
        return [Finding("error", "audit-segment", "audit", str(err))]
    last: dict[str, Any] | None = None
    for number, (digest, segment) in enumerate(segments):
        if segment.get("number") != number:
            findings.append(
                Finding(
                    "error",
                    "audit-sequence",
                    digest,
                    f"segment {segment.get('number')} where {number} was expected",
                )
            )
        if segment.get("vault") != s.manifest.body.vault_id:
            findings.append(
                Finding("error", "audit-foreign", digest, "segment of another vault")
            )
        for entry in segment["entries"]:
            expected_seq = last["seq"] + 1 if last else 0
            expected_prev = last["hash"] if last else trail.GENESIS
            if entry.get("seq") != expected_seq:
                findings.append(
                    Finding(
                        "error",
                        "audit-sequence",
                        str(entry.get("seq")),
                        f"entry {entry.get('seq')} where {expected_seq} was expected",
                    )
                )
            if entry.get("prev") != expected_prev:
                findings.append(
                    Finding(
                        "error",
                        "audit-chain",
                        str(entry.get("seq")),
                        "entry does not link to the one before it",
                    )
                )
            if entry.get("hash") != trail.entry_hash(entry):
                findings.append(
                    Finding(
                        "error",
                        "audit-altered",
                        str(entry.get("seq")),
                        "entry content does not match its hash",
                    )
                )
            last = entry
    inbox = trail.inbox_names(s)
    if inbox:
        findings.append(
            Finding(
                "warning",
                "audit-inbox",
                trail.INBOX_DIR,
                f"{len(inbox)} grantee entries wait to be added by the owner",
            )
        )
    return findings
