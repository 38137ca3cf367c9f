"""What the tiny client and the command server share: where the socket lives,
the fingerprint of the installed confvault, and the messages on the socket.

Imported by the client on every command, so it imports only modules built
into the interpreter (``_socket``, not ``socket``: that one pulls in ``enum``
and ``selectors``, about 15 ms) and nothing of confvault but its version.

One connection carries one command. The client sends one request (a message
with its descriptors attached, SCM_RIGHTS); the server answers with short
replies of one letter and an integer (``struct`` ``!cI``):

  request  a header (HEADER: the kind and the client's fingerprint), then
           for ``run`` a body: umask, argv, environment, and the numbers of
           the client's open descriptors; the server reads the header alone,
           the worker the body
           ``ping``: is a server of this installation there?
           ``stop``: the server exits
  replies  ``P`` pid: a worker is ready; the client answers ``G`` (go)
           with its descriptors attached (SCM_RIGHTS: every one it has open,
           then its working directory, O_PATH), and only then does the
           command run: a client that gave up waiting (its timeout) never has
           its command run behind its back, nor its descriptors held
           ``X`` code: the command's exit status
           ``K`` signal: the worker was killed by that signal
           ``R`` 0: refused (another installation or version, or an
           environment the preloaded modules read differently): run in-process
           ``O`` 0: ``ping`` and ``stop`` answered
"""

from __future__ import annotations

import _socket
import os
import struct
import sys
import zlib

from confvault import __version__

TYPE_CHECKING = False  # not `typing`'s: the client does not import typing

SOCKET_NAME = "server.sock"
LOCK_NAME = "server.lock"
ENV_RUNTIME = "XDG_RUNTIME_DIR"
ENV_DISABLE = "CONFVAULT_NO_SERVER"  # set (non-empty): every command runs in-process
MAX_REQUEST = 1 << 20  # argv and environment together
MAX_FDS = 200  # SCM_RIGHTS carries at most 253 descriptors per message
REPLY = struct.Struct("!cI")
# A request's header: its kind and the client's fingerprint. The server reads
# the header alone; a ``run`` request's body (argv, environment: what may hold
# a secret) is read by the worker, so it never passes through the server.
HEADER = struct.Struct("!4s60s")
# Read when the interpreter starts (the standard streams' encoding) or when
# typer and rich are imported, i.e. once in the server: a client whose values
# differ runs in-process, as the interpreter and those modules would behave.
IMPORT_ENV = (
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "TYPER_USE_RICH",
    "TYPER_STANDARD_TRACEBACK",
    "_TYPER_STANDARD_TRACEBACK",
    "TERMINAL_WIDTH",
    "_TYPER_FORCE_DISABLE_TERMINAL",
    "GITHUB_ACTIONS",
    "FORCE_COLOR",
    "PY_COLORS",
)


if TYPE_CHECKING:
    from typing import Protocol

    class _Receiver(Protocol):
        def recv(self, size: int, /) -> bytes: ...


class Unsafe(Exception):  # noqa: N818 - a condition, not an error to report
    """The socket's directory is not this user's private directory."""


def socket_dir() -> str:
    """``$XDG_RUNTIME_DIR/confvault``, else ``/tmp/confvault-UID`` (the
    documented private fallback): in both cases a 0700 directory of this user."""
    runtime = os.environ.get(ENV_RUNTIME, "")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "confvault")
    return f"/tmp/confvault-{os.getuid()}"  # noqa: S108 - checked private below


def socket_path() -> str:
    return os.path.join(socket_dir(), SOCKET_NAME)


def check_private(directory: str) -> None:
    """Unsafe unless ``directory`` is a real directory (not a link) of this
    user that no one else may enter."""
    try:
        info = os.lstat(directory)
    except OSError as err:
        raise Unsafe(f"{directory}: {err.strerror}") from err
    if (info.st_mode & 0o170000) != 0o040000 or info.st_uid != os.getuid():
        raise Unsafe(f"{directory} is not a directory of this user")
    if info.st_mode & 0o077:
        raise Unsafe(f"{directory} is open to other users")


def fingerprint() -> bytes:
    """The installed confvault as this process sees it: its version, the
    interpreter, and the name, size and modification time of every module
    file of the package (about 100 ``stat`` calls, well under a millisecond)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = [__version__, sys.prefix, root, sys.version]
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    info = entry.stat(follow_symlinks=False)
                    parts.append(f"{entry.path}:{info.st_size}:{info.st_mtime_ns}")
    text = "\n".join(parts).encode("utf-8", "surrogateescape")
    crc = zlib.crc32(text)
    adler = zlib.adler32(text)
    return f"{__version__}-{crc:08x}{adler:08x}".encode("ascii")


def import_env(environ: dict[bytes, bytes]) -> list[bytes | None]:
    """The values of IMPORT_ENV in ``environ``."""
    return [environ.get(name.encode("ascii")) for name in IMPORT_ENV]


def header(kind: bytes, fingerprint: bytes) -> bytes:
    return HEADER.pack(kind, fingerprint)


def parse_header(data: bytes) -> tuple[bytes, bytes]:
    kind, fingerprint = HEADER.unpack(data)
    return kind.rstrip(b"\0"), fingerprint.rstrip(b"\0")


def encode(fields: list[bytes]) -> bytes:
    """Fields (no NUL inside) as one message: its length, then each field
    followed by a NUL."""
    body = b"".join(field + b"\0" for field in fields)
    return struct.pack("!I", len(body)) + body


def decode(body: bytes) -> list[bytes]:
    if body and not body.endswith(b"\0"):
        raise ValueError("malformed request")
    return body.split(b"\0")[:-1]


def reply(kind: bytes, value: int = 0) -> bytes:
    return REPLY.pack(kind, value)


def exactly(sock: _Receiver, size: int) -> bytes:
    """``size`` bytes from ``sock``; ValueError when the connection ends before."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("the connection ended")
        data += chunk
    return data


UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


def peer(sock: _socket.socket) -> tuple[int, int]:
    """The pid and uid of the process at the other end (SO_PEERCRED)."""
    cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, UCRED.size)
    pid, uid, _ = UCRED.unpack(cred)
    return pid, uid
