"""Issue 13, finding 9: an `export --out` that fails leaves nothing behind.

Before the fix, `export --out` wrote the plaintext files straight into the
target and appended its audit entry last: an export that then failed on the
lock (another command holding it shared, so the reads went through and only
the audit commit waited) left the whole record in plaintext and no entry.

Now the entry is committed first, the files go into a private hidden
directory beside the target and are renamed into place only when all of them
are written and synced. So:

- the entry cannot be committed (lock held, in either mode): exit 11, no
  directory, no plaintext anywhere, no entry;
- a failure half-way (a real write error: a file-size limit the attachment
  exceeds, set on the real process; an interrupt and a target that appears
  meanwhile, injected through a subclass of the sink): nothing left behind,
  and the entry says the export was attempted;
- success: exactly the expected files, 0600/0700, exactly one entry;
- hostile client and file names: refused, or exported without any path
  leaving the target.

Owner commands run as subprocesses of the real CLI on a real vault in a
temporary directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from confvault.errors import UnsafeInputError, VaultExistsError
from confvault.vault import Vault
from confvault.vault.ops.export_sinks import TEMP_MARK, DirectorySink

PASSPHRASE = "correct horse battery staple"
FAILURE, LOCKED = 1, 11
MARKERS = (b"ANN-FIRST-SESSION", b"ANN-SECOND-SESSION", b"ANN-CONSENT-PDF")
ATTACHMENT_SIZE = 2_500_000
FILE_SIZE_LIMIT = 1 << 20  # below the attachment, above anything else written


@dataclass
class Practice:
    root: Path

    @property
    def vault(self) -> Path:
        return self.root / "vault"

    @property
    def state(self) -> Path:
        return self.root / "xdg"

    @property
    def requests(self) -> Path:
        """The target's parent: where the owner keeps records requests."""
        return self.root / "requests"

    @property
    def target(self) -> Path:
        return self.requests / "ann-2026"

    def run(
        self,
        *args: str,
        stdin: str = "",
        lock_timeout: float | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, XDG_STATE_HOME=str(self.state))
        env.pop("CONFVAULT_DEBUG", None)
        if lock_timeout is not None:
            env["CONFVAULT_LOCK_TIMEOUT"] = str(lock_timeout)
        argv = [sys.executable, "-m", "confvault", "--vault", str(self.vault)]
        return subprocess.run(
            [*argv, "--passphrase-file", str(self.root / "pass"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
            preexec_fn=preexec,  # only setrlimit, in the child
        )

    def owner(self, *args: str, stdin: str = "") -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def exports(self) -> list[dict[str, object]]:
        return json.loads(self.owner("audit", "--action", "export", "--json"))

    def open(self) -> Vault:
        return Vault.open(
            self.vault,
            passphrase=PASSPHRASE.encode(),
            state_dir=self.state / "confvault",
        )


def _tree(top: Path) -> dict[str, str]:
    """Every entry under ``top``: digest, mode and kind (links not followed)."""
    out = {}
    for path in sorted(top.rglob("*")):
        info = path.lstat()
        rel, mode = str(path.relative_to(top)), oct(info.st_mode & 0o777)
        if stat.S_ISLNK(info.st_mode):
            out[rel] = "link:" + os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            out[rel] = f"{mode}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
        else:
            out[rel] = f"{mode}:dir"
    return out


def _plaintext_under(top: Path) -> list[str]:
    """Files under ``top`` holding any of the record's plaintext."""
    found = []
    for path in top.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(m in data for m in MARKERS):
                found.append(str(path.relative_to(top)))
    return sorted(found)


@pytest.fixture(scope="module")
def _practice_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One practice, built once through the real CLI; each test gets a copy."""
    tmp_path = tmp_path_factory.mktemp("practice")
    p = Practice(tmp_path)
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    (tmp_path / "pass").chmod(0o600)
    p.owner(
        "init",
        "--classic",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--no-recovery-key",
    )
    p.owner("client", "add", "Ann Example", "--field", "dob=1990-01-01")
    for date, text in (("2020-01-05", MARKERS[0]), ("2020-02-01", MARKERS[1])):
        p.owner(
            "note", "add", "Ann Example", "--date", date, stdin=text.decode() + "\n"
        )
    # Attached last, so dated today: the export writes it after both notes.
    pdf = tmp_path / "consent form.pdf"
    pdf.write_bytes(MARKERS[2] + os.urandom(ATTACHMENT_SIZE))
    (tmp_path / "pdf.sha256").write_text(hashlib.sha256(pdf.read_bytes()).hexdigest())
    p.owner("attach", "Ann Example", str(pdf))
    pdf.unlink()  # from now on the only plaintext is what an export writes
    p.requests.mkdir()
    (p.requests / "earlier-request.txt").write_text("someone else's file\n")
    assert _plaintext_under(tmp_path) == []
    return tmp_path


@pytest.fixture
def practice(_practice_template: Path, tmp_path: Path) -> Practice:
    shutil.copytree(_practice_template, tmp_path, symlinks=True, dirs_exist_ok=True)
    return Practice(tmp_path)


@contextlib.contextmanager
def _lock_held_by_another_process(vault: Path, mode: str) -> Iterator[None]:
    """A separate process holding the vault lock (LOCK_EX or LOCK_SH)."""
    code = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, getattr(fcntl, sys.argv[2]))\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(vault / "lock"), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


# --- (a) the audit entry cannot be committed: nothing is written ----------------------


@pytest.mark.parametrize("mode", ["LOCK_SH", "LOCK_EX"])
def test_export_on_a_held_lock_writes_nothing_and_says_locked(
    practice: Practice, mode: str
) -> None:
    before = _tree(practice.requests)
    with _lock_held_by_another_process(practice.vault, mode):
        done = practice.run(
            "export", "Ann Example", "--out", str(practice.target), lock_timeout=0.3
        )
    assert done.returncode == LOCKED, done.stderr
    assert "locked by another confvault process" in done.stderr
    assert _tree(practice.requests) == before
    assert _plaintext_under(practice.root) == []
    assert practice.exports() == []


# --- (b) a failure half-way: nothing left, the attempt audited ------------------------


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_a_write_error_half_way_leaves_nothing_but_the_audit_entry(
    practice: Practice,
) -> None:
    """A real write error: the attachment (written after both notes) exceeds
    the process's file-size limit, so write(2) fails with EFBIG."""
    before = _tree(practice.requests)
    done = practice.run(
        "export", "Ann Example", "--out", str(practice.target), preexec=_limit_file_size
    )
    assert done.returncode == FAILURE, done.stderr
    assert "cannot write attachments/" in done.stderr
    assert "File too large" in done.stderr
    assert _tree(practice.requests) == before
    assert _plaintext_under(practice.root) == []
    (entry,) = practice.exports()
    assert entry["client_name"] == "Ann Example"
    assert entry["details"] == {"notes": 2, "attachments": 1, "psychotherapy": False}
    assert practice.run("verify").returncode == 0


class _InterruptedSink(DirectorySink):
    """Ctrl-C after two files: the sink checks they really are on disk first."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.seen: list[str] = []

    def add(self, path: str, data: bytes) -> None:
        super().add(path, data)
        self.seen.append(path)
        if len(self.seen) == 2:
            (temp,) = [n for n in os.listdir(self.root.parent) if TEMP_MARK in n]
            on_disk = self.root.parent / temp
            assert on_disk.stat().st_mode & 0o777 == 0o700
            assert _plaintext_under(on_disk) == sorted(self.seen)
            raise KeyboardInterrupt


def test_an_interrupt_half_way_leaves_nothing_but_the_audit_entry(
    practice: Practice,
) -> None:
    before = _tree(practice.requests)
    sink = _InterruptedSink(practice.target)
    vault = practice.open()
    with pytest.raises(KeyboardInterrupt):
        vault.export_client("Ann Example", sink)
    assert len(sink.seen) == 2
    assert _tree(practice.requests) == before
    assert _plaintext_under(practice.root) == []
    assert len(practice.exports()) == 1


class _RacedSink(DirectorySink):
    """Someone creates the target (with a file of theirs) just before the rename."""

    def finish(self) -> None:
        self.root.mkdir()
        (self.root / "theirs.txt").write_text("not ours\n")
        super().finish()


def test_a_target_that_appears_meanwhile_is_left_alone(practice: Practice) -> None:
    vault = practice.open()
    with pytest.raises(VaultExistsError):
        vault.export_client("Ann Example", _RacedSink(practice.target))
    assert sorted(os.listdir(practice.requests)) == ["ann-2026", "earlier-request.txt"]
    assert os.listdir(practice.target) == ["theirs.txt"]
    assert _plaintext_under(practice.root) == []


def test_an_existing_target_is_refused_before_anything(practice: Practice) -> None:
    practice.target.mkdir()
    before = _tree(practice.requests)
    done = practice.run("export", "Ann Example", "--out", str(practice.target))
    assert done.returncode == FAILURE
    assert "exists; choose a new directory" in done.stderr
    assert _tree(practice.requests) == before
    assert practice.exports() == []


# --- (c) success ----------------------------------------------------------------------


def test_a_successful_export_is_exactly_the_record(practice: Practice) -> None:
    before = _tree(practice.requests)
    done = practice.run(
        "export", "Ann Example", "--out", str(practice.target), "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == str(practice.target)
    notes = json.loads(practice.owner("note", "list", "--json"))
    expected = {"index.md"}
    for note in notes:
        expected.add(f"notes/{note['date'][:10]}_{note['id']}.md")
        if note["kind"] == "attachment":
            expected.add(f"attachments/{note['id']}_consent_form.pdf")
            pdf = practice.target / f"attachments/{note['id']}_consent_form.pdf"
    files = {
        str(p.relative_to(practice.target))
        for p in practice.target.rglob("*")
        if not p.is_dir()
    }
    assert files == expected
    assert len(expected) == 5
    for path in [practice.target, *practice.target.rglob("*")]:
        info = path.lstat()
        assert stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)
        wanted = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
        assert info.st_mode & 0o777 == wanted, path
    digest = (practice.root / "pdf.sha256").read_text()
    assert hashlib.sha256(pdf.read_bytes()).hexdigest() == digest
    after = _tree(practice.requests)
    assert {k: v for k, v in after.items() if not k.startswith("ann-2026")} == before
    assert len(practice.exports()) == 1


# --- (d) hostile names ----------------------------------------------------------------


REFUSED = [
    "..",
    ".",
    "../../etc/passwd",
    "/",
    "a/b",
    "a\\b",
    "a\x00b",
    "x" * 201,
    "a\nb",
]


def test_a_path_like_client_name_is_refused(practice: Practice) -> None:
    name_file = practice.root / "name"
    vault = practice.open()
    for name in REFUSED:
        name_file.write_bytes(name.encode())
        done = practice.run("client", "add", "--name-file", str(name_file))
        assert done.returncode != 0, name
        with pytest.raises(UnsafeInputError):
            vault.add_client(name)
    assert [c.name for c in vault.clients()] == ["Ann Example"]


HOSTILE = [
    "...",
    "....",
    "~",
    "-rf --out ..",
    "$(touch pwned); rm -rf ~",
    "* | index.md",
    "..\u2024..\u2215etc",  # one-dot leaders and a division slash: look-alikes
    "x" * 200,
]


def test_a_hostile_client_name_never_becomes_a_path(practice: Practice) -> None:
    """Names the validator lets through, with an attachment whose file name is
    all dots, a dash and 240 bytes of non-ASCII: every export stays inside
    its target, in portable one- or two-part paths."""
    ugly = practice.root / ("..." + "-" + "é" * 120 + ".pdf")  # 248 bytes
    ugly.write_bytes(b"pdf")
    vault = practice.open()
    for number, name in enumerate(HOSTILE):
        vault.add_client(name)
        vault.add_note(name, b"note\n")
        vault.add_attachment(name, ugly)
        before = _tree(practice.requests)
        target = practice.requests / f"hostile-{number}"
        done = practice.run("export", "--out", str(target), "--json", "--", name)
        assert done.returncode == 0, (name, done.stderr)
        assert json.loads(done.stdout)["attachments"] == 1
        after = _tree(practice.requests)
        new = {k for k in after if k not in before}
        assert all(k.split("/")[0] == target.name for k in new), (name, new)
        paths = [p.relative_to(target) for p in target.rglob("*")]
        assert {str(p) for p in paths if len(p.parts) == 1} == {
            "attachments",
            "index.md",
            "notes",
        }
        for rel in paths:
            assert len(rel.parts) <= 2
            assert all(len(part) <= 120 and part.isascii() for part in rel.parts)
            assert not any(part.startswith(".") for part in rel.parts)
        (attachment,) = [p for p in paths if p.parent.name == "attachments"]
        assert attachment.name.endswith("_-_.pdf")  # "...-" + "é" * 120 + ".pdf"
        assert f"# Record of {name}" in (target / "index.md").read_text()


def test_the_sink_refuses_a_path_that_would_leave_the_target(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "out")
    sink.begin()
    try:
        for path in ["../x", "/etc/x", "a/../../x", ".hidden", "a/b/c", "a\x00b", ""]:
            with pytest.raises(UnsafeInputError):
                sink.add(path, b"x")
        with pytest.raises(UnsafeInputError):
            sink.add("x" * 256, b"x")
    finally:
        sink.abort()
    assert os.listdir(tmp_path) == []
