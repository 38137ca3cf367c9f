"""`migrate --pq` is crash-safe and resumable like rotation: SIGKILL at every
durable step, then the vault verifies, every note reads back byte-identical,
and rerunning `migrate --pq` finishes: nothing left sealed to a classic key
(the crash harness of test_crash_rotation.py: tests/vault/crash_runner.py)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import AgeError
from confvault.vault import Vault
from tests.vault import crash_runner
from tests.vault.test_crash_rotation import PASSPHRASE
from tests.vault.test_crash_rotation import make_base as _make_base

COMMAND = ["migrate", "--pq"]


_SERVERS: list[crash_runner.Servers] = []


@pytest.fixture(scope="module", autouse=True)
def _servers() -> Iterator[None]:
    with crash_runner.servers(3) as pool:
        _SERVERS.append(pool)
        yield
        _SERVERS.clear()


def _run(root: Path, kill_at: str, batch_clients: int | None = None) -> tuple[int, str]:
    env = dict(os.environ, XDG_STATE_HOME=str(root / "xdg"))
    if batch_clients is not None:
        env["CRASH_RUNNER_BATCH_CLIENTS"] = str(batch_clients)
    argv = ["--vault", str(root / "vault"), "--passphrase-file", str(root / "pass")]
    done = _SERVERS[0].run(kill_at, [*argv, *COMMAND], env=env)
    return done.returncode, done.stderr.decode("utf-8", "replace")


def _check(root: Path, bodies: dict[str, bytes], grantee: age.X25519Identity) -> None:
    state = root / "xdg" / "confvault"
    vault = Vault.open(root / "vault", passphrase=PASSPHRASE, state_dir=state)
    assert vault.verify(deep=True).ok
    assert {n: vault.note(n).body for n in bodies} == bodies
    code, stderr = _run(root, "0")
    assert code in (0, 3), stderr
    vault = Vault.open(root / "vault", passphrase=PASSPHRASE, state_dir=state)
    report = vault.verify(deep=True)
    assert report.findings == (), report.findings
    assert report.classic_objects == 0
    assert vault.status().key_kind == "postquantum"
    assert {n: vault.note(n).body for n in bodies} == bodies
    assert vault.grants() == []
    for path in (root / "vault" / "objects").rglob("*"):
        if path.is_file():
            with pytest.raises(AgeError):
                age.decrypt(path.read_bytes(), [grantee])


@pytest.mark.slow
@pytest.mark.parametrize("batch_clients", [None, 1], ids=["one-batch", "per-client"])
def test_kill_migrate_at_every_durable_step_then_rerun(
    ram_path: Path, batch_clients: int | None, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path = ram_path
    base = tmp_path / "base"
    base.mkdir()
    bodies, grantee = _make_base(base)
    probe = tmp_path / "probe"
    shutil.copytree(base, probe)
    code, stderr = _run(probe, "0", batch_clients)
    assert code == 0, stderr
    total = int(stderr.strip().splitlines()[-1].split(": ")[1])
    modes = ("", "+") if os.environ.get("CONFVAULT_CRASH_BOTH") else ("",)
    points = [f"{n}{m}" for n in range(1, total + 1) for m in modes] + [f"{total}+"]

    def one(point: str) -> str:
        root = tmp_path / f"p{point.replace('+', 'a')}"
        shutil.copytree(base, root)
        code, stderr = _run(root, point, batch_clients)
        assert code in (-9, 0), stderr
        _check(root, bodies, grantee)
        shutil.rmtree(root)
        return point

    with ThreadPoolExecutor(max_workers=3) as pool:
        done = list(pool.map(one, points))
    assert len(done) == len(points)
    assert total > 10
    with capsys.disabled():  # the figure RELIABILITY.md quotes
        sys.stdout.write(
            f"\ncrash points tried for migrate --pq ({batch_clients}): {len(points)}\n"
        )
