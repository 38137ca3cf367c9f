"""Notes on the terminal: the one-line result of a write, the list table, a
note with its signature, and search hits. rich is loaded only for the styled
ones (the table, a note, the hits)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from confvault.cli import _output

if TYPE_CHECKING:
    from rich.table import Table

    from confvault.vault.model.results import NoteInfo, NoteView, SearchHit


def done(info: NoteInfo, as_json: bool, verb: str) -> None:
    """What a command that wrote a note prints: its JSON, or one line."""
    if as_json:
        _output.emit_json(info.to_json())
    else:
        _output.line(
            f"{verb} {info.kind} note {info.id} ({info.status}) for {info.client_name}"
        )


def notes_table(notes: list[NoteInfo]) -> Table:
    """`note list`: id, date, client, kind, status, title (an addendum marked ↳)."""
    from rich.markup import escape
    from rich.table import Column, Table

    table = Table("date", "client", "kind", "status", "title")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=16))
    for n in notes:
        title = ("↳ " if n.addendum_of else "") + n.title
        table.add_row(
            n.id, n.date[:10], escape(n.client_name), n.kind, n.status, escape(title)
        )
    return table


def print_view(view: NoteView) -> None:
    """`note show`: title, date, client, signature status, links, then the text."""
    from rich.markup import escape

    info = view.info
    mark = {
        "valid": "[green]signature valid[/green]",
        "draft": "[yellow]draft (unsigned)[/yellow]",
    }
    console = _output.stdout()
    console.print(
        f"[bold]{escape(info.title)}[/bold]  "
        f"({info.kind}, {info.date[:10]}, {escape(info.client_name)})"
    )
    console.print(
        f"note {info.id} — {mark.get(view.signature, view.signature)}"
        + (f", signed {view.signed_at}" if view.signed_at else "")
    )
    if info.addendum_of:
        console.print(f"addendum to note {info.addendum_of}")
    if info.addenda:
        console.print(f"addenda: {', '.join(info.addenda)}")
    console.rule()
    console.print(view.body.decode("utf-8", "replace"), markup=False, highlight=False)


def print_hits(hits: list[SearchHit]) -> None:
    """`note search`: each note's id, date, client and title, and its snippets
    with the match highlighted."""
    from rich.text import Text

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
    _output.stdout().print(report)
