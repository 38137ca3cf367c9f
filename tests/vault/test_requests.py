"""Records requests and their clock through the library: calendar days in
the practitioner's time zone, across month ends, leap years and zones."""

from __future__ import annotations

import datetime as dt

import pytest

from confvault.errors import (
    ClientNotFoundError,
    RequestNotFoundError,
    UnsafeInputError,
    VaultError,
)
from confvault.vault import Vault

from .conftest import Clock

UTC = dt.UTC
TOKYO = dt.timezone(dt.timedelta(hours=9), "JST")
HONOLULU = dt.timezone(dt.timedelta(hours=-10), "HST")


def _generation(vault: Vault) -> int:
    return vault.status().generation


@pytest.fixture
def ann(vault: Vault) -> str:
    return vault.add_client("Ann Example").id


@pytest.mark.parametrize(
    ("received", "days", "due"),
    [
        ("2026-01-31", 30, "2026-03-02"),  # over February (28 days)
        ("2028-01-31", 30, "2028-03-01"),  # leap year: February has 29
        ("2028-02-29", 30, "2028-03-30"),
        ("2026-12-15", 30, "2027-01-14"),  # over the year's end
        ("2026-02-28", 1, "2026-03-01"),
    ],
)
def test_due_date_counts_calendar_days(
    vault: Vault, clock: Clock, ann: str, received: str, days: int, due: str
) -> None:
    clock.now = dt.datetime(2029, 1, 1, tzinfo=UTC)
    info = vault.open_request(ann, received, due_days=days, tz=UTC)
    assert (info.received, info.due, info.client, info.status) == (
        received,
        due,
        ann,
        "overdue",
    )


def test_default_is_30_days_and_configurable(vault: Vault, ann: str) -> None:
    assert vault.open_request(ann, "2026-03-01", tz=UTC).due == "2026-03-31"
    assert vault.set_request_days(45) == 45
    assert vault.open_request(ann, "2026-03-01", tz=UTC).due == "2026-04-15"
    assert (
        vault.open_request(ann, "2026-03-01", due_days=10, tz=UTC).due == "2026-03-11"
    )


def test_a_timestamp_is_received_on_its_local_day(
    vault: Vault, clock: Clock, ann: str
) -> None:
    clock.now = dt.datetime(2026, 3, 10, tzinfo=UTC)
    stamp = "2026-01-31T20:30:00+00:00"  # Feb 1 in Tokyo, Jan 31 in Honolulu
    tokyo = vault.open_request(ann, stamp, tz=TOKYO)
    honolulu = vault.open_request(ann, stamp, tz=HONOLULU)
    assert (tokyo.received, tokyo.due) == ("2026-02-01", "2026-03-03")
    assert (honolulu.received, honolulu.due) == ("2026-01-31", "2026-03-02")


def test_overdue_from_the_day_after_due_in_the_local_zone(
    vault: Vault, clock: Clock, ann: str
) -> None:
    clock.now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    vault.open_request(ann, "2026-01-31", tz=UTC)  # due 2026-03-02
    # 2026-03-02 23:30 UTC: still the due day in Honolulu, the next day in Tokyo
    clock.now = dt.datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    (hon,) = vault.requests(tz=HONOLULU)
    (tok,) = vault.requests(tz=TOKYO)
    assert (hon.status, hon.days_left) == ("open", 0)
    assert (tok.status, tok.days_left) == ("overdue", -1)
    status = vault.records_status(tz=TOKYO)
    assert (status.requests_open, [r.id for r in status.requests_overdue]) == (
        1,
        [tok.id],
    )
    assert vault.records_status(tz=HONOLULU).requests_overdue == ()


def test_close_records_the_outcome_and_list_all_shows_it(
    vault: Vault, clock: Clock, ann: str
) -> None:
    opened = vault.open_request(ann, "2026-02-20", by="her lawyer", tz=UTC)
    clock.advance(days=1)
    closed = vault.close_request(opened.id[:4], "sent by post", tz=UTC)
    assert (closed.status, closed.outcome, closed.closed) == (
        "closed",
        "sent by post",
        "2026-03-03T09:00:00Z",
    )
    assert vault.requests(tz=UTC) == []
    (shown,) = vault.requests(closed=True, tz=UTC)
    assert (shown.id, shown.by, shown.status) == (opened.id, "her lawyer", "closed")
    trail = [
        (e.action, e.client, e.details)
        for e in vault.audit()
        if e.action.startswith("request-")
    ]
    assert trail == [
        (
            "request-open",
            ann,
            {"request": opened.id, "received": "2026-02-20", "due": "2026-03-22"},
        ),
        ("request-close", ann, {"request": opened.id, "overdue": False}),
        ("request-list", None, {"requests": 0}),
        ("request-list", None, {"requests": 1}),
    ]
    with pytest.raises(VaultError) as err:
        vault.close_request(opened.id, "again")
    assert (
        str(err.value)
        == f"records request {opened.id} is closed already (2026-03-03T09:00:00Z)"
    )


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda v: v.open_request("Ann", "2026-02-30"),
            UnsafeInputError,
            "'2026-02-30' is not a date (use YYYY-MM-DD or an ISO 8601 time)",
        ),
        (
            lambda v: v.open_request("Ann", "last tuesday"),
            UnsafeInputError,
            "'last tuesday' is not a date (use YYYY-MM-DD or an ISO 8601 time)",
        ),
        (
            lambda v: v.open_request("Ann", "2026-03-03", tz=UTC),
            UnsafeInputError,
            "--received 2026-03-03 is after today (2026-03-02)",
        ),
        (
            lambda v: v.open_request("Nobody", "2026-03-01"),
            ClientNotFoundError,
            "no client with that name or ID prefix",
        ),
        (
            lambda v: v.open_request("Ann", "2026-03-01", due_days=0),
            UnsafeInputError,
            "--due-days must be between 1 and 366",
        ),
        (
            lambda v: v.open_request("Ann", "2026-03-01", by="x\x07y"),
            UnsafeInputError,
            "the requester contains a control character",
        ),
        (
            lambda v: v.close_request("deadbeef", "done"),
            RequestNotFoundError,
            "no records request with that ID",
        ),
        (
            lambda v: v.close_request("../x", "done"),
            RequestNotFoundError,
            "a request ID is hexadecimal (`request list`)",
        ),
        (
            lambda v: v.set_request_days(400),
            UnsafeInputError,
            "--due-days must be between 1 and 366",
        ),
    ],
)
def test_bad_input_changes_nothing(
    vault: Vault, ann: str, call, error: type[Exception], message: str
) -> None:
    before = _generation(vault)
    with pytest.raises(error) as err:
        call(vault)
    assert str(err.value) == message
    assert _generation(vault) == before


def test_hostile_outcome_is_refused(vault: Vault, ann: str) -> None:
    opened = vault.open_request(ann, "2026-03-01", tz=UTC)
    before = _generation(vault)
    with pytest.raises(UnsafeInputError) as err:
        vault.close_request(opened.id, "sent\x1b]0;pwned\x07")
    assert str(err.value) == "the outcome contains a control character"
    assert _generation(vault) == before
    assert [r.status for r in vault.requests(tz=UTC)] == ["open"]


def test_requests_are_sealed_no_name_in_clear(vault: Vault, ann: str) -> None:
    vault.open_request(ann, "2026-03-01", by="Requester Zebulon", tz=UTC)
    for path in vault.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"Zebulon" not in data
            assert b"Ann Example" not in data
