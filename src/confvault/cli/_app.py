"""The root of the command tree: the global options, and the table of every
top-level command and group, each loaded from its module on demand.

Importing this module loads typer and nothing of the vault but its policy
constants; a command's module is imported when that command runs (see
cli/_lazy.py). A new command goes in its module and gets one row here, in the
order ``confvault --help`` lists it; tests/cli/test_app.py checks the row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from confvault import __version__
from confvault.cli._context import Options
from confvault.cli._errors import EXIT_STATUS
from confvault.cli._lazy import Lazy, LazyGroup

_VAULT = "confvault.cli.vault"
_NOTES = "confvault.cli.notes"
_ACCESS = "confvault.cli.access"
_OWNER = "confvault.cli.owner"

# name: where it is defined, and the line `confvault --help` shows for it
COMMANDS: dict[str, Lazy] = {
    "init": Lazy(
        _VAULT,
        "Create a vault: owner keys sealed with your passphrase, and a recovery key.",
    ),
    "status": Lazy(
        _VAULT, "A dashboard: clients, notes, drafts, keys, grants, last verify."
    ),
    "unlock": Lazy(
        "confvault.cli.unlock",
        "Ask the passphrase once; this user's commands then need none until `lock`.",
    ),
    "lock": Lazy(
        "confvault.cli.unlock",
        "Lock the vault now: its agent forgets the keys (exit 3: it was not unlocked).",
    ),
    "verify": Lazy(
        _VAULT, "Check the whole vault; without --deep no passphrase is needed."
    ),
    "attach": Lazy(
        _NOTES,
        "Seal a file (a signed consent form, a letter) as an attachment note.",
    ),
    "grant": Lazy(
        _ACCESS,
        "Give a colleague's age key read access to clients (instant at any size).",
    ),
    "grants": Lazy(_ACCESS, "Who has access to what, since when, until when."),
    "revoke": Lazy(
        _ACCESS, "Remove a grant and rotate every affected client key in the same run."
    ),
    "rotate": Lazy(
        _ACCESS, "New client keys, notes re-sealed. No selector: the nightly job."
    ),
    "migrate": Lazy(
        "confvault.cli.migrate",
        "Convert a classic vault to post-quantum keys in place (resumable).",
    ),
    "passphrase": Lazy(
        _OWNER, "Change the passphrase (old one, or the recovery key, required)."
    ),
    "export": Lazy(
        "confvault.cli.export",
        "Export a client's whole record: readable files (--out) or one age file (--to).",
    ),
    # sync over git (issue 16)
    "clone": Lazy(
        "confvault.cli.sync",
        "Set up this device's copy of a vault from a git remote, then open it.",
    ),
    "demo": Lazy(
        "confvault.cli.demo",
        "Walk through confvault on throwaway data in a temporary directory.",
    ),
    "age": Lazy(
        "confvault.cli.age",
        "Seal or open single files in the standard age format.",
        group="app",
    ),
    "client": Lazy(
        "confvault.cli.clients", "Add, list, show and rename clients.", group="app"
    ),
    "note": Lazy(_NOTES, "Write, read and search notes.", group="app"),
    "identity": Lazy(_OWNER, "The owner's keys.", group="identity"),
    "audit": Lazy(
        "confvault.cli.audit",
        "The audit trail: who read or changed which record, and when.",
        group="app",
    ),
    "custodian": Lazy(
        "confvault.cli.custody",
        "Colleagues who together may open the vault when you cannot.",
        group="app",
    ),
    "backup": Lazy(
        "confvault.cli.backup",
        "Back up the vault's ciphertext, check a backup and restore it; "
        "no passphrase needed.",
        group="app",
    ),
    # issue 18: the record's lifetime
    "retention": Lazy(
        "confvault.cli.retention",
        "Records due for destruction under the retention rule; legal holds "
        "are in `client hold`.",
        group="app",
    ),
    "request": Lazy(
        "confvault.cli.requests",
        "Records requests: a client's copy of their record, on a clock.",
        group="app",
    ),
    # sync over git (issue 16)
    "sync": Lazy(
        "confvault.cli.sync",
        "Sync the vault with a git remote: fetch, check, apply, push.",
        group="app",
    ),
}


class RootGroup(LazyGroup):
    """`confvault`: every error mapped once (ConfvaultGroup), commands on demand."""

    table = COMMANDS


app = typer.Typer(
    cls=RootGroup,
    name="confvault",
    help="A confidential record vault for therapists: every note a sealed age file.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_STATUS,
)

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
