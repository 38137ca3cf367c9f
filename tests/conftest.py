"""Shared fixtures: system binaries, the CLI runner, fast scrypt."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from typer.testing import CliRunner

from confvault.cli import app

FAST_WORK_FACTOR = 10  # tests only; the product's floor and default are higher
INSTALL_HINT = {
    "age": "apt-get install -y age",
    "age-keygen": "apt-get install -y age",
    "restic": "apt-get install -y restic",
    "tar": "apt-get install -y tar",
    "strace": "apt-get install -y strace",
    "git": "apt-get install -y git",
    "node": "apt-get install -y nodejs (Node.js 20.19 or later, e.g. from NodeSource)",
}
AGEJS = Path(__file__).parent / "agejs"  # the npm package age-encryption (typage)
NODE_MINIMUM = (20, 19)  # what age-encryption's dependencies (@noble/*) require
SHM = Path("/dev/shm")


def _unavailable(message: str) -> NoReturn:
    """A missing tool fails under CI and skips elsewhere, saying how to install it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI must run this test)")
    pytest.skip(message)


def require_binary(name: str) -> str:
    """The path of a system binary; missing fails under CI, skips elsewhere."""
    path = shutil.which(name)
    if path:
        return path
    _unavailable(f"`{name}` not found; install it with: {INSTALL_HINT.get(name, name)}")


@pytest.fixture(scope="session")
def agejs() -> list[str]:
    """The command running tests/agejs/age.mjs over the npm package age-encryption."""
    node = require_binary("node")
    done = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True, timeout=30
    )
    version = tuple(
        int(part) for part in done.stdout.strip().lstrip("v").split(".")[:2]
    )
    if version < NODE_MINIMUM:
        _unavailable(
            f"node {done.stdout.strip()} is too old for age-encryption; "
            f"install it with: {INSTALL_HINT['node']}"
        )
    wanted = json.loads((AGEJS / "package.json").read_text())["dependencies"]
    installed = AGEJS / "node_modules" / "age-encryption" / "package.json"
    if (
        not installed.is_file()
        or json.loads(installed.read_text())["version"] != wanted["age-encryption"]
    ):
        _unavailable(
            f"the npm package age-encryption {wanted['age-encryption']} is not "
            "installed; install it with: npm ci --prefix tests/agejs"
        )
    return [node, str(AGEJS / "age.mjs")]


@pytest.fixture
def age_bin() -> str:
    return require_binary("age")


@pytest.fixture
def age_keygen_bin() -> str:
    return require_binary("age-keygen")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner: CliRunner):
    def invoke(*args: str, input: bytes | str | None = None):
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def identity_file(tmp_path: Path) -> Path:
    from confvault import age

    identity = age.X25519Identity.generate()
    path = tmp_path / "key.txt"
    path.write_text(f"# public key: {identity.recipient}\n{identity.encode()}\n")
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def ram_dir(fallback: Path) -> Iterator[Path]:
    """A fresh directory on a tmpfs (/dev/shm) when there is one, else
    ``fallback``; removed afterwards. For tests that write, kill and rewrite
    hundreds of small trees and test no disk's durability (SIGKILL keeps the
    page cache; the crash-state explorer builds its states from a trace), so
    that a disk's journal and cache flushes do not dominate their time."""
    if not (SHM.is_dir() and os.access(SHM, os.W_OK | os.X_OK)):
        yield fallback
        return
    path = Path(tempfile.mkdtemp(prefix="confvault-test-", dir=SHM))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ram_path(tmp_path: Path) -> Iterator[Path]:
    """``ram_dir`` for one test."""
    with ram_dir(tmp_path) as path:
        yield path
