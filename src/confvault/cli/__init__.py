"""The command-line interface: the only home of typer, rich, prompts, exit codes."""

from __future__ import annotations

from typing import Annotated

import typer

from confvault import __version__
from confvault.cli import age, demo
from confvault.cli._errors import EXIT_STATUS, ConfvaultGroup

app = typer.Typer(
    cls=ConfvaultGroup,
    name="confvault",
    help="A confidential record vault for therapists: every note a sealed age file.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_STATUS,
)
app.add_typer(age.app, name="age")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"confvault {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version"
        ),
    ] = False,
) -> None:
    """A confidential record vault for therapists: every note a sealed age file."""


@app.command("demo", epilog=EXIT_STATUS)
def demo_command() -> None:
    """Walk through confvault on throwaway data in a temporary directory."""
    demo.run_codec_demo()


def main() -> None:
    """Console-script entry point."""
    app()
