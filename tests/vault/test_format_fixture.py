"""A vault written by an older main (tests/fixtures/vault-format-1) still works.

The fixture is stored byte for byte (see tests/fixtures/make_format_fixture.py):
a change that alters how the code reads the format on disk fails here.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import ConfvaultError
from confvault.vault import Vault

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vault-format-1"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
PASSPHRASE = EXPECTED["passphrase"].encode()


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The fixture vault unpacked, modes and empty directories as written."""
    with tarfile.open(FIXTURE / "vault.tar") as tar:
        tar.extractall(tmp_path, filter="tar")
    return tmp_path / "vault"


def _identity(name: str) -> age.X25519Identity:
    return age.parse_identity((FIXTURE / name).read_text().strip())


def _notes(vault: Vault) -> dict[str, dict[str, str]]:
    found = [*vault.notes(), *vault.notes(psychotherapy=True)]
    return {
        n.id: {"client": n.client, "title": n.title, "status": n.status} for n in found
    }


def test_the_stored_vault_opens_verifies_and_reads(copy: Path, tmp_path: Path) -> None:
    vault = Vault.open(copy, passphrase=PASSPHRASE, state_dir=tmp_path / "state")
    assert {c.id: c.name for c in vault.clients()} == EXPECTED["clients"]
    assert _notes(vault) == EXPECTED["notes"]
    intake = next(i for i, n in EXPECTED["notes"].items() if n["title"] == "Intake")
    assert vault.note(intake).body == b"First session: intake.\n"
    assert vault.verify().ok
    assert vault.verify(deep=True).ok


def test_the_stored_vault_rotates_and_still_reads(copy: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    vault = Vault.open(copy, passphrase=PASSPHRASE, state_dir=state)
    report = vault.rotate(all_clients=True)
    # Ann's records, Bob's records and Bob's psychotherapy compartment.
    assert len(report.rotated) == 3
    again = Vault.open(copy, passphrase=PASSPHRASE, state_dir=state)
    assert _notes(again) == EXPECTED["notes"]
    assert again.verify(deep=True).ok


def test_the_stored_grants_still_hold(copy: Path, tmp_path: Path) -> None:
    grantee = Vault.open(
        copy, reader=_identity("grantee-identity.txt"), state_dir=tmp_path / "g"
    )
    titles = {n.title for n in grantee.notes()}
    assert titles == {
        n["title"]
        for n in EXPECTED["notes"].values()
        if EXPECTED["clients"][n["client"]] == "Ann Example"
    }
    with pytest.raises(ConfvaultError):
        Vault.open(
            copy, reader=_identity("revoked-identity.txt"), state_dir=tmp_path / "r"
        )


def test_the_stored_recovery_key_opens_it(copy: Path, tmp_path: Path) -> None:
    key = (FIXTURE / "recovery-key.txt").read_text().strip()
    vault = Vault.open(copy, recovery_key=key, state_dir=tmp_path / "state")
    assert _notes(vault) == EXPECTED["notes"]
