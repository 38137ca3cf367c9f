"""The full command tree (every group and command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from confvault import __version__
from confvault.cli import (
    access,
    age,
    audit,
    backup,
    clients,
    demo,
    notes,
    records,
    vault,
)
from confvault.cli._context import Options
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
app.add_typer(clients.app, name="client")
app.add_typer(notes.app, name="note")
app.add_typer(access.identity_app, name="identity")
app.add_typer(audit.app, name="audit")
app.add_typer(backup.app, name="backup")
clients.app.command("shred", epilog=EXIT_STATUS)(records.shred)
for _command in (
    vault.init,
    vault.status,
    vault.verify,
    notes.attach,
    access.grant,
    access.grants,
    access.revoke,
    access.rotate,
    access.passphrase,
    records.export,
):
    app.command(epilog=EXIT_STATUS)(_command)

_VAULT_HELP = (
    "the vault directory (else $CONFVAULT_VAULT, else ~/.local/share/confvault/vault)"
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"confvault {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    vault_path: Annotated[
        Path | None, typer.Option("--vault", help=_VAULT_HELP)
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option("--passphrase-file", help="read the passphrase from FILE"),
    ] = None,
    passphrase_fd: Annotated[
        int | None,
        typer.Option("--passphrase-fd", help="read the passphrase from descriptor N"),
    ] = None,
    identity: Annotated[
        Path | None,
        typer.Option(
            "--identity", help="open read-only with a grantee's age identity file"
        ),
    ] = None,
    owner_key: Annotated[
        str | None,
        typer.Option(
            "--owner-key",
            metavar="FINGERPRINT",
            help="refuse a vault not signed by this owner key (as `grant` and "
            "`status` show it; else $CONFVAULT_OWNER_KEY)",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version"
        ),
    ] = False,
) -> None:
    """A confidential record vault for therapists: every note a sealed age file."""
    ctx.obj = Options(
        vault=vault_path,
        passphrase_file=passphrase_file,
        passphrase_fd=passphrase_fd,
        identity=identity,
        owner_key=owner_key,
    )


@app.command("demo", epilog=EXIT_STATUS)
def demo_command() -> None:
    """Walk through confvault on throwaway data in a temporary directory."""
    demo.run_demo()
