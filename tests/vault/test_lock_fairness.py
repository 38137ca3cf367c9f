"""Waiting for the vault lock in turn (issue 14, "The lock").

A writer in a tight loop, in its own process, takes the vault lock again the
moment it lets it go; readers started in other processes while it runs must
each get in within the bound store/lockwait.py documents (the writer's
current transaction plus two poll intervals), well inside their timeout.
Before the turnstile, a reader polling every 0.1 s almost never found the
lock free and failed with "the vault is locked" at its timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from confvault.vault import Vault
from tests.vault.conftest import PASSPHRASE

HOLD = 0.05  # seconds the writer holds the lock each turn: one "transaction"
READERS = 3
TIMEOUT = 6.0  # each reader's lock timeout: well past BOUND
BOUND = HOLD + 2 * 0.1 + 1.5  # lockwait's bound, plus room for a loaded machine

WRITER = """
import sys, time
from pathlib import Path
from confvault.vault.store import fs
root, hold, ready = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
stop = ready.with_name("stop")
turns, end = 0, time.monotonic() + 120
while not stop.exists() and time.monotonic() < end:
    with fs.locked(root, exclusive=True, timeout=60):
        if turns == 0:
            ready.write_text("writing")
        time.sleep(hold)  # the transaction's work, lock held
    turns += 1
print(turns)
"""

READER = """
import json, sys, time
from pathlib import Path
from confvault.errors import VaultLockedError
from confvault.vault.store import fs
root, timeout = Path(sys.argv[1]), float(sys.argv[2])
start = time.monotonic()
try:
    with fs.locked(root, exclusive=False, timeout=timeout):
        waited = time.monotonic() - start
    print(json.dumps({"waited": waited}))
except VaultLockedError:
    print(json.dumps({"locked_out_after": time.monotonic() - start}))
"""


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_readers_get_in_while_a_writer_loops(tmp_path: Path, state_dir: Path) -> None:
    vault, _ = Vault.init(
        tmp_path / "vault", PASSPHRASE, work_factor=10, min_work_factor=10,
        state_dir=state_dir,
    )  # fmt: skip
    ready = tmp_path / "ready"
    writer = _python(WRITER, str(vault.root), str(HOLD), str(ready))
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert writer.poll() is None, writer.communicate()
            assert time.monotonic() < deadline, "the writer never took the lock"
            time.sleep(0.01)
        outcomes = []
        for _ in range(READERS):  # one after another, each while the writer loops
            reader = _python(READER, str(vault.root), str(TIMEOUT))
            out, err = reader.communicate(timeout=60)
            assert reader.returncode == 0, err
            outcomes.append(json.loads(out))
        assert writer.poll() is None, "the writer stopped before the readers were done"
    finally:
        (tmp_path / "stop").touch()
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert int(out) > READERS  # it kept looping beside the readers
    assert all("waited" in o for o in outcomes), outcomes
    assert all(o["waited"] < BOUND for o in outcomes), outcomes
