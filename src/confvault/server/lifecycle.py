"""Starting and stopping this user's command server.

``start()`` is idempotent and safe to race: it returns at once when a server
of this installation answers; else it spawns one, detached (its own session,
no terminal, ``/`` as its directory, the environment without passphrase
variables), and waits until it answers. Two starts at once spawn two; the
second finds the server lock taken and exits. ``stop()`` asks the server to
exit; it removes its socket before it answers.
"""

from __future__ import annotations

import os
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
        sock.sendall(protocol.encode([kind, protocol.fingerprint()]))
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
    if running():
        return True
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


def stop() -> bool:
    """Ask this user's server to exit; whether one was there to ask."""
    return ask(b"stop") is not None
