"""The remote is not trusted: a tampered bare repository is detected by
signatures and the device's own memory, exit 13, nothing changed here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sync.conftest import Device, Tamper, refused_sync

_refused = refused_sync


@pytest.fixture
def ahead(first: Device, second: Device) -> tuple[Device, Device]:
    """A wrote twice more and pushed each; B has synced up to the last."""
    for title in ("two", "three"):
        first.ok("note", "add", "Ada", "--title", title, input=f"{title}\n")
        first.ok("sync")
    assert second.json("sync")["action"] == "pulled"
    return first, second


def test_a_remote_rolled_back_to_an_older_commit(
    ahead: tuple[Device, Device], tamper: Tamper
) -> None:
    _, b = ahead
    older = tamper.log()[1]
    tamper.point(older)  # forced: git update-ref to an older commit
    _refused(b, "does not contain the last commit synced here")


def test_an_older_manifest_replayed_on_top_of_the_history(
    ahead: tuple[Device, Device], tamper: Tamper
) -> None:
    """The history grows, but its state is an old one: the rollback memory
    (generation older than this device saw) catches it, not git."""
    _, b = ahead
    head, older = tamper.log()[0], tamper.log()[2]
    tamper.point(tamper.commit(older, [head], message="replay"))
    _refused(b, "rolled back", "generation")


def _new_object_on_remote(a: Device, b: Device, tamper: Tamper) -> tuple[str, str]:
    """A writes and pushes a note: the remote's head, and the path of an
    object in it that B does not have yet."""
    a.ok("note", "add", "Ada", "--title", "four", input="four\n")
    a.ok("sync")
    head = tamper.head()
    old = set(b.files())
    new = [p for p in tamper.files(head) if p.startswith("objects/") and p not in old]
    return head, new[0]


def test_objects_dropped_from_the_remote(
    ahead: tuple[Device, Device], tamper: Tamper
) -> None:
    head, dropped = _new_object_on_remote(*ahead, tamper)
    tamper.point(tamper.commit(head, [head], remove=(dropped,)))
    _refused(ahead[1], "dropped 1 object(s)")


def test_an_object_replaced_by_other_bytes(
    ahead: tuple[Device, Device], tamper: Tamper
) -> None:
    head, target = _new_object_on_remote(*ahead, tamper)
    tamper.point(tamper.commit(head, [head], put={target: b"age-encryption.org/v1\n"}))
    _refused(ahead[1], "does not match its name")


def test_a_manifest_not_signed_by_the_owner(
    ahead: tuple[Device, Device],
    tamper: Tamper,
    devices,
    remote: Path,
) -> None:
    """Another vault's manifest (its own key, valid signature) put in place."""
    _, b = ahead
    c = devices("c")
    c.init_vault()
    head = tamper.head()
    foreign = (c.vault / "manifest").read_bytes()
    tamper.point(tamper.commit(head, [head], put={"manifest": foreign}))
    _refused(b, "signed by a different key")


def test_a_manifest_altered_after_signing(
    ahead: tuple[Device, Device], tamper: Tamper
) -> None:
    _, b = ahead
    head = tamper.head()
    raw = (b.vault / "manifest").read_bytes()
    altered = raw.replace(b'"generation": ', b'"generation": 9', 1)
    tamper.point(tamper.commit(head, [head], put={"manifest": altered}))
    _refused(b, "signature does not verify")


def test_a_forked_history(ahead: tuple[Device, Device], tamper: Tamper) -> None:
    """The same state, but a history that does not contain B's last sync."""
    _, b = ahead
    head = tamper.head()
    tamper.point(tamper.commit(head, [], message="a fork"))
    _refused(b, "rewritten, rolled back or forked")


def test_a_deleted_branch(ahead: tuple[Device, Device], tamper: Tamper) -> None:
    _, b = ahead
    tamper.g("update-ref", "-d", "refs/heads/confvault")
    _refused(b, "no longer holds the vault's branch")


def test_a_planted_file_outside_the_format(
    ahead: tuple[Device, Device], tamper: Tamper
) -> None:
    _, b = ahead
    head = tamper.head()
    tamper.point(tamper.commit(head, [head], put={"tmp/leftover": b"x"}))
    _refused(b, "outside the vault's format")


def test_clone_refuses_a_vault_not_signed_by_the_pinned_key(
    first: Device, devices, remote: Path
) -> None:
    b = devices("b")
    result = b.run("--owner-key", "0" * 32, "clone", str(remote), "--device", "desktop")
    assert result.exit_code == 13, result.output
    assert "not signed by the owner key you pinned" in result.stderr
    assert not b.vault.exists()
