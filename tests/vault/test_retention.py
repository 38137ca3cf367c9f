"""Retention rules, legal hold and `retention apply` through the library."""

from __future__ import annotations

import datetime as dt

import pytest

from confvault.errors import (
    ClientHeldError,
    ClientNotFoundError,
    UnsafeInputError,
    VaultError,
)
from confvault.vault import Vault
from confvault.vault.model.retention import (
    ADULT,
    MINOR,
    RetentionRule,
    add_years,
    parse_day,
)

from .conftest import Clock, reopen

D = dt.date
NO_WINDOW = dt.timedelta(0)


def _generation(vault: Vault) -> int:
    return vault.status().generation


# --- the rule itself ----------------------------------------------------------


def test_add_years_keeps_the_day_and_moves_feb_29_to_mar_1() -> None:
    assert add_years(D(2019, 1, 31), 7) == D(2026, 1, 31)
    assert add_years(D(2019, 12, 31), 7) == D(2026, 12, 31)
    assert add_years(D(2020, 2, 29), 4) == D(2024, 2, 29)  # leap to leap
    assert add_years(D(2020, 2, 29), 1) == D(2021, 3, 1)
    assert add_years(D(2020, 2, 29), 18) == D(2038, 3, 1)
    assert add_years(D(2019, 2, 28), 1) == D(2020, 2, 28)


def test_adult_rule_counts_years_after_last_contact() -> None:
    rule = RetentionRule(7)
    assert rule.due(D(2019, 3, 31), D(2015, 1, 1), None) == (D(2026, 3, 31), ADULT)
    # a birth date changes nothing without a minor rule
    assert rule.due(D(2019, 3, 31), D(2015, 1, 1), D(2010, 1, 1)) == (
        D(2026, 3, 31),
        ADULT,
    )


def test_minor_rule_is_majority_plus_years_when_later() -> None:
    rule = RetentionRule(7, minor_years=5)
    # seen at 10, last contact at 12: majority 2028-06-15, plus 5 = 2033
    assert rule.due(D(2022, 6, 1), D(2020, 6, 1), D(2010, 6, 15)) == (
        D(2033, 6, 15),
        MINOR,
    )
    # seen at 17, last contact at 25: the adult rule is later
    assert rule.due(D(2035, 1, 1), D(2027, 1, 1), D(2010, 6, 15)) == (
        D(2042, 1, 1),
        ADULT,
    )
    # an adult when the record was opened: no minor rule at all
    late = RetentionRule(1, minor_years=40)
    assert late.due(D(2030, 1, 1), D(2029, 1, 1), D(2010, 6, 15)) == (
        D(2031, 1, 1),
        ADULT,
    )


def test_minor_born_on_feb_29_comes_of_age_on_mar_1() -> None:
    rule = RetentionRule(1, minor_years=0, majority=18)
    assert rule.due(D(2020, 1, 1), D(2019, 1, 1), D(2008, 2, 29)) == (
        D(2026, 3, 1),
        MINOR,
    )
    assert RetentionRule(1, minor_years=0, majority=20).due(
        D(2020, 1, 1), D(2019, 1, 1), D(2008, 2, 29)
    ) == (D(2028, 2, 29), MINOR)  # 20th birthday in a leap year: Feb 29 itself
    # years count from the day of majority (March 1), not from the birth date
    assert RetentionRule(1, minor_years=3, majority=21).due(
        D(2020, 1, 1), D(2019, 1, 1), D(2008, 2, 29)
    ) == (D(2032, 3, 1), MINOR)


def test_parse_day_accepts_dates_and_timestamps_in_the_given_zone() -> None:
    utc = dt.UTC
    tokyo = dt.timezone(dt.timedelta(hours=9))
    new_york = dt.timezone(dt.timedelta(hours=-5))
    assert parse_day("2026-02-28", tokyo) == D(2026, 2, 28)
    assert parse_day("2026-02-28T23:30:00+00:00", utc) == D(2026, 2, 28)
    assert parse_day("2026-02-28T23:30:00+00:00", tokyo) == D(2026, 3, 1)
    assert parse_day("2026-03-01T02:00:00Z", new_york) == D(2026, 2, 28)
    for bad in ("2026-02-30", "yesterday", "2026-13-01T00:00:00Z", ""):
        with pytest.raises(UnsafeInputError) as err:
            parse_day(bad, utc)
        assert "is not a date (use YYYY-MM-DD or an ISO 8601 time)" in str(err.value)


# --- through the vault -------------------------------------------------------


def _client(vault: Vault, name: str, last: str, born: str | None = None) -> str:
    cid = vault.add_client(name, born=born).id
    vault.add_note(cid, b"session", date=last)
    return cid


def test_no_policy_means_nothing_is_ever_due(vault: Vault) -> None:
    _client(vault, "Ann Old", "2000-01-01")
    report = vault.retention(within=dt.timedelta(days=36500), tz=dt.UTC)
    assert (report.items, report.policy) == ((), None)
    applied = vault.apply_retention(tz=dt.UTC)
    assert (applied.outcome, applied.shredded) == ("nothing-to-do", ())
    assert [c.name for c in vault.clients()] == ["Ann Old"]


def test_retention_lists_due_and_soon_due_with_dates_and_rules(
    vault: Vault, clock: Clock
) -> None:
    clock.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    ann = _client(vault, "Ann Due", "2019-03-01")  # due 2026-03-01
    bob = _client(vault, "Bob Soon", "2019-04-15")  # due 2026-04-15
    _client(vault, "Cy Later", "2020-01-01")  # due 2027
    kid = _client(vault, "Dee Minor", "2019-01-10", born="2006-02-28")
    vault.set_retention(RetentionRule(7, minor_years=1))
    report = vault.retention(within=dt.timedelta(days=90), tz=dt.UTC)
    assert report.today == "2026-03-02"
    assert report.until == "2026-05-31"
    got = [
        (i.client, i.last_contact, i.due, i.rule, i.overdue_days) for i in report.items
    ]
    assert got == [
        (kid, "2019-01-10", "2026-01-10", ADULT, 51),  # 18 + 1 = 2025-02-28: earlier
        (ann, "2019-03-01", "2026-03-01", ADULT, 1),
        (bob, "2019-04-15", "2026-04-15", ADULT, -44),
    ]
    assert [i.client for i in report.due_now] == [kid, ann]
    assert report.items[0].policy == (
        "7 years after last contact; minors: 1 years after age 18, whichever is later"
    )
    assert report.to_json()["policy"] == {"years": 7, "minor_years": 1}


def test_minor_client_is_kept_until_majority_plus_years(
    vault: Vault, clock: Clock
) -> None:
    clock.now = dt.datetime(2031, 3, 1, 12, 0, tzinfo=dt.UTC)
    kid = _client(vault, "Eve Young", "2020-01-01", born="2012-02-29")
    vault.set_retention(RetentionRule(7, minor_years=1))
    # adult rule: 2027-01-01; minor: 18th birthday 2030-03-01, plus 1 = 2031-03-01
    (item,) = vault.retention(within=NO_WINDOW, tz=dt.UTC).items
    assert (item.client, item.due, item.rule, item.overdue_days) == (
        kid,
        "2031-03-01",
        MINOR,
        0,
    )
    clock.now = dt.datetime(2031, 2, 28, 12, 0, tzinfo=dt.UTC)
    assert vault.retention(within=NO_WINDOW, tz=dt.UTC).items == ()


def test_client_override_wins_over_the_vault_rule(vault: Vault, clock: Clock) -> None:
    clock.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    ann = _client(vault, "Ann", "2019-03-01")
    vault.set_retention(RetentionRule(7))
    vault.set_retention(RetentionRule(10), client="Ann")
    assert vault.retention(within=NO_WINDOW, tz=dt.UTC).items == ()
    (item,) = vault.retention(within=dt.timedelta(days=3 * 366), tz=dt.UTC).items
    assert (item.client, item.due, item.source) == (ann, "2029-03-01", "client")
    vault.set_retention(None, client="Ann")
    (item,) = vault.retention(within=NO_WINDOW, tz=dt.UTC).items
    assert (item.due, item.source) == ("2026-03-01", "vault")


def test_a_client_without_notes_counts_from_creation(
    vault: Vault, clock: Clock
) -> None:
    clock.now = dt.datetime(2016, 2, 29, 9, 0, tzinfo=dt.UTC)
    cid = vault.add_client("Fay Never").id
    vault.set_retention(RetentionRule(1))
    clock.now = dt.datetime(2017, 3, 1, 0, 0, tzinfo=dt.UTC)
    (item,) = vault.retention(within=NO_WINDOW, tz=dt.UTC).items
    assert (item.client, item.last_contact, item.due) == (
        cid,
        "2016-02-29",
        "2017-03-01",
    )


def test_apply_shreds_what_is_due_and_audits_each_shred(
    vault: Vault, clock: Clock
) -> None:
    clock.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    ann = _client(vault, "Ann Due", "2019-03-01")
    _client(vault, "Bob Soon", "2019-04-15")
    vault.set_retention(RetentionRule(7))
    applied = vault.apply_retention(tz=dt.UTC)
    assert applied.outcome == "done"
    assert [(r.client, r.notes) for r in applied.shredded] == [(ann, 1)]
    assert [c.name for c in vault.clients()] == ["Bob Soon"]
    shreds = vault.audit(action="client-shred")
    assert [(e.client, e.details) for e in shreds] == [
        (ann, {"notes": 1, "retention": ADULT, "due": "2026-03-01"})
    ]
    assert vault.verify(deep=True).findings == ()
    again = vault.apply_retention(tz=dt.UTC)
    assert again.outcome == "nothing-to-do"


def test_apply_only_shreds_the_clients_confirmed(vault: Vault, clock: Clock) -> None:
    clock.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    ann = _client(vault, "Ann", "2018-01-01")
    _client(vault, "Bob", "2018-01-02")
    vault.set_retention(RetentionRule(7))
    applied = vault.apply_retention(only=[ann], tz=dt.UTC)
    assert [r.client for r in applied.shredded] == [ann]
    assert [c.name for c in vault.clients()] == ["Bob"]


# --- legal hold -----------------------------------------------------------------


def test_held_client_is_never_due_and_survives_apply(
    vault: Vault, clock: Clock
) -> None:
    clock.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    ann = _client(vault, "Ann Held", "2010-01-01")
    vault.set_retention(RetentionRule(7))
    held = vault.hold_client("Ann Held", "subpoena 2026-17")
    assert held.hold is not None
    assert (held.hold.reason, held.hold.since) == (
        "subpoena 2026-17",
        "2026-03-02T09:00:00Z",
    )
    report = vault.retention(within=NO_WINDOW, tz=dt.UTC)
    assert (report.items, report.held) == ((), 1)
    applied = vault.apply_retention(tz=dt.UTC)
    assert (applied.outcome, applied.shredded) == ("nothing-to-do", ())
    assert vault.client(ann).notes == 1
    # release restarts the clock: the period counts again from the release
    clock.now = dt.datetime(2027, 5, 4, 10, 0, tzinfo=dt.UTC)
    released = vault.release_client("Ann Held")
    assert released.hold is None
    assert vault.retention(within=NO_WINDOW, tz=dt.UTC).items == ()
    assert vault.apply_retention(tz=dt.UTC).shredded == ()
    (item,) = vault.retention(within=dt.timedelta(days=365 * 8), tz=dt.UTC).items
    assert (item.client, item.last_contact, item.due) == (
        ann,
        "2010-01-01",
        "2034-05-04",
    )
    assert item.policy == (
        "7 years after last contact; clock restarted at the release on 2027-05-04"
    )
    clock.now = dt.datetime(2034, 5, 4, 0, 0, tzinfo=dt.UTC)
    (item,) = vault.retention(within=NO_WINDOW, tz=dt.UTC).items
    assert (item.due, item.overdue_days) == ("2034-05-04", 0)
    held_actions = ("client-hold", "client-release")
    trail = [(e.action, e.details) for e in vault.audit() if e.action in held_actions]
    assert trail == [
        ("client-hold", {"reason": "subpoena 2026-17"}),
        ("client-release", {"since": "2026-03-02T09:00:00Z"}),
    ]


def test_shred_of_a_held_client_is_refused_and_changes_nothing(
    vault: Vault, state_dir
) -> None:
    ann = _client(vault, "Ann Held", "2010-01-01")
    vault.hold_client(ann, "complaint")
    before = _generation(vault)
    with pytest.raises(ClientHeldError) as err:
        vault.shred_client("Ann Held")
    assert (
        str(err.value)
        == f"client {ann[:8]} is under a legal hold; nothing was shredded"
    )
    assert _generation(vault) == before
    again = reopen(vault, state_dir)
    assert again.client(ann).notes == 1
    assert [e.action for e in again.audit(action="client-shred")] == []


def test_hold_replaces_the_reason_and_keeps_the_date(
    vault: Vault, clock: Clock
) -> None:
    ann = _client(vault, "Ann", "2020-01-01")
    vault.hold_client(ann, "first")
    clock.advance(days=3)
    info = vault.hold_client(ann, "second")
    assert info.hold is not None
    assert (info.hold.reason, info.hold.since) == ("second", "2026-03-02T09:00:00Z")
    assert vault.client(ann).hold == info.hold


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("evil\x1b[31m", "the reason contains a control character"),
        ("line\nbreak", "the reason contains a control character"),
        ("\u202eevil", "the reason contains a right-to-left or bidi control mark"),
        ("   ", "the reason is empty"),
        ("x" * 501, "the reason is longer than 500 characters"),
    ],
)
def test_hostile_reason_is_refused_and_changes_nothing(
    vault: Vault, reason: str, message: str
) -> None:
    ann = _client(vault, "Ann", "2020-01-01")
    before = _generation(vault)
    with pytest.raises(UnsafeInputError) as err:
        vault.hold_client(ann, reason)
    assert str(err.value) == message
    assert (_generation(vault), vault.client(ann).hold) == (before, None)


def test_hold_release_of_unknown_or_unheld_client(vault: Vault) -> None:
    _client(vault, "Ann", "2020-01-01")
    before = _generation(vault)
    with pytest.raises(ClientNotFoundError):
        vault.hold_client("Nobody", "x")
    with pytest.raises(VaultError) as err:
        vault.release_client("Ann")
    assert str(err.value).endswith("is not under a legal hold")
    assert _generation(vault) == before


def test_birth_date_is_sealed_in_the_profile_and_editable(vault: Vault) -> None:
    cid = vault.add_client("Gus Kid", born="2012-02-29").id
    assert vault.client(cid).born == "2012-02-29"
    assert vault.set_born(cid, "2012-03-01").born == "2012-03-01"
    assert vault.set_born(cid, None).born is None
    with pytest.raises(UnsafeInputError) as err:
        vault.add_client("Hal", born="2012-02-30")
    assert str(err.value) == "'2012-02-30' is not a date of birth (use YYYY-MM-DD)"
    for path in vault.root.rglob("*"):
        if path.is_file():
            assert b"2012-0" not in path.read_bytes()


def test_apply_skips_a_client_with_an_open_records_request(
    vault: Vault, clock: Clock
) -> None:
    clock.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    ann = _client(vault, "Ann Asked", "2010-01-01")
    vault.set_retention(RetentionRule(7))
    request = vault.open_request(ann, "2026-03-01", tz=dt.UTC)
    applied = vault.apply_retention(tz=dt.UTC)
    assert (applied.outcome, applied.skipped) == ("nothing-to-do", (ann,))
    assert vault.client(ann).notes == 1
    vault.close_request(request.id, "sent", tz=dt.UTC)
    assert [r.client for r in vault.apply_retention(tz=dt.UTC).shredded] == [ann]


def test_dates_at_the_calendars_end_do_not_overflow(vault: Vault, clock: Clock) -> None:
    assert add_years(D(9990, 2, 28), 150) == D.max
    cid = _client(vault, "Zed Future", "9998-06-01", born="9990-01-01")
    vault.set_retention(RetentionRule(150, minor_years=150))
    report = vault.retention(within=dt.timedelta(days=3_000_000), tz=dt.UTC)
    assert report.until == "9999-12-31"
    assert [(i.client, i.due) for i in report.items] == [(cid, "9999-12-31")]
