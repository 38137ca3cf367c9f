"""Issue 13, finding 4: no core dump holds a key or a draft, and the editor's
file is removed on every exit path.

Real subprocesses of the CLI, a real `$EDITOR` script, real signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from confvault.cli import _editor

PASSPHRASE = "correct horse battery staple"


def _env(tmp_path: Path, editor: Path) -> dict[str, str]:
    return dict(
        os.environ,
        EDITOR=str(editor),
        XDG_STATE_HOME=str(tmp_path / "xdg"),
        XDG_RUNTIME_DIR="/dev/shm",
    )


def _cli(tmp_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "confvault",
        "--vault",
        str(tmp_path / "vault"),
        "--passphrase-file",
        str(tmp_path / "pass"),
    ]


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    (tmp_path / "pass").chmod(0o600)
    for args in (
        [
            "init",
            "--classic",
            "--work-factor",
            "10",
            "--allow-weak-work-factor",
            "--no-recovery-key",
        ],
        ["client", "add", "Ann"],
    ):
        done = subprocess.run(
            [*_cli(tmp_path), *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    return tmp_path


def _waiting_editor(tmp_path: Path) -> Path:
    """An editor that reports its parent's limits and flags, then waits."""
    script = tmp_path / "editor"
    report = tmp_path / "report"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$1" > {report}.path\n'
        f"ulimit -c > {report}.core\n"
        f"grep -E '^(Uid|CapEff)' /proc/$PPID/status > {report}.status\n"
        f"echo $$ > {report}.pid\n"
        f"touch {report}.ready\n"
        "exec sleep 30\n"
    )
    script.chmod(0o700)
    return script


_MASTERS: list[int] = []


def _start_edit(tmp_path: Path) -> subprocess.Popen[bytes]:
    editor = _waiting_editor(tmp_path)
    master, terminal = os.openpty()  # a terminal on stdin: `note add` opens $EDITOR
    proc = subprocess.Popen(
        [*_cli(tmp_path), "note", "add", "Ann"],
        env=_env(tmp_path, editor),
        cwd=tmp_path,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(terminal)
    _MASTERS.append(master)  # kept open while the edit runs
    deadline = time.monotonic() + 30
    while not (tmp_path / "report.ready").exists():
        assert time.monotonic() < deadline, "the editor never started"
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_edit_leaves_no_draft_and_no_core(
    vault: Path, sig: signal.Signals
) -> None:
    proc = _start_edit(vault)
    draft = Path((vault / "report.path").read_text().strip())
    assert draft.exists()
    assert (vault / "report.core").read_text().strip() == "0"  # inherited by $EDITOR
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    editor = int((vault / "report.pid").read_text())
    with pytest.raises(ProcessLookupError):  # the editor was stopped too
        os.kill(editor, 0)
    assert not draft.exists()
    assert not draft.parent.exists()
    assert not list(vault.glob("core*"))


def test_a_key_holding_process_allows_no_core_file(vault: Path) -> None:
    proc = _start_edit(vault)
    try:
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        core = next(line for line in limits.splitlines() if "core file" in line)
        assert core.split()[-3:-1] == ["0", "0"]  # soft and hard limit
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_the_hardening_call_itself(tmp_path: Path) -> None:
    code = (
        "from confvault.vault.store import hardening as h; import resource;"
        "h.harden_process();"
        "print(resource.getrlimit(resource.RLIMIT_CORE), h.is_dumpable())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "(0, 0) False"


def _draft_dir(
    base: Path, pid: int, files: dict[str, bytes], tail: str = "abc123"
) -> Path:
    path = base / f"confvault-edit-{os.getuid()}-{pid}-{tail}"
    path.mkdir(mode=0o700)
    for name, data in files.items():
        (path / name).write_bytes(data)
    return path


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_stale_draft_from_a_crashed_edit_is_removed_and_nothing_else(
    tmp_path: Path,
) -> None:
    dead = _dead_pid()
    stale = _draft_dir(
        tmp_path,
        dead,
        {"note.md": b"a draft from a killed edit", ".note.md.swp": b"vim's copy"},
    )
    alive = _draft_dir(tmp_path, os.getpid(), {"note.md": b"an edit going on"})
    odd = tmp_path / f"confvault-edit-{os.getuid()}-{dead}-odd"
    odd.mkdir(mode=0o700)
    (odd / "sub").mkdir()  # a directory inside: not a draft directory
    (odd / "important.txt").write_bytes(b"not ours to remove")
    shared = _draft_dir(tmp_path, dead, {"note.md": b"not private"}, "shared")
    shared.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "note.md").write_bytes(b"keep")
    link = tmp_path / f"confvault-edit-{os.getuid()}-{dead}-link"
    link.symlink_to(elsewhere)

    assert _editor.remove_stale(tmp_path) == 1

    assert not stale.exists()
    assert (alive / "note.md").read_bytes() == b"an edit going on"
    assert (odd / "important.txt").read_bytes() == b"not ours to remove"
    assert (shared / "note.md").read_bytes() == b"not private"
    assert (elsewhere / "note.md").read_bytes() == b"keep"
    assert link.is_symlink()
