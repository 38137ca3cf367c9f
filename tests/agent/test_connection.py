"""One connection to the agent carries a command's requests, in turn, while the
agent goes on serving every other connection; `lock` ends the held ones."""

from __future__ import annotations

import json
import socket

import pytest

from confvault.agent import client, protocol
from confvault.errors import AgentError, AgentLostError
from tests.agent.conftest import World


def test_one_connection_carries_many_requests_beside_other_commands(
    world: World,
) -> None:
    pid = world.unlock("--allow-jobs")
    info, sock = client.connected(world.vault)
    assert info is not None
    assert sock is not None
    assert info.pid == pid
    keys = client.AgentKeys(info, sock)
    try:
        # The hello's connection answers more requests, one after the other.
        signatures = [keys.sign(b"the same message") for _ in range(3)]
        assert len(set(signatures)) == 1  # Ed25519: deterministic
        assert len(signatures[0]) == 64
        assert keys.hello().pid == pid
        protocol.send(sock, {"protocol": protocol.PROTOCOL, "op": "hello"})
        assert protocol.receive(sock)["pid"] == pid  # the very same socket
        # Held open, it delays no other command.
        added = world.run("client", "add", "Ann Example", "--json")
        assert (added.returncode, added.stderr) == (0, "")
        assert json.loads(added.stdout)["key_source"] == "agent"
        # `lock` ends the agent and the connections it held.
        assert world.ok("lock").stdout == "locked\n"
        with pytest.raises((AgentError, OSError)):  # closed: a cut pipe or an end
            _hello(sock)
        with pytest.raises(AgentLostError):
            keys.sign(b"after the lock")
    finally:
        keys.close()


def _hello(sock: socket.socket) -> None:
    protocol.send(sock, {"protocol": protocol.PROTOCOL, "op": "hello"})
    protocol.receive(sock)
