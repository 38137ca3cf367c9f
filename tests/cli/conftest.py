"""CLI fixtures: an isolated XDG state dir and a ready vault driven by CliRunner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("CONFVAULT_VAULT", raising=False)
    monkeypatch.delenv("CONFVAULT_PASSPHRASE", raising=False)
    monkeypatch.delenv("CONFVAULT_PASSPHRASE_FILE", raising=False)
    return state


@pytest.fixture
def pass_file(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text(PASSPHRASE + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def vcli(
    cli: Callable[..., Any], tmp_path: Path, pass_file: Path
) -> Callable[..., Any]:
    """Run a vault command against tmp_path/vault with the passphrase file."""
    vault = tmp_path / "vault"

    def run(*args: str, input: bytes | str | None = None) -> Any:
        return cli(
            "--vault",
            str(vault),
            "--passphrase-file",
            str(pass_file),
            *args,
            input=input,
        )

    run.vault = vault  # type: ignore[attr-defined]
    return run


@pytest.fixture
def ready(vcli: Callable[..., Any]) -> Callable[..., Any]:
    result = vcli(
        "init",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--no-recovery-key",
        "--classic",  # the post-quantum vault: test_postquantum_cli.py
    )
    assert result.exit_code == 0, result.output
    return vcli
