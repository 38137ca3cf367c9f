"""The agent's messages: a request and its answer, in turn, on a connection
(a command keeps one for its life; the agent drops it when it ends).

Each message is a 4-byte big-endian length and a JSON object of at most
``MAX_MESSAGE`` bytes; binary values are base64. A request names the
protocol version (``"protocol"``), the operation (``"op"``) and, except for
``hello`` and ``lock``, the vault it is for (``"vault"``, its ID). An answer
is ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. Every socket
operation has a timeout (``TIMEOUT``): neither side ever waits longer.

``hello`` and ``lock`` keep their shape in every protocol version, so that a
client meets an agent of another version with one clear line, and
``lock --all`` ends it.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
from collections.abc import Sequence

from confvault import age
from confvault.errors import AgentError

PROTOCOL = 1
MAX_MESSAGE = 1 << 20
TIMEOUT = 2.0
OPS = ("hello", "unwrap", "sign", "mac_key", "agree", "lock")
KEY_OPS = frozenset(("unwrap", "sign", "mac_key", "agree"))
MAX_STANZAS = 64

Message = dict[str, object]


def send(sock: socket.socket, message: Message) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE:
        raise AgentError("agent message too large")
    sock.sendall(struct.pack(">I", len(data)) + data)


def receive(sock: socket.socket) -> Message:
    """One message; AgentError when it is cut, too large or not an object."""
    (size,) = struct.unpack(">I", _exactly(sock, 4))
    if size > MAX_MESSAGE:
        raise AgentError("agent message too large")
    try:
        doc = json.loads(_exactly(sock, size))
    except (ValueError, RecursionError) as err:
        raise AgentError("agent message is not JSON (or nested too deep)") from err
    if not isinstance(doc, dict):
        raise AgentError("agent message is not an object")
    return doc


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(min(size, 65536))
        if not chunk:
            raise AgentError("the agent connection closed mid-message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end (``SO_PEERCRED``)."""
    creds = sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
    )
    return int(struct.unpack("3i", creds)[1])


def peer_pid(sock: socket.socket) -> int:
    creds = sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
    )
    return int(struct.unpack("3i", creds)[0])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: object) -> bytes:
    if not isinstance(value, str):
        raise AgentError("agent message: expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as err:
        raise AgentError("agent message: malformed base64") from err


def text(message: Message, key: str) -> str:
    value = message.get(key)
    if not isinstance(value, str):
        raise AgentError(f"agent message: {key} is not text")
    return value


def stanzas_out(stanzas: Sequence[age.Stanza]) -> list[object]:
    return [
        {"type": s.type, "args": list(s.args), "body": b64(s.body)} for s in stanzas
    ]


def stanzas_in(value: object) -> list[age.Stanza]:
    if not isinstance(value, list) or len(value) > MAX_STANZAS:
        raise AgentError("agent message: stanzas malformed or too many")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise AgentError("agent message: a stanza is not an object")
        args = item.get("args")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise AgentError("agent message: stanza arguments malformed")
        out.append(age.Stanza(text(item, "type"), tuple(args), unb64(item.get("body"))))
    return out
