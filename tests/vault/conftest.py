"""Fixtures for vault tests: a fast-KDF vault in a temp dir, a fixed clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from confvault.vault import Vault

PASSPHRASE = b"correct horse battery staple"
WORK_FACTOR = 10  # tests only: the product's floor is 15, its default 18


class Clock:
    """A settable clock: time is a parameter, not a patched global."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def init_vault(
    path: Path, state_dir: Path, **kwargs: object
) -> tuple[Vault, str | None]:
    """A new vault with the tests' passphrase and fast KDF (any fixture scope).

    Classic (X25519) keys unless ``postquantum=True``: these tests grant
    classic keys and open files with the stock age 1.1.1; the post-quantum
    vault has its own tests (test_postquantum.py, test_migrate.py)."""
    kwargs.setdefault("postquantum", False)
    return Vault.init(
        path,
        PASSPHRASE,
        work_factor=WORK_FACTOR,
        min_work_factor=WORK_FACTOR,
        state_dir=state_dir,
        **kwargs,
    )


@pytest.fixture
def make_vault(
    tmp_path: Path, clock: Clock, state_dir: Path
) -> Callable[..., tuple[Vault, str | None]]:
    def make(name: str = "vault", **kwargs: object) -> tuple[Vault, str | None]:
        return init_vault(tmp_path / name, state_dir, clock=clock, **kwargs)

    return make


@pytest.fixture
def vault(make_vault: Callable[..., tuple[Vault, str | None]]) -> Vault:
    return make_vault()[0]


def reopen(vault: Vault, state_dir: Path) -> Vault:
    return Vault.open(vault.root, passphrase=PASSPHRASE, state_dir=state_dir)
