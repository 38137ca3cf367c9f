"""The rooms of vault/ import only what docs/ARCHITECTURE.md lets them:
the checkers (vault/check) never an operation or the session."""

from __future__ import annotations

import ast
from pathlib import Path

VAULT = Path(__file__).resolve().parents[1] / "src" / "confvault" / "vault"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute, as written)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_checkers_import_no_operation_and_no_session() -> None:
    checkers = sorted((VAULT / "check").glob("*.py"))
    assert {p.name for p in checkers} >= {"__init__.py", "deep.py"}
    reached = {
        (path.name, name)
        for path in checkers
        for name in _imports(path)
        if name.startswith(("confvault.vault.ops", "confvault.vault.session"))
    }
    assert reached == set()
