"""Who may read what: grant, grants, revoke, and rotate (new client keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from confvault.cli import _argv, _complete, _output, _report
from confvault.cli._context import options
from confvault.cli._errors import (
    EXIT_STATUS,
    PARTLY_DONE,
    exit_for,
)
from confvault.cli._options import JSON

if TYPE_CHECKING:
    from confvault.vault.model.results import RevokeReport, RotateReport

commands = typer.Typer()
CLIENTS = Annotated[
    list[str] | None,
    typer.Option(
        "--client",
        help="a client name or ID prefix (repeatable); a name is "
        + _argv.in_ps("the ID or --client-file"),
        click_type=_complete.CLIENT,
    ),
]


@commands.command(epilog=EXIT_STATUS)
def grant(
    ctx: typer.Context,
    recipient: Annotated[
        str, typer.Argument(help="an age1… key, or a file holding one")
    ],
    client: CLIENTS = None,
    client_file: _argv.CLIENT_FILES = None,
    all_clients: Annotated[
        bool, typer.Option("--all", help="every client, also those added later")
    ] = False,
    label: Annotated[
        str | None, typer.Option("--label", help="who this is, e.g. 'supervisor'")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="last day of access (YYYY-MM-DD)")
    ] = None,
    psychotherapy: Annotated[
        bool, typer.Option("--psychotherapy", help="also psychotherapy notes")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Give a colleague's age key read access to clients (instant at any size)."""
    client = _argv.values(ctx, client, client_file, option="--client-file")
    vault = options(ctx).open_vault(write=True)
    info = vault.grant(
        _argv.recipient(recipient),
        clients=client,
        all_clients=all_clients,
        label=label,
        until=until,
        psychotherapy=psychotherapy,
    )
    owner_key = vault.owner_key_fingerprint()
    if as_json:
        _output.emit_json({**info.to_json(), "owner_key": owner_key})
        return
    scope = "all clients" if info.all_clients else ", ".join(info.clients)
    _output.line(
        f"granted {info.label} read access to {scope}"
        + (f" until {info.until[:10]}" if info.until else "")
    )
    kind = "a post-quantum" if info.key_kind == "postquantum" else "a classic"
    _output.info(f"the grantee's key is {kind} key")
    _output.info(
        "they read with `confvault --vault DIR --identity THEIR_KEY_FILE "
        f"--owner-key '{owner_key}' note list`; give them this owner key "
        "fingerprint yourself, not through the vault's sync folder"
    )


@commands.command(epilog=EXIT_STATUS)
def grants(ctx: typer.Context, as_json: JSON = False) -> None:
    """Who has access to what, since when, until when."""
    infos = options(ctx).open_vault().grants()
    if as_json:
        _output.emit_json([g.to_json() for g in infos])
        return
    if not infos:
        _output.info("no grants: only you can open this vault")
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table("label", "recipient", "clients", "psychotherapy", "since", "until")
    for g in infos:
        scope = "all" if g.all_clients else ", ".join(g.clients)
        table.add_row(
            escape(g.label),
            g.recipient[:20] + "…",
            escape(scope),
            "yes" if g.psychotherapy else "no",
            g.since[:10],
            (g.until or "-")[:10],
        )
    _output.stdout().print(table)


def _print_rotation(report: RotateReport | RevokeReport) -> None:
    notes = sum(max(r.notes, 0) for r in report.rotated)
    _output.line(f"rotated {len(report.rotated)} client keys, re-sealed {notes} notes")
    for failure in report.failed:
        _output.error(f"not rotated: {failure}")
    _report.damaged_notes(report.rotated)


@commands.command(epilog=EXIT_STATUS)
def revoke(
    ctx: typer.Context,
    who: Annotated[
        str, typer.Argument(metavar="RECIPIENT|LABEL", help="the grant to remove")
    ],
    client: CLIENTS = None,
    client_file: _argv.CLIENT_FILES = None,
    as_json: JSON = False,
) -> None:
    """Remove a grant and rotate every affected client key in the same run."""
    client = _argv.values(ctx, client, client_file, option="--client-file")
    vault = options(ctx).open_vault(write=True)
    with _output.progress("rotating keys") as progress:
        report = vault.revoke(who, clients=client, progress=progress)
    if as_json:
        _output.emit_json(report.to_json())
    else:
        from rich.markup import escape
        from rich.table import Table

        what = "removed" if report.grant_removed else "narrowed"
        _output.line(f"grant for {report.label} {what}")
        table = Table(
            "client", "could read", "notes", "first note", "last note", "from", "to"
        )
        for e in report.exposure:
            table.add_row(
                escape(e.client_name),
                ", ".join(e.compartments),
                str(e.notes),
                (e.first_note or "-")[:10],
                (e.last_note or "-")[:10],
                e.since[:10],
                e.until[:10],
            )
        _output.parts(
            ("exposure", "bold"), ": what the grantee could have read and copied"
        )
        _output.stdout().print(table)
        _print_rotation(report)
        _output.warn(report.CANNOT_UNDO)
    if report.failed:
        raise typer.Exit(PARTLY_DONE)


@commands.command(epilog=EXIT_STATUS)
def rotate(
    ctx: typer.Context,
    client: CLIENTS = None,
    client_file: _argv.CLIENT_FILES = None,
    all_clients: Annotated[bool, typer.Option("--all", help="every client")] = False,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="keys older than e.g. 90d, 12w, 6m, 1y"),
    ] = None,
    expired: Annotated[
        bool, typer.Option("--expired", help="revoke grants past their --until date")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would be done; change nothing")
    ] = False,
    as_json: JSON = False,
) -> None:
    """New client keys, notes re-sealed. No selector: the nightly job."""
    client = _argv.values(ctx, client, client_file, option="--client-file")
    vault = options(ctx).open_vault(write=True)
    with _output.progress("rotating keys") as progress:
        report = vault.rotate(
            clients=client,
            all_clients=all_clients,
            older_than=older_than,
            expired=expired,
            dry_run=dry_run,
            progress=progress,
        )
    if as_json:
        _output.emit_json(report.to_json())
    elif report.dry_run:
        _output.line(
            f"would revoke {len(report.revoked_grants)} expired grants and rotate "
            f"{len(report.rotated)} client keys (dry run: nothing changed)"
        )
    else:
        for label in report.revoked_grants:
            _output.line(f"revoked expired grant {label}")
        _print_rotation(report)
    exit_for(report.outcome)
