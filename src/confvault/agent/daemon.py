"""The agent process: holds one vault's owner keys and answers on its socket.

Started by ``client.start`` as ``python -m confvault.agent`` in a session of
its own (setsid), its arguments name only public facts; the owner identity's
text arrives on standard input (a pipe), never in argv, the environment or a
file. It answers ``ready`` (or ``error: ...``) on standard output, then
serves until locked, idle, past its maximum, or its vault or socket is gone;
before it ends it commits the ``lock`` or ``auto-lock`` audit entry with its
own keys (not when its vault is gone: there is nothing to write to).
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys
import time
from pathlib import Path

from confvault import __version__
from confvault.age import x25519
from confvault.agent import memory, protocol
from confvault.agent.protocol import Message
from confvault.errors import AgentError, ConfvaultError, IncorrectIdentityError
from confvault.vault.model import identity
from confvault.vault.store.hardening import harden_process

_TICK = 0.25  # seconds between two looks at the clocks when nobody asks
_CHECK_EVERY = 1.0  # seconds between two looks at the vault and the socket
MAX_IDENTITY_TEXT = 16384
MAX_CONNECTIONS = 64  # open at once (each a command of this user)
RECORD_LOCK_TIMEOUT = 10.0  # how long the last audit entry waits for the vault
# Why a `lock` request ends the agent (its audit entry's reason): `lock`,
# `lock --all`, or a command that made the agent's keys old.
_LOCKS = frozenset(("command", "all", "identity-rotate", "passphrase-change"))


class Agent:
    """One vault's keys behind one listening socket."""

    def __init__(
        self,
        keys: identity.OwnerIdentity,
        listener: socket.socket,
        args: argparse.Namespace,
    ) -> None:
        self.keys = keys
        self.listener = listener
        self.vault = Path(args.vault)
        self.vault_id: str = args.vault_id
        self.socket_path = Path(args.socket)
        self.inode = self.socket_path.stat().st_ino
        self.idle: int = args.idle
        self.max: int = args.max
        self.allow_jobs: bool = args.allow_jobs
        self.started = self.last_use = time.monotonic()
        self.started_at = time.time()
        self.checked = 0.0
        self.mlock = memory.lock_keys(keys)
        self.selector = selectors.DefaultSelector()
        self.serving: socket.socket | None = None  # the connection being answered

    def serve(self) -> None:
        """Answer every connection's requests, one at a time, until the end.

        A connection may carry several requests (a command keeps one for its
        life: ``client.AgentKeys``); it is dropped at the client's end, at a
        request cut or slower than ``protocol.TIMEOUT``, or beyond
        ``MAX_CONNECTIONS``."""
        self.listener.settimeout(_TICK)
        self.selector.register(self.listener, selectors.EVENT_READ)
        reason: str | None = None
        while reason is None:
            reason = self.step() or self.expired()
        if reason != "locked":  # `lock` has finished already, answering its caller
            self.finish(reason)

    def step(self) -> str | None:
        """Answer what is ready within a tick; why to end, if it is time."""
        for key, _ in self.selector.select(_TICK):
            conn = key.fileobj
            is_new = conn is self.listener
            reason = self.accept() if is_new else self.serve_one(conn)  # type: ignore[arg-type]
            if reason is not None:
                return reason
        return None

    def accept(self) -> str | None:
        try:
            conn, _ = self.listener.accept()
        except TimeoutError:
            return None
        except OSError:
            return "socket-gone"
        if len(self.selector.get_map()) > MAX_CONNECTIONS:
            conn.close()
        else:
            conn.settimeout(protocol.TIMEOUT)
            self.selector.register(conn, selectors.EVENT_READ)
        return None

    def serve_one(self, conn: socket.socket) -> str | None:
        """One request of ``conn`` answered (``conn`` closed when it ended)."""
        self.serving = conn
        try:
            reason, keep = self.handle(conn)
        except Exception:  # noqa: BLE001 - one bad request never ends the agent
            reason, keep = None, False
        finally:
            self.serving = None
        if not keep or reason is not None:
            self.selector.unregister(conn)
            conn.close()
        return reason

    def handle(self, conn: socket.socket) -> tuple[str | None, bool]:
        """Answer one request of ``conn``: (``"locked"`` when it locked the
        agent, whether ``conn`` stays open for another)."""
        try:
            uid = protocol.peer_uid(conn)
            request = protocol.receive(conn)
            if uid != os.getuid():
                protocol.send(conn, _refusal(f"uid {uid} is not this agent's user"))
                return None, False
            op = request.get("op")
            if op == "lock":
                reason = request.get("reason")
                recorded = self.finish(reason if reason in _LOCKS else "command")
                protocol.send(conn, {"ok": True, "recorded": recorded})
                return "locked", False
            protocol.send(conn, self.answer(request, conn))
        except (AgentError, OSError):
            return None, False  # gone, cut, too slow or nonsense: nothing to answer
        return None, True

    def answer(self, request: Message, conn: socket.socket) -> Message:
        op = request.get("op")
        if op == "hello":
            return self.info()
        if request.get("protocol") != protocol.PROTOCOL:
            return _refusal(f"this agent speaks protocol {protocol.PROTOCOL}")
        if op not in protocol.KEY_OPS:
            return _refusal("unknown operation")
        if request.get("vault") != self.vault_id:
            return _refusal("this agent serves another vault")
        if not self.allow_jobs and not _has_terminal(_for_pid(request, conn)):
            return _refusal("jobs may not use this agent (unlock --allow-jobs)")
        try:
            result = self.key_op(str(op), request)
        except IncorrectIdentityError:
            return {"ok": False, "error": "no-match"}
        except (ConfvaultError, ValueError) as err:
            return _refusal(str(err))
        self.last_use = time.monotonic()
        return {"ok": True, **result}

    def key_op(self, op: str, request: Message) -> Message:
        if op == "unwrap":
            stanzas = protocol.stanzas_in(request.get("stanzas"))
            return {"file_key": protocol.b64(self.keys.unwrap(stanzas))}
        if op == "sign":
            message = protocol.unb64(request.get("message"))
            return {"signature": protocol.b64(self.keys.sign(message))}
        label = protocol.unb64(request.get("label"))
        if op == "mac_key":
            return {"key": protocol.b64(self.keys.mac_key(label))}
        peer = x25519.parse_recipient(protocol.text(request, "peer"))
        return {"key": protocol.b64(self.keys.agree(peer, label))}

    def info(self) -> Message:
        now = time.monotonic()
        return {
            "ok": True,
            "protocol": protocol.PROTOCOL,
            "version": __version__,
            "vault": self.vault_id,
            "path": str(self.vault),
            "pid": os.getpid(),
            "started": self.started_at,
            "idle": self.idle,
            "max": self.max,
            "idle_left": max(0.0, self.idle - (now - self.last_use)),
            "max_left": max(0.0, self.max - (now - self.started)),
            "allow_jobs": self.allow_jobs,
            "recipient": str(self.keys.recipient),
            "signer": protocol.b64(self.keys.signer),
            "mlock": self.mlock,
        }

    def expired(self) -> str | None:
        now = time.monotonic()
        if now - self.last_use >= self.idle:
            return "idle"
        if now - self.started >= self.max:
            return "max"
        if now - self.checked < _CHECK_EVERY:
            return None
        self.checked = now
        try:
            if self.socket_path.stat().st_ino != self.inode:
                return "socket-gone"
        except OSError:
            return "socket-gone"
        return _vault_state(self.vault, self.vault_id, protocol.b64(self.keys.signer))

    def finish(self, reason: str) -> bool:
        """Stop serving, then commit the audit entry of this end; True if done."""
        self.listener.close()
        for key in list(self.selector.get_map().values()):
            if key.fileobj is not self.serving:  # its next request fails
                key.fileobj.close()  # type: ignore[union-attr]
        try:
            if self.socket_path.stat().st_ino == self.inode:
                self.socket_path.unlink()
        except OSError:
            pass
        if reason in ("vault-gone", "vault-changed", "keys-changed"):
            return False  # nothing of ours to write to
        action = "lock" if reason in _LOCKS else "auto-lock"
        try:
            from confvault.vault import Vault
            from confvault.vault.store.paths import default_state_dir

            vault = Vault.open(
                self.vault,
                keys=self.keys,
                state_dir=default_state_dir(),
                lock_timeout=RECORD_LOCK_TIMEOUT,
            )
            vault.record_unlock(action, {"reason": reason})
        except (ConfvaultError, OSError):
            return False
        return True


def _refusal(error: str) -> Message:
    return {"ok": False, "error": error}


def _for_pid(request: Message, conn: socket.socket) -> int:
    """The process whose terminal decides whether a request is a job's: the
    peer, or the process of this user it names (``for_pid``: a command
    server's worker asks for the client that typed the command). Not a
    boundary: a process of the user can give itself a terminal anyway."""
    peer = protocol.peer_pid(conn)
    named = request.get("for_pid")
    if not isinstance(named, int) or named <= 0:
        return peer
    try:
        if Path(f"/proc/{named}").stat().st_uid != protocol.peer_uid(conn):
            return peer
    except OSError:
        return peer
    return named


def _has_terminal(pid: int) -> bool:
    """Whether process ``pid`` has a controlling terminal (its tty_nr)."""
    try:
        with Path(f"/proc/{pid}/stat").open("rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[4]) != 0
    except (OSError, IndexError, ValueError):
        return False


def _vault_state(vault: Path, vault_id: str, signer: str) -> str | None:
    """``vault-gone``, ``vault-changed``, ``keys-changed`` or None (as started)."""
    from confvault.vault.store import manifest

    try:
        body = manifest.parse(None, manifest.read_raw(vault)).body
    except FileNotFoundError:
        return "vault-gone"
    except (ConfvaultError, OSError):
        return None if vault.is_dir() else "vault-gone"
    if body.vault_id != vault_id:
        return "vault-changed"
    return None if body.signer == signer else "keys-changed"


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="confvault-agent")
    parser.add_argument("--vault", required=True)
    parser.add_argument("--vault-id", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--idle", type=int, required=True)
    parser.add_argument("--max", type=int, required=True)
    parser.add_argument("--allow-jobs", action="store_true")
    return parser.parse_args(argv)


def main() -> None:
    """The agent's entry point: read the keys, bind, say ready, serve, end."""
    harden_process()
    os.umask(0o077)
    status = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        args = _arguments(sys.argv[1:])
        text = sys.stdin.buffer.read(MAX_IDENTITY_TEXT).decode("utf-8")
        keys = identity.OwnerIdentity.from_text(text)
        del text
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(args.socket)
        listener.listen(16)
        agent = Agent(keys, listener, args)
    except (ConfvaultError, OSError, ValueError, SystemExit) as err:
        status.write(f"error: {type(err).__name__}: {err}\n")
        status.close()
        os._exit(1)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.chdir("/")
    status.write(f"ready {agent.mlock}\n")
    status.close()
    try:
        agent.serve()
    finally:
        os._exit(0)
