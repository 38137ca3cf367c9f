"""What the server never does: serve another user, hold a key or a
passphrase; and how a command ends: SIGINT reaches the worker, which is
reaped, and the client exits as the command would in-process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from confvault.server import protocol
from tests.conftest import _unavailable, require_binary
from tests.server.conftest import (
    CONFVAULT,
    PASSPHRASE,
    Served,
    make_vault,
    spare,
    wait_gone,
    worker_of,
)

SECRET_KEY = re.compile(rb"AGE-SECRET-KEY-(PQ-)?1[02-9AC-HJ-NP-Z]{58}")  # either kind


def _memory(pid: int) -> bytes:
    """Every readable, private or anonymous mapping of ``pid`` (as root)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5] if len(fields) > 5 else ""
            if "r" not in fields[1] or path.startswith("[v") or path.startswith("/"):
                continue  # unreadable, vdso/vvar/vsyscall, or a mapped file
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except OSError:
                continue
    return b"".join(chunks)


def test_the_server_holds_no_key_and_no_passphrase(served: Served) -> None:
    if os.getuid() != 0:
        _unavailable("reading another process's memory needs root")  # fails under CI
    keygen = require_binary("age-keygen")
    env = {k: v for k, v in served.env.items() if k != "CONFVAULT_PASSPHRASE_FILE"}
    env["CONFVAULT_PASSPHRASE"] = PASSPHRASE  # through the environment this time
    for args in (["note", "show", served.note], ["client", "list"], ["status"]):
        done = served.run(*args, env=env)
        assert done.returncode == 0, done.stderr
        assert "typer" not in done.imported  # type: ignore[attr-defined]
    memory = _memory(served.pid())
    assert len(memory) > 1_000_000  # the scan read the heap
    assert SECRET_KEY.search(memory) is None
    assert PASSPHRASE.encode() not in memory
    assert b"first session" not in memory  # nor a note's text
    # the scan finds a key where one is held
    key = subprocess.run([keygen], capture_output=True, check=True, timeout=30).stdout
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; k = sys.stdin.read(); print(1, flush=True); time.sleep(60)",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdin is not None
        assert holder.stdout is not None
        holder.stdin.write(key)
        holder.stdin.close()
        holder.stdout.readline()
        assert SECRET_KEY.search(_memory(holder.pid)) is not None
    finally:
        holder.kill()
        holder.wait()


def test_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        _unavailable("running as another user needs root")  # fails under CI
    setpriv = require_binary("setpriv")
    other_python = "/usr/bin/python3"
    if not Path(other_python).exists():
        _unavailable("no system python for uid 65534 (apt-get install -y python3)")
    # a runtime directory uid 65534 can reach (the server made its own 0700)
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o711)
        served = make_vault(tmp_path)
        served.env["XDG_RUNTIME_DIR"] = str(base)
        assert served.server("start") == 0
        try:
            (base / "confvault").chmod(0o711)
            served.socket.chmod(0o666)
            probe = (
                "import socket, struct, sys\n"
                "s = socket.socket(socket.AF_UNIX)\n"
                "s.settimeout(10)\n"
                "s.connect(sys.argv[1])\n"
                "try:\n"
                "    s.sendall(struct.pack('!4s60s', b'ping', sys.argv[2].encode()))\n"
                "    print(repr(s.recv(16)))\n"
                "except (BrokenPipeError, ConnectionResetError):\n"
                "    print('closed')\n"
            )
            fingerprint = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys; from confvault.server import protocol; sys.stdout.buffer.write(protocol.fingerprint())",
                ],
                capture_output=True,
                check=True,
                timeout=30,
            ).stdout.decode()
            mine = subprocess.run(
                [sys.executable, "-c", probe, str(served.socket), fingerprint],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert mine.stdout == repr(protocol.reply(b"O")) + "\n"
            other = subprocess.run(
                [
                    setpriv,
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    other_python,
                    "-c",
                    probe,
                    str(served.socket),
                    fingerprint,
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert other.returncode == 0, other.stderr
            assert other.stdout in ("b''\n", "closed\n")  # closed without a word
            again = subprocess.run(
                [sys.executable, "-c", probe, str(served.socket), fingerprint],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert again.stdout == repr(protocol.reply(b"O")) + "\n"  # still serving
            # and this user's client does not trust a directory others may enter
            assert served.server("status") == 1
        finally:
            served.stop()
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=True)


def _note_add(
    served: Served, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """``confvault note add CLIENT``, waiting on its stdin (a pipe left open)."""
    return subprocess.Popen(
        [CONFVAULT, "note", "add", served.client],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or served.env,
        **popen,
    )


def _interrupted(
    command: list[str], env: dict[str, str], ready: float
) -> tuple[int, bytes]:
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    time.sleep(ready)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert out == b""
    return proc.returncode, err


def _ended(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Its output once it has ended, its stdin still open until then (closing
    it first, as communicate() does, could end the note before the signal)."""
    proc.wait(timeout=60)
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdin.close()
    return proc.stdout.read(), proc.stderr.read()


def test_sigint_reaches_the_worker_which_is_reaped(served: Served) -> None:
    # `note add` waits on its stdin (a pipe left open) when Ctrl-C comes
    server = served.pid()
    env = dict(served.env)
    proc = _note_add(served, env)
    worker = worker_of(server, proc.pid)
    time.sleep(0.5)  # the worker takes the descriptors and reads stdin
    proc.send_signal(signal.SIGINT)
    out, err = _ended(proc)
    assert (proc.returncode, out, err) == (130, b"", b"confvault: error: interrupted\n")
    assert wait_gone(worker, timeout=10)
    assert spare(server) != worker  # reaped: the server's one child is a new spare
    # in-process, the same
    here = _note_add(served, env | {"CONFVAULT_NO_SERVER": "1"})
    time.sleep(5)  # the whole start-up of the app, on a loaded machine
    here.send_signal(signal.SIGINT)
    out, err = _ended(here)
    assert (here.returncode, out, err) == (130, b"", b"confvault: error: interrupted\n")


def test_a_worker_killed_by_a_signal_ends_its_client_so(served: Served) -> None:
    server = served.pid()
    proc = _note_add(served)
    worker = worker_of(server, proc.pid)
    time.sleep(0.3)
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (-signal.SIGKILL, b"", b"")


def test_start_leaves_the_passphrase_variables_out_of_the_server(fresh: Served) -> None:
    env = fresh.env | {"CONFVAULT_PASSPHRASE": PASSPHRASE}
    assert fresh.server("start", env=env) == 0
    environ = Path(f"/proc/{fresh.pid()}/environ").read_bytes().split(b"\0")
    names = {item.split(b"=", 1)[0] for item in environ}
    assert b"CONFVAULT_PASSPHRASE" not in names
    assert b"CONFVAULT_PASSPHRASE_FILE" not in names
    assert b"XDG_RUNTIME_DIR" in names


def test_a_spare_worker_forked_ahead_runs_the_next_command(served: Served) -> None:
    server = served.pid()
    ahead = spare(server)
    proc = _note_add(served)
    try:
        assert worker_of(server, proc.pid) == ahead  # no fork on the command's path
        out, err = proc.communicate(b"a note for the spare\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.startswith(b"added progress note ")
    assert wait_gone(ahead, timeout=10)
    following = spare(server)
    assert following != ahead
    again = served.run("client", "list", "--json")
    assert again.returncode == 0
    assert wait_gone(following, timeout=10)  # it ran that one: a third waits
    assert spare(server) not in (ahead, following)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _until(pids: tuple[int, ...], stopped: bool, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all((_state(p) == "T") == stopped for p in pids):
            return
        time.sleep(0.02)
    raise AssertionError({p: _state(p) for p in pids})


def test_ctrl_z_stops_the_worker_with_its_client_and_fg_continues_both(
    served: Served,
) -> None:
    server = served.pid()
    # its own process group, as a shell with job control starts a job: the
    # kernel discards a stop signal's default action in an orphaned group
    proc = _note_add(served, process_group=0)
    try:
        worker = worker_of(server, proc.pid)
        time.sleep(0.3)  # the client's handlers are in place once the worker runs
        proc.send_signal(signal.SIGTSTP)  # what the terminal sends on Ctrl-Z
        _until((proc.pid, worker), stopped=True)
        time.sleep(0.3)
        assert _state(worker) == "T"  # still stopped: nothing continues it alone
        proc.send_signal(signal.SIGCONT)  # `fg`
        _until((proc.pid, worker), stopped=False)
        out, err = proc.communicate(b"written after a stop\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.startswith(b"added progress note ")
    note = out.split()[3].decode()
    shown = served.run("note", "show", note)
    assert "written after a stop" in shown.stdout
