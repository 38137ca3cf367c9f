"""Issue 13, finding F4: backups obey this machine's memory of the vault.

The nightly `backup create` job runs on the owner's machine, which remembers
the highest generation and the signer of the vault, and which vault it knew
at that path. An attacker who can write the vault directory rolls it back to
an old copy (say, from before a revocation) or replaces it wholesale with a
vault of their own: every command that opens the vault refuses, and so must
the backup, or the backups quietly fill with the attacker's state. `backup
verify` of the vault directory itself reports what `verify` reports.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.reliability.practice import INTEGRITY, Practice
from tests.reliability.test_attack_vaultdir import practice

__all__ = ["practice"]  # the fixture, imported for pytest


def _rolled_back(practice: Practice) -> Path:
    """The vault as it was, copied aside, then written on; the copy put back."""
    old = practice.root / "vault.before"
    shutil.copytree(practice.vault, old, symlinks=True)
    practice.owner("note", "add", "Ann", stdin="Ann: after the copy.\n")
    shutil.rmtree(practice.vault)
    old.rename(practice.vault)
    return practice.vault


def test_backup_create_refuses_a_rolled_back_vault(practice: Practice) -> None:
    _rolled_back(practice)
    assert practice.run("note", "list").returncode == INTEGRITY  # as every command
    dest = practice.root / "nightly.tar"
    done = practice.run("backup", "create", str(dest))
    assert done.returncode == INTEGRITY, done.stderr
    assert "the vault was rolled back: generation" in done.stderr
    assert not dest.exists()
    as_dir = practice.root / "nightly"
    done = practice.run("backup", "create", str(as_dir))
    assert done.returncode == INTEGRITY, done.stderr
    assert not as_dir.exists()


def test_backup_create_refuses_a_vault_replaced_wholesale(practice: Practice) -> None:
    shutil.rmtree(practice.vault)
    # The attacker's own vault at the same path, built with their own memory.
    attacker = Practice(practice.root / "attacker")
    attacker.root.mkdir()
    shutil.copy2(practice.root / "pass", attacker.root / "pass")
    attacker.owner(
        "init",
        "--classic",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--no-recovery-key",
    )
    attacker.vault.rename(practice.vault)
    dest = practice.root / "nightly.tar"
    done = practice.run("backup", "create", str(dest))
    assert done.returncode == INTEGRITY, done.stderr
    assert "is not the one this machine knew there" in done.stderr
    assert not dest.exists()


def test_backup_verify_of_the_vault_directory_reports_a_rollback(
    practice: Practice,
) -> None:
    vault = _rolled_back(practice)
    done = practice.run("backup", "verify", str(vault), "--json")
    assert done.returncode == INTEGRITY, done.stderr
    codes = [f["code"] for f in json.loads(done.stdout)["findings"]]
    assert "rollback" in codes


def test_a_backup_copy_elsewhere_is_not_called_a_rollback(practice: Practice) -> None:
    """An older copy at another path is what a backup is: no memory errors."""
    copy = practice.root / "copy"
    practice.owner("backup", "create", str(copy))
    practice.owner("note", "add", "Ann", stdin="Ann: after the backup.\n")
    done = practice.run("backup", "verify", str(copy), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["findings"] == []
    practice.owner("backup", "create", str(practice.root / "again.tar"))  # the live one
