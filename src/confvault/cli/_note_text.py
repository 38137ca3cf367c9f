"""A note's text and title, from $EDITOR, stdin or a file, and the options
that say where they come from (shared by `note add`, `edit` and `amend`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from confvault.cli import _argv
from confvault.errors import ConfvaultError, UnsafeInputError

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


def template_text(name: str | None) -> str:
    """The text a new note starts from: a built-in template, or the user's own
    ($XDG_CONFIG_HOME/confvault/templates/NAME.md); empty without ``--template``."""
    if name is None:
        return ""
    from confvault.vault.model.note_format import TEMPLATES

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


def text_on_stdin(file: str | None) -> bool:
    """Whether the note's text comes from stdin (so no other value can)."""
    return file == "-" or (file is None and not sys.stdin.isatty())


def note_title(
    ctx: typer.Context, title: str | None, title_file: str | None, file: str | None
) -> str | None:
    """The title from --title or --title-file (which cannot be stdin when the
    text is), or None."""
    return _argv.value(
        ctx,
        title,
        title_file,
        name="--title",
        option="--title-file",
        stdin_free=not text_on_stdin(file),
    )


def read_text(file: str | None, initial: str, insecure_tmp: bool) -> bytes:
    """The note's text: from stdin, FILE, or $EDITOR on ``initial``; refused when
    empty, unchanged in the editor, over 16 MiB or not UTF-8."""
    if text_on_stdin(file):
        data = sys.stdin.buffer.read(MAX_TEXT + 1)
    elif file is not None:
        try:
            with Path(file).open("rb") as f:
                data = f.read(MAX_TEXT + 1)
        except OSError as err:
            raise ConfvaultError(f"cannot read {file}: {err.strerror}") from err
    else:
        from confvault.cli import _editor

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
