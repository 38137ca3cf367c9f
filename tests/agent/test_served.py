"""`unlock` starts the user's command server and `lock --all` ends it; a
served command uses the agent when the process that typed it has a terminal
(even with its stdin piped), and counts as a job when it has none."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tests.agent.conftest import World

SCRIPT = Path(sys.executable).parent / "confvault"  # the tiny client


def _env(world: World) -> dict[str, str]:
    """The world's environment with the command server allowed."""
    return {k: v for k, v in world.env.items() if k != "CONFVAULT_NO_SERVER"}


def _server(world: World, verb: str) -> int:
    return subprocess.run(
        [sys.executable, "-m", "confvault.server", verb],
        env=_env(world),
        timeout=30,
        check=False,
    ).returncode


def _wait_server(world: World) -> None:
    deadline = time.monotonic() + 60  # it imports everything; a loaded machine
    while _server(world, "status") != 0:
        assert time.monotonic() < deadline, "the command server never answered"
        time.sleep(0.2)


def _client(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    """``confvault ARGS`` through the tiny client, without a terminal."""
    return subprocess.run(
        [str(SCRIPT), *args],
        env=_env(world),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )


def _served(
    world: World, line: str, *, terminal: bool
) -> subprocess.CompletedProcess[str]:
    """``line`` run by a shell: under `script` (a controlling terminal), or in
    a session of its own (none)."""
    command = ["script", "-qec", line, "/dev/null"] if terminal else ["sh", "-c", line]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=_env(world),
        timeout=60,
        check=False,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )


def test_unlock_starts_the_server_and_a_piped_note_from_a_terminal_uses_the_agent(
    world: World,
) -> None:
    client_id = json.loads(
        world.ok("client", "add", "Ann Example", "--json", passphrase=True).stdout
    )["id"]
    unlocked = _client(
        world, "--vault", str(world.vault), "--passphrase-file", str(world.pass_file),
        "unlock",
    )  # fmt: skip
    assert unlocked.returncode == 0, unlocked.stderr
    world.agent_pid()
    try:
        _wait_server(world)
        vault = shlex.quote(str(world.vault))
        add = (
            f"printf 'piped session\\n' | {SCRIPT} --vault {vault} note add ann --json"
        )
        done = _served(world, add, terminal=True)
        assert done.returncode == 0, done.stdout + done.stderr
        note = json.loads(done.stdout.replace("\r\n", "\n"))
        assert (note["client"], note["key_source"]) == (client_id, "agent")

        job = _served(world, add, terminal=False)
        assert job.returncode == 2, job.stdout + job.stderr
        assert "not for jobs without a terminal" in job.stderr
        assert "Traceback" not in job.stderr
        listed = json.loads(
            world.ok("note", "list", "ann", "--json", passphrase=True).stdout
        )
        assert len(listed) == 1  # the job added nothing
    finally:
        locked = _client(world, "lock", "--all")
    assert locked.returncode == 0, locked.stderr
    assert _server(world, "status") == 1  # lock --all ended the server too
