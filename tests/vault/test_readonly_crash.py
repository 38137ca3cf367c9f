"""Folding the read spool survives SIGKILL at every durable step: each
spooled read reaches the trail exactly once, whichever step the first
writable open died at, once the next command has run.

Reads are spooled for real, on a read-only bind mount (root only: elsewhere
this skips, saying why; CI runs as root and must run it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from confvault.vault import Vault
from tests.vault.conftest import PASSPHRASE, WORK_FACTOR, Clock
from tests.vault.test_readonly import read_only_mount  # noqa: F401

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).with_name("crash_runner.py")
SPOOLED = ["note-show", "note-list", "client-list"]


def _run(kill_at: str, root: Path, pass_file: Path, *args: str) -> tuple[int, str, str]:
    env = dict(os.environ, XDG_STATE_HOME=str(root / "state"))
    env.pop("CONFVAULT_DEBUG", None)
    argv = ["--vault", str(root / "vault"), "--passphrase-file", str(pass_file), *args]
    done = subprocess.run(
        [sys.executable, str(RUNNER), kill_at, "--", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_a_fold_killed_at_any_step_adds_each_read_once(
    tmp_path: Path,
    read_only_mount,  # noqa: F811
    clock: Clock,
) -> None:
    base = tmp_path / "base"
    state = base / "state" / "confvault"  # what the CLI uses under XDG_STATE_HOME
    vault, _ = Vault.init(
        base / "vault",
        PASSPHRASE,
        work_factor=WORK_FACTOR,
        min_work_factor=WORK_FACTOR,
        state_dir=state,
        clock=clock,
    )
    vault.add_client("Ann")
    note = vault.add_note("Ann", b"Went well.").id
    clock.advance(days=1)
    read_at = clock.now.isoformat().replace("+00:00", "Z")
    reader = Vault.open(
        read_only_mount(base / "vault"),
        passphrase=PASSPHRASE,
        state_dir=state,
        clock=clock,
    )
    reader.note(note)
    reader.notes("Ann")
    reader.clients()
    assert reader.spooled == 3
    del reader
    pass_file = tmp_path / "pass"
    pass_file.write_bytes(PASSPHRASE)
    pass_file.chmod(0o600)

    def fresh(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(base / "vault", root / "vault", symlinks=True)
        shutil.copytree(base / "state", root / "state", symlinks=True)
        return root

    code, _, err = _run("0", fresh("count"), pass_file, "status")
    assert code == 0, err
    total = int(err.splitlines()[-1].removeprefix("durable-steps: "))
    sys.stderr.write(f"{total} durable steps, {2 * total} crash points\n")
    assert total >= 8  # spool marks, objects, the manifest, its directory ...

    points = [f"{n}{after}" for n in range(1, total + 1) for after in ("", "+")]
    for point in points:
        root = fresh(f"kill-{point}")
        code, _, err = _run(point, root, pass_file, "status")
        assert code == -9, (point, err[-500:])  # killed where asked
        # The next command (here in this process) finishes the fold.
        after = Vault.open(
            root / "vault",
            passphrase=PASSPHRASE,
            state_dir=root / "state" / "confvault",
        )
        trail = [(e.action, e.time) for e in after.audit()]
        assert [a for a, t in trail if t == read_at] == SPOOLED, point
        spool = root / "state" / "confvault" / "spool"
        assert [p.name for p in spool.rglob("*") if p.is_file()] == [], point
        assert after.verify_audit() == [], point
        del after
        shutil.rmtree(root)
