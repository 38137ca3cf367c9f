"""A re-key on one device (``identity rotate --rekey``: new owner keys and
new client keys; ``passphrase --rekey``: new client keys and a new owner key
file under the new passphrase) while the other added notes: merged, every
note under the current client keys, the old client keys open no file of
either device, and both devices end with the same records and verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from confvault.vault import Vault
from tests.sync.conftest import Device, state_of
from tests.sync.test_merge_keys import (
    NEW_PASSPHRASE,
    _b_writes,
    _check_equal,
    _client_keys,
    _keys_opened,
    _notes,
    _objects,
    _opens,
    _signer,
    two,  # noqa: F401 - the fixture
)


def _stale_here(old: list[Any], device: Device) -> list[Any]:
    """The keys of ``old`` that the device's vault (opened with its
    passphrase) no longer holds."""
    passphrase = device.pass_file.read_text().strip().encode()
    vault = Vault.open(
        device.vault, passphrase=passphrase, state_dir=device.state / "confvault"
    )
    now = {k.encode() for k in _keys_opened(device, list(vault.session.identities()))}
    assert now
    return [k for k in old if k.encode() not in now]


def _merged_under_new_keys(
    first: Device, second: Device, old_keys: list[object], *, pulled: bool = True
) -> None:
    if pulled:
        assert first.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    for device in (first, second):
        stale = _stale_here(old_keys, device)
        assert len(stale) == len(old_keys)  # every client key was replaced
        assert [p.name for p in _objects(device) if _opens(p, stale)] == []
        notes = _notes(device)
        assert "B wrote." in notes["from b"]
        assert "G by B." in notes["g from b"]
        assert "First session." in notes["intake"]
        assert "G." in notes["g"]


def test_an_identity_rotation_with_rekey_there_and_notes_here(
    two: tuple[Device, Device],  # noqa: F811
) -> None:
    first, second = two
    old_keys = _client_keys(first)
    old_signer = _signer(first)
    first.ok("identity", "rotate", "--rekey")
    assert _signer(first) != old_signer
    assert first.json("sync")["action"] == "pushed"
    _b_writes(second)
    merged = second.json("sync")
    assert merged["action"] == "merged"
    assert "identity-rotate" in merged["key_events"]
    assert merged["resealed"] == 2  # B's two notes, under the new client keys
    _merged_under_new_keys(first, second, old_keys)
    assert _signer(second) == _signer(first)


def _rekeyed_passphrase(first: Device, tmp_path: Path) -> Path:
    """A's ``passphrase --rekey``: new owner keys, new client keys, and the
    owner key file under a new passphrase."""
    new_pass = tmp_path / "new-pass.txt"
    new_pass.write_text(NEW_PASSPHRASE + "\n")
    new_pass.chmod(0o600)
    old_signer = _signer(first)
    first.ok("passphrase", "--rekey", "--new-passphrase-file", str(new_pass))
    assert _signer(first) != old_signer
    first.pass_file = new_pass
    return new_pass


def test_a_passphrase_rekey_there_and_notes_here_merge_with_both_passphrases(
    two: tuple[Device, Device],  # noqa: F811
    tmp_path: Path,
) -> None:
    first, second = two
    old_keys = _client_keys(first)
    new_pass = _rekeyed_passphrase(first, tmp_path)
    assert first.json("sync")["action"] == "pushed"
    _b_writes(second)
    before = state_of(second)
    # B's passphrase opens B's vault, not A's new owner key file: refused,
    # naming the way out, nothing changed
    refused = second.run("sync")
    assert refused.exit_code == 16, refused.output
    assert "--other-passphrase-file" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert state_of(second) == before
    # a wrong passphrase for the other device: the same refusal
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the other device's passphrase\n")
    wrong.chmod(0o600)
    refused = second.run("sync", "--other-passphrase-file", str(wrong))
    assert refused.exit_code == 16, refused.output
    assert state_of(second) == before
    merged = second.json("sync", "--other-passphrase-file", str(new_pass))
    assert merged["action"] == "merged"
    # what A's audit trail recorded of its `passphrase --rekey`
    assert merged["key_events"] == ["identity-rotate", "key-rotate"]
    assert merged["resealed"] == 2  # B's two notes, under the new client keys
    # the merged vault carries A's owner key file: the new passphrase
    assert second.run("note", "list").exit_code == 12  # the old passphrase
    second.pass_file = new_pass
    _merged_under_new_keys(first, second, old_keys)
    assert _signer(second) == _signer(first)


def test_a_passphrase_rekey_here_merges_the_other_devices_notes_with_both(
    two: tuple[Device, Device],  # noqa: F811
    tmp_path: Path,
) -> None:
    """The device that re-keyed merges the other's notes (signed by the
    former owner key): with consent, and the former passphrase, which opens
    the former owner key file."""
    first, second = two
    old_keys = _client_keys(first)
    old_pass = first.pass_file
    _rekeyed_passphrase(first, tmp_path)
    _b_writes(second)
    assert second.json("sync")["action"] == "pushed"
    before = state_of(first)
    refused = first.run("sync", "--accept-former-key")
    assert refused.exit_code == 16, refused.output
    assert "--other-passphrase-file" in refused.stderr
    assert state_of(first) == before
    merged = first.json(
        "sync", "--accept-former-key", "--other-passphrase-file", str(old_pass)
    )
    assert merged["action"] == "merged"
    assert merged["key_events"] == ["identity-rotate", "key-rotate"]
    assert merged["resealed"] == 2
    assert second.json("sync")["action"] == "pulled"  # opened with B's old one
    second.pass_file = first.pass_file  # from now on, A's passphrase
    assert first.json("sync")["action"] == "none"
    _merged_under_new_keys(first, second, old_keys, pulled=False)
