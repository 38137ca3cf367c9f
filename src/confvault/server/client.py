"""The ``confvault`` command: hand the command to this user's command server,
or run it here.

When a command server of this installation answers on this user's socket
(protocol.py), the client sends it the command line, the working directory,
the environment, the umask and every open descriptor, forwards SIGINT,
SIGTERM, SIGHUP and SIGWINCH to the worker that runs the command, stops and
continues it with itself (Ctrl-Z, then `fg` or `bg`), and exits with the
worker's status. Otherwise (no server, a dead or stale one, a socket of
another user, a server of another version, no answer in time) it runs the
command in this process, as ``confvault.cli:main``, saying nothing more.

``confvault --version`` is answered here, from the one version string.

Imports only built-in modules (``python -X importtime -m confvault.server.client``):
this module's whole cost is the interpreter's start and a few milliseconds.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # `signal` would import enum
import _socket
import os
import struct
import sys

from confvault import __version__
from confvault.server import protocol

CONNECT_TIMEOUT = 2.0  # a live server accepts at once; a hung one is given up
START_TIMEOUT = 5.0  # until the worker's pid: nothing has run before the client's go
FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGWINCH)


def main() -> None:
    """The command's entry point (bin/confvault)."""
    argv = sys.argv[1:]
    if argv == ["--version"]:
        sys.stdout.write(f"confvault {__version__}\n")
        _end(0)
    code = None
    if not os.environ.get(protocol.ENV_DISABLE):
        code = run_on_server(sys.argv)
    if code is None:
        in_process()
        return
    _end(code)


def _end(code: int) -> None:
    """Exit with ``code`` now: the standard streams flushed, and none of the
    interpreter's tear-down, which a client that ran nothing does not need
    (2-3 ms, measured)."""
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib would cost the client its import
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or None
            pass
    os._exit(code & 0xFF)


def in_process() -> None:
    from confvault.cli import main as cli_main

    cli_main()


def connect(path: str) -> _socket.socket | None:
    """A connection to the server of this user at ``path``, or None."""
    try:
        protocol.check_private(os.path.dirname(path))
    except protocol.Unsafe:
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(path)
        if protocol.peer(sock)[1] != os.getuid():
            sock.close()
            return None
    except OSError:
        sock.close()
        return None
    return sock


def receive(sock: _socket.socket) -> tuple[bytes, int] | None:
    """One reply, or None at the end of the connection."""
    try:
        data = protocol.exactly(sock, protocol.REPLY.size)
    except ValueError:
        return None
    kind, value = protocol.REPLY.unpack(data)
    return kind, value


def request(argv: list[str], *, skip: int) -> tuple[bytes, list[int]]:
    """The ``run`` request of this process, and the descriptors it sends."""
    umask = os.umask(0o077)
    os.umask(umask)
    fds = [int(name) for name in os.listdir("/proc/self/fd")]
    fds = [fd for fd in fds if fd != skip and _is_open(fd)][: protocol.MAX_FDS]
    fields = [
        b"%d" % umask,
        b"%d" % len(argv),
        *(os.fsencode(arg) for arg in argv),
        b"%d" % len(fds),
        *(b"%d" % fd for fd in fds),
        b"1" if _has_terminal() else b"0",
        *(key + b"=" + value for key, value in os.environb.items()),
    ]
    message = protocol.header(b"run", protocol.fingerprint())
    return message + protocol.encode(fields), fds


def _has_terminal() -> bool:
    """Whether this process has a terminal to ask on (a worker has none of
    its own: `confvault.cli._unlocked.is_job` asks this instead)."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC))
    except OSError:
        return False
    return True


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:  # the listing's own descriptor, closed by now
        return False
    return True


def run_on_server(argv: list[str]) -> int | None:
    """The exit status of ``argv`` run by the server, or None to run it here."""
    sock = connect(protocol.socket_path())
    if sock is None:
        return None
    try:
        return _run(sock, argv)
    finally:
        sock.close()


def _run(sock: _socket.socket, argv: list[str]) -> int | None:
    try:
        message, fds = request(argv, skip=sock.fileno())
        if len(message) > protocol.MAX_REQUEST:
            return None
        sock.settimeout(START_TIMEOUT)
        sock.sendall(message)
        started = receive(sock)
    except OSError:
        return None
    if started is None or started[0] != b"P":
        return None  # refused, or the server went away before starting it
    try:
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _wait(sock, started[1], struct.pack(f"{len(fds) + 1}i", *fds, cwd))
    finally:
        os.close(cwd)


def _wait(sock: _socket.socket, pid: int, rights: bytes) -> int:
    """Let the worker ``pid`` run (the go, with the descriptors ``rights``),
    forward signals to it, and return its status."""

    def forward(signum: int, frame: object) -> None:
        try:  # noqa: SIM105 - contextlib would cost the client its import
            os.kill(pid, signum)
        except OSError:
            pass

    def suspend(signum: int, frame: object) -> None:
        """Ctrl-Z: stop the worker, then this process as the default would
        (the shell sees its job stop); once continued, continue the worker."""
        forward(_signal.SIGSTOP, frame)
        _signal.signal(_signal.SIGTSTP, _signal.SIG_DFL)
        try:
            os.kill(os.getpid(), _signal.SIGTSTP)  # stopped here until SIGCONT
        finally:
            _signal.signal(_signal.SIGTSTP, suspend)
            forward(_signal.SIGCONT, frame)

    previous = {signum: _signal.signal(signum, forward) for signum in FORWARDED}
    previous[_signal.SIGTSTP] = _signal.signal(_signal.SIGTSTP, suspend)
    try:
        sock.settimeout(None)
        sock.sendmsg([b"G"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        outcome = receive(sock)
    except OSError:
        outcome = None
    finally:
        for signum, handler in previous.items():
            _signal.signal(signum, handler)
    if outcome is None:
        sys.stderr.write("confvault: error: the command server went away\n")
        return 70
    kind, value = outcome
    if kind == b"K":  # killed by a signal: end the same way
        try:  # noqa: SIM105 - contextlib would cost the client its import
            _signal.signal(value, _signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL and SIGSTOP have no handler
            pass
        try:  # noqa: SIM105
            os.kill(os.getpid(), value)
        except (OSError, ValueError):
            pass
        return 128 + value
    return value
