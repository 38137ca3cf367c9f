"""Values other local users must not see: client names, titles, profile fields,
search terms.

A process's arguments are readable by every local user (``ps``,
``/proc/PID/cmdline``), so each such value also has a way in that stays out of
them: ``--X-file FILE`` (``-`` for stdin; a pipe such as ``<(printf …)``
works), or, where the value may be left out, a prompt when stdin is a terminal
(on stderr, so stdout stays clean for ``--json``).

A file for one value holds one line: one trailing LF or CRLF is removed, and
an empty file or a second line is refused. A file for a repeatable option
holds one value a line; blank lines are skipped. Every problem is a usage
error (exit 2), raised before the vault is opened, so nothing has changed.
Messages never repeat what the file holds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from confvault.cli import _complete
from confvault.errors import KeyFormatError

MAX_FILE = 64 * 1024
_STDIN_READ = "confvault.argv.stdin"  # ctx.meta key: which option read stdin


def in_ps(alternative: str) -> str:
    """The sentence that ends the --help of every option carrying such a value."""
    return (
        f"visible to other local users in `ps`; on a shared machine use {alternative}"
    )


def _bad(ctx: typer.Context, option: str, message: str) -> typer.BadParameter:
    return typer.BadParameter(message, ctx=ctx, param_hint=f"'{option}'")


def _read(
    ctx: typer.Context, source: str, option: str, *, stdin_free: bool
) -> tuple[str, str]:
    """(text, where it came from) of the file ``source`` (``-``: stdin)."""
    if source == "-":
        if not stdin_free:
            raise _bad(ctx, option, "stdin holds the note's text here; give a FILE")
        if _STDIN_READ in ctx.meta:
            raise _bad(
                ctx,
                option,
                f"stdin was already read for {ctx.meta[_STDIN_READ]}; "
                "only one option can be -",
            )
        ctx.meta[_STDIN_READ] = option
        where = "stdin"
        data = sys.stdin.buffer.read(MAX_FILE + 1)
    else:
        where = f"file {source}"
        try:
            with Path(source).open("rb") as f:
                data = f.read(MAX_FILE + 1)
        except OSError as err:
            raise _bad(ctx, option, f"cannot read {source}: {err.strerror}") from err
    if len(data) > MAX_FILE:
        raise _bad(ctx, option, f"{where} is larger than 64 KiB")
    try:
        return data.decode("utf-8"), where
    except UnicodeDecodeError as err:
        raise _bad(ctx, option, f"{where} is not UTF-8 text") from err


def one(
    ctx: typer.Context, source: str, option: str, *, stdin_free: bool = True
) -> str:
    """The single value held by the file ``source`` (``-``: stdin)."""
    text, where = _read(ctx, source, option, stdin_free=stdin_free)
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.strip():
        raise _bad(ctx, option, f"{where} is empty")
    if "\n" in text or "\r" in text:
        raise _bad(ctx, option, f"{where} holds more than one line; give one value")
    return text


def many(
    ctx: typer.Context, source: str, option: str, *, stdin_free: bool = True
) -> list[str]:
    """The values, one a line, held by the file ``source`` (``-``: stdin)."""
    text, where = _read(ctx, source, option, stdin_free=stdin_free)
    values = [line.removesuffix("\r") for line in text.split("\n") if line.strip()]
    if not values:
        raise _bad(ctx, option, f"{where} is empty")
    return values


def _prompt(ctx: typer.Context, label: str, name: str, option: str) -> str:
    if not sys.stdin.isatty():
        raise _bad(
            ctx,
            name,
            "not given, and stdin is not a terminal to ask on; "
            f"give {name} or {option} FILE",
        )
    while True:
        sys.stderr.write(f"{label}: ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise _bad(ctx, name, "nothing was entered")
        text = line.removesuffix("\n").removesuffix("\r")
        if text.strip():
            return text


def value(
    ctx: typer.Context,
    given: str | None,
    source: str | None,
    *,
    name: str,
    option: str,
    stdin_free: bool = True,
) -> str | None:
    """An optional value from argv (``given``) or from the file option; None
    when neither is given. ``name`` is what takes it in argv (``CLIENT``,
    ``--title``), ``option`` the file option (``--client-file``)."""
    if given is not None and source is not None:
        raise _bad(ctx, option, f"give {name} or {option}, not both")
    if source is not None:
        return one(ctx, source, option, stdin_free=stdin_free)
    return given


def required(
    ctx: typer.Context,
    given: str | None,
    source: str | None,
    *,
    name: str,
    option: str,
    prompt: str,
    stdin_free: bool = True,
) -> str:
    """:func:`value` for a value that must be given: asked for on a terminal
    when left out, a usage error without one."""
    found = value(ctx, given, source, name=name, option=option, stdin_free=stdin_free)
    return found if found is not None else _prompt(ctx, prompt, name, option)


def client(
    ctx: typer.Context,
    given: str | None,
    source: str | None,
    *,
    stdin_free: bool = True,
) -> str:
    """The CLIENT of a command that needs one: argv, --client-file, or the prompt."""
    return required(
        ctx,
        given,
        source,
        name="CLIENT",
        option="--client-file",
        prompt="Client",
        stdin_free=stdin_free,
    )


def values(
    ctx: typer.Context,
    given: list[str] | None,
    source: str | None,
    *,
    option: str,
    stdin_free: bool = True,
) -> list[str] | None:
    """A repeatable option's values from argv and/or its file (argv first)."""
    if source is None:
        return given
    return [*(given or []), *many(ctx, source, option, stdin_free=stdin_free)]


def recipient(text: str) -> str:
    """An age1… key, or a file holding one (or an identity, whose public key is used)."""
    from confvault import age

    if text.startswith("age1"):
        return str(age.parse_recipient(text))
    path = Path(text)
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise KeyFormatError(
            f"{text[:60]} is neither an age1… key nor a readable key file"
        ) from err
    if "AGE-SECRET-KEY-1" in content:
        return str(age.parse_identities(content)[0].recipient)
    return str(age.parse_recipients(content)[0])


# --- the options, defined once for every command -------------------------------

CLIENT_HELP = (
    "the client's ID or name, or a unique prefix of the ID or of a word of the "
    "name (any case); a name is "
) + in_ps("the ID, --client-file or the prompt")
CLIENT = Annotated[
    str | None,
    typer.Argument(
        metavar="CLIENT",
        show_default=False,
        help=CLIENT_HELP,
        click_type=_complete.CLIENT,
    ),
]
CLIENT_FILE = Annotated[
    str | None,
    typer.Option(
        "--client-file",
        metavar="FILE",
        help="the client's name or ID from FILE, one line ('-': stdin); not in `ps`",
    ),
]
CLIENT_FILES = Annotated[
    str | None,
    typer.Option(
        "--client-file",
        metavar="FILE",
        help="clients' names or IDs from FILE, one a line ('-': stdin); not in `ps`",
    ),
]
