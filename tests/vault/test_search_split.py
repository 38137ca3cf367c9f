"""Search split over two processes finds what one process finds, in the same
order, and fails the same way on a damaged note."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from confvault.vault import Vault
from confvault.vault.ops import reading
from tests.vault.conftest import PASSPHRASE, init_vault

# In a new process: this one may hold the age codec's worker threads, and a
# process with threads never forks.
_RUN = """
import json, sys
from pathlib import Path
from confvault import errors
from confvault.vault import Vault
from confvault.vault.ops import reading
from confvault.vault.store import forked
splits = []
real = forked.run_pair
def spy(here, there):
    splits.append(1)
    return real(here, there)
forked.run_pair = spy
vault = Vault.open(Path(sys.argv[1]), passphrase=sys.argv[2].encode(),
                   state_dir=Path(sys.argv[3]))
try:
    hits = reading.search(vault.session, sys.argv[4], split_from=int(sys.argv[5]))
    out = {"hits": [[h.note.id, h.note.client_name, h.note.title, h.note.date,
                     [list(s) for s in h.snippets]] for h in hits]}
except errors.ConfvaultError as err:
    out = {"error": [type(err).__name__, str(err)]}
audit = [e.details for e in vault.audit() if e.action == "note-search"]
print(json.dumps(out | {"splits": len(splits), "audit": audit[-1:]}, default=str))
"""


def _search(root: Path, state: Path, query: str, split_from: int) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUN,
            str(root),
            PASSPHRASE.decode(),
            str(state),
            query,
            str(split_from),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


@pytest.fixture
def vault_root(tmp_path: Path) -> Path:
    vault, _ = init_vault(tmp_path / "vault", tmp_path / "state")
    for client in ("Ann", "Bo", "Cy"):
        vault.add_client(client)
        vault.add_notes(
            client,
            [
                (
                    f"n{i}{' Sleep' if i % 5 == 0 else ''}",
                    f"2025-01-{1 + (i * 7) % 28:02d}",
                    (f"{client} {i}: " + ("sleep was poor. " * (i % 3))).encode(),
                )
                for i in range(12)
            ],
        )
    return tmp_path / "vault"


def test_a_split_search_gives_the_hits_and_audit_of_one_process(
    vault_root: Path, tmp_path: Path
) -> None:
    split = _search(vault_root, tmp_path / "state", "SLEEP", 1)
    alone = _search(vault_root, tmp_path / "state", "SLEEP", 10**9)
    assert (split["splits"], alone["splits"]) == (1, 0)
    assert split["hits"] == alone["hits"]
    # every client has hits, so both processes found some
    assert {h[1] for h in split["hits"]} == {"Ann", "Bo", "Cy"}
    expected = sum(1 for i in range(12) if i % 5 == 0 or i % 3) * 3
    assert len(split["hits"]) == expected
    assert split["audit"] == alone["audit"]
    assert split["audit"][0]["hits"] == expected


def test_a_damaged_note_in_the_second_part_fails_as_in_one_process(
    vault_root: Path, tmp_path: Path
) -> None:
    opened = Vault.open(vault_root, passphrase=PASSPHRASE, state_dir=tmp_path / "state")
    s = opened.session
    with s.reading() as current:
        root = s.root_record(current)
        comps = reading.client_compartments(s, root, list(root.clients), False)
    last = comps[-1].notes[-1]  # in the child's part when split
    path = vault_root / "objects" / last.object[:2] / last.object
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.chmod(0o600)
    path.write_bytes(bytes(data))

    split = _search(vault_root, tmp_path / "state", "sleep", 1)
    alone = _search(vault_root, tmp_path / "state", "sleep", 10**9)
    assert (split["splits"], alone["splits"]) == (1, 0)
    assert "hits" not in split
    assert split["error"] == alone["error"]
    assert split["error"][0] == "IntegrityError"
