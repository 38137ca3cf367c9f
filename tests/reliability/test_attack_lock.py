"""Issue 13: replacing the vault's lock file (``rm lock; touch lock``, as an
attacker or a sync client does) must not let a second writer in while the
first holds the lock.

A real process holds the vault lock (the very ``fs.locked`` every writer and
reader takes); the test swaps the lock file under it, then runs the owner's
real CLI as a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.reliability import test_attack_vaultdir as base
from tests.reliability.practice import Practice

LOCKED = 11
practice = base.practice  # the fixture: a vault with one client and one note

HOLDER = """
import sys
from pathlib import Path
from confvault.vault.store import fs
with fs.locked(Path(sys.argv[1]), exclusive=sys.argv[2] == "ex", timeout=5):
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def vault(practice: Practice, monkeypatch: pytest.MonkeyPatch) -> Practice:
    monkeypatch.setenv("CONFVAULT_LOCK_TIMEOUT", "1")  # Practice.run passes it on
    return practice


@contextmanager
def _held(vault: Path, mode: str) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(vault), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "held\n"
        yield
    finally:
        proc.communicate("\n", timeout=30)
    assert proc.returncode == 0


def _swap_lock_file(vault: Path) -> None:
    (vault / "lock").unlink()
    (vault / "lock").touch(mode=0o600)


@pytest.mark.parametrize("mode", ["ex", "sh"])
def test_a_swapped_lock_file_does_not_let_a_writer_in(
    vault: Practice, mode: str
) -> None:
    before = vault.owner("note", "list", "Ann")
    with _held(vault.vault, mode):
        _swap_lock_file(vault.vault)
        done = vault.run("note", "add", "Ann", "-t", "second", stdin="x\n")
        assert done.returncode == LOCKED, done.stdout + done.stderr
        assert "locked by another confvault process" in done.stderr
    assert vault.owner("note", "list", "Ann") == before  # nothing written meanwhile
    vault.owner("note", "add", "Ann", "-t", "second", stdin="x\n")
    assert "second" in vault.owner("note", "list", "Ann")


def test_a_removed_lock_file_does_not_let_a_writer_in(vault: Practice) -> None:
    with _held(vault.vault, "ex"):
        (vault.vault / "lock").unlink()
        done = vault.run("note", "add", "Ann", "-t", "second", stdin="x\n")
        assert done.returncode == LOCKED, done.stdout + done.stderr
