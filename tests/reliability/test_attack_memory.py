"""Issue 13 review, F5: the rollback memory must fail closed when unwritable.

This machine's memory of the vault (``$XDG_STATE_HOME/confvault/seen``) is
what detects a rollback. Before the fix, a memory that could not be written
(a read-only or full home, a quota) was skipped in silence: `revoke` and
`note add` succeeded, the memory stayed at the generation before the
revoke, and a copy of the vault from before the revoke, put back by the
attacker, was accepted, so the revoked key read what the owner wrote next.

Now a command that would commit checks first that the memory can be
written and refuses, exit 13, naming the memory, with nothing changed. The
state directory is a real tmpfs mounted for the test (read-only, then full):
this needs root, which CI has; elsewhere the test is skipped, never in CI.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from confvault import age
from tests.conftest import _unavailable
from tests.reliability.practice import INTEGRITY, Practice, start


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def statefs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs for the state directory, unmounted whatever happens."""
    if os.geteuid() != 0:
        _unavailable("mounting a tmpfs needs root")  # skips here; fails under CI
    mount = tmp_path / "statefs"
    mount.mkdir()
    _mount("-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount))
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=30)


def _tree(top: Path) -> dict[str, str]:
    return {
        str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else "dir"
        for p in sorted(top.rglob("*"))
    }


@pytest.fixture
def practice(tmp_path: Path, statefs: Path) -> tuple[Practice, str]:
    p = start(tmp_path, statefs)
    p.owner("client", "add", "Alice")
    p.owner("note", "add", "Alice", stdin="Alice: first session.\n")
    grantee = age.X25519Identity.generate()
    p.owner("grant", str(grantee.recipient), "--client", "Alice", "--label", "sup")
    return p, str(grantee.recipient)


def _fill(filler: Path) -> None:
    """Write ``filler`` until its file system is full."""
    block = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="No space left on device"):
            _write_forever(block)
    finally:
        os.close(block)


def _write_forever(fd: int) -> None:
    while os.write(fd, b"\0" * 4096):
        pass


def _assert_refused(done: subprocess.CompletedProcess[str], why: str) -> None:
    assert done.returncode == INTEGRITY, done.stderr
    assert "this machine's memory of the vault" in done.stderr
    assert f"cannot be written ({why})" in done.stderr
    assert "nothing was changed" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unwritable_memory_refuses_every_change(
    practice: tuple[Practice, str],
) -> None:
    p, grantee = practice
    generation = json.loads(p.owner("status", "--json"))["generation"]
    before = _tree(p.vault)
    _mount("-o", "remount,ro", str(p.state))

    _assert_refused(p.run("revoke", "sup"), "Read-only file system")
    _assert_refused(
        p.run("note", "add", "Alice", stdin="written after: MANGO\n"),
        "Read-only file system",
    )
    # Nothing changed: the grant stands (the owner knows the revoke failed).
    assert _tree(p.vault) == before
    status = json.loads(p.owner("status", "--json"))
    assert status["generation"] == generation
    assert [g["recipient"] for g in json.loads(p.owner("grants", "--json"))] == [
        grantee
    ]

    _mount("-o", "remount,rw", str(p.state))
    done = p.run("revoke", "sup")
    assert done.returncode == 0, done.stderr
    memory = next((p.state / "confvault" / "seen").glob("*.json"))
    assert json.loads(memory.read_text())["generation"] > generation


def test_a_full_memory_file_system_refuses_and_recovers(
    practice: tuple[Practice, str],
) -> None:
    p, _ = practice
    before = _tree(p.vault)
    filler = p.state / "filler"
    _fill(filler)
    _assert_refused(
        p.run("note", "add", "Alice", stdin="written when full\n"),
        "No space left on device",
    )
    assert _tree(p.vault) == before
    filler.unlink()
    p.owner("note", "add", "Alice", stdin="written when there is room\n")
    assert len(json.loads(p.owner("note", "list", "--json"))) == 2
