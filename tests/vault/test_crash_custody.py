"""`custodian split` is one commit, made after its share files are durable:
SIGKILL at every durable step, then either the old split is in force (its
shares open the vault, the new files open nothing) or the new one is (every
new file is there and opens it, the old shares open nothing); the vault
verifies, every note reads back, and a new split works (the crash harness of
test_crash_rotation.py: tests/vault/crash_runner.py)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import SharesError
from confvault.vault import Vault
from confvault.vault.model.custody import SealedShare
from tests.vault import crash_runner
from tests.vault.test_crash_rotation import PASSPHRASE
from tests.vault.test_crash_rotation import make_base as rotation_base

NAMES = ("jane", "omar", "lee")
_SERVERS: list[crash_runner.Servers] = []


@pytest.fixture(scope="module", autouse=True)
def _servers() -> Iterator[None]:
    with crash_runner.servers(3) as pool:
        _SERVERS.append(pool)
        yield
        _SERVERS.clear()


def _make_custody_base(root: Path) -> tuple[dict[str, bytes], list[str]]:
    """The rotation tests' vault, three custodians and a first 2-of-3 split:
    the notes' bodies and the first split's words."""
    bodies, _ = rotation_base(root)
    vault = _owner(root)
    for name in NAMES:
        key = age.X25519Identity.generate()
        (root / f"{name}.key").write_text(key.encode() + "\n")
        vault.add_custodian(name, str(key.recipient))
    files: list[SealedShare] = []
    vault.split_custody(2, files.extend)
    return bodies, [_words(root, f.custodian, f.sealed) for f in files]


def _owner(root: Path) -> Vault:
    state = root / "xdg" / "confvault"
    return Vault.open(root / "vault", passphrase=PASSPHRASE, state_dir=state)


def _words(root: Path, name: str, sealed: bytes) -> str:
    key = age.parse_identity((root / f"{name}.key").read_text())
    return age.decrypt(sealed, [key]).decode()


def _opens(root: Path, words: list[str]) -> bool:
    try:
        Vault.open_by_custodians(
            root / "vault", words, state_dir=root / "xdg" / "confvault"
        )
    except SharesError:
        return False
    return True


def _split(root: Path, kill_at: str, out: Path) -> tuple[int, str]:
    out.mkdir(exist_ok=True)
    env = dict(os.environ, XDG_STATE_HOME=str(root / "xdg"))
    argv = ["--vault", str(root / "vault"), "--passphrase-file", str(root / "pass")]
    done = _SERVERS[0].run(
        kill_at, [*argv, "custodian", "split", "-k", "2", "--out", str(out)], env=env
    )
    return done.returncode, done.stderr.decode("utf-8", "replace")


def _check(root: Path, bodies: dict[str, bytes], old: list[str]) -> None:
    out = root / "shares"
    files = {n: out / f"share-{n}.age" for n in NAMES}
    new = [_words(root, n, p.read_bytes()) for n, p in files.items() if p.exists()]
    old_open = _opens(root, old[:2])
    new_open = len(new) == len(NAMES) and _opens(root, new[:2])
    assert old_open != new_open, (old_open, new_open, len(new))
    vault = _owner(root)
    report = vault.verify(deep=True)
    assert report.findings == (), report.findings
    assert {n: vault.note(n).body for n in bodies} == bodies
    again = root / "again"
    code, stderr = _split(root, "0", again)
    assert code == 0, stderr
    latest = [_words(root, n, (again / f"share-{n}.age").read_bytes()) for n in NAMES]
    assert _opens(root, latest[1:])
    assert not _opens(root, old[:2])


@pytest.mark.slow
def test_kill_split_at_every_durable_step(
    ram_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ram_path / "base"
    base.mkdir()
    bodies, old = _make_custody_base(base)
    probe = ram_path / "probe"
    shutil.copytree(base, probe)
    code, stderr = _split(probe, "0", probe / "shares")
    assert code == 0, stderr
    total = int(stderr.strip().splitlines()[-1].split(": ")[1])
    points = [f"{n}" for n in range(1, total + 1)] + [f"{total}+"]

    def one(point: str) -> str:
        root = ram_path / f"p{point.replace('+', 'a')}"
        shutil.copytree(base, root)
        code, stderr = _split(root, point, root / "shares")
        assert code in (-9, 0), stderr
        _check(root, bodies, old)
        shutil.rmtree(root)
        return point

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(one, points))
    assert len(done) == len(points)
    assert total > 5
    with capsys.disabled():
        sys.stdout.write(f"\ncrash points tried for custodian split: {len(points)}\n")
