"""A preloaded command server, in the style of Mercurial's chg: ``confvault``
is a tiny client (client.py) that hands each command to this user's server,
which forks a worker to run it with typer, the app and the vault's code
already imported; without a server the client runs the command itself.

``start()`` and ``stop()`` (lifecycle.py) start the server detached and stop
it; ``python -m confvault.server start|stop|status|serve`` does the same from
a shell. The server never reads a key (server.py).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`'s: the client does not import typing

if TYPE_CHECKING:
    from confvault.server.lifecycle import start, stop

__all__ = ["start", "stop"]


def __getattr__(name: str) -> object:
    if name in ("start", "stop"):  # not loaded by the client
        from confvault.server import lifecycle

        return getattr(lifecycle, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
