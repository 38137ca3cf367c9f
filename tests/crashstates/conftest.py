"""Fixtures of the crash-state explorer: strace, and where worlds are built."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_binary

SHM = Path("/dev/shm")


@pytest.fixture(scope="session")
def strace_bin() -> str:
    return require_binary("strace")


@pytest.fixture
def world_root(tmp_path: Path) -> Iterator[Path]:
    """A fresh directory for one world: on a tmpfs (/dev/shm) when there is
    one, since each state is written, checked and rewritten there hundreds of
    times, and a disk's own journal and cache flushes would dominate; under
    pytest's tmp_path otherwise. The world's file system plays no part in
    the model: the states are built from the trace, not from the disk."""
    if SHM.is_dir() and os.access(SHM, os.W_OK | os.X_OK):
        root = Path(tempfile.mkdtemp(prefix="confvault-crash-", dir=SHM))
        try:
            yield root
        finally:
            shutil.rmtree(root, ignore_errors=True)
    else:
        yield tmp_path
