"""Replicas of one vault on "devices" (each its own vault directory and
state directory) against a bare git remote in a temporary directory, driven
through the real CLI (CliRunner, in-process) and the real `git`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from confvault.cli import app
from tests.conftest import require_binary

PASSPHRASE = "correct horse battery staple"


@dataclass
class Device:
    """One device: its vault directory and its own state directory."""

    name: str
    vault: Path
    state: Path
    pass_file: Path
    runner: CliRunner

    def env(self) -> dict[str, str]:
        return {
            "XDG_STATE_HOME": str(self.state),
            "XDG_DATA_HOME": str(self.state.parent / "data"),
        }

    def run(self, *args: str, input: str | None = None, passphrase: bool = True) -> Any:
        """``confvault --vault V [--passphrase-file P] ARGS`` on this device."""
        saved = {k: os.environ.get(k) for k in self.env()}
        os.environ.update(self.env())
        try:
            pre = ["--vault", str(self.vault)]
            if passphrase:
                pre += ["--passphrase-file", str(self.pass_file)]
            return self.runner.invoke(app, [*pre, *args], input=input)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def ok(self, *args: str, input: str | None = None) -> Any:
        result = self.run(*args, input=input)
        assert result.exit_code == 0, (args, result.output, result.stderr)
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", input=input).stdout)

    def init_vault(self) -> None:
        """A new classic vault, with the fast test work factor."""
        self.ok(
            "init",
            "--work-factor",
            "10",
            "--allow-weak-work-factor",
            "--no-recovery-key",
            "--classic",
        )

    def files(self) -> dict[str, bytes]:
        """Every synced file of the vault (manifest, shards, objects) by path."""
        out = {}
        for path in sorted(self.vault.rglob("*")):
            rel = path.relative_to(self.vault).as_posix()
            if path.is_file() and rel.split("/")[0] in (
                "manifest",
                "shards",
                "objects",
            ):
                out[rel] = path.read_bytes()
        return out


@pytest.fixture
def git() -> Callable[..., subprocess.CompletedProcess[str]]:
    binary = require_binary("git")

    def run(
        *args: str, check: bool = True, index: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/nonexistent",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_AUTHOR_NAME": "attacker",
            "GIT_AUTHOR_EMAIL": "a@invalid",
            "GIT_COMMITTER_NAME": "attacker",
            "GIT_COMMITTER_EMAIL": "a@invalid",
        }
        if index is not None:
            env["GIT_INDEX_FILE"] = str(index)
        return subprocess.run(
            [binary, *args], capture_output=True, text=True, env=env, check=check
        )

    return run


@pytest.fixture
def remote(tmp_path: Path, git: Callable[..., Any]) -> Path:
    """An empty bare repository: the remote every device syncs with."""
    path = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", str(path))
    return path


@pytest.fixture
def devices(tmp_path: Path) -> Callable[[str], Device]:
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text(PASSPHRASE + "\n")
    pass_file.chmod(0o600)
    runner = CliRunner()

    def make(name: str) -> Device:
        home = tmp_path / name
        home.mkdir()
        return Device(name, home / "vault", home / "state", pass_file, runner)

    return make


@pytest.fixture
def first(devices: Callable[[str], Device], remote: Path) -> Device:
    """Device A: a new vault with one client and note, connected and pushed."""
    a = devices("a")
    a.init_vault()
    a.ok("client", "add", "Ada Lovelace")
    a.ok("note", "add", "Ada", "--title", "intake", input="First session.\n")
    a.ok("sync", "init", str(remote), "--device", "laptop")
    return a


@pytest.fixture
def second(devices: Callable[[str], Device], remote: Path, first: Device) -> Device:
    """Device B: cloned from the remote after A's first push."""
    b = devices("b")
    b.ok("clone", str(remote), "--device", "desktop")
    return b


class Tamper:
    """An attacker with write access to the bare remote (plain git)."""

    def __init__(self, git: Callable[..., Any], remote: Path, work: Path) -> None:
        self.git, self.remote, self.index = git, remote, work / "attacker-index"
        self.work = work / "attacker-work"
        self.work.mkdir(exist_ok=True)

    def g(self, *args: str) -> str:
        return self.git(
            f"--git-dir={self.remote}",
            f"--work-tree={self.work}",
            *args,
            index=self.index,
        ).stdout.strip()

    def head(self) -> str:
        return self.g("rev-parse", "refs/heads/confvault")

    def log(self) -> list[str]:
        return self.g("rev-list", "refs/heads/confvault").split()

    def commit(
        self,
        base: str,
        parents: list[str],
        remove: tuple[str, ...] = (),
        put: dict[str, bytes] | None = None,
        message: str = "tampered",
    ) -> str:
        """A commit of ``base``'s tree with files removed or replaced."""
        self.index.unlink(missing_ok=True)
        self.g("read-tree", base)
        for path in remove:
            self.g("update-index", "--force-remove", "--", path)
        for path, data in (put or {}).items():
            blob_file = self.index.with_suffix(".blob")
            blob_file.write_bytes(data)
            blob = self.g("hash-object", "-w", "--", str(blob_file))
            self.g("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
        tree = self.g("write-tree")
        args = [a for p in parents for a in ("-p", p)]
        return self.g("commit-tree", tree, *args, "-m", message)

    def point(self, commit: str) -> None:
        """Force the remote's branch to ``commit``."""
        self.g("update-ref", "refs/heads/confvault", commit)

    def files(self, commit: str) -> list[str]:
        return self.g("ls-tree", "-r", "--name-only", commit).split()

    def blob(self, commit: str, path: str) -> bytes:
        return self.git(
            f"--git-dir={self.remote}", "cat-file", "blob", f"{commit}:{path}"
        ).stdout.encode()


@pytest.fixture
def tamper(git: Callable[..., Any], remote: Path, tmp_path: Path) -> Tamper:
    return Tamper(git, remote, tmp_path)


def state_of(device: Device) -> dict[str, bytes]:
    """Everything of the device that a refused sync must leave as it was:
    its vault's files and its sync state (the JSON and the synced ref)."""
    out = {f"vault/{k}": v for k, v in device.files().items()}
    for path in sorted((device.state / "confvault" / "sync").glob("*.json")):
        out[path.name] = path.read_bytes()
    for path in sorted((device.state / "confvault" / "sync").glob("*.git")):
        done = subprocess.run(
            ["git", f"--git-dir={path}", "rev-parse", "refs/confvault/synced"],
            capture_output=True,
            check=False,
        )
        out[f"{path.name}:synced"] = done.stdout
    return out


def refused_sync(device: Device, *words: str) -> None:
    """``sync`` refused with exit 13, saying ``words`` and that nothing was
    changed, and the device's state as it was."""
    before = state_of(device)
    result = device.run("sync")
    assert result.exit_code == 13, result.output
    for word in words:
        assert word in result.stderr, result.stderr
    assert "nothing was changed" in result.stderr
    assert state_of(device) == before
