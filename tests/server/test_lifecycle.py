"""The server's life: start is idempotent and safe to race, stop ends it,
it exits when idle or when its socket is removed; a socket left by a killed
server, a server of another version, a client whose environment the
preloaded modules read differently: the command runs in-process, at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from confvault.server import protocol
from tests.server.conftest import Served, alive, spare, wait_gone


def _raw(s: Served, kind: bytes, fingerprint: bytes) -> bytes:
    """Send a bare request header; the reply's kind, or b'' when closed."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(s.socket))
        sock.sendall(protocol.header(kind, fingerprint))
        return sock.recv(protocol.REPLY.size)[:1]


def _fingerprint(s: Served) -> bytes:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from confvault.server import protocol; import sys; sys.stdout.buffer.write(protocol.fingerprint())",
        ],
        env=s.env,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return done.stdout


def test_start_is_idempotent_and_stop_ends_the_server(fresh: Served) -> None:
    assert fresh.server("status") == 1
    assert fresh.server("start") == 0
    pid = fresh.pid()
    assert alive(pid)
    assert fresh.server("start") == 0
    assert fresh.pid() == pid
    assert fresh.server("status") == 0
    assert fresh.socket.stat().st_mode & 0o777 == 0o600
    assert (fresh.socket.parent.stat().st_mode & 0o777) == 0o700
    assert fresh.server("stop") == 0
    assert not fresh.socket.exists()
    assert wait_gone(pid)
    assert fresh.server("stop") == 1  # nothing left to stop


def test_starts_racing_leave_one_server(fresh: Served) -> None:
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "confvault.server", "start"], env=fresh.env
        )
        for _ in range(3)
    ]
    assert [p.wait(timeout=60) for p in starts] == [0, 0, 0]
    pid = fresh.pid()
    time.sleep(3.5)  # the losers wait LOCK_WAIT for the lock, then exit
    ours = [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit()
        and alive(int(p))
        and f"XDG_RUNTIME_DIR={fresh.env['XDG_RUNTIME_DIR']}".encode()
        in _environ(int(p))
        and b"confvault.server\0serve" in _cmdline(int(p))
    ]
    assert ours == [pid, spare(pid)]  # one server, and the worker it forked ahead


def _environ(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_an_idle_server_exits(fresh: Served) -> None:
    env = fresh.env | {"CONFVAULT_SERVER_IDLE": "1"}
    assert fresh.server("start", env=env) == 0
    pid = fresh.pid()
    assert wait_gone(pid, timeout=15)
    assert not fresh.socket.exists()


def test_a_removed_socket_ends_the_server(fresh: Served) -> None:
    assert fresh.server("start") == 0
    pid = fresh.pid()
    fresh.socket.unlink()
    assert wait_gone(pid, timeout=15)


def test_a_killed_servers_socket_runs_the_command_here_and_is_replaced(
    fresh: Served,
) -> None:
    assert fresh.server("start") == 0
    pid = fresh.pid()
    ahead = spare(pid)
    before = fresh.socket.stat()
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    assert wait_gone(ahead)  # its spare worker saw the server's end of its pair close
    assert fresh.socket.exists()  # stale
    started = time.monotonic()
    here = fresh.run("client", "list", "--json")
    assert time.monotonic() - started < 20
    assert here.returncode == 0
    assert "typer" in here.imported  # type: ignore[attr-defined]
    assert here.stdout == fresh.run("client", "list", "--json", served=False).stdout
    assert here.stderr == ""
    assert fresh.server("start") == 0
    assert fresh.pid() != pid
    after = fresh.socket.stat()
    assert (after.st_ino, after.st_ctime_ns) != (before.st_ino, before.st_ctime_ns)
    again = fresh.run("client", "list", "--json")
    assert "typer" not in again.imported  # type: ignore[attr-defined]
    assert again.stdout == here.stdout


def test_a_server_of_another_version_refuses_and_exits(fresh: Served) -> None:
    assert fresh.server("start") == 0
    pid = fresh.pid()
    assert _raw(fresh, b"ping", _fingerprint(fresh)) == b"O"
    assert _raw(fresh, b"run", b"0.0.9-0000000000000000") == b"R"
    assert wait_gone(pid)
    assert not fresh.socket.exists()
    done = fresh.run("client", "list")
    assert done.returncode == 0
    assert "typer" in done.imported  # type: ignore[attr-defined]


def test_a_client_whose_typer_environment_differs_runs_here(fresh: Served) -> None:
    assert fresh.server("start") == 0
    env = fresh.env | {"TERMINAL_WIDTH": "100"}
    there = fresh.run("--help", env=env)
    here = fresh.run("--help", env=env, served=False)
    assert "typer" in there.imported  # type: ignore[attr-defined]
    assert (there.returncode, there.stdout, there.stderr) == (
        here.returncode,
        here.stdout,
        here.stderr,
    )
    assert fresh.server("status") == 0  # still serving the others


def test_no_server_answers_within_the_timeout(fresh: Served) -> None:
    # a listening socket that never accepts: the client gives up and runs here
    import socket

    directory = fresh.socket.parent
    directory.mkdir(mode=0o700, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hung:
        hung.bind(str(fresh.socket))
        hung.listen(1)
        started = time.monotonic()
        done = fresh.run("client", "list", "--json")
        took = time.monotonic() - started
    assert done.returncode == 0
    assert '"name": "Ann Example"' in done.stdout
    assert done.stderr == ""
    assert took < 30
