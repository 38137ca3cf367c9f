"""`confvault export`: a client's whole record, for a records request."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from confvault.cli import _argv, _output, _readonly
from confvault.cli._argv import CLIENT, CLIENT_FILE
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS
from confvault.cli._files import new_private_file
from confvault.cli._options import JSON, PSYCHOTHERAPY
from confvault.errors import UnsafeInputError

commands = typer.Typer()


@commands.command(epilog=EXIT_STATUS)
def export(
    ctx: typer.Context,
    client: CLIENT = None,
    client_file: CLIENT_FILE = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="a new directory for readable files (in an existing one)",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="seal the record to this age1… key (or key file)"),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="the age file to write, with --to"),
    ] = None,
    psychotherapy: PSYCHOTHERAPY = False,
    closes: Annotated[
        str | None,
        typer.Option(
            "--closes",
            metavar="ID",
            help="close this open records request of the client with the export",
        ),
    ] = None,
    as_json: JSON = False,
) -> None:
    """Export a client's whole record: readable files (--out) or one age file (--to)."""
    if (out is None) == (to is None):
        raise UnsafeInputError(
            "give either --out DIR (plain files) or --to RECIPIENT -o FILE"
        )
    # Refuse an existing --out before the passphrase (and before asking for
    # the client); nothing is written until the export's audit entry is
    # committed.
    from confvault.vault.ops.export import seal_export
    from confvault.vault.ops.export_sinks import DirectorySink

    sink = DirectorySink(out) if out is not None else None
    client = _argv.client(ctx, client, client_file)
    vault = options(ctx).open_vault(write=closes is not None)
    request = vault.check_request(closes, client) if closes is not None else None
    if out is not None and sink is not None:
        result = vault.export_client(client, sink, psychotherapy=psychotherapy)
        _output.warn(
            f"{out} holds plaintext clinical records (files 0600): keep it private, "
            "delete it when the request is fulfilled"
        )
        where = str(out)
    else:
        from confvault import age

        if output is None:
            raise UnsafeInputError("--to needs -o FILE for the sealed record")
        recipient = age.parse_recipient(_argv.recipient(to or ""))
        with new_private_file(output) as f:
            result = seal_export(
                vault, client, recipient, f, psychotherapy=psychotherapy
            )
        where = str(output)
    closed = None
    if request is not None:
        summary = (
            f"{result.notes} notes and {result.attachments} files"
            + (" with psychotherapy notes" if psychotherapy else "")
            + (" as plain files" if out is not None else " as one sealed age file")
        )
        closed = vault.close_request(request, "exported", export=summary)
    if as_json:
        doc = result.to_json() | {"output": where}
        if closed is not None:
            doc["request"] = closed.to_json()
        _output.emit_json(_readonly.document(vault, doc))
    else:
        _output.line(
            f"exported {result.notes} notes and {result.attachments} files of "
            f"{result.client_name} to {where}"
        )
        if closed is not None:
            _output.line(f"closed records request {closed.id}")
