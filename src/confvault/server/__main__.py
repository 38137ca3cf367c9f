"""``python -m confvault.server serve|start|stop|status``: run the server in
this process, start it detached, stop it, or ask whether it runs (exit 0 when
it does, 1 when not). No output: the exit status says it."""

from __future__ import annotations

import sys


def _main(argv: list[str]) -> int:
    if argv == ["serve"]:
        from confvault.server import server

        return server.main()
    from confvault.server import lifecycle

    if argv == ["start"]:
        return 0 if lifecycle.start() else 1
    if argv == ["stop"]:
        return 0 if lifecycle.stop() else 1
    if argv == ["status"]:
        return 0 if lifecycle.running() else 1
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
