"""Where passphrases come from: a file, a file descriptor, an environment
variable naming a file, or the terminal. Never from argv.

A passphrase file holds the passphrase; one trailing newline (LF or CRLF) is
removed, anything else is part of it. Prompts read from /dev/tty, never from a
piped stdin, and there is no prompt at all unless stdin is a terminal: an
unattended job fails at once with a clear message instead of hanging.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from confvault.cli import _output
from confvault.errors import ConfvaultError, PassphraseUnavailableError
from confvault.vault.store.hardening import harden_process

ENV_PASSPHRASE_FILE = "CONFVAULT_PASSPHRASE_FILE"  # noqa: S105 - a variable name
ENV_PASSPHRASE = "CONFVAULT_PASSPHRASE"  # noqa: S105 - a variable name
_MAX_PASSPHRASE_FILE = 64 * 1024
# A worker of the command server (confvault.server) has no controlling
# terminal: its prompt asks on stdin when stdin is a terminal (getpass turns
# the echo off there), not on /dev/tty.
terminal_on_stdin = False
# Whether the process a worker runs for has a controlling terminal (None: this
# process is that process, and /dev/tty says).
client_terminal: bool | None = None


def _strip_newline(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data


def _check(passphrase: bytes, origin: str) -> bytes:
    if not passphrase:
        raise ConfvaultError(f"the passphrase from {origin} is empty")
    return passphrase


def read_passphrase_file(path: Path) -> bytes:
    """Read a passphrase file, warning when others can read it."""
    try:
        info = path.stat()
        data = path.read_bytes()[: _MAX_PASSPHRASE_FILE + 1]
    except OSError as err:
        raise ConfvaultError(
            f"cannot read passphrase file {path}: {err.strerror}"
        ) from err
    if info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        _output.warn(f"passphrase file {path} is readable by other users; chmod 600 it")
    if len(data) > _MAX_PASSPHRASE_FILE:
        raise ConfvaultError(f"passphrase file {path} is too large")
    return _check(_strip_newline(data), f"file {path}")


def read_passphrase_fd(fd: int) -> bytes:
    """Read a passphrase from an inherited file descriptor (until EOF)."""
    try:
        with os.fdopen(fd, "rb", closefd=True) as f:
            data = f.read(_MAX_PASSPHRASE_FILE + 1)
    except OSError as err:
        raise ConfvaultError(
            f"cannot read passphrase from fd {fd}: {err.strerror}"
        ) from err
    return _check(_strip_newline(data), f"fd {fd}")


def _tty_prompt(prompt: str) -> bytes:
    if not sys.stdin.isatty():
        raise PassphraseUnavailableError(
            "no passphrase given, and stdin is not a terminal to ask on"
        )
    try:  # getpass reads from /dev/tty; make sure it exists rather than fall back
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError as err:
        if not terminal_on_stdin:  # else getpass asks on stdin, a terminal
            raise PassphraseUnavailableError(
                "no passphrase given and no terminal to ask for one"
            ) from err
    import getpass

    try:
        text = getpass.getpass(prompt)
    except EOFError as err:
        raise PassphraseUnavailableError("no passphrase entered") from err
    return text.encode("utf-8")


def obtain(
    *,
    file: Path | None = None,
    fd: int | None = None,
    confirm: bool = False,
    prompt: str = "Passphrase: ",
    use_env: bool = True,
) -> bytes:
    """The passphrase, from the first source that is given."""
    harden_process()  # from here on this process holds a secret
    if file is not None:
        return read_passphrase_file(file)
    if fd is not None:
        return read_passphrase_fd(fd)
    if use_env and os.environ.get(ENV_PASSPHRASE_FILE):
        return read_passphrase_file(Path(os.environ[ENV_PASSPHRASE_FILE]))
    if use_env and os.environ.get(ENV_PASSPHRASE):
        # Documented as the weakest source: the environment is visible to the
        # user's own processes. Kept for containers that inject secrets so.
        return _check(os.environ[ENV_PASSPHRASE].encode("utf-8"), ENV_PASSPHRASE)
    passphrase = _check(_tty_prompt(prompt), "the prompt")
    if confirm and _tty_prompt("Confirm passphrase: ") != passphrase:
        raise ConfvaultError("the passphrases do not match")
    return passphrase
