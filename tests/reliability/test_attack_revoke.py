"""Issue 13 review, F1: a revoke that one unreadable note could block.

Written as the attacker works. A grantee who can also write the vault
directory (or colludes with someone who can) harvests the client key while
the grant lasts, then makes one old note of that client unreadable: deletes
its object, hard-links it (normal commands refuse a file with two links),
or overwrites it. Before the fix, the owner's `revoke` could not rotate that
compartment (exit 4), `note add` then sealed the owner's next notes to the
old key with exit 0, the nightly `rotate` kept failing and `status` said
nothing: the revoked key read every note written after the revocation.

Now a rotation always makes the new key and re-seals every note it can
read; an unreadable one is recorded as damaged (entry kept, object gone);
no write seals to a key still pending rotation (refused, exit 13); `status`
and `verify --deep` name pending rotations; the full re-key goes the same
way. Owner and grantee commands run as subprocesses of the real CLI on a
real vault in a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import AgeError
from confvault.vault import Vault
from tests.reliability.practice import INTEGRITY, PASSPHRASE, Practice, start

NOTHING_TO_DO = 3
WRONG_KEY = 12
_SECRET_KEY = re.compile(rb"AGE-SECRET-KEY-1[0-9A-Z]+")


def _objects(vault: Path) -> list[Path]:
    return sorted(p for p in (vault / "objects").rglob("*") if p.is_file())


def _opens(path: Path, keys: list[age.X25519Identity]) -> bytes | None:
    try:
        return age.decrypt(path.read_bytes(), keys)
    except AgeError:
        return None


@pytest.fixture
def practice(tmp_path: Path) -> tuple[Practice, Path, list[age.X25519Identity]]:
    """Alice (two notes and a psychotherapy note) and Bob; a grant `sup` of
    Alice's records; the grantee's key, and every key the grantee harvested
    from the vault while the grant lasted."""
    p = start(tmp_path)
    p.owner("client", "add", "Alice")
    p.owner("client", "add", "Bob")
    p.add("Alice", "Alice said the secret word PINEAPPLE\n")
    p.add("Alice", "Alice second session, KIWI\n")
    p.add("Alice", "Alice process notes, GUAVA\n", "--kind", "psychotherapy")
    p.add("Bob", "Bob note BANANA\n")
    grantee = age.X25519Identity.generate()
    key = tmp_path / "grantee.key"
    key.write_text(grantee.encode() + "\n")
    key.chmod(0o600)
    p.owner("grant", str(grantee.recipient), "--client", "Alice", "--label", "sup")
    harvested = [grantee]
    for path in _objects(p.vault):
        plain = _opens(path, [grantee]) or b""
        harvested += [
            age.parse_identities(m.decode())[0] for m in _SECRET_KEY.findall(plain)
        ]
    assert len(harvested) == 2  # the grantee's key and Alice's records key
    return p, key, harvested


def _object_holding(vault: Path, keys: list[age.X25519Identity], word: bytes) -> Path:
    found = [p for p in _objects(vault) if word in (_opens(p, keys) or b"")]
    assert len(found) == 1
    return found[0]


def _make_unreadable(how: str, target: Path, elsewhere: Path) -> None:
    if how == "delete":
        target.unlink()
    elif how == "hardlink":
        os.link(target, elsewhere / "extra-link")
    else:  # overwrite: the same size, other bytes
        target.write_bytes(b"\0" * target.stat().st_size)


def _assert_revoked_key_opens_nothing(
    vault: Path, harvested: list[age.X25519Identity]
) -> None:
    opened = [p.name[:12] for p in _objects(vault) if _opens(p, harvested)]
    assert opened == []


@pytest.mark.parametrize("how", ["delete", "hardlink", "overwrite"])
def test_an_unreadable_note_does_not_block_the_revoke(
    practice: tuple[Practice, Path, list[age.X25519Identity]], how: str
) -> None:
    p, grantee_key, harvested = practice
    victim = _object_holding(p.vault, harvested, b"PINEAPPLE")
    victim_id = next(
        n["id"]
        for n in json.loads(p.owner("note", "list", "--json"))
        if n["size"] == len("Alice said the secret word PINEAPPLE\n")
    )
    _make_unreadable(how, victim, p.root)

    revoked = p.run("revoke", "sup")
    assert revoked.returncode == 0, revoked.stderr
    assert "rotated 1 client keys, re-sealed 1 notes" in revoked.stdout
    assert (
        f"Alice (records): 1 unreadable note(s) recorded as damaged, their text "
        f"no longer in the vault: {victim_id}" in revoked.stderr
    )
    after = p.add("Alice", "Alice after the revocation: MANGO secret\n")

    # Nothing in the vault opens with what the revoked grantee holds.
    _assert_revoked_key_opens_nothing(p.vault, harvested)
    assert p.run("note", "list", identity=grantee_key).returncode == WRONG_KEY
    # The new note reads back; the damaged one is refused by name, exit 13.
    assert p.owner("note", "show", after).endswith(
        "\nAlice after the revocation: MANGO secret\n\n"
    )
    shown = p.run("note", "show", victim_id)
    assert shown.returncode == INTEGRITY
    assert f"note {victim_id} is damaged" in shown.stderr
    # Nothing is left pending: the nightly job has nothing to do, status is calm.
    assert p.run("rotate").returncode == NOTHING_TO_DO
    assert json.loads(p.owner("status", "--json"))["pending_rotations"] == []
    # The vault verifies; the deep check names the damaged note as a warning.
    assert p.run("verify").returncode == 0
    deep = json.loads(p.owner("verify", "--deep", "--json"))
    assert [(f["severity"], f["code"], f["subject"]) for f in deep["findings"]] == [
        ("warning", "note-damaged", victim_id)
    ]
    trail = json.loads(p.owner("audit", "--json"))
    rotations = [e for e in trail if e["action"] == "key-rotate"]
    assert rotations[-1]["details"]["damaged"] == [victim_id]


def test_a_write_to_a_key_pending_rotation_is_refused(
    practice: tuple[Practice, Path, list[age.X25519Identity]],
) -> None:
    """The state a revoke interrupted after its first commit leaves behind:
    the grant gone, Alice's keys recorded as still to rotate, not rotated."""
    p, _, harvested = practice
    vault = Vault.open(
        p.vault, passphrase=PASSPHRASE.encode(), state_dir=p.root / "xdg" / "confvault"
    )
    s = vault.session
    with s.writing() as txn:
        root = s.root_record(txn.current)
        alice = next(c for c, r in root.clients.items() if r.name == "Alice")
        root = root.with_grants(())
        s.write_root(txn, root.with_pending(((alice, "records"),)))
    before = {path.name for path in _objects(p.vault)}

    refused = p.run("note", "add", "Alice", stdin="written after: MANGO\n")
    assert refused.returncode == INTEGRITY
    assert (
        f"the records key of client {alice[:8]} is still to be rotated"
        in refused.stderr
    )
    assert "run `confvault rotate`" in refused.stderr
    assert {path.name for path in _objects(p.vault)} == before
    assert json.loads(p.owner("status", "--json"))["pending_rotations"] == [
        "Alice (records)"
    ]
    assert "keys still to be rotated" in p.run("status").stderr
    deep = json.loads(p.owner("verify", "--deep", "--json"))
    assert [(f["code"], f["subject"]) for f in deep["findings"]] == [
        ("rotation-pending", f"{alice}/records")
    ]
    # Bob's records are not pending: writing there goes on.
    p.add("Bob", "Bob is unaffected\n")

    finished = p.run("rotate")
    assert finished.returncode == 0, finished.stderr
    p.add("Alice", "written after the rotation: MANGO\n")
    _assert_revoked_key_opens_nothing(p.vault, harvested)


def test_the_full_rekey_records_an_unreadable_note_as_damaged(
    practice: tuple[Practice, Path, list[age.X25519Identity]], tmp_path: Path
) -> None:
    p, _, harvested = practice
    victim = _object_holding(p.vault, harvested, b"PINEAPPLE")
    victim.unlink()
    new = tmp_path / "new-pass"
    new.write_text("a completely different passphrase here\n")
    new.chmod(0o600)
    done = p.run("passphrase", "--rekey", "--new-passphrase-file", str(new))
    assert done.returncode == 0, done.stderr
    assert "1 unreadable note(s) recorded as damaged" in done.stderr
    assert "new owner keys; 3 client keys rotated, 3 notes re-sealed" in done.stdout
    # The grant stands; the client key harvested before opens nothing now.
    _assert_revoked_key_opens_nothing(p.vault, harvested[1:])


def test_keyless_verify_reports_what_normal_commands_refuse(
    practice: tuple[Practice, Path, list[age.X25519Identity]],
) -> None:
    """t3b's first step: a hard-linked object, which normal commands refuse,
    was called ok by keyless `verify`; so was a file of another user."""
    p, _, harvested = practice
    victim = _object_holding(p.vault, harvested, b"PINEAPPLE")
    os.link(victim, p.root / "extra-link")
    done = p.run("verify", "--json")
    assert done.returncode == INTEGRITY
    findings = json.loads(done.stdout)["findings"]
    assert [(f["code"], f["subject"]) for f in findings] == [
        ("hard-link", f"objects/{victim.name[:2]}/{victim.name}")
    ]
    victim_id = next(
        n["id"]
        for n in json.loads(p.owner("note", "list", "--json"))
        if n["size"] == len("Alice said the secret word PINEAPPLE\n")
    )
    shown = p.run("note", "show", victim_id)  # as normal commands refuse it
    assert shown.returncode == INTEGRITY
    assert "hard links" in shown.stderr
    (p.root / "extra-link").unlink()
    assert p.run("verify").returncode == 0
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs this as root, to give a file to another user")
        return
    os.chown(victim, 65534, -1)
    done = p.run("verify", "--json")
    assert done.returncode == INTEGRITY
    findings = json.loads(done.stdout)["findings"]
    assert [(f["code"], f["subject"]) for f in findings] == [
        ("foreign-owner", f"objects/{victim.name[:2]}/{victim.name}")
    ]
    shown = p.run("note", "show", victim_id)
    assert shown.returncode == INTEGRITY
    assert "belongs to another user" in shown.stderr
