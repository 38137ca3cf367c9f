"""Durations of an unlock: ``90s``, ``15m``, ``8h``, ``1d``; bounds and defaults."""

from __future__ import annotations

import re

from confvault.errors import DurationError

DEFAULT_IDLE = 15 * 60  # seconds without use before the agent locks
DEFAULT_MAX = 8 * 60 * 60  # seconds after which it locks in any case
MIN_SECONDS = 1
MAX_IDLE = 24 * 60 * 60
MAX_MAX = 7 * 24 * 60 * 60

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"([0-9]{1,7})([smhd]?)")


def parse(text: str, what: str, upper: int) -> int:
    """Seconds of ``text`` (digits and one unit, s by default), within bounds."""
    match = _PATTERN.fullmatch(text.strip().lower())
    if match is None:
        raise DurationError(
            f"{what}: {text!r} is not a duration (a whole number and a unit: "
            "90s, 15m, 8h, 1d)"
        )
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not MIN_SECONDS <= seconds <= upper:
        raise DurationError(
            f"{what}: {text} is out of bounds ({MIN_SECONDS}s to {show(upper)})"
        )
    return seconds


def options(idle: str | None, maximum: str | None) -> tuple[int | None, int | None]:
    """``--idle`` and ``--max`` in seconds (None when not given), checked."""
    return (
        None if idle is None else parse(idle, "--idle", MAX_IDLE),
        None if maximum is None else parse(maximum, "--max", MAX_MAX),
    )


def lifetimes(
    given: tuple[int | None, int | None],
    defaults: tuple[int | None, int | None] = (None, None),
) -> tuple[int, int]:
    """(idle, max): the options', else the vault's defaults, else ours; the
    idle time never longer than the maximum."""
    idle = _within(given[0] or defaults[0], DEFAULT_IDLE, MAX_IDLE)
    most = _within(given[1] or defaults[1], DEFAULT_MAX, MAX_MAX)
    return min(idle, most), most


def _within(seconds: int | None, default: int, upper: int) -> int:
    if seconds is None:
        return default
    return max(MIN_SECONDS, min(seconds, upper))


def show(seconds: float) -> str:
    """``2h 5m``, ``15m``, ``40s``: a time left, for people."""
    left = max(0, int(seconds))
    if left >= 3600:
        return f"{left // 3600}h {left % 3600 // 60}m"
    if left >= 60:
        return f"{left // 60}m {left % 60}s" if left % 60 else f"{left // 60}m"
    return f"{left}s"
