"""Where the agents listen: a private directory of this user, or none."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest

from confvault.agent import client, paths
from confvault.errors import AgentError
from tests.agent.conftest import World


def test_the_runtime_directory_is_private_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert paths.runtime_dir() == runtime / "confvault"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (runtime / "confvault").symlink_to(elsewhere)
    with pytest.raises(AgentError, match="is not a private directory of this user"):
        paths.ensure_runtime_dir()
    assert paths.checked_runtime_dir() is None  # commands: no agent, silently
    (runtime / "confvault").unlink()
    (runtime / "confvault").mkdir(mode=0o755)
    (runtime / "confvault").chmod(0o755)
    with pytest.raises(AgentError, match="is not a private directory of this user"):
        paths.ensure_runtime_dir()
    (runtime / "confvault").chmod(0o700)
    assert paths.ensure_runtime_dir() == runtime / "confvault"


def test_a_runtime_directory_open_to_others_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    assert paths.runtime_dir() == Path(f"/tmp/confvault-{os.getuid()}")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert paths.runtime_dir() == Path(f"/tmp/confvault-{os.getuid()}")


def _closed(sock: socket.socket) -> bool:
    """The agent closed the connection without a word (a reset: unread bytes)."""
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True


def test_an_oversized_cut_or_too_deep_message_is_dropped_and_the_agent_serves_on(
    world: World,
) -> None:
    world.unlock("--allow-jobs")
    info = client.probe(world.vault)
    assert info is not None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(info.socket))
        sock.sendall(struct.pack(">I", 0xFFFFFFFF) + b"{")
        assert _closed(sock)  # without an answer
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(info.socket))
        sock.sendall(struct.pack(">I", 100) + b"{}")
        sock.shutdown(socket.SHUT_WR)  # cut short
        assert _closed(sock)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(info.socket))
        nested = b"[" * 500_000  # within the size bound, beyond any parser's depth
        sock.sendall(struct.pack(">I", len(nested)) + nested)
        assert _closed(sock)
    again = client.probe(world.vault)
    assert again is not None
    assert again.pid == info.pid
