"""Keyless verify split over two processes finds what one process finds, in
the same order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from confvault.vault.store import manifest
from tests.vault.conftest import init_vault

# In a new process: this one may hold the age codec's worker threads, and a
# process with threads never forks.
_RUN = """
import json, sys
from pathlib import Path
from confvault.vault.store import forked
from confvault.vault.check import keyless
keyless._SPLIT_OBJECTS = int(sys.argv[2])
splits = []
real = forked.run_pair
def spy(here, there):
    splits.append(1)
    return real(here, there)
forked.run_pair = spy
report, _ = keyless.verify_keyless(Path(sys.argv[1]))
print(json.dumps({"splits": len(splits), "ok": report.ok, "objects": report.objects_checked,
                  "findings": [[f.severity, f.code, f.subject, f.message] for f in report.findings]}))
"""


def _verify(root: Path, split_from: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(root), str(split_from)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


@pytest.fixture
def vault_root(tmp_path: Path) -> Path:
    vault, _ = init_vault(tmp_path / "vault", tmp_path / "state")
    for client in ("Ann", "Bo"):
        vault.add_client(client)
        vault.add_notes(
            client,
            [(f"n{i}", "2025-01-01", f"{client} {i}".encode()) for i in range(15)],
        )
    return tmp_path / "vault"


def test_an_intact_vault_splits_and_verifies(vault_root: Path) -> None:
    split = _verify(vault_root, 1)
    alone = _verify(vault_root, 10**9)
    assert (split["splits"], alone["splits"]) == (1, 0)
    assert split["ok"]
    assert split["findings"] == alone["findings"] == []
    assert (
        split["objects"] == alone["objects"] == manifest.load(vault_root).body.objects
    )


def test_damage_in_every_part_is_found_in_the_order_one_process_finds_it(
    vault_root: Path, tmp_path: Path
) -> None:
    digests = sorted(manifest.load(vault_root).all_objects())
    cut = int(len(digests) * 3 / 4)

    def path(digest: str) -> Path:
        return vault_root / "objects" / digest[:2] / digest

    flipped_here, missing_there, flipped_there = digests[1], digests[cut], digests[-1]
    for digest in (flipped_here, flipped_there):
        data = bytearray(path(digest).read_bytes())
        data[-1] ^= 1
        path(digest).write_bytes(bytes(data))
    path(missing_there).unlink()
    os.chmod(path(digests[2]), 0o644)  # the tree walk (in the child) sees this
    (vault_root / "objects" / "zz").symlink_to(tmp_path)
    (vault_root / "stray").write_bytes(b"x")
    os.chmod(vault_root / "stray", 0o600)

    split = _verify(vault_root, 1)
    alone = _verify(vault_root, 10**9)
    assert (split["splits"], alone["splits"]) == (1, 0)
    assert split["findings"] == alone["findings"]
    codes = [(f[1], f[2]) for f in split["findings"]]
    assert (
        codes
        == [
            ("symlink", "objects/zz"),  # the walk: objects/ itself, then its buckets
            ("permissions", f"objects/{digests[2][:2]}/{digests[2]}"),
            ("object-damaged", flipped_here),
            ("object-missing", missing_there),
            ("object-damaged", flipped_there),
            ("unexpected-file", "stray"),
            ("unexpected-file", "objects/zz"),
        ]
    )
    assert not split["ok"]
