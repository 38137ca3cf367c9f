"""Power cuts, not only SIGKILL: every crash state of eight commands, checked.

Each command runs once as a real subprocess under strace; every state a
power cut could leave (two models of the file system, see ``model``) is
written to disk and checked in-process (see ``explorer``). Any state that
fails is a bug; docs/RELIABILITY.md lists those found and fixed, each
replayed by ``test_regressions.py``. The commands are explored side by side
in worker processes, one per processor (two at most).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import pytest

from tests.crashstates import model
from tests.crashstates.explorer import Result
from tests.crashstates.worlds import COMMANDS, explore_command

MINUTE = 60.0
# The longest first, so that two workers finish together.
ORDER = [
    "rotate-all",
    "revoke",
    "note-import",
    "backup-create",
    "grant",
    "client-shred",
    "note-add",
    "init",
]
RESULTS: dict[str, Result] = {}


def _worker_init(path: str) -> None:
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(scope="module")
def explored(
    strace_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Result]]]:
    workers = max(1, min(2, len(os.sched_getaffinity(0))))
    root = str(Path(__file__).resolve().parents[2])  # where `tests` imports from
    context = multiprocessing.get_context("spawn")  # this process may have threads
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(root,)
    ) as pool:
        yield {
            name: pool.submit(
                explore_command, name, str(tmp_path_factory.mktemp(name)), strace_bin
            )
            for name in sorted((c.name for c in COMMANDS), key=ORDER.index)
        }


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_every_crash_state_recovers(
    command, explored: dict[str, Future[Result]]
) -> None:
    result = explored[command.name].result()
    RESULTS[command.name] = result
    assert not result.problems, (
        f"{len(result.problems)} of {result.distinct} crash states fail:\n"
        + "\n\n".join(p[:1500] for p in result.problems[:8])
    )
    # Not vacuous: both models built states, and the vault changed (a backup
    # leaves the vault as it was and writes its own tree).
    assert all(result.raw[m] > 0 for m in model.MODELS), result.raw
    assert result.distinct > 50, result.distinct
    assert result.contents >= (1 if command.backup else 2), result.contents
    # The bound: a minute of processor time per command (wall time depends on
    # what else the machine runs).
    assert result.cpu < MINUTE, f"{command.name}: {result.cpu:.1f} s of processor time"


def test_explorer_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """The figures docs/RELIABILITY.md quotes (runs after the tests above)."""
    missing = [c.name for c in COMMANDS if c.name not in RESULTS]
    if missing:
        pytest.skip(f"explorer tests not run in this session: {', '.join(missing)}")
    lines = [
        "command        ops barriers  ext4 durable/free  none durable/free  states ext4/none -> distinct  contents  cpu s"
    ]
    for r in RESULTS.values():
        e, n = r.synced["ext4"], r.synced["none"]
        lines.append(
            f"{r.command:<14}{r.ops:>4}{r.barriers:>9}{e[0]:>12}/{e[1]:<6}{n[0]:>12}/{n[1]:<6}"
            f"{r.raw['ext4']:>10}/{r.raw['none']:<6}{r.distinct:>9}{r.contents:>10}{r.cpu:>9.1f}"
        )
    total = sum(r.distinct for r in RESULTS.values())
    with capsys.disabled():
        sys.stdout.write(
            "\ncrash states explored:\n"
            + "\n".join(lines)
            + f"\ntotal distinct states: {total}\n"
        )
    assert total > 8 * 50
