"""Run the confvault CLI and SIGKILL it at a chosen durable step.

    python tests/vault/crash_runner.py KILL_AT -- <confvault CLI args...>

The durable steps are the calls that make data reach its final place:
``os.fsync``, ``os.replace``, ``os.rename`` and syncfs (``confvault.vault.store.fs._SYNCFS``)
(libc ``syncfs``). They are wrapped, in this process, by counters; nothing of
the vault is mocked, every step still happens for real.

KILL_AT:
  ``N``   SIGKILL this process just before step N is performed;
  ``N+``  perform step N, then SIGKILL this process;
  ``0``   never kill.

``CRASH_RUNNER_BATCH_CLIENTS=N`` in the environment makes a rotation commit
every N clients (the product batches about 1,000 notes), so that a small
vault crosses batch boundaries.

Unless killed, the last line on stderr is ``durable-steps: TOTAL``. Each step
is also traced on stderr, before it is performed, as
``durable-step N: OP ARGS`` (written unbuffered, so a killed run's trace is
complete up to the step it died at).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_count = 0


def _say(line: str) -> None:
    os.write(2, (line + "\n").encode("utf-8", "replace"))


def _describe(args: tuple[Any, ...]) -> str:
    parts = []
    for arg in args:
        if isinstance(arg, int):
            try:
                parts.append(os.readlink(f"/proc/self/fd/{arg}"))
            except OSError:
                parts.append(f"fd={arg}")
        else:
            parts.append(
                os.fspath(arg) if isinstance(arg, (str, os.PathLike)) else repr(arg)
            )
    return " ".join(str(p) for p in parts)


def _describe_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Like ``_describe``; names relative to ``src_dir_fd``/``dst_dir_fd``
    (the vault's descriptor-relative renames) are shown as whole paths."""
    if len(args) == 2 and ("src_dir_fd" in kwargs or "dst_dir_fd" in kwargs):
        names = []
        for name, key in zip(args, ("src_dir_fd", "dst_dir_fd"), strict=True):
            fd = kwargs.get(key)
            base = _describe((fd,)) if isinstance(fd, int) else ""
            names.append(f"{base}/{os.fspath(name)}" if base else os.fspath(name))
        return " ".join(names)
    return _describe(args)


def _parse_kill_at(text: str) -> tuple[int, bool]:
    after = text.endswith("+")
    number = int(text[:-1] if after else text)
    if number < 0:
        raise ValueError("KILL_AT must be >= 0")
    return number, after


def _wrap(
    name: str, real: Callable[..., Any], kill_at: int, after: bool
) -> Callable[..., Any]:
    @functools.wraps(real)
    def step(*args: Any, **kwargs: Any) -> Any:
        global _count  # one counter for the whole process
        _count += 1
        number = _count
        _say(f"durable-step {number}: {name} {_describe_call(args, kwargs)}")
        if number == kill_at and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if number == kill_at and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return step


def install(kill_at: int, after: bool) -> None:
    """Wrap the durable steps of this process."""
    from confvault.vault.store import fs  # imported here: after sys.path is fixed

    os.fsync = _wrap("fsync", os.fsync, kill_at, after)
    os.replace = _wrap("replace", os.replace, kill_at, after)
    os.rename = _wrap("rename", os.rename, kill_at, after)
    if (syncfs := fs._syncfs()) is not None:
        fs._SYNCFS = _wrap("syncfs", syncfs, kill_at, after)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        _say("usage: crash_runner.py KILL_AT -- <confvault CLI args...>")
        return 2
    try:
        kill_at, after = _parse_kill_at(argv[0])
    except ValueError as err:
        _say(f"crash_runner: bad KILL_AT {argv[0]!r}: {err}")
        return 2
    install(kill_at, after)
    if batch := os.environ.get("CRASH_RUNNER_BATCH_CLIENTS"):
        from confvault.vault.ops import rotation

        rotation._BATCH_CLIENTS = int(batch)
    from confvault.cli import main as cli_main

    sys.argv = ["confvault", *argv[2:]]
    code: Any = 0
    try:
        cli_main()
    except SystemExit as exit_:
        code = exit_.code
    finally:
        _say(f"durable-steps: {_count}")
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


if __name__ == "__main__":
    # Do not let this directory shadow installed modules.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and str(Path(p).resolve()) != here]
    sys.exit(main(sys.argv[1:]))
