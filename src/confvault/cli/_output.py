"""How results and diagnostics reach the terminal.

Results go to stdout (so ``--json`` stays parseable); diagnostics go to stderr
as ``confvault: error: ...`` / ``confvault: hint: ...``, lowercase, no final
period. ``NO_COLOR`` is respected by rich.

rich is imported only when something is styled: a line of plain text to a
stream that is not a terminal is written as rich would write it (the text and
a newline) without loading rich. The two rich consoles are made on first use,
in the process that prints (a worker forked from a preloaded process makes its
own, for its own terminal).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

_consoles: dict[bool, Console] = {}
_EMOJI_CODE = re.compile(r":\S*?:")  # what rich might take for an :emoji: code
Part = str | tuple[str, str]  # plain text, or (text, rich style)


def safe(text: str) -> str:
    """``text`` with every character that is not printable escaped (``\\x1b``,
    ``\\u202e``): what came from the vault directory, a grantee or a tar (a
    file name, an audit field, a member name) cannot move the cursor, retitle
    the terminal, clear it, or turn the text after it around. Every untrusted
    string the CLI prints goes through here."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def stdout() -> Console:
    """The rich console on stdout (for tables and styled text)."""
    return _console(err=False)


def stderr() -> Console:
    """The rich console on stderr (for prompts and progress bars)."""
    return _console(err=True)


def _console(*, err: bool) -> Console:
    if err not in _consoles:
        from rich.console import Console

        _consoles[err] = Console(stderr=err, highlight=False, soft_wrap=True)
    return _consoles[err]


def _plain_stream(stream: TextIO) -> bool:
    """True when rich would not style ``stream``: not a terminal, nor told to
    act as one."""
    if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ:
        return False
    try:
        return not stream.isatty()
    except ValueError:
        return False


def _as_is(stream: TextIO, text: str) -> bool:
    """True when rich would write ``text`` to ``stream`` unchanged: a plain
    stream, and nothing in the text that rich rewrites (a control character,
    a tab, an :emoji: code)."""
    return _plain_stream(stream) and text.isprintable() and not _EMOJI_CODE.search(text)


def line(text: str, *, err: bool = False, style: str | None = None) -> None:
    """One line of literal text (never markup) on stdout, or stderr with ``err``."""
    stream = sys.stderr if err else sys.stdout
    if _as_is(stream, text):
        stream.write(text + "\n")
        stream.flush()
        return
    _console(err=err).print(text, markup=False, style=style)


def parts(*pieces: Part, err: bool = False) -> None:
    """One line of literal pieces, some styled: ``("vault ok", "bold green")``."""
    stream = sys.stderr if err else sys.stdout
    text = "".join(p if isinstance(p, str) else p[0] for p in pieces)
    if _as_is(stream, text):
        stream.write(text + "\n")
        stream.flush()
        return
    from rich.text import Text

    _console(err=err).print(Text.assemble(*pieces))


def error(message: str) -> None:
    """One error line on stderr."""
    line(f"confvault: error: {safe(message)}", err=True, style="bold red")


def hint(message: str) -> None:
    """One hint line on stderr."""
    line(f"confvault: hint: {safe(message)}", err=True, style="yellow")


def warn(message: str) -> None:
    """One warning line on stderr."""
    line(f"confvault: warning: {safe(message)}", err=True, style="yellow")


def info(message: str) -> None:
    """A progress or status line on stderr (keeps stdout for results)."""
    line(message, err=True)


@contextmanager
def progress(
    label: str, total: int | None = None
) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on stderr, drawn only on a terminal; yields the
    library's progress callback ``(done, total)``."""
    if _plain_stream(sys.stderr):  # rich would draw nothing
        yield lambda done, of: None
        return
    from rich.progress import Progress

    console = stderr()
    with Progress(
        console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, of: bar.update(task, completed=done, total=of)


# Which key opened the vault in this command, once it is open ("passphrase",
# "agent", "recovery-key", "identity"): every --json document says so.
key_source: str | None = None


def emit_json(document: Any) -> None:
    """Write a JSON document to stdout, with ``key_source`` once the vault is
    open (on the document, or on each object of a list)."""
    if key_source is not None:
        field = {"key_source": key_source}
        if isinstance(document, dict):
            document = document | field
        elif isinstance(document, list):
            document = [i | field if isinstance(i, dict) else i for i in document]
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
