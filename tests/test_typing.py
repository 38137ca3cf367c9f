"""The typed rooms stay typed: `mypy --strict` passes on the codec, the
errors, the whole vault (store, records, session, operations, checkers,
backups, facade) and the command line (issue 12), as part of the README's
test command; pyproject's [tool.mypy] also forbids an explicit `Any` in the
records, the session and the operations.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TYPED = [
    "src/confvault/age",
    "src/confvault/errors.py",
    "src/confvault/vault",
    "src/confvault/cli",
    "src/confvault/agent",
    "src/confvault/server",
    "src/confvault/sync",
]


def test_mypy_strict_passes_on_the_typed_rooms() -> None:
    # The venv's mypy (`.venv/bin/mypy` when run as `.venv/bin/pytest`), with
    # the arguments of the command documented in pyproject.toml.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *TYPED],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"mypy --strict {' '.join(TYPED)} failed:\n{result.stdout}{result.stderr}"
    )
