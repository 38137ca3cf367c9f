"""The app for a preloaded process (the command server, confvault.server):
everything imported and the command tree built once, before any command runs;
then one command line run per forked worker, its exit status returned.

The tree is the one Typer app of cli/_app.py, built as ``app()`` builds it:
every command keeps its one definition, its help and its errors.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import pkgutil
import sys
from typing import Any

import typer.main
from typer._click import Command

import confvault
from confvault.cli import _secrets
from confvault.cli._app import app
from confvault.cli._errors import INTERNAL

# Imported by commands on their first use, beside the modules of confvault:
# loaded up front so that a worker starts with them.
_LIBRARIES = (
    "ctypes",
    "getpass",
    "json",
    "shlex",
    "subprocess",
    "termios",
    "rich._emoji_codes",
    "rich.console",
    "rich.markup",
    "rich.progress",
    "rich.table",
    "rich.text",
    "typer._click._textwrap",
    "typer._click.decorators",
    "typer.rich_utils",
)
# Never imported by the preloading: entry points that run on import, and the
# server's own room.
# Not the server itself, and no ``__main__`` (each runs its program on import).
_SKIP = ("confvault.server",)

_tree: Command | None = None


def preload() -> None:
    """Import every module of confvault and the libraries its commands load
    on demand, and build the whole command tree. Reads no vault, no key."""
    global _tree
    for module in _LIBRARIES:
        importlib.import_module(module)
    for info in pkgutil.walk_packages(confvault.__path__, "confvault."):
        if info.name.endswith(".__main__"):
            continue
        if not any(info.name == s or info.name.startswith(s + ".") for s in _SKIP):
            importlib.import_module(info.name)
    tree = typer.main.get_command(app)
    _load_all(tree)
    _warm(tree)
    _tree = tree


def _warm(tree: Command) -> None:
    """Render the help of the root and of every group, and a table, into
    nothing, and seal to a throwaway hybrid key: the caches of typer, rich and
    ``re`` (compiled patterns, measured widths, parsed styles) and
    pyca/cryptography's backend fill here once, and every worker forked after
    inherits them (a fourth of a worker's processor time, measured, and
    another fourth for a command that reads a post-quantum vault)."""
    from rich.console import Console
    from rich.table import Table

    from confvault import age

    # pyca/cryptography loads its OpenSSL backend on the first key it parses
    # (a fourth of a worker's time): a throwaway key of zeros loads it here.
    throwaway = age.HybridIdentity(bytes(32))
    age.decrypt(age.encrypt(b"", [throwaway.recipient]), [throwaway])
    sink = io.StringIO()
    commands: dict[str, Command] = getattr(tree, "commands", {})
    groups = [
        name for name, command in commands.items() if hasattr(command, "commands")
    ]
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        for args in (["--help"], *([name, "--help"] for name in groups)):
            with contextlib.suppress(SystemExit):
                tree.main(args=args, prog_name="confvault")
        table = Table("id", "name")
        table.add_row("0123456789abcdef", "Ann Example")
        Console(file=sink, width=80).print(table)


def _load_all(command: Any) -> None:
    commands = getattr(command, "commands", None)
    if commands is None:
        return
    for name in list(commands):
        _load_all(commands[name])


def run(
    args: list[str],
    *,
    terminal_on_stdin: bool = False,
    client_terminal: bool | None = None,
    client_pid: int | None = None,
) -> int:
    """Run one command line in this process, as ``confvault ARGS`` would; its
    exit status. ``terminal_on_stdin``: this process has no controlling
    terminal, and a prompt asks on stdin (when it is a terminal) instead."""
    _secrets.terminal_on_stdin = terminal_on_stdin
    _secrets.client_terminal = client_terminal
    if client_pid is not None:
        from confvault.agent import client

        client.on_behalf_of = client_pid
    tree = _tree if _tree is not None else typer.main.get_command(app)
    try:
        tree.main(args=args, prog_name="confvault")
    except SystemExit as done:
        return status(done.code)
    except Exception as err:  # noqa: BLE001 - the group maps every error; a bug
        from confvault.cli import _output

        _output.error(f"internal error: {type(err).__name__}")
        return INTERNAL
    return 0


def status(code: object) -> int:
    """The exit status ``sys.exit(code)`` gives."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
