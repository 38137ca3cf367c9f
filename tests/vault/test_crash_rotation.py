"""Unattended rotation and revocation are crash-safe and resumable: SIGKILL
at every durable step, then the vault verifies, every note reads back
byte-identical (nothing is sealed only to a key that no longer exists), and
rerunning the job finishes the work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import AgeError
from confvault.vault import Vault
from tests.vault import crash_runner

PASSPHRASE = b"correct horse battery staple"


def make_base(root: Path) -> tuple[dict[str, bytes], age.X25519Identity]:
    """A classic vault of three clients, two notes each, one grant (also the
    base of test_crash_migrate)."""
    vault, _ = Vault.init(
        root / "vault",
        PASSPHRASE,
        work_factor=10,
        postquantum=False,
        min_work_factor=10,
        state_dir=root / "xdg" / "confvault",
    )
    bodies = {}
    for name in ("Ann", "Bob", "Cleo"):
        vault.add_client(name)
        for i in range(2):
            body = f"{name} note {i}".encode()
            bodies[vault.add_note(name, body).id] = body
    grantee = age.X25519Identity.generate()
    vault.grant(str(grantee.recipient), clients=["Ann", "Bob"], label="locum")
    (root / "pass").write_bytes(PASSPHRASE + b"\n")
    (root / "pass").chmod(0o600)
    return bodies, grantee


_SERVERS: list[crash_runner.Servers] = []  # fork servers, one per thread at a time


@pytest.fixture(scope="module", autouse=True)
def _servers() -> Iterator[None]:
    with crash_runner.servers(3) as pool:
        _SERVERS.append(pool)
        yield
        _SERVERS.clear()


def _run(
    root: Path, kill_at: str, args: list[str], batch_clients: int | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_STATE_HOME=str(root / "xdg"))
    if batch_clients is not None:
        env["CRASH_RUNNER_BATCH_CLIENTS"] = str(batch_clients)
    argv = [
        "--vault",
        str(root / "vault"),
        "--passphrase-file",
        str(root / "pass"),
        *args,
    ]
    done = _SERVERS[0].run(kill_at, argv, env=env)
    return subprocess.CompletedProcess(
        argv,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def _steps(root: Path, args: list[str], batch_clients: int | None = None) -> int:
    done = _run(root, "0", args, batch_clients)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.strip().splitlines()[-1].split(": ")[1])


def _check(
    root: Path,
    bodies: dict[str, bytes],
    grantee: age.X25519Identity,
    rerun: list[str],
    revoked: bool,
) -> None:
    vault = Vault.open(
        root / "vault", passphrase=PASSPHRASE, state_dir=root / "xdg" / "confvault"
    )
    assert vault.verify(deep=True).ok
    assert {n: vault.note(n).body for n in bodies} == bodies
    if revoked and not vault.grants():
        rerun = ["rotate"]  # the grant is gone: the nightly job finishes the rotations
    finish = _run(root, "0", rerun)
    assert finish.returncode in (0, 3), finish.stderr
    vault = Vault.open(
        root / "vault", passphrase=PASSPHRASE, state_dir=root / "xdg" / "confvault"
    )
    report = vault.verify(deep=True)
    assert report.findings == (), report.findings
    assert {n: vault.note(n).body for n in bodies} == bodies
    if revoked:
        assert vault.grants() == []
        for path in (root / "vault" / "objects").rglob("*"):
            if path.is_file():
                with pytest.raises(AgeError):
                    age.decrypt(path.read_bytes(), [grantee])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "rerun", "revoked", "batch_clients"),
    [
        (["revoke", "locum"], ["revoke", "locum"], True, None),
        (["rotate", "--all"], ["rotate"], False, None),
        (["rotate", "--all"], ["rotate"], False, 1),
    ],
    ids=["revoke", "rotate-all", "rotate-all-one-client-per-batch"],
)
def test_kill_at_every_durable_step_then_rerun(
    ram_path: Path,
    command,
    rerun,
    revoked,
    batch_clients,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tmp_path = ram_path  # on a tmpfs when there is one: see tests/conftest.ram_dir
    base = tmp_path / "base"
    base.mkdir()
    bodies, grantee = make_base(base)
    probe = tmp_path / "probe"
    shutil.copytree(base, probe)
    total = _steps(probe, command, batch_clients)
    if batch_clients is not None:  # three clients: three commits, not one
        assert total > 2 * _steps(_fresh_copy(base, tmp_path / "probe1"), command)
    modes = ("", "+") if os.environ.get("CONFVAULT_CRASH_BOTH") else ("",)
    points = [f"{n}{mode}" for n in range(1, total + 1) for mode in modes] + [
        f"{total}+"
    ]

    def one(point: str) -> str:
        root = tmp_path / f"p{point.replace('+', 'a')}"
        shutil.copytree(base, root)
        run = _run(root, point, command, batch_clients)
        assert run.returncode in (-9, 0, 3), run.stderr
        _check(root, bodies, grantee, rerun, revoked)
        shutil.rmtree(root)
        return point

    with ThreadPoolExecutor(max_workers=3) as pool:
        done = list(pool.map(one, points))
    assert len(done) == len(points)
    assert total > 10
    label = " ".join(command) + (f" (batches of {batch_clients})" * bool(batch_clients))
    with capsys.disabled():  # the figure RELIABILITY.md quotes
        sys.stdout.write(f"\ncrash points tried for {label}: {len(points)}\n")


def _fresh_copy(base: Path, to: Path) -> Path:
    shutil.copytree(base, to)
    return to
