"""Fixtures of the crash-state explorer: strace, and where worlds are built."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_binary


@pytest.fixture(scope="session")
def strace_bin() -> str:
    return require_binary("strace")


@pytest.fixture
def world_root(ram_path: Path) -> Path:
    """A fresh directory for one world, on a tmpfs when there is one: each
    state is written, checked and rewritten there hundreds of times. The
    world's file system plays no part in the model: the states are built
    from the trace, not from the disk."""
    return ram_path
