"""The command server: a preloaded interpreter that forks a worker per command.

It imports typer, the app, the vault's code and nacl once (``cli.preload``),
binds this user's socket (protocol.py) and serves one connection at a time:
the peer's uid is checked (SO_PEERCRED) on every connection, the request is
read (a short timeout), and a worker runs it (worker.py). It reads no vault
and no key: keys are read by the workers, each in its own process, which
exits after its command.

The worker is forked ahead: a spare waits for the next connection (handed
over with SCM_RIGHTS on a socket pair), and the server forks the next spare
once it has handed one over, so a fork (5 ms of a 100 MB process) is never
on a command's path. A spare whose server is gone sees its pair close and
exits; one that died is replaced by a fork on the spot.

One server per user: it holds an exclusive lock on ``server.lock`` beside the
socket while it lives (the file holds its pid); a second one waits a moment
for the lock (a stale server is exiting) and else exits. A socket
left by a killed server is replaced by the next one (the lock died with it).
The server exits after IDLE seconds without a command
(``CONFVAULT_SERVER_IDLE``, default 1800), when its socket is removed or
replaced, on ``stop``, and when a client of another installation or version
connects (that client runs its command itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator

from confvault import cli
from confvault.server import protocol, worker

ENV_IDLE = "CONFVAULT_SERVER_IDLE"
DEFAULT_IDLE = 1800.0
TICK = 1.0  # how often an idle server looks at its socket
REQUEST_TIMEOUT = 2.0
LOCK_WAIT = 3.0  # for a stale server to exit (start() has asked it to)


class Server:
    def __init__(self, listener: socket.socket, path: str, idle: float) -> None:
        self.listener = listener
        self.path = path
        self.identity = _identity(path)
        self.idle = idle
        self.fingerprint = protocol.fingerprint()
        self.import_env = protocol.import_env(dict(os.environb))
        self.workers: dict[int, socket.socket] = {}
        self.spare: tuple[int, socket.socket] | None = None  # pid, its pair's end
        self.last = time.monotonic()
        self.running = True

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, self._reap)
        self.listener.settimeout(TICK)
        try:
            while self.running:
                if self.spare is None:
                    self.spare = self._fork_spare()
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    self.running = self._still_wanted()
                    continue
                self.last = time.monotonic()
                with contextlib.suppress(OSError, ValueError):
                    self._handle(conn)
                conn.close()
        finally:
            if self.spare is not None:
                self.spare[1].close()  # the spare sees its pair close, and exits

    def _still_wanted(self) -> bool:
        if time.monotonic() - self.last > self.idle and not self.workers:
            return False
        try:
            return _identity(self.path) == self.identity
        except OSError:
            return False

    def _handle(self, conn: socket.socket) -> None:
        if protocol.peer(conn)[1] != os.getuid():
            return  # another user: closed without a word
        conn.settimeout(REQUEST_TIMEOUT)
        data = protocol.exactly(conn, protocol.HEADER.size)
        kind, fingerprint = protocol.parse_header(data)
        if fingerprint != self.fingerprint:
            conn.sendall(protocol.reply(b"R"))
            self.running = False  # stale: the next start brings a fresh one
        elif kind in (b"ping", b"stop"):
            self.running = kind == b"ping"
            if not self.running:
                self.unlink()
            conn.sendall(protocol.reply(b"O"))
        elif kind == b"run":
            self._start(conn)

    def _start(self, conn: socket.socket) -> None:
        """Hand ``conn`` to the spare, or to a worker forked for it when the
        spare is gone."""
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            spare, self.spare = self.spare, None
            if spare is not None:
                pid, pair = spare
                try:
                    pair.sendmsg(
                        [b"C"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fd(conn))]
                    )
                except OSError:
                    pid = self._fork(lambda: worker.work(conn, self.import_env))
                finally:
                    pair.close()
            else:
                pid = self._fork(lambda: worker.work(conn, self.import_env))
            self.workers[pid] = socket.socket(fileno=os.dup(conn.fileno()))
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})

    def _fork_spare(self) -> tuple[int, socket.socket]:
        """A worker forked ahead, waiting for its connection on a socket pair."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = self._fork(
                lambda: _wait_for_connection(theirs, ours, self.import_env)
            )
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        theirs.close()
        return pid, ours

    def _fork(self, run: Callable[[], None]) -> int:
        """A child that runs ``run`` without the listener and other clients'
        connections (SIGCHLD blocked by the caller); its pid. ``run`` never
        returns (worker.work)."""
        pid = os.fork()
        if pid == 0:
            try:
                self.listener.close()
                for other in self.workers.values():  # other clients' connections
                    other.close()
                run()
            finally:
                os._exit(70)
        return pid

    def _reap(self, signum: int, frame: object) -> None:
        """Reap the workers that ended; tell the client of one killed by a
        signal (one that exited has sent its status itself)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spare is not None and self.spare[0] == pid:
                self.spare[1].close()
                self.spare = None  # the loop forks another
            conn = self.workers.pop(pid, None)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                with contextlib.suppress(OSError):
                    conn.sendall(protocol.reply(b"K", os.WTERMSIG(status)))
            conn.close()

    def unlink(self) -> None:
        """Remove the socket if it is still this server's."""
        with contextlib.suppress(OSError):
            if _identity(self.path) == self.identity:
                os.unlink(self.path)


def _fd(conn: socket.socket) -> bytes:
    return struct.pack("i", conn.fileno())


def _wait_for_connection(
    pair: socket.socket, servers_end: socket.socket, import_env: list[bytes | None]
) -> None:
    """A spare: wait for the server to hand over a client's connection, then
    serve it (worker.work, which never returns); exit at once when the pair
    closes (the server ended) or brings anything else."""
    servers_end.close()
    size = socket.CMSG_SPACE(struct.calcsize("i"))
    try:
        data, ancillary, _, _ = pair.recvmsg(1, size)
    except OSError:
        os._exit(0)
    fds = [
        struct.unpack("i", payload[: struct.calcsize("i")])[0]
        for level, kind, payload in ancillary
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
    ]
    if data != b"C" or len(fds) != 1:
        os._exit(0)
    pair.close()
    worker.work(socket.socket(fileno=fds[0]), import_env)


def _identity(path: str) -> tuple[int, int, int]:
    """What tells this server's socket from one that replaced it (an inode
    number alone is reused at once)."""
    info = os.lstat(path)
    return info.st_dev, info.st_ino, info.st_ctime_ns


@contextlib.contextmanager
def _owned(directory: str) -> Iterator[int | None]:
    """The server lock of ``directory`` (None when another server holds it)."""
    lock = os.open(
        os.path.join(directory, protocol.LOCK_NAME),
        os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
        0o600,
    )
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield None
                    return
                time.sleep(0.05)
        os.ftruncate(lock, 0)
        os.write(lock, b"%d\n" % os.getpid())  # for start(), facing a server that hangs
        yield lock
    finally:
        os.close(lock)


def make_dir() -> str:
    """This user's private socket directory, made if missing; Unsafe if it is
    not private."""
    directory = protocol.socket_dir()
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    protocol.check_private(directory)
    return directory


def main(idle: float | None = None) -> int:
    """Serve until idle, stopped or replaced; 0, also when another server of
    this user is running already."""
    if idle is None:
        idle = float(os.environ.get(ENV_IDLE) or DEFAULT_IDLE)
    directory = make_dir()
    with _owned(directory) as lock:
        if lock is None:
            return 0
        cli.preload()  # before the socket exists: a client finds a ready server
        gc.collect()
        gc.freeze()  # a worker's collections skip (and do not copy) the preloaded heap
        path = os.path.join(directory, protocol.SOCKET_NAME)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a killed server's, since the lock was free
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mask = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(mask)
        listener.listen(64)
        server = Server(listener, path, idle)
        try:
            server.serve()
        finally:
            server.unlink()
            listener.close()
    return 0
