"""Starting and stopping this user's command server.

``start()`` is idempotent and safe to race: it returns at once when a server
of this installation answers; else it spawns one, detached (its own session,
no terminal, ``/`` as its directory, the environment without passphrase
variables), and waits until it answers. Two starts at once spawn two; the
second finds the server lock taken and exits. ``stop()`` asks the server to
exit; it removes its socket before it answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time

from confvault.server import client, protocol

START_WAIT = 15.0  # importing everything on a loaded machine
# Never in the server's environment: it reads no key (a worker gets the
# client's environment, with whatever it holds, for its one command).
SCRUBBED = ("CONFVAULT_PASSPHRASE", "CONFVAULT_PASSPHRASE_FILE")


def ask(kind: bytes) -> bytes | None:
    """Send ``ping`` or ``stop``; the reply's kind (``O`` or ``R``), or None
    when no server of this user answers."""
    sock = client.connect(protocol.socket_path())
    if sock is None:
        return None
    try:
        sock.sendall(protocol.header(kind, protocol.fingerprint()))
        answer = client.receive(sock)
    except OSError:
        return None
    finally:
        sock.close()
    return None if answer is None else answer[0]


def running() -> bool:
    """Whether a server of this installation answers."""
    return ask(b"ping") == b"O"


def start(wait: float = START_WAIT) -> bool:
    """Make sure a command server of this installation runs; whether one
    answers within ``wait`` seconds."""
    answer = ask(b"ping")
    if answer == b"O":
        return True
    if answer is None:
        _end_silent_server()
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    subprocess.Popen(  # this interpreter, this package
        [sys.executable, "-m", "confvault.server", "serve"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        cwd="/",
        env=env,
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if running():
            return True
        time.sleep(0.02)
    return False


def _end_silent_server() -> None:
    """End a server that holds the lock but does not answer (hung, or of an
    older protocol): SIGTERM to the pid its lock file names."""
    path = os.path.join(protocol.socket_dir(), protocol.LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32)
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(text), signal.SIGTERM)
    finally:
        os.close(fd)


def stop() -> bool:
    """Ask this user's server to exit; whether one was there to ask."""
    return ask(b"stop") is not None
