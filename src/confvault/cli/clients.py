"""`confvault client`: add, list, show, rename, edit, hold, release, shred."""

from __future__ import annotations

import sys
from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer

from confvault.cli import _argv, _output, _readonly
from confvault.cli._argv import CLIENT, CLIENT_FILE
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS
from confvault.cli._options import JSON
from confvault.errors import (
    ClientHeldError,
    ConfvaultError,
    UnsafeInputError,
)
from confvault.vault.model import names

if TYPE_CHECKING:
    from confvault.vault import Vault
    from confvault.vault.model.results import ClientInfo

app = typer.Typer(
    help="Add, list, show and rename clients.", no_args_is_help=True, epilog=EXIT_STATUS
)
BORN = Annotated[
    str | None,
    typer.Option(
        "--born",
        metavar="DATE",
        help="date of birth, YYYY-MM-DD (sealed in the profile; retention of minors)",
    ),
]
NAME_FILE = Annotated[
    str | None,
    typer.Option(
        "--name-file",
        metavar="FILE",
        help="the name from FILE, one line ('-': stdin); not in `ps`",
    ),
]


def _show(
    info: ClientInfo, as_json: bool, verb: str | None = None, vault: Vault | None = None
) -> None:
    if as_json:
        doc = info.to_json()
        _output.emit_json(_readonly.document(vault, doc) if vault else doc)
        return
    if verb:
        _output.line(f"{verb} client {info.id}")
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2))
    for key, value in [
        ("id", info.id),
        ("name", info.name),
        ("created", info.created),
        ("notes", str(info.notes)),
        ("drafts", str(info.drafts)),
        ("psychotherapy notes", str(info.psychotherapy_notes)),
        ("last note", info.last_note or "-"),
        ("born", info.born or "-"),
        ("legal hold", _hold_text(info)),
    ]:
        table.add_row(key, value)
    for key, value in sorted(info.fields.items()):
        table.add_row(key, value)
    _output.stdout().print(table)


def _hold_text(info: ClientInfo) -> str:
    if info.hold is None:
        return "-"
    from rich.markup import escape

    return escape(f"since {info.hold.since}: {_output.safe(info.hold.reason)}")


@app.command(epilog=EXIT_STATUS)
def add(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            show_default=False,
            help="the client's name (stored only inside sealed files); "
            + _argv.in_ps("--name-file or the prompt"),
        ),
    ] = None,
    name_file: NAME_FILE = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            help="KEY=VALUE profile field (repeatable); " + _argv.in_ps("--field-file"),
        ),
    ] = None,
    field_file: Annotated[
        str | None,
        typer.Option(
            "--field-file",
            metavar="FILE",
            help="KEY=VALUE profile fields, one a line ('-': stdin); not in `ps`",
        ),
    ] = None,
    born: BORN = None,
    as_json: JSON = False,
) -> None:
    """Add a client with a random ID and its own keys."""
    name = _argv.required(
        ctx, name, name_file, name="NAME", option="--name-file", prompt="Client name"
    )
    items = _argv.values(ctx, field, field_file, option="--field-file")
    fields = dict(names.field(item) for item in items or [])
    info = options(ctx).open_vault(write=True).add_client(name, fields, born)
    _show(info, as_json, "added")


@app.command("list", epilog=EXIT_STATUS)
def list_clients(ctx: typer.Context, as_json: JSON = False) -> None:
    """List clients with their note counts."""
    vault = options(ctx).open_vault()
    infos = vault.clients()
    # two clients with one name: added on two devices before a sync (issue 16)
    seen = Counter(i.name.casefold() for i in infos)
    twin = {i.id for i in infos if seen[i.name.casefold()] > 1}
    if as_json:
        docs = [i.to_json() | {"possible_duplicate": i.id in twin} for i in infos]
        _output.emit_json(_readonly.document(vault, docs))
        return
    if not infos:
        _output.info("no clients yet; add one with `confvault client add NAME`")
        return
    from rich.table import Table

    table = Table("id", "name", "notes", "drafts", "psychotherapy", "last note", "hold")
    for i in infos:
        table.add_row(
            i.id[:8],
            i.name,
            str(i.notes),
            str(i.drafts),
            str(i.psychotherapy_notes),
            (i.last_note or "-")[:10],
            "held" if i.hold else "",
        )
    _output.stdout().print(table)
    if twin:
        _output.warn(
            "possible duplicates (the same name, e.g. added on two devices "
            f"before a sync): {', '.join(sorted(c[:8] for c in twin))}"
        )


@app.command("ls", hidden=True)
def ls(ctx: typer.Context, as_json: JSON = False) -> None:
    list_clients(ctx, as_json)


@app.command(epilog=EXIT_STATUS)
def show(
    ctx: typer.Context,
    client: CLIENT = None,
    client_file: CLIENT_FILE = None,
    as_json: JSON = False,
) -> None:
    """Show a client's profile and counts."""
    client = _argv.client(ctx, client, client_file)
    vault = options(ctx).open_vault()
    _show(vault.client(client), as_json, vault=vault)


@app.command(epilog=EXIT_STATUS)
def rename(
    ctx: typer.Context,
    client: CLIENT = None,
    new_name: Annotated[
        str | None,
        typer.Argument(
            metavar="NEW_NAME",
            show_default=False,
            help="the new name; " + _argv.in_ps("--new-name-file or the prompt"),
        ),
    ] = None,
    client_file: CLIENT_FILE = None,
    new_name_file: Annotated[
        str | None,
        typer.Option(
            "--new-name-file",
            metavar="FILE",
            help="the new name from FILE, one line ('-': stdin); not in `ps`",
        ),
    ] = None,
    as_json: JSON = False,
) -> None:
    """Rename a client."""
    if client_file is not None and new_name is None and new_name_file is None:
        client, new_name = None, client  # `rename --client-file F NEW_NAME`
    client = _argv.client(ctx, client, client_file)
    new_name = _argv.required(
        ctx,
        new_name,
        new_name_file,
        name="NEW_NAME",
        option="--new-name-file",
        prompt="New name",
    )
    _show(
        options(ctx).open_vault(write=True).rename_client(client, new_name),
        as_json,
        "renamed",
    )


@app.command(epilog=EXIT_STATUS)
def edit(
    ctx: typer.Context,
    client: CLIENT = None,
    client_file: CLIENT_FILE = None,
    born: BORN = None,
    clear_born: Annotated[
        bool, typer.Option("--clear-born", help="forget the date of birth")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Change a client's date of birth (rename: `client rename`)."""
    if (born is None) == (not clear_born):
        raise typer.BadParameter(
            "give --born DATE or --clear-born", ctx=ctx, param_hint="'--born'"
        )
    client = _argv.client(ctx, client, client_file)
    vault = options(ctx).open_vault(write=True)
    _show(vault.set_born(client, None if clear_born else born), as_json, "changed")


@app.command(epilog=EXIT_STATUS)
def hold(
    ctx: typer.Context,
    client: CLIENT = None,
    client_file: CLIENT_FILE = None,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            help="why (a subpoena, a complaint, ...); "
            + _argv.in_ps("--reason-file or the prompt"),
        ),
    ] = None,
    reason_file: Annotated[
        str | None,
        typer.Option(
            "--reason-file",
            metavar="FILE",
            help="the reason from FILE, one line ('-': stdin); not in `ps`",
        ),
    ] = None,
    as_json: JSON = False,
) -> None:
    """Place a legal hold: the client is never due and can never be shredded."""
    client = _argv.client(ctx, client, client_file)
    reason = _argv.required(
        ctx,
        reason,
        reason_file,
        name="--reason",
        option="--reason-file",
        prompt="Reason",
    )
    vault = options(ctx).open_vault(write=True)
    _show(vault.hold_client(client, reason), as_json, "held")


@app.command(epilog=EXIT_STATUS)
def release(
    ctx: typer.Context,
    client: CLIENT = None,
    client_file: CLIENT_FILE = None,
    as_json: JSON = False,
) -> None:
    """Lift a legal hold; the retention period counts again from now."""
    client = _argv.client(ctx, client, client_file)
    vault = options(ctx).open_vault(write=True)
    _show(vault.release_client(client), as_json, "released")


@app.command(epilog=EXIT_STATUS)
def shred(
    ctx: typer.Context,
    client: CLIENT = None,
    client_file: CLIENT_FILE = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="do not ask for confirmation (scripts)")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Destroy a client's keys and records (crypto-shredding) after retention
    ends; refused (exit 5) for a client under a legal hold."""
    client = _argv.client(ctx, client, client_file)
    vault = options(ctx).open_vault(write=True)
    info = vault.client(client)
    if info.hold is not None:
        raise ClientHeldError(
            f"client {info.id[:8]} is under a legal hold; nothing was shredded"
        )
    if not yes:
        if not sys.stdin.isatty():
            raise UnsafeInputError(
                "shredding needs a typed confirmation on a terminal, or --yes"
            )
        _output.line(
            f"This destroys every record of {info.name} ({info.notes} notes) "
            "in this vault. It cannot be undone.",
            err=True,
        )
        typed = input(f"Type the client's name ({info.name}) to confirm: ")
        if typed.strip() != info.name:
            raise ConfvaultError("the name did not match; nothing was shredded")
    result = vault.shred_client(info.id)
    if as_json:
        _output.emit_json(result.to_json())
        return
    _output.line(
        f"shredded client {result.client}: {result.notes} notes, "
        f"{result.files_destroyed} files destroyed"
    )
    _output.warn(result.limits)
