"""A key event on one device (a rotation, a passphrase change, a shred)
while the other added notes: merged, every note under the current keys,
both devices end with the same records and verify."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from confvault import age
from confvault.errors import AgeError
from confvault.vault import Vault
from tests.server.test_terminal import _on_a_terminal
from tests.sync.conftest import PASSPHRASE, Device, state_of
from tests.sync.test_crash_sync import kill_every_step_of_a_merge

_SECRET_KEY = re.compile(rb"AGE-SECRET-KEY-1[0-9A-Z]+")
NEW_PASSPHRASE = "a different horse battery staple"


def _objects(device: Device) -> list[Path]:
    return sorted(p for p in (device.vault / "objects").rglob("*") if p.is_file())


def _opens(path: Path, keys: list[age.AnyIdentity]) -> bool:
    try:
        age.decrypt(path.read_bytes(), keys)
    except AgeError:
        return False
    return True


def _keys_opened(device: Device, keys: list[Any]) -> list[Any]:
    """Every client key in a file of the device's vault that ``keys`` open."""
    found = []
    for path in _objects(device):
        try:
            plain = age.decrypt(path.read_bytes(), keys)
        except AgeError:
            continue
        if plain.startswith(b"# confvault client key"):
            found += [
                age.parse_identities(m.decode())[0] for m in _SECRET_KEY.findall(plain)
            ]
    return found


def _client_keys(device: Device) -> list[Any]:
    """Every compartment key of the device's vault, as its key files hold them."""
    vault = Vault.open(
        device.vault,
        passphrase=PASSPHRASE.encode(),
        state_dir=device.state / "confvault",
    )
    keys = _keys_opened(device, list(vault.session.identities()))
    assert keys
    return keys


def _stale(old: list[Any], device: Device) -> list[Any]:
    """The keys of ``old`` that the device's vault no longer holds."""
    now = {k.encode() for k in _client_keys(device)}
    return [k for k in old if k.encode() not in now]


def _notes(device: Device) -> dict[str, str]:
    """Title -> body of every note, as the device shows it."""
    out = {}
    for n in json.loads(device.ok("note", "list", "--json").stdout):
        out[str(n["title"])] = device.ok("note", "show", str(n["id"])).stdout
    return out


def _records(device: Device) -> tuple[object, ...]:
    notes = json.loads(device.ok("note", "list", "--json").stdout)
    clients = json.loads(device.ok("client", "list", "--json").stdout)
    return notes, clients


def _check_equal(first: Device, second: Device) -> None:
    assert first.files() == second.files()
    for device in (first, second):
        device.ok("verify", "--deep")
        device.ok("audit", "verify")
    assert _records(first) == _records(second)


def _b_writes(second: Device) -> None:
    second.ok("note", "add", "Ada", "--title", "from b", input="B wrote.\n")
    second.ok("note", "add", "Grace", "--title", "g from b", input="G by B.\n")


@pytest.fixture
def two(first: Device, second: Device) -> tuple[Device, Device]:
    """A and B, both holding Ada (one note) and Grace (one note)."""
    first.ok("client", "add", "Grace Hopper")
    first.ok("note", "add", "Grace", "--title", "g", input="G.\n")
    assert first.json("sync")["action"] == "pushed"
    assert second.json("sync")["action"] == "pulled"
    return first, second


@pytest.mark.parametrize("which", [["--client", "Ada"], ["--all"]])
def test_a_rotation_there_and_notes_here_merge_under_the_new_keys(
    two: tuple[Device, Device], which: list[str]
) -> None:
    first, second = two
    old = _client_keys(first)
    first.ok("rotate", *which)
    assert first.json("sync")["action"] == "pushed"
    _b_writes(second)
    merged = second.json("sync")
    assert merged["action"] == "merged"
    assert merged["key_events"] == ["key-rotate"]
    assert merged["resealed"] == (2 if which == ["--all"] else 1)
    assert merged["left_out"] == {}
    assert first.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    stale = _stale(old, second)
    assert len(stale) == (len(old) if which == ["--all"] else 1)
    assert [p.name for p in _objects(second) if _opens(p, stale)] == []
    for device in (first, second):
        notes = _notes(device)
        assert "B wrote." in notes["from b"]
        assert "G by B." in notes["g from b"]
        assert "First session." in notes["intake"]


def test_notes_there_and_a_rotation_here_merge_under_the_new_keys(
    two: tuple[Device, Device],
) -> None:
    first, second = two
    old = _client_keys(first)
    _b_writes(second)
    assert second.json("sync")["action"] == "pushed"
    first.ok("rotate", "--all")
    merged = first.json("sync")
    assert merged["action"] == "merged"
    assert merged["key_events"] == ["key-rotate"]
    assert merged["resealed"] == 2
    assert second.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    assert _stale(old, first) == old
    for device in (first, second):
        assert [p.name for p in _objects(device) if _opens(p, old)] == []
    notes = _notes(first)
    assert "B wrote." in notes["from b"]
    assert "G by B." in notes["g from b"]


def test_a_passphrase_change_there_and_notes_here(
    two: tuple[Device, Device], tmp_path: Path
) -> None:
    first, second = two
    new_pass = tmp_path / "new-pass.txt"
    new_pass.write_text(NEW_PASSPHRASE + "\n")
    new_pass.chmod(0o600)
    first.ok("passphrase", "--new-passphrase-file", str(new_pass))
    first.pass_file = new_pass
    assert first.json("sync")["action"] == "pushed"
    _b_writes(second)
    merged = second.json("sync")  # B's vault still opens with the old one
    assert merged["action"] == "merged"
    assert merged["key_events"] == ["passphrase-change"]
    assert merged["resealed"] == 0
    assert second.run("note", "list").exit_code == 12  # the old passphrase
    second.pass_file = new_pass
    assert first.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    for device in (first, second):
        notes = _notes(device)
        assert "B wrote." in notes["from b"]
        assert "G by B." in notes["g from b"]


def test_a_shred_there_and_a_note_for_that_client_here_is_left_out(
    two: tuple[Device, Device], git: Any
) -> None:
    first, second = two
    first.ok("client", "shred", "Ada", "--yes")
    assert first.json("sync")["action"] == "pushed"
    _b_writes(second)
    before = state_of(second)
    merged = second.json("sync")
    assert merged["action"] == "merged"
    assert merged["key_events"] == ["client-shred"]
    (left,) = merged["left_out"].items()
    assert left[1] == 1
    assert first.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    for device in (first, second):
        clients = json.loads(device.ok("client", "list", "--json").stdout)
        assert [c["name"] for c in clients] == ["Grace Hopper"]
        notes = _notes(device)
        assert sorted(notes) == ["g", "g from b"]
    # B's own state before the merge, with the note left out, stays in its
    # sync repository (never pushed): recoverable by the owner
    (repo,) = (second.state / "confvault" / "sync").glob("*.git")
    kept = git(
        f"--git-dir={repo}", "cat-file", "blob", "refs/confvault/left-out:manifest"
    )
    assert kept.stdout.encode() == before["vault/manifest"]
    pushed = git(f"--git-dir={repo}", "ls-remote", "origin").stdout
    assert "left-out" not in pushed


def test_a_shred_there_asked_on_a_terminal_and_refused_changes_nothing(
    two: tuple[Device, Device],
) -> None:
    """Without a terminal but with the library's default (leave_out=False):
    the typed refusal the CLI turns into a question; here exit 16."""
    first, second = two
    first.ok("client", "shred", "Ada", "--yes")
    assert first.json("sync")["action"] == "pushed"
    _b_writes(second)
    before = state_of(second)
    from confvault.errors import SyncConflictError
    from confvault.sync import replica
    from confvault.sync.keys_merge import ShreddedNotesError

    vault = Vault.open(
        second.vault,
        passphrase=PASSPHRASE.encode(),
        state_dir=second.state / "confvault",
    )
    with pytest.raises(ShreddedNotesError) as err:
        replica.sync(vault.session, second.state / "confvault")
    assert isinstance(err.value, SyncConflictError)
    assert list(err.value.left_out.values()) == [1]
    assert state_of(second) == before


def test_kill_at_every_durable_step_of_a_rotation_merge_then_rerun(
    two: tuple[Device, Device], tmp_path: Path, remote: Path, git: Any
) -> None:
    first, second = two
    _b_writes(second)
    assert second.json("sync")["action"] == "pushed"
    first.ok("rotate", "--all")
    total = kill_every_step_of_a_merge(first, tmp_path / "saved-a", remote, git)
    assert total >= 5
    assert second.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    for device in (first, second):
        notes = _notes(device)
        assert "B wrote." in notes["from b"]
        assert "G by B." in notes["g from b"]


@pytest.mark.parametrize("as_json", [True, False])
def test_a_revocation_there_and_notes_here_the_revocation_stands(
    first: Device, second: Device, as_json: bool
) -> None:
    grantee = age.X25519Identity.generate()
    first.ok("client", "add", "Grace Hopper")
    first.ok("note", "add", "Grace", "--title", "g", input="G.\n")
    first.ok("grant", str(grantee.recipient), "--client", "Ada", "--label", "sup")
    assert first.json("sync")["action"] == "pushed"
    assert second.json("sync")["action"] == "pulled"
    harvested: list[Any] = [grantee, *_keys_opened(first, [grantee])]
    assert len(harvested) == 2  # the grantee's key and Ada's records key
    first.ok("revoke", "sup")
    assert first.json("sync")["action"] == "pushed"
    _b_writes(second)
    if as_json:
        merged = second.json("sync")
        assert merged["action"] == "merged"
        assert merged["key_events"] == ["key-rotate", "revoke"]
        assert merged["revoked"] == ["sup"]
        assert merged["resealed"] == 1
    else:
        out = second.ok("sync").stdout
        assert "merged the remote's changes with this device's" in out
        assert (
            "the grant sup stays revoked: the notes the other device wrote are "
            "re-sealed under keys its grantee never held"
        ) in out
    assert first.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    for device in (first, second):
        assert [p.name for p in _objects(device) if _opens(p, harvested)] == []
        notes = _notes(device)
        assert "B wrote." in notes["from b"]
        assert "G by B." in notes["g from b"]
    listed = json.loads(first.ok("grants", "--json").stdout)
    assert listed == []


def _sync_on_a_terminal(device: Device, answer: bytes) -> tuple[int, bytes]:
    """``confvault sync`` on a new pseudo-terminal; ``answer`` typed at the
    question."""
    command = [sys.executable, "-m", "confvault", "--vault", str(device.vault)]
    command += ["--passphrase-file", str(device.pass_file), "sync"]
    env = {"PATH": os.environ["PATH"], "HOME": str(device.state), **device.env()}
    return _on_a_terminal(command, env, answer, prompt=b"[y/N]")


def test_a_shred_there_on_a_terminal_asks_and_no_changes_nothing(
    two: tuple[Device, Device],
) -> None:
    first, second = two
    first.ok("client", "shred", "Ada", "--yes")
    assert first.json("sync")["action"] == "pushed"
    _b_writes(second)
    before = state_of(second)
    status, seen = _sync_on_a_terminal(second, b"\n")  # the default: no
    assert status == 16, seen
    assert b"not bring a shredded client back: nothing was changed" in seen
    assert state_of(second) == before
    status, seen = _sync_on_a_terminal(second, b"y\n")
    assert status == 0, seen
    assert b"were left out of the merge" in seen
    assert first.json("sync")["action"] == "pulled"
    _check_equal(first, second)


@pytest.mark.parametrize(
    ("merged_by", "regranted"),
    [("granting", "same"), ("revoking", "same"), ("granting", "another")],
)
def test_a_revocation_there_and_a_new_grant_here_the_revocation_wins(
    first: Device, second: Device, merged_by: str, regranted: str
) -> None:
    """B grants Grace (to the revoked grantee, or another) and writes while A
    revokes: the revocation wins, B's grant is dropped, and Grace's key,
    which B's grant gave that grantee on B, is replaced in the merge."""
    grantee = age.X25519Identity.generate()
    other = age.X25519Identity.generate() if regranted == "another" else grantee
    first.ok("client", "add", "Grace Hopper")
    first.ok("note", "add", "Grace", "--title", "g", input="G.\n")
    first.ok("grant", str(grantee.recipient), "--client", "Ada", "--label", "sup")
    assert first.json("sync")["action"] == "pushed"
    assert second.json("sync")["action"] == "pulled"
    harvested: list[Any] = [grantee, *_keys_opened(first, [grantee])]
    assert len(harvested) == 2  # the grantee's key and Ada's records key
    first.ok("revoke", "sup")
    second.ok("grant", str(other.recipient), "--client", "Grace", "--label", "sup2")
    _b_writes(second)
    # on B, that grantee's key opens Grace's key too
    seen = {k.encode() for k in harvested}
    harvested += [
        k for k in _keys_opened(second, [other]) if k.encode() not in seen
    ] + ([other] if other is not grantee else [])
    assert len(harvested) == (3 if other is grantee else 4)
    if merged_by == "granting":
        assert first.json("sync")["action"] == "pushed"
        merged = second.json("sync")
        out = second.run("sync").stdout  # nothing more: already merged
        assert "nothing to sync" in out
        assert first.json("sync")["action"] == "pulled"
    else:
        assert second.json("sync")["action"] == "pushed"
        before = state_of(first)
        said = first.run("sync")
        assert said.exit_code == 0, said.output
        assert (
            "the grant sup stays revoked: the notes the other device wrote are "
            "re-sealed under keys its grantee never held"
        ) in said.stdout
        assert (
            "the grant sup2, made on the device that did not revoke, was dropped "
            "(the revocation wins) and the client keys it reached there replaced: "
            "grant it again if still wanted"
        ) in said.stdout
        assert state_of(first) != before
        merged = {}
        assert second.json("sync")["action"] == "pulled"
    if merged:
        assert merged["action"] == "merged"
        assert merged["key_events"] == ["key-rotate", "revoke"]
        assert merged["revoked"] == ["sup"]
        assert merged["dropped_grants"] == ["sup2"]
        # Ada's note under Ada's new key; Grace's two under a new key too
        assert merged["resealed"] == 3
    _check_equal(first, second)
    for device in (first, second):
        assert json.loads(device.ok("grants", "--json").stdout) == []
        assert [p.name for p in _objects(device) if _opens(p, harvested)] == []
        notes = _notes(device)
        assert "B wrote." in notes["from b"]
        assert "G by B." in notes["g from b"]
        assert "G." in notes["g"]


def test_kill_at_every_durable_step_of_a_dropped_grant_merge_then_rerun(
    first: Device, second: Device, tmp_path: Path, remote: Path, git: Any
) -> None:
    grantee = age.X25519Identity.generate()
    first.ok("client", "add", "Grace Hopper")
    first.ok("grant", str(grantee.recipient), "--client", "Ada", "--label", "sup")
    assert first.json("sync")["action"] == "pushed"
    assert second.json("sync")["action"] == "pulled"
    first.ok("revoke", "sup")
    assert first.json("sync")["action"] == "pushed"
    second.ok("grant", str(grantee.recipient), "--client", "Grace", "--label", "sup2")
    _b_writes(second)
    harvested = [grantee, *_keys_opened(second, [grantee])]
    total = kill_every_step_of_a_merge(second, tmp_path / "saved-b", remote, git)
    assert total >= 5
    assert first.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    for device in (first, second):
        assert [p.name for p in _objects(device) if _opens(p, harvested)] == []
        notes = _notes(device)
        assert "B wrote." in notes["from b"]
        assert "G by B." in notes["g from b"]


def _signer(device: Device) -> str:
    return str(json.loads((device.vault / "manifest").read_text())["body"]["signer"])


@pytest.mark.parametrize("merged_by", ["writing", "rotating"])
def test_an_identity_rotation_there_and_notes_here_merge_under_the_new_owner(
    two: tuple[Device, Device], merged_by: str
) -> None:
    first, second = two
    old_signer = _signer(first)
    old_keys = _client_keys(first)
    old_owner = Vault.open(
        first.vault, passphrase=PASSPHRASE.encode(), state_dir=first.state / "confvault"
    ).session.require_owner()
    assert [p for p in _objects(first) if _opens(p, [old_owner])] != []
    first.ok("identity", "rotate")
    new_signer = _signer(first)
    assert new_signer != old_signer
    _b_writes(second)
    if merged_by == "writing":
        assert first.json("sync")["action"] == "pushed"
        merged = second.json("sync")  # opens A's new owner key file
        assert merged["action"] == "merged"
        assert merged["key_events"] == ["identity-rotate"]
        assert merged["resealed"] == 0  # the client keys did not change
        assert first.json("sync")["action"] == "pulled"
    else:
        # B's notes reach the remote first, signed by the former owner key:
        # A opens the base's owner key file (the former key) with the
        # passphrase to read them, and merges under the new key
        assert second.json("sync")["action"] == "pushed"
        # without the owner's consent, nothing signed by the former key is
        # merged: it may have been replaced because it leaked
        before = state_of(first)
        refused = first.run("sync")
        assert refused.exit_code == 16, refused.output
        assert "--accept-former-key" in refused.stderr
        assert "they may be forged" in refused.stderr
        assert state_of(first) == before
        out = first.ok("sync", "--accept-former-key").stdout
        assert "merged the remote's changes with this device's" in out
        assert (
            "the owner's key was replaced on one device (identity rotate): the "
            "merged vault is signed by the new key and opens with the same "
            "passphrase"
        ) in out
        assert second.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    for device in (first, second):
        assert _signer(device) == new_signer
        assert [p.name for p in _objects(device) if _opens(p, [old_owner])] == []
        assert {k.encode() for k in _client_keys(device)} == {
            k.encode() for k in old_keys
        }
        notes = _notes(device)
        assert "B wrote." in notes["from b"]
        assert "G by B." in notes["g from b"]
        assert "First session." in notes["intake"]


def test_an_identity_rotation_there_without_the_passphrase_changes_nothing(
    two: tuple[Device, Device],
) -> None:
    """The library without a passphrase: the typed refusal (exit 16) that
    names the way out; the CLI reads its passphrase source instead."""
    first, second = two
    first.ok("identity", "rotate")
    assert first.json("sync")["action"] == "pushed"
    _b_writes(second)
    before = state_of(second)
    from confvault.errors import SyncConflictError
    from confvault.sync import replica
    from confvault.sync.owners import OwnerKeyNeededError

    vault = Vault.open(
        second.vault,
        passphrase=PASSPHRASE.encode(),
        state_dir=second.state / "confvault",
    )
    with pytest.raises(OwnerKeyNeededError) as err:
        replica.sync(vault.session, second.state / "confvault")
    assert isinstance(err.value, SyncConflictError)
    assert "run sync with the passphrase" in str(err.value)
    assert state_of(second) == before


@pytest.mark.parametrize("merged_by", ["writing", "rotating"])
def test_kill_at_every_durable_step_of_an_identity_rotation_merge_then_rerun(
    two: tuple[Device, Device], tmp_path: Path, remote: Path, git: Any, merged_by: str
) -> None:
    first, second = two
    first.ok("identity", "rotate")
    new_signer = _signer(first)
    _b_writes(second)
    if merged_by == "writing":
        assert first.json("sync")["action"] == "pushed"
        merging, other = second, first
    else:
        assert second.json("sync")["action"] == "pushed"
        merging, other = first, second
    consent = ("--accept-former-key",) if merged_by == "rotating" else ()
    total = kill_every_step_of_a_merge(
        merging, tmp_path / "saved", remote, git, *consent
    )
    assert total >= 5
    assert other.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    for device in (first, second):
        assert _signer(device) == new_signer
        notes = _notes(device)
        assert "B wrote." in notes["from b"]
        assert "G by B." in notes["g from b"]
