"""Issue 13: replacing the vault's lock file (``rm lock; touch lock``, as an
attacker or a sync client does) must not let a second writer in while the
first holds the lock.

A real process holds the vault lock (the very ``fs.locked`` every writer and
reader takes); the test swaps the lock file under it, then runs the owner's
real CLI as a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PASSPHRASE = "correct horse battery staple"
LOCKED = 11

HOLDER = """
import sys
from pathlib import Path
from confvault.vault.store import fs
with fs.locked(Path(sys.argv[1]), exclusive=sys.argv[2] == "ex", timeout=5):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _cli(
    tmp_path: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "confvault", "--vault", str(tmp_path / "vault")]
    return subprocess.run(
        [*argv, "--passphrase-file", str(tmp_path / "pass"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(
            os.environ,
            XDG_STATE_HOME=str(tmp_path / "xdg"),
            CONFVAULT_LOCK_TIMEOUT="1",
        ),
        timeout=60,
        check=False,
    )


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    (tmp_path / "pass").chmod(0o600)
    for args in (
        (
            "init",
            "--work-factor",
            "10",
            "--allow-weak-work-factor",
            "--no-recovery-key",
        ),
        ("client", "add", "Ann"),
    ):
        done = _cli(tmp_path, *args)
        assert done.returncode == 0, done.stderr
    return tmp_path / "vault"


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


def _titles(tmp_path: Path) -> str:
    done = _cli(tmp_path, "note", "list", "Ann")
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("mode", ["ex", "sh"])
def test_a_swapped_lock_file_does_not_let_a_writer_in(
    vault: Path, tmp_path: Path, mode: str
) -> None:
    before = _titles(tmp_path)
    with _held(vault, mode):
        _swap_lock_file(vault)
        done = _cli(tmp_path, "note", "add", "Ann", "-t", "second", stdin="x\n")
        assert done.returncode == LOCKED, done.stdout + done.stderr
        assert "locked by another confvault process" in done.stderr
    assert _titles(tmp_path) == before  # nothing was written meanwhile
    done = _cli(tmp_path, "note", "add", "Ann", "-t", "second", stdin="x\n")
    assert done.returncode == 0, done.stderr
    assert "second" in _titles(tmp_path)


def test_a_removed_lock_file_does_not_let_a_writer_in(
    vault: Path, tmp_path: Path
) -> None:
    with _held(vault, "ex"):
        (vault / "lock").unlink()
        done = _cli(tmp_path, "note", "add", "Ann", "-t", "second", stdin="x\n")
        assert done.returncode == LOCKED, done.stdout + done.stderr
