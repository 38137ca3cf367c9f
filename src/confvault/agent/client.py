"""Finding, starting, asking and ending a vault's unlock agent.

``probe`` says whether a live agent of this protocol serves a vault (None:
there is none, silently; ``AgentError``: there is something that cannot be
used, with the reason in one line). ``AgentKeys`` is the owner's keys as a
command sees them with an agent: every secret operation is one request.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from confvault import age
from confvault.agent import paths, protocol
from confvault.agent.protocol import Message
from confvault.errors import (
    AgentError,
    AgentLostError,
    AlreadyUnlockedError,
    IncorrectIdentityError,
    NotUnlockedError,
)
from confvault.vault.model.identity import OwnerIdentity

START_TIMEOUT = 10.0  # seconds for a new agent to say it is ready
LOCK_TIMEOUT = 15.0  # seconds `lock` waits: the agent commits its audit entry


@dataclass(frozen=True)
class AgentInfo:
    """What an agent says of itself (``hello``)."""

    socket: Path
    vault_id: str
    path: str
    version: str
    pid: int
    idle: int
    max: int
    idle_left: float
    max_left: float
    allow_jobs: bool
    recipient: str
    signer: bytes
    mlock: str

    def to_json(self) -> dict[str, object]:
        return {
            "vault_id": self.vault_id,
            "pid": self.pid,
            "idle_seconds": self.idle,
            "max_seconds": self.max,
            "idle_left": round(self.idle_left),
            "max_left": round(self.max_left),
            "allow_jobs": self.allow_jobs,
            "mlock": self.mlock,
        }


def connect(path: Path, timeout: float = protocol.TIMEOUT) -> socket.socket:
    """A connection to the socket at ``path``, its peer checked to be us."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        uid = protocol.peer_uid(sock)
    except OSError:
        sock.close()
        raise
    if uid != os.getuid():
        sock.close()
        raise AgentError(f"the agent socket {path} belongs to uid {uid}, not to you")
    return sock


def ask(path: Path, message: Message, timeout: float = protocol.TIMEOUT) -> Message:
    """One request and its answer; AgentError on a refusal, OSError on the wire."""
    with connect(path, timeout) as sock:
        protocol.send(sock, message)
        answer = protocol.receive(sock)
    if answer.get("ok") is not True:
        raise AgentError(str(answer.get("error", "refused")))
    return answer


def find(vault: Path) -> Path | None:
    """The socket of ``vault``'s agent if one is there (not checked)."""
    directory = paths.checked_runtime_dir()
    if directory is None:
        return None
    path = paths.socket_path(directory, vault)
    return path if os.path.lexists(path) else None


def probe(vault: Path) -> AgentInfo | None:
    """The live agent of ``vault``; None if there is none; AgentError if
    what is there cannot be used (dead, stale, refused, another version)."""
    info, sock = connected(vault)
    if sock is not None:
        sock.close()
    return info


def connected(vault: Path) -> tuple[AgentInfo | None, socket.socket | None]:
    """``probe``, and the connection it asked on, open for more requests
    (``AgentKeys``); both None when there is no agent."""
    path = find(vault)
    if path is None:
        return None, None
    sock: socket.socket | None = None
    try:
        sock = connect(path)
        protocol.send(sock, {"protocol": protocol.PROTOCOL, "op": "hello"})
        answer = protocol.receive(sock)
    except (OSError, AgentError) as err:
        if sock is not None:
            sock.close()
        raise _unusable(err) from err
    try:
        return _checked(path, answer), sock
    except AgentError:
        sock.close()
        raise


def _unusable(err: OSError | AgentError) -> AgentError:
    if isinstance(err, AgentError):
        return err
    if isinstance(err, TimeoutError):
        return AgentError("the unlock agent of this vault does not answer")
    return AgentError(f"the unlock agent of this vault is gone ({err.strerror})")


def _checked(path: Path, answer: Message) -> AgentInfo:
    if answer.get("ok") is not True:
        raise AgentError(str(answer.get("error", "refused")))
    if answer.get("protocol") != protocol.PROTOCOL:
        raise AgentError(
            f"the unlock agent of this vault is of another confvault version "
            f"({answer.get('version')}, protocol {answer.get('protocol')}): ignored"
        )
    try:
        return _info(path, answer)
    except (KeyError, TypeError, ValueError) as err:
        raise AgentError("the unlock agent of this vault answers nonsense") from err


def _info(path: Path, a: Message) -> AgentInfo:
    def number(key: str) -> float:
        value = a[key]
        if not isinstance(value, int | float):
            raise TypeError(key)
        return float(value)

    return AgentInfo(
        socket=path,
        vault_id=protocol.text(a, "vault"),
        path=protocol.text(a, "path"),
        version=protocol.text(a, "version"),
        pid=int(number("pid")),
        idle=int(number("idle")),
        max=int(number("max")),
        idle_left=number("idle_left"),
        max_left=number("max_left"),
        allow_jobs=a["allow_jobs"] is True,
        recipient=protocol.text(a, "recipient"),
        signer=protocol.unb64(a["signer"]),
        mlock=protocol.text(a, "mlock"),
    )


# Set in a worker of the command server (confvault.server): the pid of the
# process that typed the command, whose terminal the agent looks at instead
# of the worker's (a worker never has one).
on_behalf_of: int | None = None


class AgentKeys:
    """The owner's keys held by an agent (an ``identity.OwnerKeys``)."""

    def __init__(self, info: AgentInfo, sock: socket.socket | None = None) -> None:
        self.info = info
        self._recipient = age.parse_recipient(info.recipient)
        self._macs: dict[bytes, bytes] = {}  # derived once per command
        # One connection for the command's requests (``connected``'s, or the
        # first request's), not one each.
        self._sock = sock

    @property
    def recipient(self) -> age.AnyRecipient:
        return self._recipient

    @property
    def signer(self) -> bytes:
        return self.info.signer

    def sign(self, message: bytes) -> bytes:
        return protocol.unb64(
            self._ask("sign", message=protocol.b64(message))["signature"]
        )

    def unwrap(self, stanzas: Sequence[age.Stanza]) -> bytes:
        answer = self._ask("unwrap", stanzas=protocol.stanzas_out(stanzas))
        return protocol.unb64(answer["file_key"])

    def mac_key(self, label: bytes) -> bytes:
        if label not in self._macs:
            answer = self._ask("mac_key", label=protocol.b64(label))
            self._macs[label] = protocol.unb64(answer["key"])
        return self._macs[label]

    def agree(self, peer: age.X25519Recipient, label: bytes) -> bytes:
        answer = self._ask("agree", peer=str(peer), label=protocol.b64(label))
        return protocol.unb64(answer["key"])

    def hello(self) -> AgentInfo:
        """What the agent says of itself now (``status``'s times left), asked
        on this command's connection."""
        answer = self._exchange({"protocol": protocol.PROTOCOL, "op": "hello"})
        return _checked(self.info.socket, answer)

    def _ask(self, op: str, **fields: object) -> Message:
        message: Message = {
            "protocol": protocol.PROTOCOL,
            "op": op,
            "vault": self.info.vault_id,
            **fields,
        }
        if on_behalf_of is not None:
            message["for_pid"] = on_behalf_of
        answer = self._exchange(message)
        if answer.get("error") == "no-match":
            raise IncorrectIdentityError("not sealed to the owner's key")
        if answer.get("ok") is not True:
            raise AgentError(f"the unlock agent refused: {answer.get('error')}")
        return answer

    def _exchange(self, message: Message) -> Message:
        """``message`` asked on this command's connection; once more on a new
        one when a connection that had answered before fails (an agent that
        answers one request a connection, or dropped a quiet one)."""
        for retry in (self._sock is not None, False):
            try:
                if self._sock is None:
                    self._sock = connect(self.info.socket)
                protocol.send(self._sock, message)
                return protocol.receive(self._sock)
            except (OSError, AgentError) as err:
                self.close()
                if not retry:
                    raise AgentLostError(
                        "the vault was locked while this command ran (its agent ended)"
                    ) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close this command's connection to the agent (if open)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def start(
    vault: Path,
    keys: OwnerIdentity,
    vault_id: str,
    *,
    idle: int,
    maximum: int,
    allow_jobs: bool,
) -> AgentInfo:
    """Start ``vault``'s agent with ``keys`` (replacing a dead one's socket).

    AgentError when a live agent serves it already or the new one fails.
    """
    directory = paths.ensure_runtime_dir()
    sock = paths.socket_path(directory, vault)
    lock_fd = os.open(paths.lock_path(directory, vault), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if os.path.lexists(sock):
            try:
                live = probe(vault)
            except AgentError:
                live = None  # dead, stale or of another version: replaced
            if live is not None:
                raise AlreadyUnlockedError("this vault is unlocked already")
            sock.unlink()
        return _spawn(vault, keys, vault_id, sock, idle, maximum, allow_jobs)
    finally:
        os.close(lock_fd)


def _spawn(
    vault: Path,
    keys: OwnerIdentity,
    vault_id: str,
    sock: Path,
    idle: int,
    maximum: int,
    allow_jobs: bool,
) -> AgentInfo:
    argv = [sys.executable, "-m", "confvault.agent", "--vault", os.path.realpath(vault)]
    argv += ["--vault-id", vault_id, "--socket", str(sock)]
    argv += ["--idle", str(idle), "--max", str(maximum)]
    argv += ["--allow-jobs"] if allow_jobs else []
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        cwd="/",
    )
    if proc.stdin is None or proc.stdout is None:
        raise AgentError("the unlock agent did not start (no pipes)")
    try:
        proc.stdin.write(keys.to_text(vault_id).encode())
        proc.stdin.close()
    except OSError as err:
        proc.kill()
        raise AgentError("the unlock agent did not start") from err
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
    line = proc.stdout.readline().decode(errors="replace").strip() if ready else ""
    proc.stdout.close()
    if not line.startswith("ready"):
        proc.kill()
        proc.wait()
        raise AgentError(f"the unlock agent did not start ({line or 'no answer'})")
    info = probe(vault)
    if info is None:
        raise AgentError("the unlock agent started but its socket is gone")
    return info


def lock(vault: Path, reason: str = "command") -> bool:
    """End ``vault``'s agent; True when it recorded its audit entry.

    NotUnlockedError when no agent serves it.
    """
    path = find(vault)
    if path is None:
        raise NotUnlockedError("this vault is not unlocked")
    return end(path, reason)


def end(path: Path, reason: str) -> bool:
    """End the agent at socket ``path`` (of any protocol: ``lock`` is stable)."""
    try:
        answer = ask(path, {"op": "lock", "reason": reason}, timeout=LOCK_TIMEOUT)
    except OSError as err:
        with contextlib.suppress(OSError):
            path.unlink()  # a dead agent's socket
        raise NotUnlockedError(
            "this vault is not unlocked (a dead agent's socket was removed)"
        ) from err
    return answer.get("recorded") is True


def lock_all() -> list[tuple[str, bool]]:
    """End every agent of this user: (socket name, audit entry recorded)."""
    directory = paths.checked_runtime_dir()
    ended = []
    for path in paths.sockets(directory) if directory else []:
        try:
            ended.append((path.name, end(path, "all")))
        except (NotUnlockedError, AgentError):
            continue
    return ended
