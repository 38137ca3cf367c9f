"""Records requests: open one (the clock starts), list them, close one (by
hand, or by the export that fulfils it); and the lines of ``status`` about
the record's lifetime (requests, and the clients due under retention)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from confvault.errors import (
    AmbiguousNameError,
    RequestNotFoundError,
    UnsafeInputError,
    VaultError,
)
from confvault.vault.model import names
from confvault.vault.model import requests as model
from confvault.vault.model import retention as rules
from confvault.vault.model.requests import RecordsRequest, RequestInfo
from confvault.vault.model.retention import RetentionItem
from confvault.vault.ops import compartments, retention
from confvault.vault.session import trail
from confvault.vault.store.documents import JSONObject

if TYPE_CHECKING:
    from confvault.vault.model.root import RootRecord
    from confvault.vault.session.core import Session


def check_days(days: int) -> int:
    if not 1 <= days <= model.MAX_DAYS:
        raise UnsafeInputError(f"--due-days must be between 1 and {model.MAX_DAYS}")
    return days


def _info(root: RootRecord, req: RecordsRequest, today: dt.date) -> RequestInfo:
    client = root.clients.get(req.client)
    return RequestInfo.of(req, client.name if client else None, today)


def open_request(
    s: Session,
    client: str,
    received: str,
    *,
    by: str | None = None,
    due_days: int | None = None,
    tz: dt.tzinfo | None = None,
) -> RequestInfo:
    """Record a records request received on ``received`` (a local calendar
    day); it is due ``due_days`` later (default: the vault's setting, 30)."""
    day = rules.parse_day(received, tz)
    today = rules.local_day(s.clock(), tz)
    if day > today:
        raise UnsafeInputError(f"--received {day} is after today ({today})")
    by = names.reason(by, "requester") if by is not None else None
    if due_days is not None:
        check_days(due_days)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        cid = compartments.resolve_client(s, root, client)
        default = root.settings.request_days if root.settings else None
        days = due_days or default or model.DEFAULT_DAYS
        known = {r.id for r in root.requests or ()}
        rid = secrets.token_hex(model.ID_BYTES)
        while rid in known:
            rid = secrets.token_hex(model.ID_BYTES)
        due = (day + dt.timedelta(days=days)).isoformat()
        req = RecordsRequest(rid, cid, day.isoformat(), due, s.now(), by)
        s.note_audit(
            "request-open", cid, None, request=rid, received=req.received, due=due
        )
        root = replace(root, requests=(*(root.requests or ()), req))
        root = s.write_root(txn, root, changed=())
        return _info(root, req, today)


def set_default_days(s: Session, days: int) -> int:
    """The number of days a new request is due in, unless told otherwise."""
    check_days(days)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        if root.settings is None:
            raise VaultError("a grantee's view has no settings")
        s.note_audit("request-default", None, None, days=days)
        settings = replace(root.settings, request_days=days)
        s.write_root(txn, replace(root, settings=settings), changed=())
        return days


def requests(
    s: Session, *, closed: bool = False, tz: dt.tzinfo | None = None
) -> list[RequestInfo]:
    """Open requests (with ``closed``, every one), by due date."""
    today = rules.local_day(s.clock(), tz)
    with s.reading() as current:
        root = s.root_record(current)
        found = [
            _info(root, r, today)
            for r in root.requests or ()
            if closed or r.closed is None
        ]
    trail.audit_read(s, "request-list", None, requests=len(found))
    return sorted(found, key=lambda i: (i.closed is not None, i.due, i.id))


def find(root: RootRecord, ref: str, client: str | None = None) -> RecordsRequest:
    """The open request whose ID begins with ``ref`` (of ``client``, if given)."""
    ref = ref.strip().lower()
    if not ref or not all(c in "0123456789abcdef" for c in ref):
        raise RequestNotFoundError("a request ID is hexadecimal (`request list`)")
    found = [r for r in root.requests or () if r.id.startswith(ref)]
    if not found:
        raise RequestNotFoundError("no records request with that ID")
    if len(found) > 1:
        raise AmbiguousNameError("several requests begin with that ID; give more of it")
    (req,) = found
    if req.closed is not None:
        raise VaultError(f"records request {req.id} is closed already ({req.closed})")
    if client is not None and req.client != client:
        raise VaultError(f"records request {req.id} is about another client")
    return req


def check_open(s: Session, ref: str, client: str) -> str:
    """The ID of the open request ``ref`` of ``client`` (checked before an
    export that is to close it, so that a wrong ID exports nothing)."""
    with s.reading() as current:
        root = s.root_record(current)
        cid = compartments.resolve_client(s, root, client)
        return find(root, ref, cid).id


def close_request(
    s: Session,
    ref: str,
    outcome: str,
    *,
    export: str | None = None,
    tz: dt.tzinfo | None = None,
) -> RequestInfo:
    """Record the outcome of an open request, which closes it."""
    outcome = names.reason(outcome, "outcome")
    today = rules.local_day(s.clock(), tz)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        req = find(root, ref)
        done = req.closing(s.now(), outcome, export)
        details: JSONObject = {"request": req.id, "overdue": req.overdue(today)}
        if export is not None:
            details["export"] = export
        s.note_audit("request-close", req.client, None, **details)
        kept = tuple(done if r.id == req.id else r for r in root.requests or ())
        root = s.write_root(txn, replace(root, requests=kept), changed=())
        return _info(root, done, today)


@dataclass(frozen=True)
class RecordsStatus:
    """``status``'s lines on the record's lifetime."""

    retention_due: tuple[RetentionItem, ...]  # due today or before
    held: int
    requests_open: int
    requests_overdue: tuple[RequestInfo, ...]

    def to_json(self) -> JSONObject:
        return {
            "retention_due": [i.to_json() for i in self.retention_due],
            "held": self.held,
            "requests_open": self.requests_open,
            "requests_overdue": [r.to_json() for r in self.requests_overdue],
        }


def records_status(s: Session, *, tz: dt.tzinfo | None = None) -> RecordsStatus:
    today = rules.local_day(s.clock(), tz)
    with s.reading() as current:
        root = s.root_record(current)
        due = retention.due_report(s, root, today, dt.timedelta(0))
        open_ = [_info(root, r, today) for r in root.requests or () if not r.closed]
    return RecordsStatus(
        retention_due=due.items,
        held=due.held,
        requests_open=len(open_),
        requests_overdue=tuple(r for r in open_ if r.status == "overdue"),
    )
