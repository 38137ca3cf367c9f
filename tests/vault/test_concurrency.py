"""Real confvault processes at once against one vault: the lock serialises
writers, readers see whole snapshots, and a lock held too long is reported.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from confvault.errors import IntegrityError
from confvault.vault import Vault
from confvault.vault.check.keyless import verify_keyless
from confvault.vault.store import manifest
from confvault.vault.store.seen import SeenStore

PASSPHRASE = b"correct horse battery staple"
WRITERS = 4
NOTES_PER_WRITER = 5
CLIENT = "Ann Example"
EXIT_LOCKED = 11


def _confvault() -> list[str]:
    script = Path(sys.executable).with_name("confvault")
    return [str(script)] if script.exists() else [sys.executable, "-m", "confvault"]


class Env:
    """A vault made with the library, and the CLI pointed at it."""

    def __init__(self, root: Path) -> None:
        self.vault = root / "vault"
        self.xdg_state = root / "xdg-state"
        self.passphrase_file = root / "passphrase"
        self.passphrase_file.write_bytes(PASSPHRASE + b"\n")
        self.passphrase_file.chmod(0o600)
        vault, _ = Vault.init(
            self.vault,
            PASSPHRASE,
            work_factor=10,
            min_work_factor=10,
            recovery_key=False,
            state_dir=self.state_dir,
        )
        vault.add_client(CLIENT)

    @property
    def state_dir(self) -> Path:
        return self.xdg_state / "confvault"

    def run(
        self,
        *args: str,
        stdin: bytes = b"",
        lock_timeout: float | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[bytes]:
        env = dict(os.environ, XDG_STATE_HOME=str(self.xdg_state))
        env.pop("CONFVAULT_DEBUG", None)
        if lock_timeout is not None:
            env["CONFVAULT_LOCK_TIMEOUT"] = str(lock_timeout)
        return subprocess.run(
            [
                *_confvault(),
                "--vault",
                str(self.vault),
                "--passphrase-file",
                str(self.passphrase_file),
                *args,
            ],
            input=stdin,
            capture_output=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    def open(self) -> Vault:
        return Vault.open(self.vault, passphrase=PASSPHRASE, state_dir=self.state_dir)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def _write_notes(env: Env, writer: int) -> list[str]:
    """One writer: NOTES_PER_WRITER `note add` processes, one after the other."""
    problems = []
    for number in range(NOTES_PER_WRITER):
        title = f"w{writer}-n{number}"
        proc = env.run(
            "note",
            "add",
            CLIENT,
            "--title",
            title,
            "--json",
            stdin=f"Note {number} of writer {writer}.\n".encode(),
        )
        if proc.returncode != 0:
            problems.append(f"{title}: exit {proc.returncode}: {proc.stderr.decode()}")
            continue
        if json.loads(proc.stdout)["title"] != title:
            problems.append(f"{title}: wrong note reported: {proc.stdout.decode()}")
    return problems


def _read_until(env: Env, done: threading.Event) -> tuple[list[str], int]:
    """A reader: `note list --json` again and again; returns problems and reads done."""
    problems: list[str] = []
    seen: dict[str, str] = {}  # id -> title, from earlier snapshots
    reads = 0
    while True:
        finished = done.is_set()  # one more read after the writers end
        proc = env.run("note", "list", "--json", "--psychotherapy")
        reads += 1
        if proc.returncode != 0:
            problems.append(
                f"read {reads}: exit {proc.returncode}: {proc.stderr.decode()}"
            )
        else:
            try:
                notes = json.loads(proc.stdout)
            except ValueError as err:
                problems.append(
                    f"read {reads}: not JSON ({err}): {proc.stdout[:200]!r}"
                )
                notes = None
            if notes is not None:
                current = {n["id"]: n["title"] for n in notes}
                if len(current) != len(notes):
                    problems.append(f"read {reads}: a note is listed twice")
                if any(current.get(i) != t for i, t in seen.items()):
                    problems.append(
                        f"read {reads}: a note listed before vanished or changed"
                    )
                if any(
                    n["status"] != "signed" or n["client_name"] != CLIENT for n in notes
                ):
                    problems.append(f"read {reads}: a half-written note: {notes}")
                seen = current
        if finished:
            return problems, reads


def test_concurrent_writers_and_readers(env: Env) -> None:
    done = threading.Event()
    with ThreadPoolExecutor(max_workers=WRITERS + 2) as pool:
        readers = [pool.submit(_read_until, env, done) for _ in range(2)]
        writers = [pool.submit(_write_notes, env, w) for w in range(WRITERS)]
        writer_problems = [p for future in writers for p in future.result()]
        done.set()
        reader_results = [future.result() for future in readers]
    assert writer_problems == []
    for problems, reads in reader_results:
        assert problems == []
        assert reads >= 2

    # Every note is there, once, intact.
    expected = {f"w{w}-n{n}" for w in range(WRITERS) for n in range(NOTES_PER_WRITER)}
    vault = env.open()
    notes = vault.notes(None, psychotherapy=True)
    assert sorted(n.title for n in notes) == sorted(expected)
    for note in notes:
        writer, number = note.title[1:].split("-n")
        assert (
            vault.note(note.id).body == f"Note {number} of writer {writer}.\n".encode()
        )
    assert vault.clients()[0].notes == len(expected)

    # Nothing left behind.
    report = vault.verify(deep=True)
    assert report.ok
    assert report.findings == ()
    assert report.notes_checked == len(expected)
    assert report.generation >= 2 + len(expected)  # init, client add, a commit per note
    proc = env.run("verify", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["ok"] is True
    assert sorted(os.listdir(env.vault / "tmp")) == []


@pytest.fixture
def held_lock(env: Env, request: pytest.FixtureRequest) -> Iterator[None]:
    """Hold DIR/lock from this process (LOCK_EX, or the parametrised mode)."""
    mode = getattr(request, "param", fcntl.LOCK_EX)
    fd = os.open(env.vault / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


def test_writer_gives_up_on_a_held_lock(env: Env, held_lock: None) -> None:
    started = time.monotonic()
    proc = env.run(
        "note", "add", CLIENT, "--title", "blocked", stdin=b"text\n", lock_timeout=1
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == EXIT_LOCKED, proc.stderr.decode()
    assert "locked" in proc.stderr.decode()
    assert elapsed >= 1.0
    # A reader waits on an exclusive lock too.
    proc = env.run("note", "list", "--json", lock_timeout=1)
    assert proc.returncode == EXIT_LOCKED
    assert "locked" in proc.stderr.decode()


@pytest.mark.parametrize("held_lock", [fcntl.LOCK_SH], indirect=True, ids=["shared"])
def test_writer_waits_out_readers_then_gives_up(env: Env, held_lock: None) -> None:
    """A shared lock (a reader) lets other readers in but keeps a writer out.

    (Reading notes appends to the audit trail, a write: the keyless verify is
    the reader that needs only the shared lock.)
    """
    proc = env.run("verify", "--json", lock_timeout=1)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["ok"] is True
    proc = env.run(
        "note", "add", CLIENT, "--title", "blocked", stdin=b"text\n", lock_timeout=1
    )
    assert proc.returncode == EXIT_LOCKED, proc.stderr.decode()
    assert "locked" in proc.stderr.decode()


def test_write_succeeds_once_the_lock_is_released(env: Env) -> None:
    fd = os.open(env.vault / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    timer = threading.Timer(1.0, os.close, args=(fd,))
    timer.start()
    try:
        started = time.monotonic()
        proc = env.run(
            "note", "add", CLIENT, "--title", "waited", stdin=b"text\n", lock_timeout=30
        )
        elapsed = time.monotonic() - started
    finally:
        timer.join()
    assert proc.returncode == 0, proc.stderr.decode()
    assert elapsed >= 0.9
    assert [n.title for n in env.open().notes()] == ["waited"]
    report, _ = verify_keyless(env.vault, seen=SeenStore(env.state_dir))
    assert report.findings == ()


def test_verify_racing_a_writer_keeps_the_seen_generation(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`verify` records its outcome in the seen store with a read-modify-write:
    a commit by another process must never be forgotten because of it, or a
    rollback to before that commit would go unnoticed. A writer started at
    the moment verify records its outcome must wait for verify's lock, then
    commit, and its generation must be the one remembered.
    """
    vault = env.open()
    backup = tmp_path / "backup"
    shutil.copytree(env.vault, backup, symlinks=True)  # what an attacker restores
    seen = vault.seen
    real_write = seen._write
    writers: list[threading.Thread] = []
    results: list[subprocess.CompletedProcess[bytes]] = []

    def write(vault_id: str, doc: dict[str, object]) -> None:
        if "last_verify" in doc and not writers:  # verify is recording its outcome
            writer = threading.Thread(
                target=lambda: results.append(
                    env.run(
                        "note", "add", CLIENT, "--title", "meanwhile", stdin=b"text\n"
                    )
                )
            )
            writer.start()
            writers.append(writer)
            time.sleep(1.0)  # give the writer every chance to commit in between
        real_write(vault_id, doc)

    monkeypatch.setattr(seen, "_write", write)
    report = vault.verify()
    assert report.ok
    writers[0].join(timeout=120)
    assert results[0].returncode == 0, results[0].stderr.decode()
    generation = manifest.load(env.vault).generation  # read without the seen store
    assert generation == report.generation + 1  # the other process committed
    assert SeenStore(env.state_dir).get(report.vault_id)[0] == generation
    shutil.rmtree(env.vault)
    shutil.copytree(backup, env.vault, symlinks=True)
    with pytest.raises(IntegrityError, match="rolled back"):
        Vault.open(env.vault, passphrase=PASSPHRASE, state_dir=env.state_dir)
