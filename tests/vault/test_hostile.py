"""Hostile file systems and inputs: a clear error, nothing half-written,
nothing written outside the vault, nothing leaked."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from confvault.errors import StorageError, UnsafeInputError
from confvault.vault import Vault
from tests.vault.conftest import PASSPHRASE, reopen

CONFVAULT = str(Path(sys.executable).parent / "confvault")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.name != "lock"
    }


@pytest.mark.parametrize("planted", ["lock", "manifest", "tmp", "objects"])
def test_planted_symlink_for_any_vault_path_is_refused(
    vault: Vault, state_dir, tmp_path, planted
) -> None:
    vault.add_client("Ann")
    target = vault.root / planted
    outside = tmp_path / f"outside-{planted}"
    if target.is_dir() or target.exists():
        target.rename(outside)
    else:
        outside.write_text("")
    target.symlink_to(outside)
    with pytest.raises(UnsafeInputError, match="symlink"):
        reopen(vault, state_dir).add_client("Bob")


def test_file_owned_by_another_user_is_refused(vault: Vault, state_dir) -> None:
    if os.getuid() != 0:
        pytest.skip("changing a file's owner needs root (CI runs as root)")
    os.chown(vault.root, 4242, 4242)
    with pytest.raises(UnsafeInputError, match="another user"):
        reopen(vault, state_dir)


def _limited(limit_bytes: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_full_disk_gives_clear_error_and_changes_nothing(
    vault: Vault, state_dir, tmp_path
) -> None:
    vault.add_client("Ann")
    vault.add_note("Ann", b"committed before")
    before = _snapshot(vault.root)
    big = tmp_path / "scan.pdf"
    big.write_bytes(os.urandom(3_000_000))
    secret = tmp_path / "pass"
    secret.write_bytes(PASSPHRASE + b"\n")
    secret.chmod(0o600)
    done = subprocess.run(
        [
            CONFVAULT,
            "--vault",
            str(vault.root),
            "--passphrase-file",
            str(secret),
            "attach",
            "Ann",
            str(big),
        ],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=_limited(1_000_000),
        env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / "xdg")),
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("confvault: error: cannot write")
    assert "File too large" in done.stderr
    assert "Traceback" not in done.stderr
    assert (
        _snapshot(vault.root) == before
    )  # no partial state (the temp file was removed)
    again = reopen(vault, state_dir)
    assert [n.size for n in again.notes()] == [len(b"committed before")]
    assert again.verify(deep=True).ok


def test_storage_error_is_typed(vault: Vault, state_dir, tmp_path) -> None:
    """In-process: an OSError from the disk becomes StorageError, nothing committed."""
    vault.add_client("Ann")
    before = _snapshot(vault.root)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
        big = b"x" * 400_000
        with pytest.raises(StorageError, match="File too large"):
            vault.add_note("Ann", big)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert _snapshot(vault.root) == before


@pytest.mark.parametrize(
    "title", ["../../etc/passwd", "x\x00y", "\u202egnp.exe", "t" * 201]
)
def test_hostile_titles(vault: Vault, title: str) -> None:
    vault.add_client("Ann")
    if "/" in title and "\x00" not in title:
        note = vault.add_note("Ann", b"x", title=title)  # a title is never a path
        assert vault.note(note.id).info.title == title
    else:
        with pytest.raises(UnsafeInputError):
            vault.add_note("Ann", b"x", title=title)


def test_huge_field_and_name_refused(vault: Vault) -> None:
    with pytest.raises(UnsafeInputError):
        vault.add_client("A", {"notes": "x" * 2001})
    with pytest.raises(UnsafeInputError):
        vault.add_client("n" * 201)
    assert vault.clients() == []


def test_nothing_secret_leaks_to_argv_editor_env_or_disk(tmp_path: Path) -> None:
    """Run real commands; scan every file left behind, the editor's environment,
    and our own argv for the passphrase and the note's text."""
    state = tmp_path / "xdg"
    vault_dir = tmp_path / "vault"
    secret = tmp_path / "pass"
    secret.write_bytes(PASSPHRASE + b"\n")
    secret.chmod(0o600)
    plaintext = "Client disclosed the secret-marker-7731 in session"
    env = dict(
        os.environ, XDG_STATE_HOME=str(state), CONFVAULT_PASSPHRASE_FILE=str(secret)
    )
    base = [CONFVAULT, "--vault", str(vault_dir)]
    runs = [
        subprocess.run(
            [
                *base,
                "init",
                "--classic",
                "--work-factor",
                "10",
                "--allow-weak-work-factor",
                "--no-recovery-key",
            ],
            capture_output=True,
            env=env,
            check=True,
        ),
        subprocess.run(
            [*base, "client", "add", "Zed Marker"],
            capture_output=True,
            env=env,
            check=True,
        ),
        subprocess.run(
            [*base, "note", "add", "Zed Marker", "--title", "title-marker-5519"],
            input=plaintext.encode(),
            capture_output=True,
            env=env,
            check=True,
        ),
        subprocess.run(
            [*base, "note", "search", "secret-marker"],
            capture_output=True,
            env=env,
            check=True,
        ),
        subprocess.run([*base, "status"], capture_output=True, env=env, check=True),
    ]
    for run in runs:
        assert PASSPHRASE not in run.stdout + run.stderr
        assert all(PASSPHRASE.decode() not in arg for arg in run.args)
    secrets = [PASSPHRASE, b"secret-marker-7731", b"title-marker-5519", b"Zed Marker"]
    for path in [*vault_dir.rglob("*"), *state.rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert not any(s in data for s in secrets), path
    # The editor sees no passphrase variables (see tests/cli/test_editor.py for the file).
    report = tmp_path / "editor-env"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\nenv > "{report}"\nprintf "edited text" > "$1"\n')
    editor.chmod(0o700)
    import pty  # the editor is only used when stdin is a terminal

    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(
            env, EDITOR=str(editor), CONFVAULT_PASSPHRASE="inline-secret-99"
        )
        os.execv(
            CONFVAULT,
            [CONFVAULT, "--vault", str(vault_dir), "note", "add", "Zed Marker"],
        )
    output = b""
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    editor_env = report.read_text()
    assert "CONFVAULT_PASSPHRASE" not in editor_env
    assert "inline-secret-99" not in editor_env
    assert PASSPHRASE.decode() not in editor_env
