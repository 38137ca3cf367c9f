"""A rotation commits once per batch of clients, and a damaged client is set aside."""

from __future__ import annotations

from pathlib import Path

from confvault.vault import Vault
from confvault.vault.ops import compartments


def _generation(vault: Vault) -> int:
    with vault.session.reading() as current:
        return int(current.body.generation)


def _note_objects(vault: Vault, client: str) -> list[Path]:
    with vault.session.reading() as current:
        root = vault.session.root_record(current)
        comp = compartments.open_compartment(
            vault.session,
            root,
            compartments.resolve_client(vault.session, root, client),
            "records",
        )
        return [vault.store.path(e.object) for e in comp.notes]


def _index_object(vault: Vault, client: str) -> Path:
    with vault.session.reading() as current:
        root = vault.session.root_record(current)
        cid = compartments.resolve_client(vault.session, root, client)
        return vault.store.path(root.clients[cid].compartments["records"].index)


def _clients(vault: Vault, count: int) -> dict[str, list[str]]:
    notes = {}
    for c in range(count):
        vault.add_client(f"Client {c}")
        notes[f"Client {c}"] = [
            vault.add_note(f"Client {c}", f"note {c}.{n}".encode()).id for n in range(3)
        ]
    return notes


def test_rotating_many_small_clients_is_one_commit(vault: Vault) -> None:
    notes = _clients(vault, 6)
    before = _generation(vault)
    report = vault.rotate(all_clients=True)
    assert sorted(r.client_name for r in report.rotated) == sorted(notes)
    assert report.failed == ()
    assert _generation(vault) == before + 1
    for client, ids in notes.items():
        assert [vault.note(i).body for i in ids] == [
            f"note {client[-1]}.{n}".encode() for n in range(3)
        ]
    assert vault.verify(deep=True).ok


def test_a_damaged_client_is_reported_and_the_rest_of_its_batch_rotates(
    vault: Vault,
) -> None:
    notes = _clients(vault, 3)
    # A damaged index sets its client aside; a damaged note no longer does
    # (it is recorded as damaged: tests/reliability/test_attack_revoke.py).
    untouched = {p: p.read_bytes() for p in _note_objects(vault, "Client 1")}
    damaged = _index_object(vault, "Client 1")
    index = damaged.read_bytes()
    damaged.write_bytes(b"not the sealed index any more")
    report = vault.rotate(all_clients=True)
    assert sorted(r.client_name for r in report.rotated) == ["Client 0", "Client 2"]
    assert len(report.failed) == 1
    assert "is damaged or was replaced" in report.failed[0]
    assert report.outcome == "partly-done"
    assert damaged.read_bytes() == b"not the sealed index any more"
    damaged.write_bytes(index)  # to list the client's note objects again
    # the damaged client was left exactly as it was
    assert {p: p.read_bytes() for p in _note_objects(vault, "Client 1")} == untouched
    for client in ("Client 0", "Client 2"):
        assert [vault.note(i).body for i in notes[client]] == [
            f"note {client[-1]}.{n}".encode() for n in range(3)
        ]


def test_a_large_attachment_is_resealed_as_a_stream(
    vault: Vault, tmp_path: Path
) -> None:
    vault.add_client("Ann")
    scan = tmp_path / "scan.bin"
    scan.write_bytes(bytes(range(256)) * 6000)  # 1.5 MB: above the in-memory limit
    info = vault.add_attachment("Ann", scan)
    before = _note_objects(vault, "Ann")
    report = vault.rotate(all_clients=True)
    assert [r.client_name for r in report.rotated] == ["Ann"]
    after = _note_objects(vault, "Ann")
    assert after != before
    assert not any(p.exists() for p in before)
    out = tmp_path / "out.bin"
    with out.open("wb") as f:
        vault.save_attachment(info.id, f)
    assert out.read_bytes() == scan.read_bytes()
    assert vault.verify(deep=True).ok
