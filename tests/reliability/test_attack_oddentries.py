"""Issue 13, review finding 8: denial of service by what is planted in the vault
directory (or in place of a backup): huge sparse files under the names of the
files commands read whole, sockets and directories under files' names, a
FIFO in place of a backup tar.

Each test plants the real thing in a real vault and runs the owner's real
CLI as a subprocess: the command ends at once, with its documented exit code
and a message naming the entry (never an internal error, exit 70, never a
hang, never gigabytes of memory), or does its work around the entry.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.reliability import test_attack_vaultdir as base
from tests.reliability.practice import INTEGRITY, Practice

practice = base.practice  # the fixture: a vault with one client and one note

HUGE = 64 << 30  # sparse: no disk used, but no command may read it whole


def _sparse(path: Path, size: int = HUGE) -> None:
    with path.open("wb") as f:
        f.truncate(size)
    path.chmod(0o600)


def _socket(path: Path) -> None:
    """A Unix socket at ``path`` (made under a short name, then moved: a
    socket's path has a length limit)."""
    short = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(short / "s"))
        (short / "s").chmod(0o600)
        (short / "s").rename(path)
    finally:
        short.rmdir()


def _codes(practice: Practice) -> list[str]:
    done = practice.run("verify", "--json")
    return [f["code"] for f in json.loads(done.stdout)["findings"]]


def _journal(practice: Practice) -> Path:
    return practice.vault / "tmp" / "txn-1-deadbeef.journal"


# --- huge sparse files ---------------------------------------------------------------


def test_a_huge_inbox_entry_is_not_read_whole(practice: Practice) -> None:
    inbox = practice.vault / "audit-inbox"
    inbox.mkdir(mode=0o700)
    entry = inbox / ("ab" * 12 + ".age")
    _sparse(entry)

    done = practice.run("note", "list")

    assert done.returncode == 0, done.stderr  # the entry is passed over
    assert entry.stat().st_size == HUGE  # and left for the owner to inspect


def test_a_huge_journal_is_refused_unread(practice: Practice) -> None:
    _sparse(_journal(practice))

    practice.owner("note", "add", "Ann", stdin="a second note\n")

    assert not _journal(practice).exists()
    assert "journal-refused" in practice.audit_actions()
    practice.verify_ok()


@pytest.mark.parametrize("what", ["manifest", "objects", "shards"])
def test_a_huge_vault_file_is_refused_by_its_size(
    practice: Practice, what: str
) -> None:
    victims = (
        [practice.vault / "manifest"]
        if what == "manifest"
        else sorted(p for p in (practice.vault / what).rglob("*") if p.is_file())
    )
    for path in victims:
        path.unlink()
        _sparse(path)

    done = practice.run("note", "list")

    assert done.returncode == INTEGRITY, done.stderr
    assert f"{HUGE} bytes, more than such a file can hold" in done.stderr
    assert "internal error" not in done.stderr


# --- sockets and directories under files' names ---------------------------------------


def test_a_socket_named_like_a_journal_is_refused_not_obeyed(
    practice: Practice,
) -> None:
    _socket(_journal(practice))

    done = practice.run("note", "list")

    assert done.returncode == 0, done.stderr
    assert not _journal(practice).exists()  # the name itself unlinked
    assert "journal-refused" in practice.audit_actions()


def test_a_socket_in_place_of_a_shard_is_an_integrity_error(
    practice: Practice,
) -> None:
    shard = sorted((practice.vault / "shards").iterdir())[0]
    shard.unlink()
    _socket(shard)

    done = practice.run("verify")

    assert done.returncode == INTEGRITY, done.stdout + done.stderr
    assert "internal error" not in done.stderr
    assert shard.name in done.stdout + done.stderr


def test_a_directory_named_like_a_journal_is_named_by_commands_and_verify(
    practice: Practice,
) -> None:
    _journal(practice).mkdir(mode=0o700)

    done = practice.run("note", "list")

    assert done.returncode == INTEGRITY, done.stderr
    assert f"{_journal(practice)} is a directory where a file should be" in (
        done.stderr
    )
    assert _codes(practice) == ["not-a-file", "leftover"]


def test_a_socket_in_the_inbox_is_reported_by_verify(practice: Practice) -> None:
    inbox = practice.vault / "audit-inbox"
    inbox.mkdir(mode=0o700)
    _socket(inbox / ("ab" * 12 + ".age"))

    practice.owner("note", "list")  # passed over

    assert _codes(practice) == ["audit-inbox", "not-a-file"]


# --- a FIFO in place of a backup tar ---------------------------------------------------


@pytest.mark.parametrize("command", ["verify", "restore"])
def test_a_fifo_in_place_of_a_backup_tar_is_refused_at_once(
    practice: Practice, command: str
) -> None:
    tar = practice.root / "backups" / "vault.tar"
    tar.parent.mkdir()
    os.mkfifo(tar)
    target = [str(practice.root / "restored")] if command == "restore" else []

    done = practice.run("backup", command, str(tar), *target)  # timeout: 60 s

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{tar} is a named pipe (FIFO), not a tar" in done.stderr
    assert not (practice.root / "restored").exists()


def test_a_tar_handed_over_through_a_pipe_is_still_read(practice: Practice) -> None:
    tar = practice.root / "vault.tar"
    practice.owner("backup", "create", str(tar))
    argv = [sys.executable, "-m", "confvault", "backup", "verify", "/dev/stdin"]
    with tar.open("rb") as source:
        cat = subprocess.Popen(["cat"], stdin=source, stdout=subprocess.PIPE)
        done = subprocess.run(
            argv, stdin=cat.stdout, capture_output=True, text=True, timeout=60
        )
        assert cat.stdout is not None
        cat.stdout.close()
        cat.wait()

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("vault ok")
