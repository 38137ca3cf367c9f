"""The root index split into client buckets: a write re-seals one bucket, a
fresh process sees every change, a version 1 root is still read and
converted, and a failed write leaves no trace in the open vault."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from confvault import age
from confvault.errors import UnsafeInputError
from confvault.vault import Vault
from confvault.vault.store import root_index, sealing

from .conftest import PASSPHRASE


def _reopen(vault: Vault, state_dir: Path) -> Vault:
    return Vault.open(vault.root, passphrase=PASSPHRASE, state_dir=state_dir)


def _clients_in_two_buckets(vault: Vault) -> list[str]:
    names = []
    while (
        len({root_index.label_of(c.id) for c in vault.clients()}) < 2 or len(names) < 3
    ):
        names.append(f"Client {len(names)}")
        vault.add_client(names[-1])
    return names


def _buckets(vault: Vault) -> dict[str, str]:
    with vault.session.reading() as current:
        vault.session.root_record(current)
    return {label: d for label, (d, _) in vault.session.root_buckets.sealed.items()}


def test_a_note_add_reseals_only_its_clients_bucket(
    vault: Vault, state_dir: Path
) -> None:
    names = _clients_in_two_buckets(vault)
    ids = {c.name: c.id for c in vault.clients()}
    before = _buckets(vault)
    vault.add_note(names[0], b"session")
    after = _buckets(vault)
    label = root_index.label_of(ids[names[0]])
    assert after[label] != before[label]
    assert {k: v for k, v in after.items() if k != label} == {
        k: v for k, v in before.items() if k != label
    }
    fresh = _reopen(vault, state_dir)
    assert {c.name: c.notes for c in fresh.clients()} == {
        n: (1 if n == names[0] else 0) for n in names
    }
    assert fresh.verify(deep=True).ok


def test_every_kind_of_write_is_seen_by_a_fresh_process(
    vault: Vault, state_dir: Path, tmp_path: Path
) -> None:
    names = _clients_in_two_buckets(vault)
    vault.add_note(names[0], b"a")
    vault.add_notes(names[1], [("t", "2026-01-02", b"b"), ("u", "2026-01-03", b"c")])
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF")
    vault.add_attachment(names[2], scan)
    vault.rename_client(names[2], "Renamed")
    vault.rotate(all_clients=True)
    expected = {c.id: c for c in vault.clients()}
    fresh = _reopen(vault, state_dir)
    assert {c.id: c for c in fresh.clients()} == expected
    assert sorted((c.name, c.notes) for c in expected.values())[-1] == ("Renamed", 1)
    assert fresh.verify(deep=True).ok


def test_a_version_1_root_is_read_and_converted_by_the_next_write(
    vault: Vault, state_dir: Path
) -> None:
    names = _clients_in_two_buckets(vault)
    notes = {n: vault.add_note(n, f"note of {n}".encode()).id for n in names}
    # Rewrite the root as version 1 (every client inline), as earlier releases did.
    with vault.session.writing() as txn:
        root = vault.session.root_record(txn.current).to_doc()
        v1 = {**root, "format": root_index.ROOT_V1}
        txn.retire(txn.current.pointer("root"))
        for digest, _ in vault.session.root_buckets.sealed.values():
            txn.retire(digest)
        txn.point("root", txn.put(sealing.seal_document(v1, [vault.owner.recipient])))
    vault.session.root_cache = None
    old = _reopen(vault, state_dir)
    assert sorted(c.name for c in old.clients()) == sorted(names)
    assert old.session.root_buckets.sealed == {}
    old.add_note(names[0], b"after the upgrade")  # a write naming one client
    fresh = _reopen(vault, state_dir)
    assert sorted(c.name for c in fresh.clients()) == sorted(names)
    assert len(fresh.session.root_buckets.sealed) == len(
        {root_index.label_of(c.id) for c in fresh.clients()}
    )
    assert {n: fresh.note(i).body for n, i in notes.items()} == {
        n: f"note of {n}".encode() for n in names
    }
    assert fresh.verify(deep=True).ok


def test_a_failed_write_leaves_no_phantom_in_the_open_vault(
    vault: Vault, state_dir: Path
) -> None:
    vault.add_client("Ann")
    items = [("first", "2026-01-02", b"ok"), ("second", "not a date", b"bad")]
    # The first psychotherapy note creates the compartment in the cached
    # root; the second fails, and the transaction is dropped.
    with pytest.raises(UnsafeInputError, match="is not a date"):
        vault.add_notes("Ann", items, kind="psychotherapy")
    assert vault.notes(psychotherapy=True) == []
    assert vault.clients()[0].psychotherapy_notes == 0
    assert vault.verify(deep=True).ok
    assert _reopen(vault, state_dir).notes(psychotherapy=True) == []


def test_a_bucket_holding_a_client_of_another_digit_is_refused(
    vault: Vault, state_dir: Path
) -> None:
    names = _clients_in_two_buckets(vault)
    first = next(c for c in vault.clients() if c.name == names[0])
    with vault.session.writing() as txn:
        root = vault.session.root_record(txn.current).to_doc()
        buckets = vault.session.root_buckets.sealed
        other = next(
            label for label in buckets if label != root_index.label_of(first.id)
        )
        moved: dict[str, Any] = dict(buckets[other][1])
        moved[first.id] = root["clients"][first.id]
        doc = {
            "format": root_index.BUCKET_FORMAT,
            "vault": root["vault"],
            "bucket": other,
            "clients": moved,
        }
        top = {k: v for k, v in root.items() if k != "clients"}
        top["format"] = root_index.ROOT_V2
        top["buckets"] = {
            k: {"object": d, "file_key": vault.session.root_buckets.keys[k]}
            for k, (d, _) in buckets.items()
        }
        sealed, file_key = age.encrypt_keyed(
            sealing.pad_text(sealing.encode_document(doc)), [vault.owner.recipient]
        )
        top["buckets"][other] = {
            "object": txn.put(sealed),
            "file_key": base64.b64encode(file_key).decode(),
        }
        txn.retire(txn.current.pointer("root"))
        txn.point("root", txn.put(sealing.seal_document(top, [vault.owner.recipient])))
    with pytest.raises(
        Exception, match=f"client bucket {other} was swapped or altered"
    ):
        _reopen(vault, state_dir).clients()
