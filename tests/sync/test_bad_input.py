"""Bad input to sync and clone: a clear error, a documented exit code, and
nothing changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.sync.conftest import Device


def _new_vault(device: Device) -> None:
    device.init_vault()


def _sync_dir(device: Device) -> Path:
    return device.state / "confvault" / "sync"


def test_a_remote_that_is_not_a_repository_leaves_nothing_behind(
    devices, tmp_path: Path, remote: Path
) -> None:
    a = devices("a")
    _new_vault(a)
    not_a_repo = tmp_path / "plain-dir"
    not_a_repo.mkdir()
    result = a.run("sync", "init", str(not_a_repo), "--device", "laptop")
    assert result.exit_code == 1, result.output
    assert "fetching from the remote failed" in result.stderr
    assert list(_sync_dir(a).iterdir()) == []
    assert a.json("status")["sync"] is None
    # and the vault can still be connected to a real remote
    assert (
        a.json("sync", "init", str(remote), "--device", "laptop")["action"] == "pushed"
    )


def test_a_missing_vault(devices, remote: Path) -> None:
    a = devices("a")
    result = a.run("sync")
    assert result.exit_code == 10, result.output
    assert "no vault at" in result.stderr


def test_a_vault_not_connected(devices) -> None:
    a = devices("a")
    _new_vault(a)
    result = a.run("sync")
    assert result.exit_code == 1, result.output
    assert "not connected to a remote" in result.stderr
    assert "confvault sync init REMOTE" in result.stderr


def test_a_vault_already_syncing_from_another_directory(
    first: Device, remote: Path
) -> None:
    again = first.run("sync", "init", str(remote))
    assert again.exit_code == 1, again.output
    assert "already synced on this device" in again.stderr
    copy = Device(
        "a2", first.vault.parent / "copy", first.state, first.pass_file, first.runner
    )
    shutil.copytree(first.vault, copy.vault, symlinks=True)
    before = copy.files()
    result = copy.run("sync")
    assert result.exit_code == 1, result.output
    assert f"synced on this device from {first.vault}" in result.stderr
    assert copy.files() == before


@pytest.mark.parametrize(
    "name", ["../etc", "-rf", "a b", "x\ny", "", "a" * 65, "$(reboot)", "é"]
)
def test_a_hostile_device_name_is_refused(devices, remote: Path, name: str) -> None:
    a = devices("a")
    _new_vault(a)
    result = a.run("sync", "init", str(remote), "--device", name)
    assert result.exit_code == 2, result.output
    assert "a device name is 1 to 64 letters" in result.stderr
    assert not _sync_dir(a).exists()


def test_clone_into_an_existing_directory(first: Device, devices, remote: Path) -> None:
    b = devices("b")
    b.vault.mkdir()
    result = b.run("clone", str(remote))
    assert result.exit_code == 1, result.output
    assert "already exists" in result.stderr
    assert list(b.vault.iterdir()) == []


def test_clone_of_an_empty_remote(devices, remote: Path) -> None:
    b = devices("b")
    result = b.run("clone", str(remote))
    assert result.exit_code == 1, result.output
    assert "the remote holds no vault yet" in result.stderr
    assert not b.vault.exists()
    assert list(_sync_dir(b).iterdir()) == []


def test_a_remote_url_of_a_command_transport_is_refused(devices) -> None:
    """git's ext:: transport would run a command: it is not allowed."""
    a = devices("a")
    _new_vault(a)
    marker = a.vault.parent / "ran"
    result = a.run("sync", "init", f"ext::sh -c touch% {marker}", "--device", "x")
    assert result.exit_code == 1, result.output
    assert not marker.exists()


def test_sync_never_prompts_without_a_terminal(first: Device) -> None:
    """A nightly job with no passphrase source and no unlock session: a
    clear usage error, no prompt, nothing changed."""
    before = first.files()
    result = first.run("sync", passphrase=False)
    assert result.exit_code == 2, result.output
    assert "passphrase" in result.stderr
    assert first.files() == before
