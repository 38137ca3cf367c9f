"""Part of a long copy in a forked child: a second processor and its own GIL.

    if forked.available() and forked.processors() > 1:
        mine, theirs = forked.run_pair(lambda: copy(first_half),
                                       lambda: copy(second_half))

A copy of many small files spends its time in one system call after another
and a little Python between them; a thread cannot overlap that (the GIL
passes to and fro on every call), a second process can. ``run_pair`` runs
``there`` in a child made by ``fork`` while ``here`` runs in this process,
and hands back both results. The child's result must be JSON (it comes back
through a pipe); an exception the child raises is raised here again as the
same confvault error with the same message. The child leaves by
``os._exit``: none of this process's clean-up, buffers or exit handlers run
twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

from confvault import errors
from confvault.vault.store.documents import JSONValue

T = TypeVar("T")
_OK, _FAILED = "ok", "error"


def available() -> bool:
    """True when a fork is safe here: Linux-like ``fork`` and no thread but
    this one (a child of a threaded process may inherit a lock some other
    thread held)."""
    if not hasattr(os, "fork"):
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() <= 1


def processors() -> int:
    """How many processors this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_pair(here: Callable[[], T], there: Callable[[], object]) -> tuple[T, JSONValue]:
    """``(here(), there())``, with ``there`` run in a forked child meanwhile.

    ``there()`` must return what ``json.dumps`` encodes; it comes back as
    ``json.loads`` gives it (a tuple as a list): convert it at once.

    If ``here`` raises, the child is killed and reaped before the exception
    goes on, so nothing the child does outlives the call. When no process
    can be forked, ``there`` runs here after ``here``: slower, same result.
    """
    parent = os.getpid()
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no process to be had (a process limit, memory): both here
        os.close(read_end)
        os.close(write_end)
        mine = here()
        return mine, json.loads(json.dumps(there()))  # as the pipe would give it
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(there, write_end, parent)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            mine = here()
            message = pipe.read()  # to the end: the child has finished or died
    except BaseException:
        _stop(pid)
        raise
    return mine, _outcome(message, _reap(pid))


def _child(there: Callable[[], object], pipe: int, parent: int) -> None:
    code = 0
    try:
        _die_with(parent)
        message: dict[str, object]
        try:
            message = {_OK: there()}
        except errors.ConfvaultError as err:
            message = {_FAILED: [type(err).__name__, str(err)]}
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            message = {_FAILED: ["", f"{type(err).__name__}: {err}"]}
        data = json.dumps(message).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(pipe, view) :]
    except BaseException:  # noqa: BLE001 - the parent sees the exit status
        code = 1
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """Be killed if ``parent`` dies (SIGKILL, a crash): an orphan would go on
    holding the vault's shared lock (the descriptor is shared) and writing
    into a backup nobody will finish."""
    import ctypes  # in the child only

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def _outcome(message: bytes, status: int) -> JSONValue:
    try:
        decoded = json.loads(message)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and _OK in decoded:
        result: JSONValue = decoded[_OK]  # JSON, decoded: nothing else can be
        return result
    if isinstance(decoded, dict) and _FAILED in decoded:
        name, text = decoded[_FAILED]
        cls = getattr(errors, name, None) if name else None
        error: Exception = errors.StorageError(f"the second process failed: {text}")
        if isinstance(cls, type) and issubclass(cls, errors.ConfvaultError):
            with contextlib.suppress(TypeError):  # a class that wants more than text
                error = cls(text)
        raise error
    if os.WIFSIGNALED(status):
        why = f"was stopped by signal {os.WTERMSIG(status)}"
    else:
        why = f"exited with status {os.waitstatus_to_exitcode(status)}"
    raise errors.StorageError(f"the second process {why} before it finished")


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:  # pragma: no cover - PEP 475 retries it
            continue
        except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler)
            return 0
