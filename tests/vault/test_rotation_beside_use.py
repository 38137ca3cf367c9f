"""Rotation runs beside normal use: keys rotate while other processes add and read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from confvault.vault import Vault
from tests.vault.conftest import PASSPHRASE

CONFVAULT = str(Path(sys.executable).parent / "confvault")


def test_rotate_all_while_writers_and_readers_run(tmp_path: Path) -> None:
    state = tmp_path / "state"
    vault, _ = Vault.init(
        tmp_path / "v", PASSPHRASE, work_factor=10, min_work_factor=10, state_dir=state
    )
    for name in ("Ann", "Bob", "Cleo"):
        vault.add_client(name)
        vault.add_notes(
            name,
            [
                (f"{name}-old-{i}", "2026-01-01", f"{name} old {i}".encode())
                for i in range(20)
            ],
        )
    secret = tmp_path / "pass"
    secret.write_bytes(PASSPHRASE + b"\n")
    secret.chmod(0o600)
    env = dict(
        os.environ, XDG_STATE_HOME=str(tmp_path / "xdg"), CONFVAULT_LOCK_TIMEOUT="120"
    )
    base = [CONFVAULT, "--vault", str(vault.root), "--passphrase-file", str(secret)]

    writer_script = (
        "import subprocess, sys\n"
        "base, client, n = sys.argv[1:-2], sys.argv[-2], int(sys.argv[-1])\n"
        "for i in range(n):\n"
        "    subprocess.run([*base, 'note', 'add', client, '--title', f'{client}-new-{i}'],"
        " input=f'{client} new {i}'.encode(), check=True, capture_output=True)\n"
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", writer_script, *base, name, "6"], env=env
        )
        for name in ("Ann", "Bob")
    ]
    rotations = []
    listings = []
    deadline = time.monotonic() + 120
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        rotations.append(
            subprocess.run(
                [*base, "rotate", "--all", "--json"],
                env=env,
                capture_output=True,
                check=False,
                timeout=120,
            )
        )
        listings.append(
            subprocess.run(
                [*base, "note", "list", "--json"],
                env=env,
                capture_output=True,
                check=False,
                timeout=120,
            )
        )
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    assert rotations, "the rotation job never ran while writers were active"
    assert all(r.returncode == 0 for r in rotations), [r.stderr for r in rotations]
    assert all(json.loads(r.stdout)["outcome"] == "done" for r in rotations)
    counts = [
        len(json.loads(listing.stdout))
        for listing in listings
        if listing.returncode == 0
    ]
    assert len(counts) == len(listings)
    assert counts == sorted(counts)  # readers saw a growing, consistent list

    final = Vault.open(vault.root, passphrase=PASSPHRASE, state_dir=state)
    titles = sorted(n.title for n in final.notes())
    expected = sorted(
        [f"{c}-old-{i}" for c in ("Ann", "Bob", "Cleo") for i in range(20)]
        + [f"{c}-new-{i}" for c in ("Ann", "Bob") for i in range(6)]
    )
    assert titles == expected
    for info in final.notes():
        assert final.note(info.id).signature == "valid"
    assert final.verify(deep=True).findings == ()
