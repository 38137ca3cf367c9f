"""One command in a worker: a process forked from the server for one request.

The worker tells the client its pid and waits for the client's go; then it
takes the client's descriptors at their numbers (stdin, stdout, stderr, and
any other, such as a ``--passphrase-fd``), its working directory, umask,
environment and argv, runs the one Typer app (``confvault.cli.run``) and
sends the exit status. It never returns into the server: every path ends in
``os._exit``.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import io
import os
import signal
import socket
import struct
import sys
from dataclasses import dataclass

from confvault import cli
from confvault.server import protocol

GO_TIMEOUT = 5.0


@dataclass
class Request:
    """A ``run`` request as received: ``fds`` are this process's copies of the
    client's descriptors ``numbers``, then of its working directory."""

    argv: list[str]
    umask: int
    numbers: list[int]
    environ: dict[bytes, bytes]
    fds: list[int]
    terminal: bool = False  # the client has a controlling terminal

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


def receive(conn: socket.socket) -> Request:
    """The body of a ``run`` request (without its descriptors yet)."""
    (size,) = struct.unpack("!I", protocol.exactly(conn, 4))
    if size > protocol.MAX_REQUEST:
        raise ValueError("request too large")
    return parse(protocol.decode(protocol.exactly(conn, size)))


def receive_fds(conn: socket.socket, count: int) -> list[int]:
    """The client's go, a byte with ``count`` descriptors attached; ValueError
    (and none left open) unless it is that."""
    fds = array.array("i")
    space = socket.CMSG_SPACE((protocol.MAX_FDS + 1) * fds.itemsize)
    data, ancillary, _, _ = conn.recvmsg(1, space)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if data != b"G" or len(fds) != count:
        for fd in fds:
            os.close(fd)
        raise ValueError("no go")
    return list(fds)


def parse(fields: list[bytes]) -> Request:
    """The request of a ``run`` body's fields; ValueError when malformed."""
    umask = int(fields[0])
    argc = int(fields[1])
    argv = [os.fsdecode(arg) for arg in fields[2 : 2 + argc]]
    count = int(fields[2 + argc])
    numbers = [int(n) for n in fields[3 + argc : 3 + argc + count]]
    terminal = fields[3 + argc + count] == b"1"
    environ = dict(
        item.split(b"=", 1) for item in fields[4 + argc + count :] if b"=" in item
    )
    if not argv or len(numbers) > protocol.MAX_FDS:
        raise ValueError("malformed request")
    if any(n < 0 for n in numbers) or not 0 <= umask <= 0o777:
        raise ValueError("malformed request")
    return Request(argv, umask, numbers, environ, [], terminal)


def work(conn: socket.socket, import_env: list[bytes | None]) -> None:
    """Run the request of the client at ``conn`` (its body still to read) in
    this forked process; never returns. A client whose IMPORT_ENV values
    differ from the server's (``import_env``) is told to run its command
    itself. The client's descriptors come with its go, after the pid: a
    client that gave up never leaves them with a server that hangs."""
    code = 70
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        conn.settimeout(GO_TIMEOUT)
        request = receive(conn)
        if protocol.import_env(request.environ) != import_env:
            conn.sendall(protocol.reply(b"R"))
            os._exit(0)
        conn.sendall(protocol.reply(b"P", os.getpid()))
        try:
            request.fds = receive_fds(conn, len(request.numbers) + 1)
        except (OSError, ValueError):
            os._exit(0)  # the client gave up: nothing runs
        conn.settimeout(None)
        conn = _adopt(conn, request)
        code = cli.run(
            request.argv[1:],
            terminal_on_stdin=True,
            client_terminal=request.terminal,
            client_pid=protocol.peer(conn)[0],
        )
        _flush()
        conn.sendall(protocol.reply(b"X", code))
    except BaseException:  # noqa: BLE001 - the exit status says it; no traceback
        _flush()
        with contextlib.suppress(OSError):
            conn.sendall(protocol.reply(b"X", code))
    os._exit(code & 0xFF)


def _adopt(conn: socket.socket, request: Request) -> socket.socket:
    """Become the client: its descriptors at their numbers, and nothing else
    open but the connection; its directory, umask, environment, argv, the
    default signal dispositions, and standard streams on its descriptors."""
    targets = request.numbers
    base = max([*targets, *request.fds, conn.fileno()]) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base) for fd in request.fds]
    link = fcntl.fcntl(conn.detach(), fcntl.F_DUPFD_CLOEXEC, base)
    conn = socket.socket(fileno=link)
    for fd in (*request.fds,):
        os.close(fd)
    *copies, cwd = moved
    for source, target in zip(copies, targets, strict=True):
        os.dup2(source, target, inheritable=True)
    os.fchdir(cwd)
    keep = {*targets, link}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor
                os.close(fd)
    os.umask(request.umask)
    os.environb.clear()
    os.environb.update(request.environ)
    sys.argv = list(request.argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    _streams(set(targets))
    return conn


def _streams(open_fds: set[int]) -> None:
    """sys.stdin, stdout and stderr on descriptors 0, 1 and 2, made as the
    interpreter makes them (None for one the client did not have)."""
    made: list[io.TextIOWrapper | None] = []
    for fd, old in enumerate((sys.__stdin__, sys.__stdout__, sys.__stderr__)):
        if fd not in open_fds:
            made.append(None)
            continue
        encoding = old.encoding if old is not None else "utf-8"
        errors = old.errors if old is not None else "strict"
        tty = os.isatty(fd)
        if fd == 0:
            raw: io.BufferedReader | io.BufferedWriter = io.BufferedReader(
                io.FileIO(fd, "rb", closefd=False)
            )
        else:
            raw = io.BufferedWriter(io.FileIO(fd, "wb", closefd=False))
        made.append(
            io.TextIOWrapper(
                raw, encoding, errors, line_buffering=fd == 2 or (fd == 1 and tty)
            )
        )
    for name, stream in zip(("stdin", "stdout", "stderr"), made, strict=True):
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
