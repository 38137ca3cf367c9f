"""The product's policy, defined once: how strong a new passphrase must be,
the scrypt work factors a new owner key file may use, and how long a command
waits for another one's lock. The library enforces it; the CLI only asks it
(for its checks before a prompt, its defaults and its help texts).

Imports nothing (the error class only when it raises), so any room (and the CLI's fast start) may
read it without loading the rest.
"""

from __future__ import annotations

MIN_WORK_FACTOR = 15  # below this, a stolen vault's passphrase is too cheap to guess
MAX_WORK_FACTOR = 22  # the stock age tool refuses more on decryption
DEFAULT_WORK_FACTOR = 18  # the stock age tool's (confvault.age.scrypt's, tested equal)
WEAK_WORK_FACTOR_FLOOR = 1  # the floor with allow_weak: tests and benchmarks only
MIN_PASSPHRASE_CHARS = 12
MIN_DISTINCT_CHARS = 6
_COMMON = {"password1234", "123456789012", "passwordpassword", "qwertyuiopas"}

DEFAULT_LOCK_TIMEOUT = 60.0  # seconds a command waits for another one's lock


def work_factor_floor(*, allow_weak: bool = False) -> int:
    """The lowest work factor a new owner key file may use."""
    return WEAK_WORK_FACTOR_FLOOR if allow_weak else MIN_WORK_FACTOR


def is_weak_work_factor(work_factor: int) -> bool:
    """True for a work factor only ``allow_weak`` admits (for tests only)."""
    return work_factor < MIN_WORK_FACTOR


def check_work_factor(work_factor: int, *, allow_weak: bool = False) -> int:
    """``work_factor`` when a new owner key file may use it, else WorkFactorError.

    The bounds of ``init`` and ``passphrase`` alike: at least MIN_WORK_FACTOR
    (1 with ``allow_weak``, for tests and benchmarks) and at most
    MAX_WORK_FACTOR, the most this vault and the stock age tool open.
    """
    from confvault.errors import WorkFactorError

    floor = work_factor_floor(allow_weak=allow_weak)
    if not floor <= work_factor <= MAX_WORK_FACTOR:
        raise WorkFactorError(
            f"--work-factor must be between {floor} and {MAX_WORK_FACTOR}"
        )
    return work_factor


def check_passphrase_strength(passphrase: bytes) -> str | None:
    """Why ``passphrase`` is too weak, or None when it is acceptable."""
    text = passphrase.decode("utf-8", "replace")
    if len(text) < MIN_PASSPHRASE_CHARS:
        return (
            f"it has {len(text)} characters; use at least {MIN_PASSPHRASE_CHARS} "
            "(a few unrelated words work well)"
        )
    if len(set(text)) < MIN_DISTINCT_CHARS:
        return "it repeats too few different characters"
    if text.lower() in _COMMON:
        return "it is a commonly used passphrase"
    return None
