"""Retention and legal hold: the vault's rule and clients' overrides, the
clients due, ``retention apply`` (the client shred of ``ops.export``), and
``client hold`` / ``client release``. The rule itself: ``model/retention``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from confvault.errors import ConfvaultError, VaultError
from confvault.vault.model import names
from confvault.vault.model import retention as rules
from confvault.vault.model.note_format import RECORDS
from confvault.vault.model.results import ClientInfo, ShredResult
from confvault.vault.model.retention import (
    Hold,
    RetentionItem,
    RetentionReport,
    RetentionRule,
)
from confvault.vault.ops import compartments, export
from confvault.vault.session import trail
from confvault.vault.store.documents import JSONObject

if TYPE_CHECKING:
    from confvault.vault.model.root import RootRecord
    from confvault.vault.session.core import Session


def set_rule(
    s: Session, rule: RetentionRule | None, client: str | None = None
) -> RetentionRule | None:
    """Set (``None``: clear) the vault's rule, or one client's override;
    return the rule that now applies (to that client, or to the vault)."""
    with s.writing() as txn:
        root = s.root_record(txn.current)
        doc = rule.to_doc() if rule else None
        if client is None:
            if root.settings is None:
                raise VaultError("a grantee's view has no settings")
            settings = replace(root.settings, retention=rule)
            s.note_audit("retention-set", None, None, rule=doc)
            s.write_root(txn, replace(root, settings=settings), changed=())
            return rule
        cid = compartments.resolve_client(s, root, client)
        s.note_audit("retention-set", cid, None, rule=doc)
        record = replace(root.clients[cid], retention=rule)
        s.write_root(txn, root.with_client(cid, record), [cid])
        return rule or (root.settings.retention if root.settings else None)


def hold(s: Session, client: str, reason: str) -> ClientInfo:
    """Place a legal hold (a held client is never due and never shredded);
    on a held client, the reason is replaced and the date kept."""
    reason = names.reason(reason)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        cid = compartments.resolve_client(s, root, client)
        record = root.clients[cid]
        since = record.hold.since if record.hold else s.now()
        s.note_audit("client-hold", cid, None, reason=reason)
        root = root.with_client(cid, replace(record, hold=Hold(reason, since)))
        root = s.write_root(txn, root, [cid])
        return compartments.client_info(s, root, cid)


def release(s: Session, client: str) -> ClientInfo:
    """Lift a legal hold: the retention clock starts again from now (a
    client's period counts from the later of the last contact and the latest
    release, so no record falls due on the day its hold ends)."""
    with s.writing() as txn:
        root = s.root_record(txn.current)
        cid = compartments.resolve_client(s, root, client)
        record = root.clients[cid]
        if record.hold is None:
            raise VaultError(f"client {cid[:8]} is not under a legal hold")
        s.note_audit("client-release", cid, None, since=record.hold.since)
        released = replace(record, hold=None, released=s.now())
        root = s.write_root(txn, root.with_client(cid, released), [cid])
        return compartments.client_info(s, root, cid)


def client_due(
    s: Session, root: RootRecord, cid: str, today: dt.date, until: dt.date
) -> RetentionItem | None:
    """When client ``cid``'s record is due, if by ``until``; None when held,
    without a rule, or due later."""
    record = root.clients[cid]
    vault_rule = root.settings.retention if root.settings else None
    rule = record.retention or vault_rule
    if record.hold is not None or rule is None:
        return None
    last = record.last_note or _newest_note(s, root, cid) or record.created
    last_day = rules.stored_day(last)
    start = max(last_day, rules.stored_day(record.released or last))
    if rules.add_years(start, rule.years) > until:
        return None  # the minor rule can only make it later: no profile opened
    born = None
    if rule.minor_years is not None:
        comp = compartments.open_compartment(s, root, cid, RECORDS)
        profile = comp.index.profile if comp else None
        born = dt.date.fromisoformat(profile.born) if profile and profile.born else None
    due, which = rule.due(start, rules.stored_day(record.created), born)
    return RetentionItem(
        client=cid,
        client_name=record.name,
        last_contact=last_day.isoformat(),
        due=due.isoformat(),
        rule=which,
        policy=rule.describe()
        + (f"; clock restarted at the release on {start}" if start > last_day else ""),
        source="client" if record.retention else "vault",
        overdue_days=(today - due).days,
    )


def _newest_note(s: Session, root: RootRecord, cid: str) -> str | None:
    """The newest note's date, for a client whose root entry predates it."""
    dates: list[str] = []
    for name, entry in root.clients[cid].compartments.items():
        if entry.notes:
            comp = compartments.open_compartment(s, root, cid, name)
            dates += [e.date for e in comp.notes] if comp else []
    return max(dates) if dates else None


def due_report(
    s: Session, root: RootRecord, today: dt.date, within: dt.timedelta
) -> RetentionReport:
    until = rules.later(today, within)
    items = []
    for cid in root.clients:
        item = client_due(s, root, cid, today, until)
        if item is not None and dt.date.fromisoformat(item.due) <= until:
            items.append(item)
    items.sort(key=lambda i: (i.due, i.client_name.casefold()))
    return RetentionReport(
        today=today.isoformat(),
        until=until.isoformat(),
        policy=root.settings.retention if root.settings else None,
        items=tuple(items),
        held=sum(c.hold is not None for c in root.clients.values()),
    )


def report(
    s: Session, *, within: dt.timedelta, tz: dt.tzinfo | None = None
) -> RetentionReport:
    """The clients whose records are due, or due within ``within``."""
    today = rules.local_day(s.clock(), tz)
    with s.reading() as current:
        result = due_report(s, s.root_record(current), today, within)
    trail.audit_read(s, "retention-list", None, clients=len(result.items))
    return result


@dataclass(frozen=True)
class RetentionApplied:
    """``retention apply``: what was shredded, skipped (held, no longer due
    when its turn came, or with an open records request) and failed (each
    with the error's message)."""

    today: str
    shredded: tuple[ShredResult, ...]
    skipped: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]

    @property
    def outcome(self) -> str:  # done | nothing-to-do | partly-done | failed
        if self.failed:
            return "partly-done" if self.shredded else "failed"
        return "done" if self.shredded else "nothing-to-do"

    def to_json(self) -> JSONObject:
        return {
            "outcome": self.outcome,
            "today": self.today,
            "shredded": [r.to_json() for r in self.shredded],
            "skipped": list(self.skipped),
            "failed": [{"client": c, "error": e} for c, e in self.failed],
            "limits": export.SHRED_LIMITS,
        }


def apply(
    s: Session, *, only: Collection[str] | None = None, tz: dt.tzinfo | None = None
) -> RetentionApplied:
    """Shred every client due today (of ``only``, when given: the clients
    the user confirmed), each in its own commit, each checked again under
    the write lock: a client held or no longer due by then, or with an open
    records request, is skipped."""
    today = rules.local_day(s.clock(), tz)
    with s.reading() as current:
        due = due_report(s, s.root_record(current), today, dt.timedelta(0))
    shredded, skipped, failed = [], [], []
    for item in due.due_now:
        cid = item.client
        if only is not None and cid not in only:
            continue
        try:
            with s.writing() as txn:
                root = s.root_record(txn.current)
                gone = cid not in root.clients
                now = None if gone else client_due(s, root, cid, today, today)
                open_requests = (r for r in root.requests or () if r.closed is None)
                asked = any(r.client == cid for r in open_requests)
                if now is None or asked:
                    skipped.append(cid)
                    continue
                details = {"retention": now.rule, "due": now.due}
                shredded.append(export.shred_in(s, txn, root, cid, **details))
        except ConfvaultError as err:
            failed.append((cid, str(err) or type(err).__name__))
    return RetentionApplied(
        today.isoformat(), tuple(shredded), tuple(skipped), tuple(failed)
    )
