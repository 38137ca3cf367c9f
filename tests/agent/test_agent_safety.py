"""What the agent refuses and how commands survive its trouble: another uid,
the keys out of files, argv and environments, a killed agent, a stale socket,
an agent of another vault or version, jobs, and a lock mid-command."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from confvault import age
from confvault.agent import client, paths, protocol
from confvault.vault import Vault
from confvault.vault.model.identity import OwnerIdentity
from tests.agent.conftest import CONFVAULT, PASSPHRASE, World, alive

_FALLBACK = "; asking for the passphrase instead\n"
_NO_PASSPHRASE = (
    "confvault: error: no passphrase given, and stdin is not a terminal to ask on\n"
)

_NOBODY_HELLO = """
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(2)
s.connect(sys.argv[1])
data = json.dumps({"protocol": 1, "op": "hello"}).encode()
s.sendall(struct.pack(">I", len(data)) + data)
size = struct.unpack(">I", s.recv(4))[0]
print(s.recv(size).decode())
"""


def _socket(world: World) -> Path:
    return paths.socket_path(world.runtime / "confvault", world.vault)


def test_another_uid_is_refused_by_peer_credentials(world: World) -> None:
    world.unlock("--allow-jobs")
    sock = _socket(world)
    # open the way for the test only: the directory is 0700 (nobody could not
    # even reach the socket); the agent's own check is what this test asserts
    for path in (world.runtime, world.runtime / "confvault"):
        path.chmod(0o711)
    sock.chmod(0o666)
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            _NOBODY_HELLO,
            str(sock),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "ok": False,
        "error": "uid 65534 is not this agent's user",
    }


def test_the_keys_are_in_no_file_argv_or_environment(world: World) -> None:
    pid = world.unlock("--allow-jobs")
    owner = Vault.open(world.vault, passphrase=PASSPHRASE.encode()).owner
    assert isinstance(owner, OwnerIdentity)
    key = owner.key
    assert isinstance(key, age.HybridIdentity)  # a post-quantum vault (the default)
    secrets = [
        key.encode().encode(),  # AGE-SECRET-KEY-PQ-1…
        key.encode().lower().encode(),
        key.seed,
        owner.signing_seed,
        base64.b64encode(owner.signing_seed),
    ]
    world.ok("client", "add", "Ann")
    # a client in the middle of its work: waiting for its note on stdin
    command = subprocess.Popen(
        [*CONFVAULT, "--vault", str(world.vault), "note", "add", "Ann"],
        env=world.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    exposed = {
        f"{who}/{part}": Path(f"/proc/{who}/{part}").read_bytes()
        for who in (pid, command.pid)
        for part in ("cmdline", "environ")
    }
    _, err = command.communicate(b"a note\n", timeout=60)
    assert command.returncode == 0, err
    files = {}
    for top in (world.runtime, world.tmp / "state"):
        for path in top.rglob("*"):
            if path.is_file():
                files[str(path)] = path.read_bytes()
    assert files  # the rollback memory at least
    for name, data in {**exposed, **files}.items():
        for secret in secrets:
            assert secret not in data, name


def test_sigkill_leaves_a_socket_commands_pass_over_and_unlock_replaces(
    world: World,
) -> None:
    pid = world.unlock("--allow-jobs")
    os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.02)
    assert world.sockets() == [_socket(world).name]  # all that is left on disk
    done = world.run("client", "list")
    assert done.returncode == 2
    assert done.stderr == (
        "confvault: warning: the unlock agent of this vault is gone (Connection refused)"
        + _FALLBACK
        + _NO_PASSPHRASE
        + "confvault: hint: pass --passphrase-file FILE, or set CONFVAULT_PASSPHRASE_FILE\n"
    )
    again = world.unlock("--allow-jobs")
    assert again != pid
    assert json.loads(world.ok("client", "list", "--json").stdout) == []


def test_a_stale_socket_is_passed_over_and_replaced(world: World) -> None:
    directory = paths.ensure_runtime_dir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(_socket(world)))
    stale.close()  # bound, never listening: connect is refused
    done = world.run("status")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "confvault: warning: the unlock agent of this vault is gone (Connection refused)"
        + _FALLBACK
    )
    world.unlock("--allow-jobs")
    assert world.sockets() == [_socket(world).name]
    assert directory == world.runtime / "confvault"


def test_an_agent_of_another_vault_is_passed_over(world: World) -> None:
    other = world.tmp / "other"
    world.init(other)
    world.unlock("--allow-jobs", vault=other)
    # this vault's socket name leads to the other vault's agent
    _socket(world).symlink_to(paths.socket_path(world.runtime / "confvault", other))
    done = world.run("client", "list")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "confvault: warning: those keys are not this vault's owner keys (another "
        "vault's, or from before an identity rotation)" + _FALLBACK
    )
    # and the agent answers key requests only for its own vault
    info = client.probe(other)
    assert info is not None
    with client.connect(info.socket) as sock:
        protocol.send(
            sock, {"protocol": 1, "op": "sign", "vault": "0" * 32, "message": ""}
        )
        assert protocol.receive(sock) == {
            "ok": False,
            "error": "this agent serves another vault",
        }


def _fake_agent(path: Path, ready: threading.Event) -> None:
    """An agent of a future version: answers hello with protocol 99, once."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        server.settimeout(30)
        ready.set()
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            data = json.dumps({"ok": True, "protocol": 99, "version": "9.0"}).encode()
            conn.sendall(struct.pack(">I", len(data)) + data)


def test_an_agent_of_another_version_is_passed_over(world: World) -> None:
    paths.ensure_runtime_dir()
    ready = threading.Event()
    thread = threading.Thread(target=_fake_agent, args=(_socket(world), ready))
    thread.start()
    ready.wait(10)
    done = world.run("client", "list")
    thread.join(30)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "confvault: warning: the unlock agent of this vault is of another confvault "
        "version (9.0, protocol 99): ignored" + _FALLBACK
    )


def test_jobs_use_the_agent_only_when_allowed(world: World) -> None:
    pid = world.unlock()  # without --allow-jobs
    job = world.run("client", "list")
    assert job.returncode == 2
    assert job.stderr.startswith(
        "confvault: warning: this vault is unlocked, but not for jobs without a "
        "terminal (`confvault unlock --allow-jobs` allows them)" + _FALLBACK
    )
    # the agent refuses a process without a terminal on its own too: a
    # request sent from a session of its own (no controlling terminal)
    info = client.probe(world.vault)
    assert info is not None
    request = (
        "import json, sys\n"
        "from confvault.agent import client, protocol\n"
        "with client.connect(sys.argv[1]) as sock:\n"
        "    protocol.send(sock, {'protocol': 1, 'op': 'sign', 'vault': sys.argv[2], 'message': ''})\n"
        "    print(json.dumps(protocol.receive(sock)))\n"
    )
    raw = subprocess.run(
        [sys.executable, "-c", request, str(info.socket), info.vault_id],
        capture_output=True,
        text=True,
        env=world.env,
        timeout=60,
        check=True,
        start_new_session=True,
    )
    assert json.loads(raw.stdout) == {
        "ok": False,
        "error": "jobs may not use this agent (unlock --allow-jobs)",
    }
    # in a terminal (script gives the command one), the agent serves it
    argv = " ".join(
        [
            *CONFVAULT,
            "--vault",
            str(world.vault),
            "client",
            "list",
            "--json",
            "</dev/null",
        ]
    )
    term = subprocess.run(
        ["script", "-qec", argv, "/dev/null"],
        capture_output=True,
        text=True,
        env=world.env,
        timeout=60,
        check=False,
        start_new_session=True,
    )
    assert term.returncode == 0, term.stdout
    assert json.loads(term.stdout.replace("\r\n", "\n")) == []
    assert alive(pid)


def test_lock_while_a_command_runs_fails_it_cleanly(world: World) -> None:
    world.unlock("--allow-jobs")
    added = json.loads(world.ok("client", "add", "Ann", "--json").stdout)
    draft = json.loads(
        world.ok(
            "note", "add", added["id"], "--draft", "--json", stdin="draft\n"
        ).stdout
    )
    started, go = world.tmp / "editing", world.tmp / "go"
    editor = world.tmp / "editor.sh"
    editor.write_text(
        f"#!/bin/sh\ntouch {started}\nwhile [ ! -e {go} ]; do sleep 0.05; done\n"
        'echo "more text" >> "$1"\n'
    )
    editor.chmod(0o700)
    command = " ".join(
        [
            *CONFVAULT,
            "--vault",
            str(world.vault),
            "note",
            "edit",
            draft["id"],
            "--insecure-tmp",
        ]
    )
    edit = subprocess.Popen(  # in a terminal (script): the editor is used
        ["script", "-qec", command, "/dev/null"],
        env={**world.env, "EDITOR": str(editor)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not started.exists():
        edit.kill()
        raise AssertionError(edit.communicate()[0])
    assert world.run("lock").returncode == 0
    go.touch()
    out, _ = edit.communicate(timeout=60)
    assert edit.returncode == 15
    assert re.sub(r"\x1b\[[0-9;]*m", "", out.replace("\r\n", "\n")) == (
        "confvault: error: the vault was locked while this command ran (its agent ended)\n"
        "confvault: hint: nothing was committed (a write cut short is undone by the next "
        "one); run it again: it asks the passphrase, or `confvault unlock` first\n"
    )
    shown = world.ok("note", "show", draft["id"], passphrase=True).stdout
    assert "more text" not in shown


_NOBODY_SERVER = """
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(4)
print("ready", flush=True)
time.sleep(30)
"""


def test_a_socket_served_by_another_user_is_passed_over(world: World) -> None:
    shared = Path(tempfile.mkdtemp(prefix="cv-agent-other-", dir="/tmp"))
    shared.chmod(0o777)
    theirs = shared / "agent.sock"
    server = subprocess.Popen(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            _NOBODY_SERVER,
            str(theirs),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline() == "ready\n"
        paths.ensure_runtime_dir()
        _socket(world).symlink_to(theirs)
        done = world.run("client", "list")
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(shared, ignore_errors=True)
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"confvault: warning: the agent socket {_socket(world)} belongs to uid 65534, "
        "not to you" + _FALLBACK
    )


def _silent_agent(path: Path, ready: threading.Event, done: threading.Event) -> None:
    """An agent that accepts and never answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        ready.set()
        conn, _ = server.accept()
        done.wait(30)
        conn.close()


def test_an_agent_that_does_not_answer_is_passed_over_in_two_seconds(
    world: World,
) -> None:
    paths.ensure_runtime_dir()
    ready, done = threading.Event(), threading.Event()
    thread = threading.Thread(target=_silent_agent, args=(_socket(world), ready, done))
    thread.start()
    try:
        ready.wait(10)
        start = time.monotonic()
        result = world.run("client", "list")
        took = time.monotonic() - start
    finally:
        done.set()
        thread.join(30)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "confvault: warning: the unlock agent of this vault does not answer" + _FALLBACK
    )
    assert took < 2 + 10  # the 2-second timeout, plus a loaded machine's start-up
