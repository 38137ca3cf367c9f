"""A vault synced through a file-sync folder (issue 16, docs/SYNC.md): each
device has its own replica of the folder, and a copier plays the sync tool,
copying whole files (atomically renamed) one at a time in random order;
and a folder sync killed at every durable step, then run again."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sync.conftest import Device, state_of
from tests.sync.test_crash_sync import (
    _assert_killed,
    _kill_run,
    _points,
    _restore,
    _total,
)
from tests.vault import crash_runner


class Copier:
    """A sync tool between two replicas of one folder: each device's
    repository is copied from its owner's replica to the other, one file
    (or directory, or deletion) at a time."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.owners: dict[str, Path] = {}  # repository name -> owner's replica
        self.replicas: list[Path] = []

    def own(self, replica: Path) -> None:
        self.replicas.append(replica)
        for repo in replica.glob("*.git"):
            self.owners.setdefault(repo.name, replica)

    def pending(self) -> list[tuple[str, Path, Path]]:
        ops: list[tuple[str, Path, Path]] = []
        for name, src_root in sorted(self.owners.items()):
            src = src_root / name
            for dst_root in self.replicas:
                if dst_root == src_root:
                    continue
                dst = dst_root / name
                theirs = {p.relative_to(src) for p in src.rglob("*")}
                for rel in sorted(theirs, key=str):
                    s, d = src / rel, dst / rel
                    if s.is_dir() and not d.is_dir():
                        ops.append(("mkdir", s, d))
                    elif s.is_file() and (
                        not d.is_file() or d.read_bytes() != s.read_bytes()
                    ):
                        ops.append(("copy", s, d))
                if dst.is_dir():
                    for p in sorted(dst.rglob("*"), reverse=True):
                        if p.relative_to(dst) not in theirs:
                            ops.append(("delete", p, p))
        return ops

    def step(self, count: int) -> int:
        """Apply up to ``count`` random pending operations; how many ran."""
        ops = self.pending()
        self.rng.shuffle(ops)
        for op in ops[:count]:
            self.apply(*op)
        return min(count, len(ops))

    def apply(self, op: str, src: Path, dst: Path) -> None:
        if op == "mkdir":
            dst.mkdir(parents=True, exist_ok=True)
        elif op == "delete":
            if dst.is_dir():
                shutil.rmtree(dst)
            else:
                dst.unlink(missing_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.parent / f".syncthing.{dst.name}.tmp"
            tmp.write_bytes(src.read_bytes())
            os.replace(tmp, dst)

    def finish(self) -> None:
        while self.step(1000):
            pass


def folder_of(device: Device) -> Path:
    path = device.vault.parent / "folder"
    path.mkdir(exist_ok=True)
    return path


def own_repo(device: Device) -> str:
    doc = json.loads(
        next((device.state / "confvault" / "sync").glob("*[!r].json")).read_text()
    )
    return f"{doc['device_id']}.git"


@pytest.fixture
def pair(
    devices: Callable[[str], Device],
) -> tuple[Device, Device, Copier]:
    """Devices A and B, each syncing through its own replica of the folder."""
    copier = Copier(random.Random(1616))  # noqa: S311 - a seeded simulation
    a, b = devices("a"), devices("b")
    a.init_vault()
    a.ok("client", "add", "Ada Lovelace")
    a.ok("note", "add", "Ada", "--title", "intake", input="First session.\n")
    a.ok("sync", "init", "--folder", str(folder_of(a)), "--device", "laptop")
    copier.own(folder_of(a))
    copier.own(folder_of(b))
    copier.finish()
    b.ok("clone", str(folder_of(b) / own_repo(a)), "--device", "desktop")
    b.ok("sync", "init", "--folder", str(folder_of(b)))
    copier.own(folder_of(b))
    return a, b, copier


def titles(device: Device) -> list[str]:
    return sorted(n["title"] for n in device.json("note", "list"))


def test_both_devices_write_while_the_folder_syncs_file_by_file(
    pair: tuple[Device, Device, Copier],
) -> None:
    a, b, copier = pair
    rng = random.Random(16)  # noqa: S311 - a seeded simulation
    written = ["intake"]
    arriving = 0
    actions: set[str] = set()
    for turn in range(70):
        device = rng.choice((a, b))
        roll = rng.random()
        if roll < 0.3:
            title = f"{device.name}-{turn}"
            device.ok("note", "add", "Ada", "--title", title, input=f"{title}\n")
            written.append(title)
        elif roll < 0.55:
            doc = device.json("sync")
            arriving += sum(p["state"] == "arriving" for p in doc["peers"])
            actions.add(doc["action"])
        else:
            copier.step(rng.randint(1, 30))
    for _ in range(3):
        copier.finish()
        a.json("sync")
        copier.finish()
        b.json("sync")
    copier.finish()
    assert a.json("sync")["action"] == "none"
    assert a.files() == b.files()  # byte-identical records
    assert arriving > 0  # the loop did see half-copied repositories
    assert {"merged", "pushed"} <= actions  # and concurrent writes merged
    for device in (a, b):
        assert titles(device) == sorted(written)
        device.ok("verify", "--deep")
        device.ok("audit", "verify")


def test_a_peer_whose_ref_arrived_before_its_objects_is_skipped(
    pair: tuple[Device, Device, Copier],
) -> None:
    a, b, copier = pair
    a.ok("note", "add", "Ada", "--title", "second", input="Second.\n")
    a.ok("sync")
    before = b.files()
    pending = copier.pending()
    refs = [op for op in pending if "/refs/" in str(op[1]) or "HEAD" in op[1].name]
    assert refs
    assert len(refs) < len(pending)
    for op in refs:
        copier.apply(*op)
    result = b.ok("sync")
    assert (
        f"device {own_repo(a)[:-4]}: its files are still arriving; its last "
        "complete state is used"
    ) in result.stdout
    doc = b.json("sync")
    assert doc["peers"] == [{"device": own_repo(a)[:-4], "state": "arriving"}]
    assert doc["action"] == "none"
    assert b.files() == before  # its vault as it was (nothing read since)
    copier.finish()
    assert b.json("sync")["action"] == "pulled"
    assert titles(b) == ["intake", "second"]


def test_a_rolled_back_peer_is_refused(pair: tuple[Device, Device, Copier]) -> None:
    a, b, copier = pair
    old = b.vault.parent / "old.git"
    shutil.copytree(folder_of(b) / own_repo(a), old)
    a.ok("note", "add", "Ada", "--title", "second", input="Second.\n")
    a.ok("sync")
    copier.finish()
    assert b.json("sync")["action"] == "pulled"
    before = state_of(b)
    shutil.rmtree(folder_of(b) / own_repo(a))
    shutil.copytree(old, folder_of(b) / own_repo(a))
    result = b.run("sync")
    assert result.exit_code == 13, result.output
    assert "was rolled back" in result.stderr
    assert state_of(b) == before


@pytest.mark.parametrize(
    "trace",
    ["../.stfolder", "../.dropbox", "manifest.sync-conflict-20261207-101010-ABCDEF7"],
)
def test_a_vault_in_a_sync_folder_refuses_to_write(
    devices: Callable[[str], Device], trace: str
) -> None:
    a = devices("a")
    a.init_vault()
    a.ok("client", "add", "Ada Lovelace")
    (a.vault / trace).resolve().write_text("")
    result = a.run("note", "add", "Ada", "--title", "x", input="x\n")
    assert result.exit_code == 14, result.output
    assert "is in a file-sync folder" in result.stderr
    assert "sync init --folder" in result.stderr
    if trace.startswith(".."):
        assert [c["name"] for c in a.json("client", "list")] == ["Ada Lovelace"]


def test_init_needs_one_of_remote_and_folder(
    devices: Callable[[str], Device], tmp_path: Path
) -> None:
    a = devices("a")
    a.init_vault()
    assert a.run("sync", "init").exit_code == 2
    both = a.run("sync", "init", str(tmp_path), "--folder", str(tmp_path))
    assert both.exit_code == 2
    inside = a.run("sync", "init", "--folder", str(a.vault.parent))
    assert inside.exit_code == 1
    assert "must not be inside the sync folder" in inside.stderr


def test_kill_at_every_durable_step_of_a_folder_sync_then_rerun(
    pair: tuple[Device, Device, Copier], tmp_path: Path
) -> None:
    a, b, copier = pair
    a.ok("note", "add", "Ada", "--title", "from a", input="A wrote.\n")
    a.ok("sync")
    copier.finish()
    b.ok("note", "add", "Ada", "--title", "from b", input="B wrote.\n")
    saved = tmp_path / "saved-b"
    shutil.copytree(b.vault, saved / "vault", symlinks=True)
    shutil.copytree(b.state, saved / "state", symlinks=True)
    replica = folder_of(b)
    shutil.copytree(replica, saved / "folder", symlinks=True)
    with crash_runner.servers(1) as pool:
        total = _total(_kill_run(pool, b, "0"))
        assert total >= 3
        for point in _points(total):
            _restore(b, saved)
            shutil.rmtree(replica)
            shutil.copytree(saved / "folder", replica, symlinks=True)
            killed = _kill_run(pool, b, point)
            _assert_killed(killed, point, total)
            rerun = b.run("sync", "--json")
            assert rerun.exit_code == 0, (point, rerun.output, rerun.stderr)
            action = json.loads(rerun.stdout)["action"]
            assert action in ("merged", "pushed", "waiting", "none"), (point, action)
            assert sorted(p.name for p in (b.vault / "tmp").iterdir()) == []
    for _ in range(3):
        copier.finish()
        a.json("sync")
        copier.finish()
        b.json("sync")
    assert a.files() == b.files()
    for device in (a, b):
        assert titles(device) == ["from a", "from b", "intake"]
        device.ok("verify", "--deep")
        device.ok("audit", "verify")
