"""Sync over git (issue 16): time `sync init` (first push), `clone` beside a
plain `git clone` of the same remote, a push of 10 new notes and their pull
on the other device, for a vault of N notes (default 2,000).

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
from confvault.vault import Vault

PASSPHRASE = b"correct horse battery staple"


def _timed(label: str, action):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = action()
    print(f"{label:<44} {time.perf_counter() - start:8.2f} s")
    return out


def main(n: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        remote = base / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
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
        print(f"vault of {n} notes")
        _timed(
            "sync init (first push)",
            lambda: replica.connect(a.session, str(remote), "a", a_state),
        )
        _timed(
            "plain git clone --bare of the remote",
            lambda: subprocess.run(
                ["git", "clone", "-q", "--bare", str(remote), str(base / "plain.git")],
                check=True,
            ),
        )
        _timed(
            "confvault clone",
            lambda: clone(str(remote), base / "b", state_dir=b_state, device_name="b"),
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
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("CONFVAULT_NO_SERVER", "1")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
