"""Real command servers (python -m confvault.server) in a private runtime
directory each, over a real vault made with a fast work factor; the
``confvault`` console script of this environment as the client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FAST_WORK_FACTOR

CONFVAULT = str(Path(sys.executable).parent / "confvault")  # the console script
PASSPHRASE = "server-test passphrase 7f3a9c"
# What the client process must never import (it hands the command over).
HEAVY = (
    "typer",
    "rich",
    "nacl",
    "click",
    "confvault.errors",
    "confvault.cli",
    "socket",
)


@dataclass
class Served:
    """A vault, a runtime directory, and the environment of its commands."""

    root: Path
    env: dict[str, str]
    client: str = ""
    note: str = ""

    @property
    def lock(self) -> Path:
        return Path(self.env["XDG_RUNTIME_DIR"]) / "confvault" / "server.lock"

    @property
    def socket(self) -> Path:
        return Path(self.env["XDG_RUNTIME_DIR"]) / "confvault" / "server.sock"

    def server(self, *args: str, env: dict[str, str] | None = None) -> int:
        return subprocess.run(
            [sys.executable, "-m", "confvault.server", *args],
            env=env or self.env,
            timeout=60,
            check=False,
        ).returncode

    def pid(self) -> int:
        return int(self.lock.read_text())

    def run(
        self,
        *args: str,
        input: str | None = None,
        served: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``confvault ARGS``: through the client (with -X importtime, whose
        lines are taken out of stderr into ``imported``), or in-process."""
        env = dict(env or self.env)
        if served:
            command = [sys.executable, "-X", "importtime", CONFVAULT, *args]
        else:
            env["CONFVAULT_NO_SERVER"] = "1"
            command = [CONFVAULT, *args]
        done = subprocess.run(
            command, input=input, capture_output=True, text=True, env=env, timeout=60
        )
        lines = done.stderr.splitlines(keepends=True)
        imported = [
            line.split("|")[-1].strip()
            for line in lines
            if line.startswith("import time:")
        ]
        done.stderr = "".join(
            line for line in lines if not line.startswith("import time:")
        )
        done.imported = imported  # type: ignore[attr-defined]
        return done

    def stop(self) -> None:
        """Stop the server (if any) and wait until its process is gone."""
        pid = self.pid() if self.lock.exists() and self.lock.read_text() else None
        self.server("stop")
        if pid is not None:
            wait_gone(pid)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)  # never leave a server behind
    return False


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def spare(server: int, timeout: float = 20.0) -> int:
    """The worker the idle ``server`` has forked ahead (its only child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = children(server)
        if len(found) == 1:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"no single spare worker: {children(server)}")


def worker_of(server: int, client: int, timeout: float = 20.0) -> int:
    """The worker of ``server`` running the command of the client process
    ``client``: the child whose stdin is the client's (a spare's is not)."""
    stdin = os.readlink(f"/proc/{client}/fd/0")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children(server):
            try:
                if os.readlink(f"/proc/{child}/fd/0") == stdin:
                    return child
            except OSError:
                pass
        time.sleep(0.02)
    raise AssertionError("no worker took the command")


def make_vault(root: Path) -> Served:
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    (root / "pp").write_text(PASSPHRASE + "\n")
    (root / "pp").chmod(0o600)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CONFVAULT_") and k != "XDG_RUNTIME_DIR"
    }
    env |= {
        "XDG_RUNTIME_DIR": str(runtime),
        "CONFVAULT_VAULT": str(root / "vault"),
        "CONFVAULT_PASSPHRASE_FILE": str(root / "pp"),
        "CONFVAULT_SERVER_IDLE": "300",
    }
    served = Served(root, env)
    init = served.run(
        "init",
        "--work-factor",
        str(FAST_WORK_FACTOR),
        "--allow-weak-work-factor",
        "--no-recovery-key",
        served=False,
    )
    assert init.returncode == 0, init.stderr
    added = served.run("client", "add", "Ann Example", served=False)
    assert added.returncode == 0, added.stderr
    served.client = added.stdout.split()[2]
    note = served.run(
        "note", "add", served.client, input="first session\n", served=False
    )
    assert note.returncode == 0, note.stderr
    served.note = note.stdout.split()[3]
    return served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A vault with one client and one note, and a running server."""
    served = make_vault(tmp_path_factory.mktemp("served"))
    assert served.server("start") == 0
    yield served
    served.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Served]:
    """A vault and no server yet (the test starts and ends its own)."""
    served = make_vault(tmp_path)
    yield served
    served.stop()


Run = Callable[..., subprocess.CompletedProcess[str]]
