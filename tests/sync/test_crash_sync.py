"""SIGKILL at every durable step of a sync's apply step (the remote's state
brought into the vault), then a rerun finishes: nothing lost, the vault is
the remote's state byte for byte and verifies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.sync.conftest import Device
from tests.vault import crash_runner


def _kill_run(
    pool: crash_runner.Servers, device: Device, kill_at: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """``confvault sync`` in a child of the crash runner's fork server."""
    return _run_in_pool(pool, device, kill_at, "sync", *args)


def _restore(device: Device, saved: Path) -> None:
    for name, path in (("vault", device.vault), ("state", device.state)):
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(saved / name, path, symlinks=True)


def test_kill_at_every_durable_step_of_a_pull_then_rerun(
    first: Device, second: Device, tmp_path: Path
) -> None:
    first.ok("client", "add", "Grace Hopper")
    first.ok("note", "add", "Grace", "--title", "new", input="Kept.\n")
    first.ok("note", "add", "Ada", "--title", "more", input="Also kept.\n")
    first.ok("sync")
    expected = first.files()
    saved = tmp_path / "saved-b"
    shutil.copytree(second.vault, saved / "vault", symlinks=True)
    shutil.copytree(second.state, saved / "state", symlinks=True)

    with crash_runner.servers(1) as pool:
        _every_point(pool, first, second, saved, expected)
    second.ok("verify", "--deep")
    listed = second.ok("note", "list", "--json").stdout
    assert '"new"' in listed
    assert '"more"' in listed


def _every_point(
    pool: crash_runner.Servers,
    first: Device,
    second: Device,
    saved: Path,
    expected: dict[str, bytes],
) -> None:
    done = _kill_run(pool, second, "0")
    assert done.returncode == 0, done.stderr
    total = int(done.stderr.strip().splitlines()[-1].split(": ")[1])
    assert total >= 5, done.stderr
    assert second.files() == expected

    points = [p for n in range(1, total + 1) for p in (str(n), f"{n}+")]
    for point in points:
        _restore(second, saved)
        killed = _kill_run(pool, second, point)
        assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-600:])
        rerun = second.run("sync", "--json")
        assert rerun.exit_code == 0, (point, rerun.output, rerun.stderr)
        assert second.files() == expected, point
        leftovers = sorted(p.name for p in (second.vault / "tmp").iterdir())
        assert leftovers == [], (point, leftovers)


def test_kill_at_every_durable_step_of_a_merge_then_rerun(
    first: Device, second: Device, tmp_path: Path, remote: Path, git: Any
) -> None:
    """B read (an audit entry) while A wrote: the sync merges; killed at any
    step, a rerun merges or pushes, and both devices end equal with A's
    note and B's read."""
    first.ok("note", "add", "Ada", "--title", "new", input="Kept.\n")
    first.ok("sync")
    second.ok("client", "list")
    kill_every_step_of_a_merge(second, tmp_path / "saved-b", remote, git)
    assert first.json("sync")["action"] == "pulled"
    assert first.files() == second.files()
    trail = json.loads(second.ok("audit", "--json").stdout)
    assert "client-list" in [e["action"] for e in trail]
    second.ok("audit", "verify")
    assert "Kept." in second.ok("note", "search", "Kept").stdout


def kill_every_step_of_a_merge(
    device: Device, saved: Path, remote: Path, git: Any, *args: str
) -> int:
    """Save the device and the remote; then for every durable step of the
    device's `sync` (a merge): restore both, SIGKILL the sync there, rerun
    it: it finishes (merged or pushed), the remote's manifest is the
    vault's, nothing is left in tmp/. Returns the number of steps."""
    shutil.copytree(device.vault, saved / "vault", symlinks=True)
    shutil.copytree(device.state, saved / "state", symlinks=True)
    shutil.copytree(remote, saved / "remote.git", symlinks=True)
    with crash_runner.servers(1) as pool:
        total = _total(_kill_run(pool, device, "0", *args))
        for point in _points(total):
            _restore(device, saved)
            shutil.rmtree(remote)
            shutil.copytree(saved / "remote.git", remote, symlinks=True)
            killed = _kill_run(pool, device, point, *args)
            _assert_killed(killed, point, total)
            rerun = device.run("sync", "--json", *args)
            assert rerun.exit_code == 0, (point, rerun.output, rerun.stderr)
            action = json.loads(rerun.stdout)["action"]
            assert action in ("merged", "pushed", "none", "recorded"), point
            on_remote = git(
                f"--git-dir={remote}", "cat-file", "blob", "confvault:manifest"
            ).stdout
            assert on_remote == (device.vault / "manifest").read_text(), point
            assert sorted(p.name for p in (device.vault / "tmp").iterdir()) == []
    return total


def _run_in_pool(
    pool: crash_runner.Servers, device: Device, kill_at: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **device.env(), CONFVAULT_NO_SERVER="1")
    argv = ["--vault", str(device.vault), "--passphrase-file", str(device.pass_file)]
    done = pool.run(kill_at, [*argv, *args], env=env)
    return subprocess.CompletedProcess(
        argv, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def _points(total: int) -> list[str]:
    return [p for n in range(1, total + 1) for p in (str(n), f"{n}+")]


def _assert_killed(
    killed: subprocess.CompletedProcess[str], point: str, total: int
) -> None:
    """A merge re-seals objects under random names: one may open a new
    objects/ directory (one more durable step) or not, so the number of a
    run's durable steps varies: a run is killed at the point, or it finished
    with fewer durable steps than the point names."""
    del total
    if killed.returncode == 0:
        steps = _total(killed)
        assert steps < int(point.rstrip("+")), (point, steps)
        return
    assert killed.returncode == -9, (point, killed.stderr[-600:])


def _total(done: subprocess.CompletedProcess[str]) -> int:
    assert done.returncode == 0, done.stderr
    return int(done.stderr.strip().splitlines()[-1].split(": ")[1])


def test_kill_at_every_durable_step_of_a_clone_then_rerun(
    first: Device, devices: Any, remote: Path
) -> None:
    b = devices("b")
    staging = b.vault.parent / f".{b.vault.name}.confvault-clone"

    def clean() -> None:
        for path in (b.vault, staging, b.state):
            shutil.rmtree(path, ignore_errors=True)

    with crash_runner.servers(1) as pool:
        total = _total(_run_in_pool(pool, b, "0", "clone", str(remote)))
        for point in _points(total):
            clean()
            killed = _run_in_pool(pool, b, point, "clone", str(remote))
            assert killed.returncode == -9, (point, killed.stderr[-600:])
            rerun = b.run("clone", str(remote))
            assert rerun.exit_code == 0, (point, rerun.output, rerun.stderr)
            assert b.files() == first.files(), point
            assert not staging.exists(), point
            assert b.json("sync")["action"] == "none", point


def test_kill_at_every_durable_step_of_a_first_push_then_rerun(
    devices: Any, remote: Path, tmp_path: Path, git: Any
) -> None:
    a = devices("a")
    a.init_vault()
    a.ok("client", "add", "Ada Lovelace")
    saved = tmp_path / "saved-a"
    shutil.copytree(a.vault, saved / "vault", symlinks=True)
    shutil.copytree(a.state, saved / "state", symlinks=True)
    shutil.copytree(remote, saved / "remote.git", symlinks=True)
    init = ("sync", "init", str(remote), "--device", "laptop")
    with crash_runner.servers(1) as pool:
        total = _total(_run_in_pool(pool, a, "0", *init))
        for point in _points(total):
            _restore(a, saved)
            shutil.rmtree(remote)
            shutil.copytree(saved / "remote.git", remote, symlinks=True)
            killed = _run_in_pool(pool, a, point, *init)
            assert killed.returncode == -9, (point, killed.stderr[-600:])
            rerun = a.run(*init)
            if rerun.exit_code != 0:
                assert rerun.exit_code == 1, (point, rerun.output)
                assert "already synced on this device" in rerun.stderr, point
                a.ok("sync")
            on_remote = git(
                f"--git-dir={remote}", "cat-file", "blob", "confvault:manifest"
            ).stdout
            assert on_remote == (a.vault / "manifest").read_text(), point


def test_kill_at_every_durable_step_of_a_compaction_then_rerun(
    first: Device, second: Device, tmp_path: Path, remote: Path, git: Any
) -> None:
    """`sync compact` killed anywhere: a rerun finishes, the remote holds one
    root commit of the vault's state, and the other device follows."""
    first.ok("note", "add", "Ada", "--title", "two", input="Two.\n")
    first.ok("sync")
    saved = tmp_path / "saved-a"
    shutil.copytree(first.vault, saved / "vault", symlinks=True)
    shutil.copytree(first.state, saved / "state", symlinks=True)
    shutil.copytree(remote, saved / "remote.git", symlinks=True)
    with crash_runner.servers(1) as pool:
        total = _total(_run_in_pool(pool, first, "0", "sync", "compact"))
        assert total >= 3, total  # durable steps of the sync and the compaction
        for point in _points(total):
            _restore(first, saved)
            shutil.rmtree(remote)
            shutil.copytree(saved / "remote.git", remote, symlinks=True)
            killed = _run_in_pool(pool, first, point, "sync", "compact")
            assert killed.returncode == -9, (point, killed.stderr[-600:])
            rerun = first.run("sync", "compact", "--json")
            assert rerun.exit_code == 0, (point, rerun.output, rerun.stderr)
            log = git(f"--git-dir={remote}", "rev-list", "confvault").stdout.split()
            assert log == [json.loads(rerun.stdout)["commit"]], point
            on_remote = git(
                f"--git-dir={remote}", "cat-file", "blob", "confvault:manifest"
            ).stdout
            assert on_remote == (first.vault / "manifest").read_text(), point
    assert second.json("sync")["action"] == "pulled"
    assert first.files() == second.files()
    assert first.json("sync")["action"] == "none"
