"""`confvault note` (add, list, show, search, edit, sign, amend, import) and
`confvault attach`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from confvault.cli import _argv, _complete, _note_views, _output, _readonly
from confvault.cli._argv import CLIENT, CLIENT_FILE
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS
from confvault.cli._files import new_private_file
from confvault.cli._note_text import (
    FILE,
    INSECURE,
    TITLE,
    TITLE_FILE,
    note_title,
    read_text,
    template_text,
    text_on_stdin,
)
from confvault.cli._options import JSON, NOTE_KIND, PSYCHOTHERAPY, SINCE

if TYPE_CHECKING:
    from confvault.vault import Vault
    from confvault.vault.model.results import NoteInfo

app = typer.Typer(
    help="Write, read and search notes.", no_args_is_help=True, epilog=EXIT_STATUS
)
commands = typer.Typer()  # `attach`, at the top level
NOTE = Annotated[
    str,
    typer.Argument(
        metavar="NOTE",
        help="a unique prefix (4+ characters) of the note's ID",
        click_type=_complete.NOTE,
    ),
]


@app.command(epilog=EXIT_STATUS)
def add(
    ctx: typer.Context,
    client: CLIENT = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template", help="soap, dap, birp, girp, intake, or your own NAME"
        ),
    ] = None,
    kind: NOTE_KIND = "progress",
    title: TITLE = None,
    title_file: TITLE_FILE = None,
    client_file: CLIENT_FILE = None,
    file: FILE = None,
    draft: Annotated[
        bool,
        typer.Option(
            "--draft", help="keep as an editable draft instead of signing now"
        ),
    ] = False,
    date: Annotated[
        str | None,
        typer.Option("--date", help="session date (YYYY-MM-DD); default now"),
    ] = None,
    insecure_tmp: INSECURE = False,
    as_json: JSON = False,
) -> None:
    """Write a note from $EDITOR, stdin or a file; signed and locked unless --draft."""
    client = _argv.client(ctx, client, client_file, stdin_free=not text_on_stdin(file))
    title = note_title(ctx, title, title_file, file)
    _readonly.refuse_write(options(ctx).vault_path)  # before the editor opens
    body = read_text(file, template_text(template), insecure_tmp)
    vault = options(ctx).open_vault(write=True)
    info = vault.add_note(
        client, body, kind=kind, title=title, template=template, date=date, draft=draft
    )
    _note_views.done(info, as_json, "added")


@app.command("list", epilog=EXIT_STATUS)
def list_notes(
    ctx: typer.Context,
    client: Annotated[
        str | None,
        typer.Argument(
            metavar="CLIENT",
            show_default=False,
            help="only this client's notes; a name is "
            + _argv.in_ps("the ID or --client-file"),
            click_type=_complete.CLIENT,
        ),
    ] = None,
    client_file: CLIENT_FILE = None,
    since: SINCE = None,
    until: Annotated[
        str | None, typer.Option("--until", help="up to this date (YYYY-MM-DD)")
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="only notes of this kind")
    ] = None,
    psychotherapy: PSYCHOTHERAPY = False,
    as_json: JSON = False,
) -> None:
    """List notes by date (psychotherapy notes only with --psychotherapy)."""
    client = _argv.value(
        ctx, client, client_file, name="CLIENT", option="--client-file"
    )
    vault = options(ctx).open_vault()
    notes = vault.notes(
        client, since=since, until=until, kind=kind, psychotherapy=psychotherapy
    )
    if as_json:
        _output.emit_json(_readonly.document(vault, [n.to_json() for n in notes]))
    elif not notes:
        _output.info("no notes match")
    else:
        _output.stdout().print(_note_views.notes_table(notes))


@app.command("ls", hidden=True)
def ls(
    ctx: typer.Context, client: Annotated[str | None, typer.Argument()] = None
) -> None:
    list_notes(ctx, client)


@app.command(epilog=EXIT_STATUS)
def show(
    ctx: typer.Context,
    note: NOTE,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="write an attachment's file here (0600)"),
    ] = None,
    as_json: JSON = False,
) -> None:
    """Show a note after checking its author signature; -o saves an attachment."""
    vault = options(ctx).open_vault()
    if output is not None:
        info = _save_attachment(vault, note, output)
        if as_json:
            doc = info.to_json() | {"output": str(output)}
            _output.emit_json(_readonly.document(vault, doc))
        else:
            _output.info(f"wrote {info.size} bytes to {output} (signature valid)")
        return
    view = vault.note(note)
    if as_json:
        _output.emit_json(_readonly.document(vault, view.to_json()))
    elif view.info.kind == "attachment":
        from confvault.vault.model.results import NoteView

        _note_views.print_view(
            NoteView(
                view.info,
                f"[attachment {view.info.filename}, {view.info.size} bytes: use -o FILE]".encode(),
                view.signature,
                view.signed_at,
            )
        )
    else:
        _note_views.print_view(view)


def _save_attachment(vault: Vault, note: str, output: Path) -> NoteInfo:
    with new_private_file(output) as f:
        return vault.save_attachment(note, f)


@app.command(epilog=EXIT_STATUS)
def search(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(
            metavar="QUERY",
            show_default=False,
            help="text to find (case-insensitive); "
            + _argv.in_ps("--query-file or the prompt"),
        ),
    ] = None,
    query_file: Annotated[
        str | None,
        typer.Option(
            "--query-file",
            metavar="FILE",
            help="the text to find from FILE, one line ('-': stdin); not in `ps`",
        ),
    ] = None,
    client: Annotated[
        str | None,
        typer.Option(
            "--client",
            help="only this client's notes; a name is "
            + _argv.in_ps("the ID or --client-file"),
            click_type=_complete.CLIENT,
        ),
    ] = None,
    client_file: CLIENT_FILE = None,
    psychotherapy: PSYCHOTHERAPY = False,
    as_json: JSON = False,
) -> None:
    """Full-text search across notes, with highlighted snippets."""
    query = _argv.required(
        ctx, query, query_file, name="QUERY", option="--query-file", prompt="Search for"
    )
    client = _argv.value(
        ctx, client, client_file, name="--client", option="--client-file"
    )
    vault = options(ctx).open_vault()
    hits = vault.search(query, client=client, psychotherapy=psychotherapy)
    if as_json:
        _output.emit_json(_readonly.document(vault, [h.to_json() for h in hits]))
        return
    if not hits:
        _output.info("no notes match")
        return
    _note_views.print_hits(hits)


@app.command(epilog=EXIT_STATUS)
def edit(
    ctx: typer.Context,
    note: NOTE,
    file: FILE = None,
    title: TITLE = None,
    title_file: TITLE_FILE = None,
    insecure_tmp: INSECURE = False,
    as_json: JSON = False,
) -> None:
    """Change a draft (signed notes never change: use `note amend`)."""
    title = note_title(ctx, title, title_file, file)
    vault = options(ctx).open_vault(write=True)
    current = vault.note(note)
    if current.info.status != "draft":
        from confvault.errors import NoteLockedError

        raise NoteLockedError(
            f"note {current.info.id} is signed and locked; add an addendum with `note amend`"
        )
    body = read_text(file, current.body.decode("utf-8", "replace"), insecure_tmp)
    _note_views.done(vault.edit_draft(note, body, title=title), as_json, "updated")


@app.command(epilog=EXIT_STATUS)
def sign(ctx: typer.Context, note: NOTE, as_json: JSON = False) -> None:
    """Sign and lock a draft."""
    _note_views.done(
        options(ctx).open_vault(write=True).sign_note(note), as_json, "signed"
    )


@app.command(epilog=EXIT_STATUS)
def amend(
    ctx: typer.Context,
    note: NOTE,
    file: FILE = None,
    title: TITLE = None,
    title_file: TITLE_FILE = None,
    draft: Annotated[
        bool, typer.Option("--draft", help="keep the addendum as a draft")
    ] = False,
    insecure_tmp: INSECURE = False,
    as_json: JSON = False,
) -> None:
    """Add an addendum linked to a signed note (the original never changes)."""
    title = note_title(ctx, title, title_file, file)
    _readonly.refuse_write(options(ctx).vault_path)  # before the editor opens
    body = read_text(file, "", insecure_tmp)
    _note_views.done(
        options(ctx).open_vault(write=True).amend(note, body, title=title, draft=draft),
        as_json,
        "added",
    )


@app.command("import", epilog=EXIT_STATUS)
def import_notes(
    ctx: typer.Context,
    client: CLIENT = None,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH...",
            show_default=False,
            help="text or Markdown files, one note each",
        ),
    ] = None,
    client_file: CLIENT_FILE = None,
    kind: NOTE_KIND = "progress",
    as_json: JSON = False,
) -> None:
    """Import existing notes (dated from front matter or file time), one commit."""
    if client_file is not None and client is not None:
        paths = [Path(client), *(paths or [])]  # no CLIENT in argv
        client = None
    if not paths:
        raise typer.BadParameter(
            "give at least one file", ctx=ctx, param_hint="'PATH...'"
        )
    client = _argv.client(ctx, client, client_file)
    vault = options(ctx).open_vault(write=True)
    with _output.progress("sealing notes", total=len(paths)) as progress:
        infos = vault.import_notes(client, paths, kind=kind, progress=progress)
    if as_json:
        _output.emit_json([i.to_json() for i in infos])
    else:
        name = infos[0].client_name if infos else client
        _output.line(f"imported {len(infos)} notes for {name}")


@commands.command(epilog=EXIT_STATUS)
def attach(
    ctx: typer.Context,
    client: CLIENT = None,
    file: Annotated[
        Path | None,
        typer.Argument(
            metavar="FILE", show_default=False, help="any file (streamed, any size)"
        ),
    ] = None,
    client_file: CLIENT_FILE = None,
    title: TITLE = None,
    title_file: TITLE_FILE = None,
    as_json: JSON = False,
) -> None:
    """Seal a file (a signed consent form, a letter) as an attachment note."""
    if client_file is not None and file is None and client is not None:
        file = Path(client)  # `attach --client-file F FILE`
        client = None
    if file is None:
        raise typer.BadParameter(
            "give the file to attach", ctx=ctx, param_hint="'FILE'"
        )
    client = _argv.client(ctx, client, client_file)
    title = _argv.value(ctx, title, title_file, name="--title", option="--title-file")
    info = options(ctx).open_vault(write=True).add_attachment(client, file, title=title)
    _note_views.done(info, as_json, "attached")
