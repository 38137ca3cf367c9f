"""`confvault backup`: create, verify, restore. No passphrase is ever asked.

A nightly job runs these: they load neither rich (unless something is styled)
nor the vault's key-holding code (tests/cli/test_backup_cli.py checks it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from confvault.cli import _output
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS, USAGE
from confvault.cli._options import JSON
from confvault.cli._report import finding, render_report
from confvault.errors import IntegrityError
from confvault.vault import backup

app = typer.Typer(
    help=(
        "Back up the vault's ciphertext, check a backup and restore it; "
        "no passphrase needed."
    ),
    no_args_is_help=True,
    epilog=EXIT_STATUS,
)


def _usage(message: str) -> NoReturn:
    _output.error(message)
    raise typer.Exit(USAGE)


def _summary(verb: str, result: backup.BackupResult) -> str:
    return (
        f"{verb} vault {result.vault_id[:12]} generation {result.generation}: "
        f"{result.objects} objects, {result.files} files, {result.bytes} bytes"
        f" -> {result.destination}"
    )


@app.command(epilog=EXIT_STATUS)
def create(
    ctx: typer.Context,
    dest: Annotated[
        str,
        typer.Argument(
            metavar="DEST",
            help="a new or empty directory, a new FILE.tar, or '-' for a tar on stdout",
        ),
    ],
    as_json: JSON = False,
) -> None:
    """Copy the vault's current state (ciphertext only) while others keep working."""
    opts = options(ctx)
    if dest == "-":
        if as_json:
            _usage("--json cannot be used with '-': stdout carries the tar")
        if sys.stdout.isatty():
            _usage("refusing to write a binary tar to a terminal; pipe or redirect it")
        result = backup.create(
            opts.vault_path, sys.stdout.buffer, lock_timeout=opts.lock_timeout
        )
        _output.info(_summary("backed up", result))
        return
    result = backup.create(opts.vault_path, Path(dest), lock_timeout=opts.lock_timeout)
    if as_json:
        _output.emit_json(result.to_json())
    else:
        _output.line(_summary("backed up", result))


@app.command(epilog=EXIT_STATUS)
def verify(
    ctx: typer.Context,
    src: Annotated[
        str,
        typer.Argument(
            metavar="SRC",
            help="a backup directory, a tar file, or '-' for a tar on stdin",
        ),
    ],
    as_json: JSON = False,
) -> None:
    """Check a backup's signature and every hash, with no key; exit 13 on problems."""
    opts = options(ctx)
    if src == "-":
        if sys.stdin.isatty():
            _usage("give the tar on stdin (a pipe or a redirect), not a terminal")
        report = backup.verify(sys.stdin.buffer)
    else:
        report = backup.verify(Path(src), lock_timeout=opts.lock_timeout)
    render_report(report, as_json)


@app.command(epilog=EXIT_STATUS)
def restore(
    ctx: typer.Context,
    src: Annotated[
        str,
        typer.Argument(
            metavar="SRC",
            help="a backup directory, a tar file, or '-' for a tar on stdin",
        ),
    ],
    dest: Annotated[
        Path,
        typer.Argument(metavar="DEST", help="a new or empty directory for the vault"),
    ],
    accept_rollback: Annotated[
        bool,
        typer.Option(
            "--accept-rollback",
            help=(
                "this machine saw a newer generation of this vault: accept the "
                "restored, older one as current from now on"
            ),
        ),
    ] = False,
    as_json: JSON = False,
) -> None:
    """Restore a backup into a new vault directory, then verify it (keyless)."""
    opts = options(ctx)
    if src == "-" and sys.stdin.isatty():
        _usage("give the tar on stdin (a pipe or a redirect), not a terminal")
    source = sys.stdin.buffer if src == "-" else Path(src)
    from confvault.vault.model.results import Finding, VerifyReport
    from confvault.vault.store.paths import default_state_dir

    try:
        result, report = backup.restore(
            source,
            dest,
            accept_rollback=accept_rollback,
            state_dir=default_state_dir(),
            lock_timeout=opts.lock_timeout,
        )
    except IntegrityError as err:
        if err.findings:
            _output.error(str(err))
            findings = tuple(f for f in err.findings if isinstance(f, Finding))
            render_report(VerifyReport(str(dest), 0, 0, 0, False, findings), as_json)
        raise
    if as_json:
        _output.emit_json({"restored": result.to_json(), "report": report.to_json()})
        return
    for item in report.findings:
        finding(item)
    _output.line(_summary("restored", result))
    if any(f.code == "rollback" for f in report.findings):
        _output.hint(
            "`confvault` will refuse this copy as a rollback on this machine; "
            "remove it and restore again with --accept-rollback if that is what you want"
        )
