"""The command-line interface: the only home of typer, rich, prompts, exit codes.

One Typer app (cli/_app.py) defines every command once. Its root group loads a
command's module only when that command runs, is asked for its help, or is
completed (cli/_lazy.py), and rich is imported only when something styled is
printed (cli/_output.py): `confvault age …` starts without the vault, and a
nightly `confvault backup create|verify` without rich or the vault's
key-holding code, with the app's own messages and exit codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer


def main() -> None:
    """Console-script entry point."""
    from confvault.cli._app import app

    app(prog_name="confvault")


def preload() -> None:
    """Import everything a command may load and build the command tree once: for
    a process that forks a worker per command (confvault.server)."""
    from confvault.cli import _preloaded

    _preloaded.preload()


def run(
    args: list[str],
    *,
    terminal_on_stdin: bool = False,
    client_terminal: bool | None = None,
    client_pid: int | None = None,
) -> int:
    """Run ``confvault ARGS`` in this process and return its exit status, as
    ``main`` would end it (a worker of confvault.server). With
    ``terminal_on_stdin`` (a process without a controlling terminal) a
    passphrase prompt asks on stdin when stdin is a terminal; ``client_terminal``
    says whether the process it runs for (``client_pid``) has one (for ``unlock
    --allow-jobs``)."""
    from confvault.cli import _preloaded

    return _preloaded.run(
        args,
        terminal_on_stdin=terminal_on_stdin,
        client_terminal=client_terminal,
        client_pid=client_pid,
    )


def __getattr__(name: str) -> Any:
    if name == "app":  # the app, for tests and embedding
        from confvault.cli._app import app

        return app
    raise AttributeError(name)


if TYPE_CHECKING:
    app: typer.Typer
