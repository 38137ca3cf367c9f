"""`confvault note` (add, list, show, search, edit, sign, amend, import) and `attach`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Column, Table
from rich.text import Text

from confvault.cli import _argv, _editor, _output
from confvault.cli._argv import CLIENT, CLIENT_FILE
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS
from confvault.cli._files import new_private_file
from confvault.errors import ConfvaultError, UnsafeInputError
from confvault.vault import Vault
from confvault.vault.model.note_format import TEMPLATES
from confvault.vault.model.results import NoteInfo, NoteView

app = typer.Typer(
    help="Write, read and search notes.", no_args_is_help=True, epilog=EXIT_STATUS
)
JSON = Annotated[bool, typer.Option("--json", help="print a JSON document instead")]
NOTE = Annotated[
    str,
    typer.Argument(
        metavar="NOTE", help="a unique prefix (4+ characters) of the note's ID"
    ),
]
FILE = Annotated[
    str | None,
    typer.Option("--file", "-f", help="read the text from FILE ('-' for stdin)"),
]
TITLE = Annotated[
    str | None,
    typer.Option(
        "--title", "-t", help="the note's title; " + _argv.in_ps("--title-file")
    ),
]
TITLE_FILE = Annotated[
    str | None,
    typer.Option(
        "--title-file",
        metavar="FILE",
        help="the title from FILE, one line ('-': stdin); not in `ps`",
    ),
]
INSECURE = Annotated[
    bool,
    typer.Option(
        "--insecure-tmp",
        help="let the editor's file live on disk when no RAM-backed directory exists",
    ),
]
MAX_TEXT = 16 * 1024 * 1024


def _template_text(name: str | None) -> str:
    if name is None:
        return ""
    if name in TEMPLATES:
        return TEMPLATES[name]
    base = (
        Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        / "confvault"
        / "templates"
    )
    if not name.replace("-", "").replace("_", "").isalnum():
        raise UnsafeInputError(
            "a template name may contain letters, digits, - and _ only"
        )
    path = base / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        known = ", ".join(sorted(TEMPLATES))
        raise ConfvaultError(
            f"no template {name!r} (built in: {known}; yours go in {base}/NAME.md)"
        ) from err


def _text_on_stdin(file: str | None) -> bool:
    """Whether the note's text comes from stdin (so no other value can)."""
    return file == "-" or (file is None and not sys.stdin.isatty())


def _title(
    ctx: typer.Context, title: str | None, title_file: str | None, file: str | None
) -> str | None:
    return _argv.value(
        ctx,
        title,
        title_file,
        name="--title",
        option="--title-file",
        stdin_free=not _text_on_stdin(file),
    )


def _read_text(file: str | None, initial: str, insecure_tmp: bool) -> bytes:
    if _text_on_stdin(file):
        data = sys.stdin.buffer.read(MAX_TEXT + 1)
    elif file is not None:
        try:
            with Path(file).open("rb") as f:
                data = f.read(MAX_TEXT + 1)
        except OSError as err:
            raise ConfvaultError(f"cannot read {file}: {err.strerror}") from err
    else:
        data = _editor.edit(initial, insecure_tmp=insecure_tmp)
        if data.strip() == initial.encode().strip():
            raise ConfvaultError("the note was left unchanged; nothing saved")
    if len(data) > MAX_TEXT:
        raise UnsafeInputError(
            "the note is larger than 16 MiB; use `confvault attach` for files"
        )
    if not data.strip():
        raise ConfvaultError("the note is empty; nothing saved")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnsafeInputError(
            "the note is not UTF-8 text; use `confvault attach` for files"
        ) from err
    return data


def _done(info: NoteInfo, as_json: bool, verb: str) -> None:
    if as_json:
        _output.emit_json(info.to_json())
    else:
        _output.stdout.print(
            f"{verb} {info.kind} note {info.id} ({info.status}) for {escape(info.client_name)}"
        )


def _id_column() -> Column:
    return Column("id", no_wrap=True, min_width=16)


def _notes_table(notes: list[NoteInfo]) -> Table:
    table = Table("date", "client", "kind", "status", "title")
    table.columns.insert(0, _id_column())
    for n in notes:
        title = ("↳ " if n.addendum_of else "") + n.title
        table.add_row(
            n.id, n.date[:10], escape(n.client_name), n.kind, n.status, escape(title)
        )
    return table


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
    kind: Annotated[
        str, typer.Option("--kind", help="progress, psychotherapy or intake")
    ] = "progress",
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
    client = _argv.client(ctx, client, client_file, stdin_free=not _text_on_stdin(file))
    title = _title(ctx, title, title_file, file)
    body = _read_text(file, _template_text(template), insecure_tmp)
    vault = options(ctx).open_vault(write=True)
    info = vault.add_note(
        client, body, kind=kind, title=title, template=template, date=date, draft=draft
    )
    _done(info, as_json, "added")


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
        ),
    ] = None,
    client_file: CLIENT_FILE = None,
    since: Annotated[
        str | None, typer.Option("--since", help="from this date (YYYY-MM-DD)")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="up to this date (YYYY-MM-DD)")
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="only notes of this kind")
    ] = None,
    psychotherapy: Annotated[
        bool, typer.Option("--psychotherapy", help="include psychotherapy notes")
    ] = False,
    as_json: JSON = False,
) -> None:
    """List notes by date (psychotherapy notes only with --psychotherapy)."""
    client = _argv.value(
        ctx, client, client_file, name="CLIENT", option="--client-file"
    )
    notes = (
        options(ctx)
        .open_vault()
        .notes(client, since=since, until=until, kind=kind, psychotherapy=psychotherapy)
    )
    if as_json:
        _output.emit_json([n.to_json() for n in notes])
    elif not notes:
        _output.info("no notes match")
    else:
        _output.stdout.print(_notes_table(notes))


@app.command("ls", hidden=True)
def ls(
    ctx: typer.Context, client: Annotated[str | None, typer.Argument()] = None
) -> None:
    list_notes(ctx, client)


def _print_view(view: NoteView) -> None:
    info = view.info
    mark = {
        "valid": "[green]signature valid[/green]",
        "draft": "[yellow]draft (unsigned)[/yellow]",
    }
    _output.stdout.print(
        f"[bold]{escape(info.title)}[/bold]  "
        f"({info.kind}, {info.date[:10]}, {escape(info.client_name)})"
    )
    _output.stdout.print(
        f"note {info.id} — {mark.get(view.signature, view.signature)}"
        + (f", signed {view.signed_at}" if view.signed_at else "")
    )
    if info.addendum_of:
        _output.stdout.print(f"addendum to note {info.addendum_of}")
    if info.addenda:
        _output.stdout.print(f"addenda: {', '.join(info.addenda)}")
    _output.stdout.rule()
    _output.stdout.print(
        view.body.decode("utf-8", "replace"), markup=False, highlight=False
    )


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
            _output.emit_json(info.to_json() | {"output": str(output)})
        else:
            _output.info(f"wrote {info.size} bytes to {output} (signature valid)")
        return
    view = vault.note(note)
    if as_json:
        _output.emit_json(view.to_json())
    elif view.info.kind == "attachment":
        _print_view(
            NoteView(
                view.info,
                f"[attachment {view.info.filename}, {view.info.size} bytes: use -o FILE]".encode(),
                view.signature,
                view.signed_at,
            )
        )
    else:
        _print_view(view)


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
        ),
    ] = None,
    client_file: CLIENT_FILE = None,
    psychotherapy: Annotated[
        bool, typer.Option("--psychotherapy", help="include psychotherapy notes")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Full-text search across notes, with highlighted snippets."""
    query = _argv.required(
        ctx, query, query_file, name="QUERY", option="--query-file", prompt="Search for"
    )
    client = _argv.value(
        ctx, client, client_file, name="--client", option="--client-file"
    )
    hits = (
        options(ctx)
        .open_vault()
        .search(query, client=client, psychotherapy=psychotherapy)
    )
    if as_json:
        _output.emit_json([h.to_json() for h in hits])
        return
    if not hits:
        _output.info("no notes match")
        return
    report = Text()  # one print: rendering thousands of lines one by one is slow
    for hit in hits:
        n = hit.note
        report.append(n.id, style="bold")
        report.append(f" {n.date[:10]} {n.client_name} — {n.title}\n")
        for before, match, after in hit.snippets:
            report.append("    …" + before)
            report.append(match, style="bold reverse")
            report.append(after + "…\n")
    report.rstrip()
    _output.stdout.print(report)


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
    title = _title(ctx, title, title_file, file)
    vault = options(ctx).open_vault(write=True)
    current = vault.note(note)
    if current.info.status != "draft":
        from confvault.errors import NoteLockedError

        raise NoteLockedError(
            f"note {current.info.id} is signed and locked; add an addendum with `note amend`"
        )
    body = _read_text(file, current.body.decode("utf-8", "replace"), insecure_tmp)
    _done(vault.edit_draft(note, body, title=title), as_json, "updated")


@app.command(epilog=EXIT_STATUS)
def sign(ctx: typer.Context, note: NOTE, as_json: JSON = False) -> None:
    """Sign and lock a draft."""
    _done(options(ctx).open_vault(write=True).sign_note(note), as_json, "signed")


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
    title = _title(ctx, title, title_file, file)
    body = _read_text(file, "", insecure_tmp)
    _done(
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
    kind: Annotated[
        str, typer.Option("--kind", help="progress, psychotherapy or intake")
    ] = "progress",
    as_json: JSON = False,
) -> None:
    """Import existing notes (dated from front matter or file time), one commit."""
    if client_file is not None and client is not None:
        client, paths = None, [Path(client), *(paths or [])]  # no CLIENT in argv
    if not paths:
        raise typer.BadParameter(
            "give at least one file", ctx=ctx, param_hint="'PATH...'"
        )
    client = _argv.client(ctx, client, client_file)
    vault = options(ctx).open_vault(write=True)
    with Progress(
        console=_output.stderr, transient=True, disable=not _output.stderr.is_terminal
    ) as bar:
        task = bar.add_task("sealing notes", total=len(paths))
        infos = vault.import_notes(
            client,
            paths,
            kind=kind,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    if as_json:
        _output.emit_json([i.to_json() for i in infos])
    else:
        _output.stdout.print(
            f"imported {len(infos)} notes for {escape(infos[0].client_name) if infos else client}"
        )


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
        client, file = None, Path(client)  # `attach --client-file F FILE`
    if file is None:
        raise typer.BadParameter(
            "give the file to attach", ctx=ctx, param_hint="'FILE'"
        )
    client = _argv.client(ctx, client, client_file)
    title = _argv.value(ctx, title, title_file, name="--title", option="--title-file")
    info = options(ctx).open_vault(write=True).add_attachment(client, file, title=title)
    _done(info, as_json, "attached")
