"""Waiting for the vault lock in turn: a turnstile before the lock itself.

The vault lock is ``flock`` on the lock file: shared for readers, exclusive
for writers, taken by polling so that a wait can end at its deadline. Alone,
polling is not fair: a writer that runs in a tight loop holds the lock
nearly all the time, and a reader that looks every 100 ms almost never
finds it free, so it can wait past its timeout (issue 14).

So every command first takes a turnstile, an exclusive open-file-description
lock (``F_OFD_SETLK``) on the first byte of the lock file (Linux keeps
``flock`` and byte-range locks apart, so the two never conflict), then takes
the vault lock (``store.fs.locked``: the vault directory's and the lock
file's) while holding it, then lets the turnstile go. A command holds
the turnstile only while it waits for the vault lock, never while it works.

The bound: a writer in a loop takes the turnstile before each of its
transactions, so once a waiting command holds the turnstile (which is free
whenever the writer works: at most one poll interval, 0.1 s), the writer's
next transaction waits behind it. A command therefore waits at most for the
transaction running when it took the turnstile, plus two poll intervals,
plus, when several commands wait at once, those that took the turnstile
before it (each one transaction; the order among several waiters is the
order in which their polls find the turnstile free, not strictly arrival).
Readers that hold the vault lock together never wait for each other.

Where ``F_OFD_SETLK`` does not exist (not Linux), the turnstile is skipped
and waiting is as before.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import time
from collections.abc import Iterator

from confvault.errors import VaultLockedError

POLL_FIRST = 0.005  # seconds; doubled after each failed try
POLL_MAX = 0.1

_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
# struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t),
# l_pid (pid_t, 0 for open-file-description locks), padding.
_FLOCK = "hhqqi4x"


def _turnstile(fd: int, lock_type: int) -> bool:
    """Take (``F_WRLCK``) or leave (``F_UNLCK``) the turnstile; False when taken."""
    if _OFD_SETLK is None:
        return True
    request = struct.pack(_FLOCK, lock_type, os.SEEK_SET, 0, 1, 0)
    try:
        fcntl.fcntl(fd, _OFD_SETLK, request)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        if err.errno == errno.EINVAL:  # a file system without such locks
            return True
        raise
    return True


def _poll(attempt: int) -> float:
    return min(POLL_FIRST * float(2 ** min(attempt, 8)), POLL_MAX)


@contextlib.contextmanager
def turn(fd: int | None, deadline: float) -> Iterator[None]:
    """Hold the turnstile on the lock file ``fd`` while the vault lock is
    taken (``None``: no lock file, as on read-only media, so no turnstile);
    ``VaultLockedError`` at ``deadline`` (``time.monotonic``)."""
    if fd is None:
        yield
        return
    attempt = 0
    while not _turnstile(fd, fcntl.F_WRLCK):
        if time.monotonic() >= deadline:
            raise VaultLockedError("the vault is locked by another confvault process")
        time.sleep(_poll(attempt))
        attempt += 1
    try:
        yield
    finally:
        _turnstile(fd, fcntl.F_UNLCK)
