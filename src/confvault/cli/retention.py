"""`confvault retention`: the clients whose records are due, `retention set`
(the vault's rule, or a client's) and `retention apply` (the nightly job)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from confvault.cli import _argv, _complete, _output, _readonly
from confvault.cli._argv import CLIENT_FILE
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS, NOTHING_TO_DO, exit_for
from confvault.cli._options import JSON
from confvault.errors import ConfirmationRequiredError, ConfvaultError

if TYPE_CHECKING:
    import datetime as dt

    from confvault.vault.model.retention import RetentionItem

app = typer.Typer(
    help="Records due for destruction under the retention rule; legal holds "
    "are in `client hold`.",
    invoke_without_command=True,
    epilog=EXIT_STATUS,
)
DEFAULT_WITHIN = "90d"
WITHIN = Annotated[
    str,
    typer.Option(
        "--within",
        metavar="DURATION",
        help="also list clients due within this time (90d, 12w, 6m, 1y; 0d: due now)",
    ),
]
_CONFIRM = "shred"


def _within(text: str) -> dt.timedelta:
    from confvault.vault.model.clock import parse_duration

    try:
        return parse_duration(text)
    except ConfvaultError as err:
        raise typer.BadParameter(str(err), param_hint="'--within'") from err
    except OverflowError as err:
        raise typer.BadParameter("too long", param_hint="'--within'") from err


@app.callback()
def show(
    ctx: typer.Context, within: WITHIN = DEFAULT_WITHIN, as_json: JSON = False
) -> None:
    """List clients whose records are due, or due within --within (default 90d)."""
    if ctx.invoked_subcommand is None:
        _list(ctx, within, as_json)


@app.command("list", epilog=EXIT_STATUS)
def list_due(
    ctx: typer.Context, within: WITHIN = DEFAULT_WITHIN, as_json: JSON = False
) -> None:
    """List clients whose records are due, or due within --within (default 90d)."""
    _list(ctx, within, as_json)


def _list(ctx: typer.Context, within: str, as_json: bool) -> None:
    span = _within(within)
    vault = options(ctx).open_vault()
    report = vault.retention(within=span)
    if as_json:
        _output.emit_json(_readonly.document(vault, report.to_json()))
        return
    if report.policy is None:
        _output.info(
            "no retention rule for this vault: only clients with their own rule "
            "can be due (`confvault retention set --years N`)"
        )
    if report.items:
        _table(report.items)
    else:
        _output.info(f"no client is due by {report.until}")
    if report.held:
        _output.info(f"{report.held} clients under a legal hold are never due")


def _table(items: tuple[RetentionItem, ...]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table("id", "name", "last contact", "due", "when", "rule")
    for i in items:
        when = (
            f"{i.overdue_days} days ago"
            if i.overdue_days > 0
            else "today"
            if i.overdue_days == 0
            else f"in {-i.overdue_days} days"
        )
        rule = f"{i.rule} ({i.source}: {i.policy})"
        cells = (i.client[:8], i.client_name, i.last_contact, i.due, when, rule)
        table.add_row(*(Text(_output.safe(c)) for c in cells))
    _output.stdout().print(table)


@app.command("set", epilog=EXIT_STATUS)
def set_rule(
    ctx: typer.Context,
    years: Annotated[
        int | None, typer.Option("--years", help="years kept after the last contact")
    ] = None,
    minor_years: Annotated[
        int | None,
        typer.Option(
            "--minor-years",
            help="for a client who was a minor: years kept after the age of "
            "majority (the later date wins)",
        ),
    ] = None,
    majority: Annotated[
        int | None, typer.Option("--majority", help="the age of majority (default 18)")
    ] = None,
    client: Annotated[
        str | None,
        typer.Option(
            "--client",
            help="this client's own rule, instead of the vault's; a name is "
            + _argv.in_ps("the ID or --client-file"),
            click_type=_complete.CLIENT,
        ),
    ] = None,
    client_file: CLIENT_FILE = None,
    clear: Annotated[
        bool,
        typer.Option(
            "--clear", help="remove the rule (a client's: the vault's applies again)"
        ),
    ] = False,
    as_json: JSON = False,
) -> None:
    """Set the vault's retention rule, or one client's (--client)."""
    from confvault.vault.model.retention import RetentionRule

    given = (years, minor_years, majority)
    if clear == any(v is not None for v in given) or not (clear or years is not None):
        raise typer.BadParameter(
            "give --years N (with --minor-years, --majority), or --clear",
            param_hint="'--years'",
        )
    rule = None if clear else RetentionRule.checked(years or 0, minor_years, majority)
    client = _argv.value(
        ctx, client, client_file, name="--client", option="--client-file"
    )
    vault = options(ctx).open_vault(write=True)
    applies = vault.set_retention(rule, client)
    if as_json:
        doc = applies.to_doc() if applies else None
        scope = "client" if client is not None else "vault"
        _output.emit_json({"scope": scope, "rule": doc})
        return
    whose = "this client" if client is not None else "the vault"
    _output.line(
        f"retention for {whose}: {applies.describe()}"
        if applies
        else f"no retention rule for {whose}: nothing is ever due"
    )


@app.command("apply", epilog=EXIT_STATUS)
def apply(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", help="do not ask for confirmation (nightly job)")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Shred the records that are due today (exit 3: none was due)."""
    if not yes and not sys.stdin.isatty():
        raise ConfirmationRequiredError(
            "retention apply shreds records: it needs a confirmation on a "
            "terminal, or --yes; nothing was shredded"
        )
    vault = options(ctx).open_vault(write=True)
    only = None
    if not yes:
        due = vault.retention(within=_within("0d")).due_now
        if not due:
            _output.info("no client is due today; nothing to shred")
            raise typer.Exit(NOTHING_TO_DO)
        _table(due)
        _output.line(
            f"This destroys every record of these {len(due)} clients in this "
            "vault. It cannot be undone.",
            err=True,
        )
        if input(f"Type {_CONFIRM!r} to confirm: ").strip() != _CONFIRM:
            raise ConfvaultError("not confirmed; nothing was shredded")
        only = [i.client for i in due]
    result = vault.apply_retention(only=only)
    if as_json:
        _output.emit_json(result.to_json())
    else:
        for r in result.shredded:
            _output.line(
                f"shredded client {r.client}: {r.notes} notes, "
                f"{r.files_destroyed} files destroyed"
            )
        for cid in result.skipped:
            _output.info(
                f"skipped client {cid}: held, no longer due, or with an open "
                "records request"
            )
        for cid, why in result.failed:
            _output.error(f"client {cid}: {_output.safe(why)}")
        if result.shredded:
            _output.warn(result.shredded[0].limits)
        elif not result.failed:
            _output.info("no client is due today; nothing to shred")
    exit_for(result.outcome)
