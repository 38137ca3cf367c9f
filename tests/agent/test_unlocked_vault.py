"""``unlocked_vault(opts)``, for shell completion: the vault through a live
agent only, never a prompt, never a line printed; None otherwise."""

from __future__ import annotations

import socket

import pytest

from confvault.agent import paths
from confvault.cli._context import Options, unlocked_vault
from tests.agent.conftest import World


def test_unlocked_vault_opens_only_through_a_live_agent_and_says_nothing(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    opts = Options(vault=world.vault)
    assert unlocked_vault(opts) is None  # locked: no prompt, nothing printed
    directory = paths.ensure_runtime_dir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(paths.socket_path(directory, world.vault)))
    stale.close()
    assert unlocked_vault(opts) is None  # a stale socket: still silent
    world.unlock("--allow-jobs")
    world.ok("client", "add", "Ann Example")
    capfd.readouterr()
    vault = unlocked_vault(opts)
    assert vault is not None
    assert [c.name for c in vault.clients()] == ["Ann Example"]
    assert capfd.readouterr() == ("", "")
    world.ok("lock")
    assert unlocked_vault(opts) is None
    assert capfd.readouterr() == ("", "")
