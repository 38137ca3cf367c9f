"""Backups through the real restic binary, with the exact commands of docs/BACKUP.md:
a tar streamed into `restic backup --stdin`, and a snapshot directory; each is
restored from restic, verified keylessly, restored and opened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from confvault.vault import Vault
from tests.conftest import require_binary
from tests.vault.conftest import PASSPHRASE, WORK_FACTOR

# `confvault` with the backup commands registered (whether or not the CLI does yet).
SHIM = (
    "from confvault.cli import app, backup\n"
    "if not any(g.name == 'backup' for g in app.registered_groups):\n"
    "    app.add_typer(backup.app, name='backup')\n"
    "app()\n"
)
PRELUDE = 'set -euo pipefail\nconfvault() { "$CONFVAULT_PYTHON" -c "$CONFVAULT_SHIM" "$@"; }\n'

# docs/BACKUP.md, "restic: stream a tar" (backup, then restore)
STDIN_BACKUP = (
    "confvault backup create - | restic backup --stdin --stdin-filename vault.tar\n"
)
STDIN_RESTORE = """\
restic dump latest vault.tar > vault.tar
confvault backup verify vault.tar
confvault backup restore vault.tar "$NEW_VAULT"
"""
# docs/BACKUP.md, "Check a backup, keylessly" and "If one repository holds both kinds"
STDIN_CHECK = (
    "confvault backup verify <(restic dump --path /vault.tar latest vault.tar)\n"
)
# docs/BACKUP.md, "restic: a snapshot directory" (backup, then restore)
DIR_BACKUP = """\
rm -rf "$SNAP"
confvault backup create "$SNAP"
restic backup "$SNAP"
"""
DIR_RESTORE = """\
restic restore latest --target restic-restore
confvault backup verify "restic-restore$SNAP"
confvault backup restore "restic-restore$SNAP" "$NEW_VAULT"
"""


class Setup:
    def __init__(self, tmp: Path, repo: Path) -> None:
        self.tmp = tmp
        self.work = tmp / "work"
        self.work.mkdir()
        self.state = tmp / "xdg-state"
        self.vault = tmp / "vault"
        vault, _ = Vault.init(
            self.vault,
            PASSPHRASE,
            work_factor=WORK_FACTOR,
            min_work_factor=WORK_FACTOR,
            state_dir=self.state / "confvault",
        )
        vault.add_client("Ann")
        for number in range(3):
            vault.add_note("Ann", f"session {number}".encode())
        self.env = {
            **os.environ,
            "XDG_STATE_HOME": str(self.state),
            "CONFVAULT_VAULT": str(self.vault),
            "CONFVAULT_PYTHON": sys.executable,
            "CONFVAULT_SHIM": SHIM,
            "RESTIC_PASSWORD": "test",
            "RESTIC_REPOSITORY": str(repo / "repo"),
            "RESTIC_CACHE_DIR": str(repo / "cache"),
            "SNAP": str(tmp / "snap"),
            "NEW_VAULT": str(tmp / "restored"),
        }
        self.env.pop("CONFVAULT_PASSPHRASE_FILE", None)
        self.env.pop("CONFVAULT_PASSPHRASE", None)
        if not (repo / "repo").exists():
            self.sh("restic init --quiet\n")

    def sh(self, script: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["bash", "-c", PRELUDE + script],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def check_restored(self) -> None:
        restored = self.tmp / "restored"
        for path in [restored, *restored.rglob("*")]:
            assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), (
                path
            )
        vault = Vault.open(
            restored, passphrase=PASSPHRASE, state_dir=self.tmp / "new-machine"
        )
        bodies = sorted(vault.note(n.id).body for n in vault.notes("Ann"))
        assert bodies == [b"session 0", b"session 1", b"session 2"]
        assert vault.verify(deep=True).findings == ()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One restic repository for the module (`restic init` alone takes seconds)."""
    require_binary("restic")
    return tmp_path_factory.mktemp("restic")


@pytest.fixture
def setup(tmp_path: Path, repo: Path) -> Setup:
    return Setup(tmp_path, repo)


def test_restic_stdin_tar(setup: Setup) -> None:
    backed_up = setup.sh(STDIN_BACKUP)
    assert "backed up vault" in backed_up.stderr  # the summary never mixes with the tar
    checked = setup.sh(STDIN_CHECK)
    assert checked.stdout.startswith("vault ok: generation")
    restored = setup.sh(STDIN_RESTORE)
    assert "vault ok: generation" in restored.stdout
    assert "restored vault" in restored.stdout
    setup.check_restored()


def test_restic_snapshot_directory(setup: Setup) -> None:
    setup.sh(DIR_BACKUP)
    setup.sh('rm -rf "$SNAP"\n')  # the machine is lost; only restic has it
    restored = setup.sh(DIR_RESTORE)
    assert "vault ok: generation" in restored.stdout
    assert ", 0 warnings" in restored.stdout  # restic kept the private modes
    setup.check_restored()
