"""The typed rooms stay typed: `mypy --strict` passes on the codec, the
errors, the vault's store and the command line (issue 12), as part of the
README's test command.

The other rooms are reached only by following imports there, and pyproject's
[tool.mypy] keeps their errors silent until they are typed in their turn.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TYPED = ["src/confvault/age", "src/confvault/errors.py", "src/confvault/vault/store"]
TYPED += ["src/confvault/cli"]
TYPED += [f"src/confvault/vault/{p}" for p in ("backup", *(f"check/{m}.py" for m in ("keyless", "findings", "objects", "signed", "tree")))]  # fmt: skip


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
