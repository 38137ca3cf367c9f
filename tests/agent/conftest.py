"""A user's world for the unlock agent: a vault, a private runtime directory
and the real command line in subprocesses (each in a session of its own, so
without a controlling terminal: a job, unless run under `script`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from confvault.agent import client

PASSPHRASE = "correct horse battery staple"
CONFVAULT = [sys.executable, "-m", "confvault"]


@dataclass
class World:
    """One user's vault and runtime directory; every agent it started."""

    tmp: Path
    runtime: Path
    env: dict[str, str]
    vault: Path
    pass_file: Path
    pids: set[int] = field(default_factory=set)

    def run(
        self,
        *args: str,
        passphrase: bool = False,
        stdin: str | None = None,
        vault: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        argv = [*CONFVAULT, "--vault", str(vault or self.vault)]
        argv += ["--passphrase-file", str(self.pass_file)] if passphrase else []
        return subprocess.run(
            [*argv, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=timeout,
            check=False,
            start_new_session=True,  # no controlling terminal: a job
        )

    def ok(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        done = self.run(*args, **kw)  # type: ignore[arg-type]
        assert done.returncode == 0, done.stderr
        return done

    def init(self, vault: Path | None = None) -> None:
        self.ok(
            "init",
            "--work-factor",
            "10",
            "--allow-weak-work-factor",
            "--no-recovery-key",
            passphrase=True,
            vault=vault,
        )

    def unlock(self, *options: str, vault: Path | None = None) -> int:
        """Unlock (the passphrase from the file); the agent's pid."""
        self.ok("unlock", *options, passphrase=True, vault=vault)
        return self.agent_pid(vault)

    def agent_pid(self, vault: Path | None = None) -> int:
        info = client.probe(vault or self.vault)
        assert info is not None
        self.pids.add(info.pid)
        return info.pid

    def audit(self) -> list[dict[str, object]]:
        return list(json.loads(self.ok("audit", "--json", passphrase=True).stdout))

    def sockets(self) -> list[str]:
        directory = self.runtime / "confvault"
        return (
            sorted(p.name for p in directory.glob("*.sock"))
            if directory.is_dir()
            else []
        )


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    runtime = Path(tempfile.mkdtemp(prefix="cv-agent-rt-", dir="/tmp"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CONFVAULT_") and k not in ("VISUAL", "EDITOR")
    }
    env |= {
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "COLUMNS": "200",
        "CONFVAULT_NO_SERVER": "1",  # tests/agent/test_served.py starts one
    }
    for key in ("XDG_RUNTIME_DIR", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(key, env[key])
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text(PASSPHRASE + "\n")
    pass_file.chmod(0o600)
    w = World(tmp_path, runtime, env, tmp_path / "vault", pass_file)
    w.init()
    try:
        yield w
    finally:
        subprocess.run(
            [*CONFVAULT, "lock", "--all"],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        for pid in w.pids:  # only the agents this test started, by their id
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(runtime, ignore_errors=True)
