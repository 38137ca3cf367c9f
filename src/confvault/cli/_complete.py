"""Shell completion of what the vault holds: client names and note IDs.

Commands, groups and options complete from the Typer definition through the
lazy root (cli/_lazy.py), always. Client names and note IDs complete only
while the vault is unlocked (``_context.unlocked_vault``: a running agent,
never a passphrase). Each callback runs inside the shell's Tab press, so it
never prompts, never prints, never raises to the shell, and offers nothing
when the vault is locked or anything goes wrong.

The candidates follow the rule the library resolves CLIENT with
(``names.name_matches``: a prefix of the name or of a word of it, any case).
Typer's bash script inserts a candidate as it is, so for bash a name's
spaces and shell characters are escaped; zsh and fish quote on their own.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer._click import Context, Parameter
from typer._click.shell_completion import CompletionItem
from typer._click.types import ParamType

from confvault.cli import _context

if TYPE_CHECKING:
    from confvault.vault import Vault

MAX_CANDIDATES = 200  # a menu longer than this helps nobody at a Tab press
_COMPLETE_VAR = "_CONFVAULT_COMPLETE"
_BASH_SPECIAL = re.compile(r"([\s\\'\"$`!&|;()<>*?\[\]{}~#])")


def _options(ctx: typer.Context) -> _context.Options:
    """The global options as typed so far: completion parses the command line
    without running the root callback, so they are read from its parameters.
    Only where the vault is: a completion never reads a passphrase source."""
    root = ctx.find_root()
    if isinstance(root.obj, _context.Options):
        return _context.Options(vault=root.obj.vault, owner_key=root.obj.owner_key)
    vault = root.params.get("vault_path")
    owner_key = root.params.get("owner_key")
    return _context.Options(
        vault=Path(vault) if isinstance(vault, str | Path) else None,
        owner_key=owner_key if isinstance(owner_key, str) else None,
    )


def _vault(ctx: typer.Context) -> Vault | None:
    return _context.unlocked_vault(_options(ctx))


def _for_shell(value: str) -> str:
    if os.environ.get(_COMPLETE_VAR, "").endswith("bash"):
        return _BASH_SPECIAL.sub(r"\\\1", value)
    return value


def clients(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Client names that the word being typed begins (or begins a word of)."""
    try:
        from confvault.vault.model import names

        vault = _vault(ctx)
        if vault is None:
            return []
        folded = unicodedata.normalize("NFC", incomplete.strip()).casefold()
        found = [
            (_for_shell(c.name), f"client {c.id[:8]}")
            for c in vault.clients()
            if not folded or names.name_matches(c.name, folded)
        ]
        return found[:MAX_CANDIDATES]
    except Exception:  # noqa: BLE001 -- a Tab press must never see a traceback
        return []


def notes(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Note IDs that begin with the word being typed (newest first)."""
    try:
        from confvault.cli._output import safe

        vault = _vault(ctx)
        if vault is None:
            return []
        wanted = incomplete.strip().lower()
        found = [
            (n.id, safe(f"{n.date[:10]} {n.client_name}: {n.title}"))
            for n in reversed(vault.notes())
            if n.id.startswith(wanted)
        ]
        return found[:MAX_CANDIDATES]
    except Exception:  # noqa: BLE001 -- a Tab press must never see a traceback
        return []


class Completing(ParamType):
    """A text parameter whose completion is ``complete``. A click type rather
    than Typer's ``autocompletion``, which keeps only the candidates that
    begin with the word as typed (case and all): "ex" must offer "Ann
    Example", as CLIENT resolves it. ``name`` keeps the help as for any str."""

    name = "str"

    def __init__(
        self, complete: Callable[[typer.Context, str], list[tuple[str, str]]]
    ) -> None:
        self._complete = complete

    def convert(self, value: Any, param: Parameter | None, ctx: Context | None) -> Any:
        return value

    def shell_complete(
        self, ctx: Context, param: Parameter, incomplete: str
    ) -> list[CompletionItem]:
        return [
            CompletionItem(value, help=help_)
            for value, help_ in self._complete(ctx, incomplete)  # type: ignore[arg-type]
        ]


CLIENT = Completing(clients)
NOTE = Completing(notes)
