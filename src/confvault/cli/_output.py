"""How results and diagnostics reach the terminal.

Results go to stdout (so ``--json`` stays parseable); diagnostics go to stderr
as ``confvault: error: ...`` / ``confvault: hint: ...``, lowercase, no final
period. ``NO_COLOR`` is respected by rich.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """One error line on stderr."""
    stderr.print(f"confvault: error: {message}", markup=False, style="bold red")


def hint(message: str) -> None:
    """One hint line on stderr."""
    stderr.print(f"confvault: hint: {message}", markup=False, style="yellow")


def warn(message: str) -> None:
    """One warning line on stderr."""
    stderr.print(f"confvault: warning: {message}", markup=False, style="yellow")


def info(message: str) -> None:
    """A progress or status line on stderr (keeps stdout for results)."""
    stderr.print(message, markup=False)


def emit_json(document: Any) -> None:
    """Write a JSON document to stdout."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
