"""A part of a copy run in a forked child: results, errors, deaths, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from confvault.errors import IntegrityError, StorageError
from confvault.vault.store import forked


def _reaped(pid: int) -> bool:
    """Gone for good: not even a zombie waiting for its parent."""
    return not Path(f"/proc/{pid}").exists()


def _recording(pid_file: Path, then: Callable[[], object]) -> Callable[[], object]:
    """``then``, in a child that first writes its pid to ``pid_file``."""

    def there() -> object:
        pid_file.write_text(f"{os.getpid()}\n")
        return then()

    return there


def _gone(pid: int) -> bool:
    """Dead: no such process, or a zombie waiting for whoever reaps orphans."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _wait_for(path: Path, seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


def test_both_results_come_back_and_the_child_is_another_process() -> None:
    here, there = forked.run_pair(os.getpid, lambda: [os.getpid(), "text", 3])
    assert here == os.getpid()
    assert there[0] != os.getpid()
    assert there[1:] == ["text", 3]
    assert _reaped(there[0])


def test_a_confvault_error_in_the_child_is_raised_here_as_itself(
    tmp_path: Path,
) -> None:
    def fail() -> None:
        raise IntegrityError("objects/ab/abc is damaged")

    with pytest.raises(IntegrityError, match=r"^objects/ab/abc is damaged$"):
        forked.run_pair(lambda: None, _recording(tmp_path / "pid", fail))
    assert _reaped(int((tmp_path / "pid").read_text()))


def test_any_other_exception_in_the_child_is_a_storage_error() -> None:
    def there() -> None:
        raise ValueError("boom")

    with pytest.raises(
        StorageError, match=r"^the second process failed: ValueError: boom$"
    ):
        forked.run_pair(lambda: None, there)


def test_a_result_that_is_not_json_is_reported_not_lost() -> None:
    with pytest.raises(
        StorageError,
        match=r"^the second process exited with status 1 before it finished$",
    ):
        forked.run_pair(lambda: None, object)


def test_a_child_killed_by_a_signal_is_a_storage_error(tmp_path: Path) -> None:
    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(
        StorageError,
        match=r"^the second process was stopped by signal 9 before it finished$",
    ):
        forked.run_pair(lambda: None, _recording(tmp_path / "pid", die))
    assert _reaped(int((tmp_path / "pid").read_text()))


def test_a_failure_here_kills_and_reaps_the_child_first(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"

    def there() -> None:
        pid_file.write_text(f"{os.getpid()}\n")
        time.sleep(60)

    def here() -> None:
        _wait_for(pid_file)
        raise RuntimeError("this side failed")

    with pytest.raises(RuntimeError, match="this side failed"):
        forked.run_pair(here, there)
    assert _reaped(int(pid_file.read_text()))


def test_the_child_dies_with_its_parent(tmp_path: Path) -> None:
    """A parent killed mid-copy (SIGKILL: no clean-up at all) takes the child
    with it, so no orphan keeps the vault's shared lock or writes on."""
    pid_file = tmp_path / "child"
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from pathlib import Path
        from confvault.vault.store import forked

        def there():
            Path({str(pid_file)!r}).write_text(f"{{os.getpid()}}\\n")
            time.sleep(60)

        def here():
            while not Path({str(pid_file)!r}).exists():
                time.sleep(0.01)
            time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)

        forked.run_pair(here, there)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL
    child = int(_wait_for(pid_file))
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _gone(child)


def test_no_fork_beside_another_thread() -> None:
    """In a new process (this one may hold the age codec's worker threads)."""
    script = textwrap.dedent(
        """
        import threading
        from confvault.vault.store import forked
        alone = forked.available()
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        beside = forked.available()
        stop.set()
        thread.join()
        print(alone, beside, forked.available(), forked.processors() >= 1)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout == "True False True True\n"


def test_without_a_second_process_both_run_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process limit or no memory for a fork slows the work, never fails it."""

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    order: list[str] = []
    here, there = forked.run_pair(
        lambda: order.append("here") or os.getpid(),
        lambda: order.append("there") or (os.getpid(), "text"),
    )
    assert order == ["here", "there"]
    assert here == os.getpid()
    assert there == [os.getpid(), "text"]  # a list, as it comes through the pipe
