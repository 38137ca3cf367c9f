"""Shared fixtures: system binaries, the CLI runner, fast scrypt."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from confvault.cli import app

FAST_WORK_FACTOR = 10  # tests only; the product's floor and default are higher
INSTALL_HINT = {
    "age": "apt-get install -y age",
    "age-keygen": "apt-get install -y age",
    "restic": "apt-get install -y restic",
    "tar": "apt-get install -y tar",
}


def require_binary(name: str) -> str:
    """The path of a system binary; missing fails under CI, skips elsewhere."""
    path = shutil.which(name)
    if path:
        return path
    message = f"`{name}` not found; install it with: {INSTALL_HINT.get(name, name)}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI must run this test)")
    pytest.skip(message)


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
