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

    python tests/vault/crash_runner.py --serve

serves the crash tests: it imports confvault and every command once, then
for each request (a JSON line on stdin: kill point, CLI arguments,
environment, stdin bytes) forks a child that runs the CLI in-process exactly
as above, and answers with a JSON line (exit status, or minus the signal
that ended it; stdout and stderr). A fork costs milliseconds where a fresh
interpreter costs most of a second, at hundreds of crash points per test.
``Servers`` (below) is the tests' side.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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


def _run_cli(argv: list[str]) -> int:
    if batch := os.environ.get("CRASH_RUNNER_BATCH_CLIENTS"):
        from confvault.vault.ops import rotation

        rotation._BATCH_CLIENTS = int(batch)
    from confvault.cli import main as cli_main

    sys.argv = ["confvault", *argv]
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


def main(argv: list[str]) -> int:
    if argv == ["--serve"]:
        return _serve()
    if len(argv) < 2 or argv[1] != "--":
        _say("usage: crash_runner.py KILL_AT -- <confvault CLI args...>")
        return 2
    try:
        kill_at, after = _parse_kill_at(argv[0])
    except ValueError as err:
        _say(f"crash_runner: bad KILL_AT {argv[0]!r}: {err}")
        return 2
    install(kill_at, after)
    return _run_cli(argv[2:])


# --- the fork server ------------------------------------------------------------------


def _preload() -> None:
    """Import confvault and every command now, so that no child pays for it."""
    import importlib
    import pkgutil

    import confvault
    from confvault.cli._app import app
    from confvault.vault.store import fs

    for module in pkgutil.walk_packages(confvault.__path__, "confvault."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    import typer.main

    for module in (
        "rich.console",
        "rich.markup",
        "rich.progress",
        "rich.table",
        "rich.text",
    ):
        importlib.import_module(
            module
        )  # the output, which the CLI loads when it prints
    group = typer.main.get_command(app)
    for name in list(getattr(group, "commands", {})):
        group.commands[name]  # loads the command's module
    fs._syncfs()
    # Converting the first argument values loads typer's adapters and
    # pydantic (a fifth of a second): done here, on a vault that is not there.
    with open(os.devnull, "w") as null:
        saved = os.dup(1), os.dup(2)
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            for argv in (
                ["client", "add", "x"],
                ["note", "import", "x", os.devnull, "--kind", "progress"],
                ["rotate", "--all", "--json"],
            ):
                with contextlib.suppress(SystemExit):
                    app(["--vault", "/nonexistent/confvault-warm-up", *argv])
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _child(request: dict[str, Any], out: int, err: int) -> None:
    """In the forked child: become the CLI process the request describes."""
    code = 70
    try:
        os.environ.clear()
        os.environ.update(request["env"])
        with tempfile.TemporaryFile() as stdin:
            stdin.write(base64.b64decode(request["stdin"]))
            stdin.seek(0)
            os.dup2(stdin.fileno(), 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        install(*_parse_kill_at(request["kill_at"]))
        code = _run_cli(request["argv"])
    except BaseException as error:  # noqa: BLE001 - reported, then the child ends
        _say(f"crash_runner child: {type(error).__name__}: {error}")
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -999  # no real status is this: the tests report a hang
        time.sleep(0.002)


def _serve() -> int:
    _preload()
    requests = sys.stdin.buffer
    replies = sys.stdout.buffer
    for line in requests:
        request = json.loads(line)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(request, out.fileno(), err.fileno())
            code = _wait(pid, request.get("timeout", 120))
            out.seek(0)
            err.seek(0)
            reply = {
                "returncode": code,
                "stdout": base64.b64encode(out.read()).decode(),
                "stderr": base64.b64encode(err.read()).decode(),
            }
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()
    return 0


class _Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the crash runner server died ({self.proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Servers:
    """Fork servers for the crash tests, shared by threads (one request each
    at a time). ``run`` has ``subprocess.run``'s shape and result."""

    def __init__(self, count: int = 1) -> None:
        self._all = [_Server() for _ in range(count)]
        self._free: queue.Queue[_Server] = queue.Queue()
        for server in self._all:
            self._free.put(server)

    def run(
        self,
        kill_at: str,
        argv: list[str],
        *,
        env: dict[str, str],
        stdin: bytes = b"",
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the CLI with ``argv``, killed at ``kill_at`` (as ``main``)."""
        request = {
            "kill_at": kill_at,
            "argv": argv,
            "env": env,
            "stdin": base64.b64encode(stdin).decode(),
            "timeout": timeout,
        }
        server = self._free.get()
        try:
            reply = server.run(request)
        finally:
            self._free.put(server)
        if reply["returncode"] == -999:
            raise subprocess.TimeoutExpired(argv, timeout)
        return subprocess.CompletedProcess(
            argv,
            reply["returncode"],
            base64.b64decode(reply["stdout"]),
            base64.b64decode(reply["stderr"]),
        )

    def close(self) -> None:
        for server in self._all:
            server.close()

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def servers(count: int = 1) -> Iterator[Servers]:
    pool = Servers(count)
    try:
        yield pool
    finally:
        pool.close()


if __name__ == "__main__":
    # Do not let this directory shadow installed modules.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and str(Path(p).resolve()) != here]
    sys.exit(main(sys.argv[1:]))
