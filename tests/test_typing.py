"""The typed rooms stay typed: `mypy --strict` passes on the codec, the
errors and the vault's store, records, session, operations, deep checker and
facade (issue 12), as part of the README's test command; pyproject's
[tool.mypy] also forbids an explicit `Any` in the records, the session and
the operations.

The other rooms are reached only by following imports there, and pyproject's
[tool.mypy] keeps their errors silent until they are typed in their turn.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VAULT = "src/confvault/vault"
# All of vault/ but check/keyless.py and backup/, typed in their own turn.
TYPED = [
    "src/confvault/age",
    "src/confvault/errors.py",
    f"{VAULT}/__init__.py",
    f"{VAULT}/vault.py",
    f"{VAULT}/store",
    f"{VAULT}/model",
    f"{VAULT}/session",
    f"{VAULT}/ops",
    f"{VAULT}/check/__init__.py",
    f"{VAULT}/check/deep.py",
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
