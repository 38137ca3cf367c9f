"""The vault's one clock and one time format: UTC, whole seconds, ``...Z``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from confvault.errors import UnsafeInputError

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    """``moment`` as the vault writes every time: ``2026-01-31T09:00:00Z``."""
    return (
        moment.astimezone(dt.UTC)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z")
    )


def parse_date(text: str) -> str:
    """A user's date (YYYY-MM-DD or ISO 8601) as a UTC ISO timestamp."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise UnsafeInputError(f"{text[:40]!r} is not a date (use YYYY-MM-DD)") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return iso(moment)


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12w``, ``6m`` (30-day months), ``1y`` or ``36h``."""
    units = {"h": 1 / 24, "d": 1, "w": 7, "m": 30, "y": 365}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise UnsafeInputError(
            f"{text[:20]!r} is not a duration like 90d, 12w, 6m or 1y"
        )
    return dt.timedelta(days=int(text[:-1]) * units[text[-1]])
