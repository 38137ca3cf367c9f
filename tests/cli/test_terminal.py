"""The interactive path, on a real pseudo-terminal: prompts, confirmation, no echo."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

CONFVAULT = str(Path(sys.executable).parent / "confvault")


def _converse(
    args: list[str], answers: list[bytes], env: dict[str, str], timeout: float = 60
) -> tuple[int, bytes]:
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(env)
        os.execv(CONFVAULT, [CONFVAULT, *args])
    output = b""
    sent = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        while output.count(b"assphrase: ") > sent and sent < len(answers):
            os.write(fd, answers[sent] + b"\n")
            sent += 1
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output


def test_init_on_a_terminal_asks_twice_and_shows_the_recovery_key(
    tmp_path: Path,
) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "NO_COLOR": "1"}
    vault = tmp_path / "vault"
    secret = b"a passphrase typed at the prompt"
    code, output = _converse(
        ["--vault", str(vault), "init", "--work-factor", "15", "--classic"],
        [secret, secret],
        env,
    )
    assert code == 0, output
    assert output.count(b"passphrase: ") == 2
    assert b"AGE-SECRET-KEY-1" in output
    assert secret not in output  # no echo
    code, output = _converse(["--vault", str(vault), "client", "list"], [secret], env)
    assert code == 0, output
    assert b"no clients yet" in output


def test_mismatched_confirmation_creates_nothing(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "NO_COLOR": "1"}
    vault = tmp_path / "vault"
    code, output = _converse(
        ["--vault", str(vault), "init"],
        [b"first long passphrase", b"second long passphrase"],
        env,
    )
    assert code == 1
    assert b"the passphrases do not match" in output
    assert not vault.exists()
