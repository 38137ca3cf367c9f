"""`confvault age`: seal or open a single file, flag-compatible with the stock tool."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from confvault import age as agelib
from confvault.cli import _output, _secrets
from confvault.cli._errors import EXIT_STATUS
from confvault.errors import ConfvaultError, KeyFormatError, PayloadError
from confvault.vault.store.hardening import harden_process

app = typer.Typer(
    help="Seal or open single files in the standard age format.",
    no_args_is_help=True,
    epilog=EXIT_STATUS,
)


@app.callback()
def _harden() -> None:
    harden_process()  # every `age` command handles keys or plaintext


_OUT_HELP = "write the result to FILE (default: stdout)"


def _parse_recipient_arg(text: str) -> agelib.AnyRecipient:
    try:
        return agelib.parse_recipient(text)
    except KeyFormatError as err:
        shown = text if text.startswith("age1") and len(text) < 100 else "the argument"
        raise KeyFormatError(f"{shown} is not an age1... recipient") from err


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfvaultError(f"cannot read {what} {path}") from err


@contextlib.contextmanager
def _input(path: str | None) -> Iterator[BinaryIO]:
    if path in (None, "-"):
        yield sys.stdin.buffer
        return
    try:
        with Path(path).open("rb") as f:
            yield f
    except OSError as err:
        raise ConfvaultError(f"cannot read input {path}: {err.strerror}") from err


class _LazyOutput:
    """Opens the output on first write, so a failed header leaves no file."""

    def __init__(self, path: str | None, mode: int) -> None:
        self.path = path
        self._mode = mode
        self._file: BinaryIO | None = None
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._file is None:
            self._file = self._open()
        self._file.write(data)
        self.written += len(data)
        return len(data)

    def _open(self) -> BinaryIO:
        if self.path in (None, "-"):
            return sys.stdout.buffer
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self._mode)
        except OSError as err:
            raise ConfvaultError(f"cannot write {self.path}: {err.strerror}") from err
        return os.fdopen(fd, "wb")

    def close(self) -> None:
        if self._file is None:
            self._file = self._open()
        self._file.flush()
        if self._file is not sys.stdout.buffer:
            self._file.close()


def _refuse_binary_to_terminal(output: str | None) -> None:
    if output in (None, "-") and sys.stdout.isatty():
        raise ConfvaultError(
            "refusing to write binary output to the terminal; use -a/--armor or -o FILE"
        )


@app.command(epilog=EXIT_STATUS)
def keygen(
    output: Annotated[
        str | None, typer.Option("-o", "--output", help=_OUT_HELP)
    ] = None,
    convert: Annotated[
        str | None,
        typer.Option(
            "-y",
            help="print the recipient (public key) of each key in an identity file",
        ),
    ] = None,
    pq: Annotated[
        bool,
        typer.Option(
            "--pq",
            help="a post-quantum hybrid key (AGE-SECRET-KEY-PQ-1..., age1pq1...); "
            "stock age before 1.3 cannot use it",
        ),
    ] = False,
) -> None:
    """Generate an identity (secret key) file; the public key goes to stderr.

    X25519 by default (AGE-SECRET-KEY-1..., recipient age1...); with --pq the
    post-quantum hybrid ML-KEM-768 + X25519 type (AGE-SECRET-KEY-PQ-1...,
    recipient age1pq1...).
    """
    if convert is not None:
        for each in agelib.parse_identities(_read_text(Path(convert), "identity file")):
            sys.stdout.write(f"{each.recipient}\n")
        return
    identity: agelib.AnyIdentity = (
        agelib.HybridIdentity.generate() if pq else agelib.X25519Identity.generate()
    )
    created = dt.datetime.now(dt.UTC).astimezone().replace(microsecond=0).isoformat()
    public = identity.recipient
    text = f"# created: {created}\n# public key: {public}\n{identity.encode()}\n"
    if output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as err:
            raise ConfvaultError(
                f"{output} already exists; not overwriting a key"
            ) from err
        except OSError as err:
            raise ConfvaultError(f"cannot write {output}: {err.strerror}") from err
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    _output.info(f"Public key: {identity.recipient}")


@app.command(epilog=EXIT_STATUS)
def encrypt(
    input_path: Annotated[
        str | None,
        typer.Argument(metavar="[INPUT]", help="file to seal (default: stdin)"),
    ] = None,
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "-r",
            "--recipient",
            help="seal to this key: age1... (X25519) or age1pq1... (post-quantum); "
            "repeatable, one kind per file",
        ),
    ] = None,
    recipients_file: Annotated[
        list[Path] | None,
        typer.Option(
            "-R",
            "--recipients-file",
            help="seal to every key in FILE, one a line (repeatable)",
        ),
    ] = None,
    passphrase: Annotated[
        bool, typer.Option("-p", "--passphrase", help="seal with a passphrase (scrypt)")
    ] = False,
    armor: Annotated[
        bool, typer.Option("-a", "--armor", help="write ASCII armor")
    ] = False,
    output: Annotated[
        str | None, typer.Option("-o", "--output", help=_OUT_HELP)
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option("--passphrase-file", help="read the passphrase from FILE"),
    ] = None,
    work_factor: Annotated[
        int,
        typer.Option(
            "--work-factor",
            min=10,
            max=agelib.scrypt.DEFAULT_MAX_WORK_FACTOR,
            help="scrypt cost, log2(N)",
        ),
    ] = agelib.scrypt.DEFAULT_WORK_FACTOR,
) -> None:
    """Seal INPUT to recipients or a passphrase, as the stock `age -e` does.

    Recipients are X25519 keys (age1...) or post-quantum hybrid keys
    (age1pq1...). One file takes one kind: post-quantum recipients are not
    mixed with classic ones, which would leave the file only as strong as
    X25519. Stock age before 1.3 cannot open a post-quantum file.
    """
    targets: list[agelib.Recipient] = [_parse_recipient_arg(r) for r in recipient or []]
    for path in recipients_file or []:
        targets += agelib.parse_recipients(_read_text(path, "recipients file"))
    if passphrase or passphrase_file is not None:
        if targets:
            raise ConfvaultError(
                "-p cannot be combined with -r/-R: a passphrase must be alone"
            )
        secret = _secrets.obtain(file=passphrase_file, confirm=True, use_env=False)
        targets = [agelib.ScryptRecipient(secret, work_factor)]
    if not targets:
        raise ConfvaultError("missing recipients: pass -r, -R or -p")
    if not armor:
        _refuse_binary_to_terminal(output)
    sink = _LazyOutput(output, 0o644)
    with _input(input_path) as src:
        agelib.encrypt_stream(src, sink, targets, armored=armor)
    sink.close()


@app.command(epilog=EXIT_STATUS)
def decrypt(
    input_path: Annotated[
        str | None,
        typer.Argument(metavar="[INPUT]", help="file to open (default: stdin)"),
    ] = None,
    identity: Annotated[
        list[Path] | None,
        typer.Option(
            "-i",
            "--identity",
            help="identity file: AGE-SECRET-KEY-1... and/or AGE-SECRET-KEY-PQ-1... "
            "lines (repeatable)",
        ),
    ] = None,
    output: Annotated[
        str | None, typer.Option("-o", "--output", help=_OUT_HELP)
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option("--passphrase-file", help="read the passphrase from FILE"),
    ] = None,
) -> None:
    """Open an age file (binary or armored) with identity files or a passphrase."""
    identities: list[agelib.Identity] = []
    for path in identity or []:
        identities += agelib.parse_identities(_read_text(path, "identity file"))
    if not identities:
        secret = _secrets.obtain(file=passphrase_file, use_env=False)
        identities = [agelib.ScryptIdentity(secret)]
    sink = _LazyOutput(output, 0o600)
    with _input(input_path) as src:
        chunks = agelib.decrypt_chunks(src, identities)
        try:
            for chunk in chunks:
                sink.write(chunk)
        except PayloadError as err:
            where = sink.path if sink.path not in (None, "-") else "the output"
            err.hints = (  # type: ignore[attr-defined]
                f"{where} is incomplete: it holds only the {sink.written} bytes "
                "authenticated before the failure",
            )
            raise
    sink.close()
