"""Sync over git (issue 16): time `sync init` (first push), `clone` beside
plain `git clone`s of the same remote, a push of 10 new notes and their pull
on the other device, and 10 new notes on each side merged, for a vault of N
notes (default 2,000); each sync shows the time spent waiting on git.

    .venv/bin/python bench/sync.py [N]

The figures go to docs/PERFORMANCE.md. Work factor 2^10 (not what is timed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confvault.sync import replica
from confvault.sync.clone import clone
from confvault.sync.git import Repo
from confvault.vault import Vault

PASSPHRASE = b"correct horse battery staple"


def _timed(label: str, action):  # type: ignore[no-untyped-def]
    git_before = Repo.seconds
    start = time.perf_counter()
    out = action()
    total = time.perf_counter() - start
    git = Repo.seconds - git_before
    share = f"   (git {git:6.2f} s, confvault {total - git:6.2f} s)" if git else ""
    print(f"{label:<48} {total:8.2f} s{share}", flush=True)
    return out


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


def main(n: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        remote = base / "remote.git"
        _git("init", "-q", "--bare", str(remote))
        a_state, b_state = base / "a-state", base / "b-state"
        a, _ = Vault.init(
            base / "a",
            PASSPHRASE,
            work_factor=10,
            postquantum=False,
            min_work_factor=10,
            state_dir=a_state,
        )
        per = 100
        for c in range(max(1, n // per)):
            a.add_client(f"Client {c}")
            a.add_notes(
                f"Client {c}",
                [(f"n{i}", "2025-01-01", b"x " * 1500) for i in range(per)],
            )
        print(f"vault of {n} notes", flush=True)
        _timed(
            "sync init (first push)",
            lambda: replica.connect(a.session, str(remote), "a", a_state),
        )
        url = f"file://{remote}"
        _timed(
            "plain git clone --bare (local path: hard links)",
            lambda: _git("clone", "-q", "--bare", str(remote), str(base / "p1.git")),
        )
        _timed(
            "plain git clone --bare file:// (a transfer)",
            lambda: _git("clone", "-q", "--bare", url, str(base / "p2.git")),
        )
        _timed(
            "plain git clone file:// (transfer + checkout)",
            lambda: _git("clone", "-q", "-b", "confvault", url, str(base / "p3")),
        )
        _timed(
            "confvault clone (file://)",
            lambda: clone(url, base / "b", state_dir=b_state, device_name="b"),
        )
        b = Vault.open(base / "b", passphrase=PASSPHRASE, state_dir=b_state)
        a.add_notes(
            "Client 0", [(f"new{i}", "2025-02-01", b"y " * 1500) for i in range(10)]
        )
        _timed("sync: push 10 new notes", lambda: replica.sync(a.session, a_state))
        result = _timed(
            "sync: pull them on the other device",
            lambda: replica.sync(b.session, b_state),
        )
        print(f"  ({result.objects_in} objects in)")
        last = n // per - 1
        a.add_notes(
            "Client 1", [(f"a{i}", "2025-03-01", b"a " * 1500) for i in range(10)]
        )
        b.add_notes(
            f"Client {last}",
            [(f"b{i}", "2025-03-01", b"b " * 1500) for i in range(10)],
        )
        _timed(
            "sync: A pushes its 10 new notes", lambda: replica.sync(a.session, a_state)
        )
        merged = _timed(
            "sync: B merges its 10 with A's 10, pushes",
            lambda: replica.sync(b.session, b_state),
        )
        print(f"  ({merged.action})")
        _timed("sync: A pulls the merge", lambda: replica.sync(a.session, a_state))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("CONFVAULT_NO_SERVER", "1")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
