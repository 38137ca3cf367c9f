"""`confvault audit`: show the audit trail; `audit verify` checks its chain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from confvault.cli import _argv, _complete, _output, _readonly
from confvault.cli._argv import CLIENT_FILE
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS, INTEGRITY
from confvault.cli._options import JSON, SINCE

if TYPE_CHECKING:
    from confvault.vault.model.results import AuditEntry

app = typer.Typer(
    help="The audit trail: who read or changed which record, and when.",
    invoke_without_command=True,
    epilog=EXIT_STATUS,
)


@app.callback()
def show(
    ctx: typer.Context,
    client: Annotated[
        str | None,
        typer.Option(
            "--client",
            help="only entries about this client; a name is "
            + _argv.in_ps("the ID or --client-file"),
            click_type=_complete.CLIENT,
        ),
    ] = None,
    client_file: CLIENT_FILE = None,
    since: SINCE = None,
    action: Annotated[
        str | None, typer.Option("--action", help="only this action, e.g. note-show")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="only entries written on this synced device (its name or ID; "
            "exit 1 if no entry names it)",
        ),
    ] = None,
    as_json: JSON = False,
) -> None:
    """Show the audit trail (oldest first)."""
    if ctx.invoked_subcommand is not None:
        return
    client = _argv.value(
        ctx, client, client_file, name="--client", option="--client-file"
    )
    vault = options(ctx).open_vault()
    entries = vault.audit(client=client, since=since, action=action, device=device)
    if as_json:
        _output.emit_json(_readonly.document(vault, [e.to_json() for e in entries]))
        return
    render(entries)


def render(entries: Sequence[AuditEntry]) -> None:
    """The entries as a table. A grantee wrote some of their fields: each is
    plain text (never rich markup) with its control characters escaped."""
    from rich.table import Table
    from rich.text import Text

    synced = any(e.device is not None for e in entries)  # a device column then
    columns = ("#", "time", "actor", *(("device",) if synced else ()))
    table = Table(*columns, "action", "client", "note")
    for e in entries:
        actor = e.actor.split(":", 1)[0] + ("" if e.signed else " (unsigned)")
        cells = (
            str(e.seq),
            e.time.replace("T", " ")[:19],
            actor,
            *(("" if e.device is None else str(e.device["name"]),) if synced else ()),
            e.action,
            e.client_name or (e.client or "")[:8],
            (e.note or "")[:16],
        )
        table.add_row(*(Text(_output.safe(cell)) for cell in cells))
    _output.stdout().print(table)


@app.command("verify", epilog=EXIT_STATUS)
def verify(ctx: typer.Context, as_json: JSON = False) -> None:
    """Check the whole audit chain; exit status 13 if it was tampered with."""
    vault = options(ctx).open_vault()
    findings = vault.verify_audit()
    errors = [f for f in findings if f.severity == "error"]
    if as_json:
        doc = {"ok": not errors, "findings": [f.to_json() for f in findings]}
        _output.emit_json(_readonly.document(vault, doc))
    else:
        for f in findings:
            _output.line(
                _output.safe(f"{f.severity} {f.code}: {f.subject} {f.message}")
            )
        _output.line(
            "audit trail ok"
            if not errors
            else f"audit trail damaged: {len(errors)} problems"
        )
    if errors:
        raise typer.Exit(INTEGRITY)
