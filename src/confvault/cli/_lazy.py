"""The root command group, whose commands are loaded on demand.

The root knows each top-level command (a command such as ``init``, or a group
such as ``note``) by a small table: its name, the module that defines it, and
the one line ``confvault --help`` shows for it. A module is imported only when
its command is invoked, asked for its own help, or completed below its name:
``confvault --version``, ``confvault --help`` and ``confvault backup ...`` load
nothing of ``note`` or of the key-holding vault code. Every command is still
defined once, with typer, in its module; tests/cli/test_app.py checks that the
table says what the modules define.

A process that wants everything loaded up front (a preloaded command server)
reads every value of ``RootGroup.commands``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer._click import Command, Context
from typer._click.shell_completion import CompletionItem
from typer.core import TyperCommand
from typer.models import TyperInfo

from confvault.cli._errors import ConfvaultGroup


@dataclass(frozen=True)
class Lazy:
    """Where a top-level command is defined, and what the root's help says of it.

    ``group`` names the module's ``typer.Typer`` that is the group; for a
    command (``group`` None) the module's ``commands`` Typer defines it.
    """

    module: str
    help: str
    group: str | None = None


class LazyCommands(MutableMapping[str, Command]):
    """The root's commands: those of the table, each built on first access,
    in the table's order; then any added directly (``app.add_typer``)."""

    def __init__(
        self,
        added: Mapping[str, Command],
        table: Mapping[str, Lazy],
        load: Callable[[str], Command],
    ) -> None:
        self._loaded = dict(added)
        self._table = table
        self._load = load
        self._removed: set[str] = set()

    def loaded(self, name: str) -> Command | None:
        """The command if it is built already, without building it."""
        return self._loaded.get(name)

    def __getitem__(self, name: str) -> Command:
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._table or name in self._removed:
            raise KeyError(name)
        command = self._loaded[name] = self._load(name)
        return command

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command
        self._removed.discard(name)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._loaded.pop(name, None)
        self._removed.add(name)

    def __iter__(self) -> Iterator[str]:
        for name in self._table:
            if name not in self._removed:
                yield name
        for name in self._loaded:
            if name not in self._table:
                yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        if name in self._removed:
            return False
        return name in self._loaded or name in self._table


class LazyGroup(ConfvaultGroup):
    """A :class:`ConfvaultGroup` whose commands come from ``table``, on demand."""

    table: ClassVar[Mapping[str, Lazy]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands, self.table, self._build)
        self._listing = False

    def _build(self, name: str) -> Command:
        """Import the module of ``name`` and build its command, as
        ``app.add_typer``/``app.command`` on this group would have."""
        entry = self.table[name]
        module = importlib.import_module(entry.module)
        if entry.group is not None:
            sub: typer.Typer = getattr(module, entry.group)
            return typer.main.get_group_from_info(
                TyperInfo(sub, name=name),
                pretty_exceptions_short=True,  # typer's default, as on the root
                rich_markup_mode=self.rich_markup_mode,
                suggest_commands=self.suggest_commands,
            )
        commands: typer.Typer = module.commands
        for info in commands.registered_commands:
            function = getattr(info.callback, "__name__", "")
            if (info.name or typer.main.get_command_name(function)) == name:
                return typer.main.get_command_from_info(
                    info,
                    pretty_exceptions_short=True,
                    rich_markup_mode=self.rich_markup_mode,
                )
        raise LookupError(f"{entry.module} defines no command {name!r}")

    @contextmanager
    def _names_only(self) -> Iterator[None]:
        """Within: a command not loaded yet is only its name and help line."""
        self._listing = True
        try:
            yield
        finally:
            self._listing = False

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if self._listing and isinstance(self.commands, LazyCommands):
            loaded = self.commands.loaded(cmd_name)
            if loaded is None and cmd_name in self.commands:
                return TyperCommand(cmd_name, help=self.table[cmd_name].help)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)  # the names only: TyperGroup's reads every value

    def format_help(self, ctx: Context, formatter: Any) -> None:
        with self._names_only():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: Context, incomplete: str) -> list[CompletionItem]:
        with self._names_only():
            return super().shell_complete(ctx, incomplete)
