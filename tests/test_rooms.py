"""The rooms keep their doors: the import rules of docs/ARCHITECTURE.md ("What
may import what"), read from the source of every module under src/ (every
import statement, also inside functions and `if TYPE_CHECKING:` blocks).

KNOWN lists the imports that break a rule today, while issue 12's other steps
are in flight: the test fails on any import that breaks a rule and is not
listed, and on a listed one that no longer occurs, so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

_KEYED = ("confvault.vault.session", "confvault.vault.ops")
# (a room, what it must not import); a room is a module or package name and
# covers everything under it.
FORBIDDEN: list[tuple[str, tuple[str, ...]]] = [
    ("confvault.vault.check", _KEYED),
    ("confvault.vault", ("confvault.server",)),
    ("confvault.age", ("confvault.server",)),
    ("confvault.vault.session", ("confvault.vault.ops",)),
    ("confvault.vault.backup", _KEYED),
    (
        "confvault.vault.store",
        (*_KEYED, "confvault.vault.check", "confvault.vault.backup"),
    ),
    (
        "confvault.vault.model",
        (*_KEYED, "confvault.vault.check", "confvault.vault.backup"),
    ),
    # The unlock agent holds keys through the facade and the records, never
    # the command line; the vault knows nothing of agents (it gets OwnerKeys).
    (
        "confvault.agent",
        (
            "confvault.cli",
            *_KEYED,
            "confvault.vault.check",
            "confvault.vault.backup",
        ),
    ),
    ("confvault.vault", ("confvault.agent", "confvault.cli")),
    # Sync (issue 16) sits on the vault; nothing below knows of it, and it
    # knows nothing of terminals.
    ("confvault.vault", ("confvault.sync",)),
    ("confvault.sync", ("confvault.cli", "confvault.server", "confvault.agent")),
]
# (a room, the only parts of confvault it may import)
ONLY: list[tuple[str, tuple[str, ...]]] = [
    ("confvault.age", ("confvault.age", "confvault.errors")),
    ("confvault.errors", ()),
    # The command server sits on the CLI: it runs the one app, nothing below it.
    (
        "confvault.server",
        ("confvault.server", "confvault.cli", "confvault.__version__"),
    ),
    # The client starts every command: the version and the protocol, and the
    # app only when it runs the command itself.
    (
        "confvault.server.client",
        ("confvault.server.protocol", "confvault.__version__", "confvault.cli.main"),
    ),
    ("confvault.server.protocol", ("confvault.__version__",)),
]
# And everywhere: a `_`-prefixed name is private to its module, a `_`-prefixed
# module to its package; so `cli` imports nothing private of `vault` or `age`.

# (importing module, imported name): imports that break a rule today.
KNOWN: set[tuple[str, str]] = set()


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, src: Path) -> Iterator[str]:
    """Every name ``path`` imports: ``a.b`` for ``import a.b``, ``a.b.c`` for
    ``from a.b import c`` (relative imports resolved)."""
    module = _module_name(path, src)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _under(name: str, room: str) -> bool:
    return name == room or name.startswith(room + ".")


def _privacy_allows(name: str, importer: str, src: Path) -> bool:
    """Whether ``importer`` may import ``name`` as far as privacy goes: a
    `_`-prefixed module (``a.b._c``, a file ``a/b/_c.py``) is its package's
    (``a.b``), a `_`-prefixed name its module's alone; dunders such as
    ``__version__`` are public."""
    parts = name.split(".")
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            path = src.joinpath(*parts[: i + 1])
            if path.with_suffix(".py").is_file() or path.is_dir():
                return _under(importer, ".".join(parts[:i]))
            return False
    return True


def _violations(src: Path = SRC) -> set[tuple[str, str]]:
    """(importing module, imported name) of every import that breaks a rule."""
    found = set()
    for path in sorted(src.rglob("*.py")):
        module = _module_name(path, src)
        for name in _imports(path, src):
            if not _under(name, "confvault"):
                continue
            broken = (
                any(
                    _under(module, room) and any(_under(name, b) for b in banned)
                    for room, banned in FORBIDDEN
                )
                or any(
                    _under(module, room) and not any(_under(name, a) for a in allowed)
                    for room, allowed in ONLY
                )
                or not _privacy_allows(name, module, src)
            )
            if broken:
                found.add((module, name))
    return found


def test_every_room_imports_only_what_it_may() -> None:
    found = _violations()
    assert sorted(found - KNOWN) == [], "imports that break docs/ARCHITECTURE.md"
    assert sorted(KNOWN - found) == [], "gone: remove them from KNOWN"


def test_each_rule_sees_what_it_forbids(tmp_path: Path) -> None:
    files = {
        "errors.py": "import os\nfrom confvault import age\n",
        "age/__init__.py": "from confvault.age import _format\nfrom confvault import errors\n",
        "age/_format.py": "from .. import errors\nfrom ..vault import model\n",
        "cli/_output.py": "",
        "cli/notes.py": (
            "from confvault.cli import _output\n"
            "from confvault import __version__\n"
            "from confvault.vault.ops.notes import add_note\n"
            "def f():\n"
            "    from confvault.vault.model import _clock\n"
            "    from confvault.age._format import parse\n"
            "    from ..vault.store.fs import _tmp_name\n"
        ),
        "vault/model/_clock.py": "",
        "vault/model/note.py": "from confvault.vault.check import keyless\n",
        "vault/store/fs.py": "import confvault.vault.session.core\n",
        "vault/session/core.py": "from confvault.vault.ops import notes\n",
        "vault/check/keyless.py": (
            "from confvault.vault import store, model\nfrom confvault.vault.ops import x\n"
        ),
        "vault/backup/check.py": (
            "from confvault.vault.check.keyless import _Report\n"
            "from confvault.vault.session import core\n"
        ),
        "vault/ops/notes.py": (
            "from confvault.vault import check, session\nfrom . import _helpers\n"
        ),
        "vault/ops/_helpers.py": "",
    }
    root = tmp_path / "confvault"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    v = "confvault.vault"
    assert sorted(_violations(tmp_path)) == [
        ("confvault.age._format", "confvault.vault.model"),
        ("confvault.cli.notes", "confvault.age._format.parse"),
        ("confvault.cli.notes", f"{v}.model._clock"),
        ("confvault.cli.notes", f"{v}.store.fs._tmp_name"),
        ("confvault.errors", "confvault.age"),
        (f"{v}.backup.check", f"{v}.check.keyless._Report"),
        (f"{v}.backup.check", f"{v}.session.core"),
        (f"{v}.check.keyless", f"{v}.ops.x"),
        (f"{v}.model.note", f"{v}.check.keyless"),
        (f"{v}.session.core", f"{v}.ops.notes"),
        (f"{v}.store.fs", f"{v}.session.core"),
    ]


def test_the_server_rules_see_what_they_forbid(tmp_path: Path) -> None:
    files = {
        "server/client.py": (
            "from confvault import __version__\n"
            "from confvault.server import protocol\n"
            "from confvault.errors import ConfvaultError\n"
            "def f():\n"
            "    from confvault.cli import main\n"
        ),
        "server/protocol.py": "from confvault import __version__, errors\n",
        "server/server.py": "from confvault import cli\nfrom confvault.vault import Vault\n",
        "vault/store/fs.py": "from confvault.server import start\n",
    }
    root = tmp_path / "confvault"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert sorted(_violations(tmp_path)) == [
        ("confvault.server.client", "confvault.errors.ConfvaultError"),
        ("confvault.server.protocol", "confvault.errors"),
        ("confvault.server.server", "confvault.vault.Vault"),
        ("confvault.vault.store.fs", "confvault.server.start"),
    ]
