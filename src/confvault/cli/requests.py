"""`confvault request`: records requests and their clock (open, list, close,
set); `export CLIENT --closes ID` closes one with the export's summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from confvault.cli import _argv, _output, _readonly
from confvault.cli._argv import CLIENT, CLIENT_FILE
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS
from confvault.cli._options import JSON

if TYPE_CHECKING:
    from confvault.vault.model.requests import RequestInfo

app = typer.Typer(
    help="Records requests: a client's copy of their record, on a clock.",
    no_args_is_help=True,
    epilog=EXIT_STATUS,
)
REQUEST = Annotated[
    str, typer.Argument(metavar="ID", help="the request's ID (a prefix)")
]


def _show(info: RequestInfo, as_json: bool, verb: str) -> None:
    if as_json:
        _output.emit_json(info.to_json())
        return
    _output.line(f"{verb} records request {info.id}: {_when(info)}")


def _when(info: RequestInfo) -> str:
    if info.status == "closed":
        return f"closed {info.closed}: {_output.safe(info.outcome or '')}"
    if info.days_left < 0:
        return f"due {info.due}, OVERDUE by {-info.days_left} days"
    return f"due {info.due} (in {info.days_left} days)"


def _state(info: RequestInfo) -> str:
    if info.status == "closed":
        return "closed"
    if info.days_left < 0:
        return f"OVERDUE {-info.days_left}d"
    return f"{info.days_left}d left"


@app.command("open", epilog=EXIT_STATUS)
def open_request(
    ctx: typer.Context,
    received: Annotated[
        str,
        typer.Option(
            "--received",
            metavar="DATE",
            help="the day it was received: YYYY-MM-DD, or an ISO 8601 time "
            "(its day in the local time zone)",
        ),
    ],
    client: CLIENT = None,
    client_file: CLIENT_FILE = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by", help="who asked (the client, a lawyer); " + _argv.in_ps("--by-file")
        ),
    ] = None,
    by_file: Annotated[
        str | None,
        typer.Option(
            "--by-file", metavar="FILE", help="who asked, from FILE; not in `ps`"
        ),
    ] = None,
    due_days: Annotated[
        int | None,
        typer.Option(
            "--due-days",
            help="days to answer in (default: `request set`'s, else 30)",
        ),
    ] = None,
    as_json: JSON = False,
) -> None:
    """Record a records request: the clock starts on the day received."""
    client = _argv.client(ctx, client, client_file)
    by = _argv.value(ctx, by, by_file, name="--by", option="--by-file")
    vault = options(ctx).open_vault(write=True)
    info = vault.open_request(client, received, by=by, due_days=due_days)
    _show(info, as_json, "opened")


@app.command("list", epilog=EXIT_STATUS)
def list_requests(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="closed requests too")] = False,
    as_json: JSON = False,
) -> None:
    """Open records requests with their due dates (overdue ones flagged)."""
    vault = options(ctx).open_vault()
    infos = vault.requests(closed=all_)
    if as_json:
        _output.emit_json(_readonly.document(vault, [i.to_json() for i in infos]))
        return
    if not infos:
        _output.info("no open records request")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table("id", "client", "received", "due", "status", "by")
    for i in infos:
        name = i.client_name or f"(shredded {i.client[:8]})"
        cells = (i.id, name, i.received, i.due, _state(i), i.by or "-")
        style = "bold red" if i.status == "overdue" else None
        table.add_row(*(Text(_output.safe(c)) for c in cells), style=style)
    _output.stdout().print(table)


@app.command("close", epilog=EXIT_STATUS)
def close(
    ctx: typer.Context,
    request: REQUEST,
    outcome: Annotated[
        str,
        typer.Option(
            "--outcome",
            help="what was done (sent, refused and why, extended to ...)",
        ),
    ],
    as_json: JSON = False,
) -> None:
    """Record the outcome of a records request, which closes it."""
    vault = options(ctx).open_vault(write=True)
    _show(vault.close_request(request, outcome), as_json, "closed")


@app.command("set", epilog=EXIT_STATUS)
def set_default(
    ctx: typer.Context,
    due_days: Annotated[
        int, typer.Option("--due-days", help="days a new request is due in (30)")
    ],
    as_json: JSON = False,
) -> None:
    """Set the days a new records request is due in (the vault's setting)."""
    days = options(ctx).open_vault(write=True).set_request_days(due_days)
    if as_json:
        _output.emit_json({"due_days": days})
    else:
        _output.line(f"new records requests are due in {days} days")
