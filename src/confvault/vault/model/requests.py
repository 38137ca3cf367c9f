"""Records requests: a client's request for a copy of their record, with its
clock (kept in the root index, sealed to the owner: docs/FORMAT.md).

The clock counts calendar days in the practitioner's local time zone: the
day received is day 0, and the request is due at the end of the day
``days`` later; it is overdue from the next day on. Both days are fixed
when the request is opened, so a later change of time zone moves nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from confvault.vault.model import _doc
from confvault.vault.store.documents import JSONObject, JSONValue

DEFAULT_DAYS = 30
MAX_DAYS = 366
ID_BYTES = 4  # 8 hex characters

_KEYS = frozenset(("id", "client", "received", "due", "opened"))
_OPTIONAL = frozenset(("by", "closed", "outcome", "export"))


@dataclass(frozen=True, slots=True)
class RecordsRequest:
    id: str
    client: str  # the client's ID
    received: str  # YYYY-MM-DD, local calendar day
    due: str  # YYYY-MM-DD
    opened: str  # when recorded (the vault's time format)
    by: str | None = None  # who asked (the client, a lawyer, ...)
    closed: str | None = None
    outcome: str | None = None
    export: str | None = None  # the closing export's summary

    @classmethod
    def from_doc(cls, value: JSONValue, what: str) -> RecordsRequest:
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, _KEYS, what, _OPTIONAL)
        return cls(
            id=_doc.text(doc, "id", what),
            client=_doc.text(doc, "client", what),
            received=_doc.text(doc, "received", what),
            due=_doc.text(doc, "due", what),
            opened=_doc.text(doc, "opened", what),
            by=_doc.optional_text(doc, "by", what),
            closed=_doc.optional_text(doc, "closed", what),
            outcome=_doc.optional_text(doc, "outcome", what),
            export=_doc.optional_text(doc, "export", what),
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {
            "id": self.id,
            "client": self.client,
            "received": self.received,
            "due": self.due,
            "opened": self.opened,
        }
        for key in ("by", "closed", "outcome", "export"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        return doc

    def closing(
        self, when: str, outcome: str, export: str | None = None
    ) -> RecordsRequest:
        return replace(self, closed=when, outcome=outcome, export=export)

    def overdue(self, today: dt.date) -> bool:
        return self.closed is None and today > dt.date.fromisoformat(self.due)


def from_list(value: JSONValue, what: str) -> tuple[RecordsRequest, ...] | None:
    if value is None:
        return None
    if type(value) is not list:
        raise _doc.malformed(what, "'requests' is not a list")
    return tuple(
        RecordsRequest.from_doc(r, f"records request of the {what}") for r in value
    )


@dataclass(frozen=True)
class RequestInfo:
    """A records request as ``request list`` shows it."""

    id: str
    client: str
    client_name: str | None  # None once the client is shredded
    received: str
    due: str
    by: str | None
    status: str  # open | overdue | closed
    days_left: int  # until due (negative: overdue by)
    closed: str | None = None
    outcome: str | None = None
    export: str | None = None

    def to_json(self) -> JSONObject:
        return {
            "id": self.id,
            "client": self.client,
            "client_name": self.client_name,
            "received": self.received,
            "due": self.due,
            "by": self.by,
            "status": self.status,
            "days_left": self.days_left,
            "closed": self.closed,
            "outcome": self.outcome,
            "export": self.export,
        }

    @classmethod
    def of(cls, req: RecordsRequest, name: str | None, today: dt.date) -> RequestInfo:
        days_left = (dt.date.fromisoformat(req.due) - today).days
        status = "closed" if req.closed else "overdue" if days_left < 0 else "open"
        return cls(
            id=req.id,
            client=req.client,
            client_name=name,
            received=req.received,
            due=req.due,
            by=req.by,
            status=status,
            days_left=days_left,
            closed=req.closed,
            outcome=req.outcome,
            export=req.export,
        )
