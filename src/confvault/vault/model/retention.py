"""Retention rules and legal holds: values, and the one calculation of a
record's due date (docs/FORMAT.md, "Retention").

The rule, precisely:

- adult rule: the record is due ``years`` after the client's last contact;
- minor rule (only when the rule has ``minor_years`` and the client's date
  of birth is recorded, and the client was under ``majority`` on the date
  their record was opened or on their last contact): due ``minor_years``
  after the client's ``majority``-th birthday;
- when both apply, the later date wins; a held client is never due.

Anniversaries of February 29 fall on March 1 in a year without one (the
later of the two candidate days: a record is kept a day longer rather than
shredded a day early); the same for an 18th birthday on a February 29.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from confvault.errors import UnsafeInputError
from confvault.vault.model import _doc
from confvault.vault.store.documents import JSONObject, JSONValue

DEFAULT_MAJORITY = 18
MAX_YEARS = 150
ADULT = "adult"  # the rule that set a due date
MINOR = "minor"

_RULE_KEYS = frozenset(("years",))
_RULE_OPTIONAL = frozenset(("minor_years", "majority"))
_HOLD_KEYS = frozenset(("reason", "since"))


def add_years(day: dt.date, years: int) -> dt.date:
    """``day`` plus whole calendar years; February 29 becomes March 1 (and
    a date past the calendar's end, the last day it has)."""
    if day.year + years > dt.MAXYEAR:
        return dt.date.max
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # February 29 in a year without one
        return dt.date(day.year + years, 3, 1)


def check_years(value: int, what: str) -> int:
    if not 0 <= value <= MAX_YEARS:
        raise UnsafeInputError(f"{what} must be between 0 and {MAX_YEARS}")
    return value


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """How long records are kept: the vault's, or one client's override."""

    years: int  # after the last contact
    minor_years: int | None = None  # after the age of majority, for minors
    majority: int | None = None  # None: DEFAULT_MAJORITY

    @property
    def majority_age(self) -> int:
        return DEFAULT_MAJORITY if self.majority is None else self.majority

    @classmethod
    def checked(
        cls, years: int, minor_years: int | None = None, majority: int | None = None
    ) -> RetentionRule:
        """A rule from user input; ``UnsafeInputError`` when out of bounds."""
        check_years(years, "--years")
        if minor_years is not None:
            check_years(minor_years, "--minor-years")
        if majority is not None and not 1 <= majority <= 30:
            raise UnsafeInputError("--majority must be between 1 and 30")
        return cls(years, minor_years, majority)

    @classmethod
    def from_doc(cls, value: JSONValue, what: str) -> RetentionRule:
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, _RULE_KEYS, what, _RULE_OPTIONAL)
        return cls(
            years=_doc.number(doc, "years", what),
            minor_years=_doc.optional_number(doc, "minor_years", what),
            majority=_doc.optional_number(doc, "majority", what),
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {"years": self.years}
        if self.minor_years is not None:
            doc["minor_years"] = self.minor_years
        if self.majority is not None:
            doc["majority"] = self.majority
        return doc

    def describe(self) -> str:
        text = f"{self.years} years after last contact"
        if self.minor_years is not None:
            text += (
                f"; minors: {self.minor_years} years after age {self.majority_age}"
                ", whichever is later"
            )
        return text

    def due(
        self, last_contact: dt.date, opened: dt.date, born: dt.date | None
    ) -> tuple[dt.date, str]:
        """The date the record is due, and the rule that set it."""
        due, rule = add_years(last_contact, self.years), ADULT
        if self.minor_years is not None and born is not None:
            majority = add_years(born, self.majority_age)
            if majority > min(opened, last_contact):  # a minor when treated
                minor_due = add_years(majority, self.minor_years)
                if minor_due > due:
                    due, rule = minor_due, MINOR
        return due, rule


@dataclass(frozen=True, slots=True)
class Hold:
    """A legal hold on a client's records: never due, never shredded."""

    reason: str
    since: str  # when it was placed (the vault's time format)

    @classmethod
    def from_doc(cls, value: JSONValue, what: str) -> Hold:
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, _HOLD_KEYS, what)
        return cls(_doc.text(doc, "reason", what), _doc.text(doc, "since", what))

    def to_doc(self) -> JSONObject:
        return {"reason": self.reason, "since": self.since}


def optional_rule(doc: JSONObject, key: str, what: str) -> RetentionRule | None:
    value = doc.get(key)
    return None if value is None else RetentionRule.from_doc(value, f"{key} of {what}")


def optional_hold(doc: JSONObject, key: str, what: str) -> Hold | None:
    value = doc.get(key)
    return None if value is None else Hold.from_doc(value, f"{key} of {what}")


def parse_day(text: str, tz: dt.tzinfo | None = None) -> dt.date:
    """A user's DATE: ``YYYY-MM-DD`` as that calendar day, or an ISO 8601
    timestamp as the day it falls on in ``tz`` (None: the local time zone;
    a timestamp without an offset is taken as local time)."""
    value = text.strip()
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        moment = dt.datetime.fromisoformat(value)
    except ValueError as err:
        raise UnsafeInputError(
            f"{value[:40]!r} is not a date (use YYYY-MM-DD or an ISO 8601 time)"
        ) from err
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(tz).date() if tz else moment.astimezone().date()


def later(day: dt.date, span: dt.timedelta) -> dt.date:
    """``day + span``, or the calendar's last day when that is past it."""
    return day + min(span, dt.date.max - day)


def local_day(moment: dt.datetime, tz: dt.tzinfo | None = None) -> dt.date:
    """The calendar day ``moment`` falls on in ``tz`` (None: local time zone)."""
    return moment.astimezone(tz).date() if tz else moment.astimezone().date()


def stored_day(timestamp: str) -> dt.date:
    """The calendar day of a time the vault stored (its UTC date)."""
    return dt.date.fromisoformat(timestamp[:10])


@dataclass(frozen=True)
class RetentionItem:
    """One client in ``retention`` (and ``status``): when their record is due."""

    client: str
    client_name: str
    last_contact: str  # YYYY-MM-DD
    due: str  # YYYY-MM-DD
    rule: str  # ADULT or MINOR
    policy: str  # the rule's words
    source: str  # "vault" or "client" (an override)
    overdue_days: int  # days since due (negative: days until due)

    def to_json(self) -> JSONObject:
        return {
            "client": self.client,
            "client_name": self.client_name,
            "last_contact": self.last_contact,
            "due": self.due,
            "rule": self.rule,
            "policy": self.policy,
            "source": self.source,
            "overdue_days": self.overdue_days,
        }


@dataclass(frozen=True)
class RetentionReport:
    """``retention``: the clients due by ``until`` (held clients never are)."""

    today: str
    until: str
    policy: RetentionRule | None
    items: tuple[RetentionItem, ...]
    held: int  # clients under a legal hold

    @property
    def due_now(self) -> tuple[RetentionItem, ...]:
        return tuple(i for i in self.items if i.overdue_days >= 0)

    def to_json(self) -> JSONObject:
        return {
            "today": self.today,
            "until": self.until,
            "policy": self.policy.to_doc() if self.policy else None,
            "due": [i.to_json() for i in self.items],
            "held": self.held,
        }
