"""Issue 13: someone who can write the vault directory, without the keys.

Each test is written as the attacker works: plant something in a real vault
(in a temporary directory), then let the owner run an ordinary command as a
subprocess of the real CLI. Each asserts the exact outcome: a canary tree
beside the vault is byte-for-byte unchanged, the command refused with its
documented exit code and a message naming the problem (or did its work
without obeying what was planted), and the vault verifies afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from confvault import age
from confvault.vault import Vault
from confvault.vault.store.rootfs import FIXED_MTIME_NS
from tests.reliability.practice import INTEGRITY, PASSPHRASE, Practice, start


def _tree(top: Path) -> dict[str, str]:
    """Every entry under ``top`` with a digest of what it is (links not followed)."""
    out = {}
    for path in sorted(top.rglob("*")):
        rel = str(path.relative_to(top))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


@pytest.fixture
def practice(tmp_path: Path) -> Practice:
    p = start(tmp_path)
    p.owner("client", "add", "Ann")
    p.owner("note", "add", "Ann", stdin="Ann: first session.\n")
    p.canary.mkdir()
    (p.canary / "records.age").write_bytes(b"someone else's file\n")
    (p.canary / "sub").mkdir()
    (p.canary / "sub" / "x.age").write_bytes(b"another\n")
    return p


def _objects(vault: Path) -> list[Path]:
    return sorted(p for p in (vault / "objects").rglob("*") if p.is_file())


# --- finding 1: a planted transaction journal ------------------------------------------


def _dotdot_name(target: Path, vault: Path) -> str:
    """A 64-character "name" that walks out of shards/ to ``target``."""
    rel = os.path.relpath(target, vault / "shards")
    pad = 64 - len(rel)
    assert pad >= 0
    return "./" * (pad // 2) + ("/" if pad % 2 else "") + rel


def test_a_planted_journal_is_refused_not_obeyed(practice: Practice) -> None:
    seen = practice.state / "confvault" / "seen"
    before_canary = _tree(practice.canary)
    before_seen = _tree(seen)
    live = [p.name for p in _objects(practice.vault)]
    journal = {
        "added": [live[0], "../" * 21 + "x"],
        "retired": [live[1]],
        "shards": [
            _dotdot_name(practice.canary / "records.age", practice.vault),
            str(practice.canary / "sub" / "x.age"),
        ],
    }
    planted = practice.vault / "tmp" / "txn-1-deadbeef.journal"
    planted.write_text(json.dumps(journal))
    planted.chmod(0o600)

    out = practice.owner("note", "list", "--json")

    assert "Ann" in out or json.loads(out) is not None
    assert _tree(practice.canary) == before_canary
    # The rollback memory is still there (its generation moved on, nothing else).
    assert sorted(_tree(seen)) == sorted(before_seen)
    assert not planted.exists()
    assert "journal-refused" in practice.audit_actions()
    practice.verify_ok()


def test_a_journal_forged_with_a_wrong_mac_is_refused(practice: Practice) -> None:
    live = [p.name for p in _objects(practice.vault)]
    planted = practice.vault / "tmp" / "txn-2-0badf00d.journal"
    planted.write_text(
        json.dumps({"added": live, "retired": [], "shards": [], "mac": "00" * 32})
    )
    planted.chmod(0o600)
    practice.owner("note", "list")
    assert not planted.exists()
    assert "journal-refused" in practice.audit_actions()
    practice.verify_ok()  # every live object is still there


def test_a_journal_that_is_a_symlink_is_unlinked_not_followed(
    practice: Practice,
) -> None:
    before = _tree(practice.canary)
    (practice.vault / "tmp" / "txn-3-00000000.journal").symlink_to(
        practice.canary / "records.age"
    )
    practice.owner("note", "list")
    assert _tree(practice.canary) == before
    assert not (practice.vault / "tmp" / "txn-3-00000000.journal").is_symlink()


# --- finding 2: the audit inbox ---------------------------------------------------------


def test_a_symlinked_inbox_is_refused_and_nothing_is_removed(
    practice: Practice,
) -> None:
    entry = practice.canary / ("ab" * 12 + ".age")
    entry.write_bytes(b"age-encryption.org/v1\n")
    before = _tree(practice.canary)
    (practice.vault / "audit-inbox").symlink_to(practice.canary)

    done = practice.run("note", "list")

    assert done.returncode == INTEGRITY, done.stderr
    assert "audit-inbox" in done.stderr
    assert "symlink" in done.stderr
    assert _tree(practice.canary) == before


def test_an_inbox_entry_from_a_key_without_a_grant_stays_unfolded(
    practice: Practice,
) -> None:
    vault = Vault.open(
        practice.vault,
        passphrase=PASSPHRASE.encode(),
        state_dir=practice.state / "confvault",
    )
    owner = vault.owner.recipient
    forged = {
        "action": "note-read",
        "client": None,
        "note": None,
        "details": {"forged": True},
        "time": "2026-01-01T00:00:00Z",
        "actor": "grantee:someone",
        "from": str(age.X25519Identity.generate().recipient),
        "mac": "00" * 32,
    }
    inbox = practice.vault / "audit-inbox"
    inbox.mkdir(mode=0o700, exist_ok=True)
    name = inbox / ("cd" * 12 + ".age")
    name.write_bytes(age.encrypt(json.dumps(forged).encode(), [owner]))
    name.chmod(0o600)

    practice.owner("note", "list")

    assert name.exists()  # not authenticated: never folded, never removed
    out = practice.owner("audit", "--json")
    assert "forged" not in out
    done = practice.run("verify", "--json")
    codes = [f["code"] for f in json.loads(done.stdout)["findings"]]
    assert codes == ["audit-inbox"]


def test_a_genuine_grantee_entry_is_folded_and_removed(
    practice: Practice, tmp_path: Path
) -> None:
    grantee = age.X25519Identity.generate()
    key = tmp_path / "grantee.key"
    key.write_text(grantee.encode() + "\n")
    key.chmod(0o600)
    practice.owner("grant", str(grantee.recipient), "--client", "Ann", "--label", "sup")
    read = subprocess.run(
        [
            sys.executable,
            "-m",
            "confvault",
            "--vault",
            str(practice.vault),
            "--identity",
            str(key),
            "note",
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / "grantee-state")),
    )
    assert read.returncode == 0, read.stderr
    assert len(list((practice.vault / "audit-inbox").iterdir())) == 1
    practice.owner("note", "list")  # the owner's next write folds it in
    assert list((practice.vault / "audit-inbox").iterdir()) == []
    out = json.loads(practice.owner("audit", "--json"))
    entries = out["entries"] if isinstance(out, dict) else out
    assert [e["actor"] for e in entries if not e["signed"]] == [
        f"grantee:{grantee.recipient}"
    ]


# --- findings 10 and 11: FIFOs, symlinked buckets, open modes, hard links ------------------


def _replace_with_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path, 0o600)


@pytest.mark.parametrize("what", ["manifest", "shard", "object"])
def test_a_fifo_hangs_nothing_and_is_refused(practice: Practice, what: str) -> None:
    if what == "manifest":
        target = practice.vault / "manifest"
    elif what == "shard":
        target = sorted((practice.vault / "shards").iterdir())[0]
    else:  # every object, so that whichever one a note list reads first is a FIFO
        target = None
        for path in _objects(practice.vault):
            _replace_with_fifo(path)
    if target is not None:
        _replace_with_fifo(target)
    listed = practice.run("note", "list")  # the 60 s timeout would fail a hang
    if what != "shard":  # a note list need not read that shard at all
        assert listed.returncode == INTEGRITY, listed.stderr
        assert "not a regular file" in listed.stderr
    done = practice.run("verify")
    assert done.returncode == INTEGRITY, done.stdout + done.stderr


def test_a_symlinked_bucket_is_refused_by_normal_commands(practice: Practice) -> None:
    # Every bucket, so the test never depends on which objects `note list` reads.
    for bucket in sorted({path.parent for path in _objects(practice.vault)}):
        moved = practice.canary / f"bucket-{bucket.name}"
        bucket.rename(moved)
        bucket.symlink_to(moved)
    before = _tree(practice.canary)
    done = practice.run("note", "list")
    assert done.returncode == INTEGRITY, done.stderr
    assert "symlink" in done.stderr
    assert _tree(practice.canary) == before


def test_open_buckets_are_refused(practice: Practice) -> None:
    for bucket in (practice.vault / "objects").iterdir():
        bucket.chmod(0o777)
    done = practice.run("note", "list")
    assert done.returncode == INTEGRITY, done.stderr
    assert "accessible to other users" in done.stderr


def test_a_hardlinked_vault_file_is_refused(practice: Practice) -> None:
    objects = _objects(practice.vault)
    for path in objects:
        os.link(path, practice.canary / path.name)
    done = practice.run("note", "list")
    assert done.returncode == INTEGRITY, done.stderr
    assert "hard links" in done.stderr


# --- finding 5: what mtimes and atimes tell an observer -----------------------------------


def test_every_object_has_the_same_fixed_mtime(practice: Practice) -> None:
    practice.owner("note", "add", "Ann", stdin="second\n")
    practice.owner("rotate", "--all")
    stamps = {p.stat().st_mtime_ns for p in _objects(practice.vault)}
    stamps |= {p.stat().st_mtime_ns for p in (practice.vault / "shards").iterdir()}
    assert stamps == {FIXED_MTIME_NS}


def test_reading_leaves_access_times_alone(practice: Practice) -> None:
    files = [*_objects(practice.vault), *(practice.vault / "shards").iterdir()]
    old = FIXED_MTIME_NS - 86_400 * 10**9  # older than the mtime: relatime would update
    for path in files:
        os.utime(path, ns=(old, FIXED_MTIME_NS))
    note = json.loads(practice.owner("note", "list", "--json"))
    assert note
    assert {p.stat().st_atime_ns for p in files if p.exists()} == {old}


def _stanzas(path: Path) -> int:
    """How many recipient stanzas an age file's header holds (as anyone sees)."""
    header = path.read_bytes().split(b"\n---", 1)[0]
    return sum(line.startswith(b"-> ") for line in header.split(b"\n"))


def _grantee(tmp_path: Path, name: str) -> tuple[age.X25519Identity, Path]:
    identity = age.X25519Identity.generate()
    key = tmp_path / f"{name}.key"
    key.write_text(identity.encode() + "\n")
    key.chmod(0o600)
    return identity, key


def _grantee_run(
    vault: Path, key: Path, state: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """A grantee's command, on a machine whose memory is ``state``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "confvault",
            "--vault",
            str(vault),
            "--identity",
            str(key),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, XDG_STATE_HOME=str(state)),
    )


def _as_grantee(vault: Path, key: Path, state: Path, *args: str) -> None:
    done = _grantee_run(vault, key, state, *args)
    assert done.returncode == 0, done.stderr


def test_key_files_do_not_tell_how_many_grantees_a_client_has(
    practice: Practice, tmp_path: Path
) -> None:
    practice.owner("client", "add", "Bob")
    grantees = [_grantee(tmp_path, f"g{n}")[0] for n in range(3)]
    for n, grantee in enumerate(grantees):
        practice.owner(
            "grant", str(grantee.recipient), "--client", "Bob", "--label", f"g{n}"
        )
    practice.owner("rotate", "--all")  # re-sealed keys, as rotation writes them
    practice.owner("revoke", str(grantees[0].recipient))  # re-wrapped, rotated
    objects = _objects(practice.vault)
    counts = {p: _stanzas(p) for p in objects}
    keys = [p for p, n in counts.items() if n != 1]
    # Ann (no grantee) and Bob (two grantees left): one key file each, alike.
    assert sorted(counts.values()) == [1] * (len(objects) - 2) + [8, 8]
    assert len({p.stat().st_size for p in keys}) == 1
    practice.verify_ok()


def test_grantee_audit_entries_are_padded_alike(
    practice: Practice, tmp_path: Path
) -> None:
    grantee, key = _grantee(tmp_path, "sup")
    practice.owner("grant", str(grantee.recipient), "--client", "Ann", "--label", "s")
    state = tmp_path / "grantee-state"
    _as_grantee(practice.vault, key, state, "note", "list")
    _as_grantee(practice.vault, key, state, "note", "search", "first")
    entries = list((practice.vault / "audit-inbox").iterdir())
    assert len(entries) == 2
    assert {p.stat().st_size for p in entries} == {
        entries[0].stat().st_size
    }  # a list and a search with its details: one size
    assert entries[0].stat().st_size > 1024  # the padding bucket, sealed


# --- finding 3: a vault replaced wholesale, and the rollback memory ----------------------


def _attackers_own_vault(practice: Practice) -> Practice:
    """A vault the attacker built beside the owner's, with a key of their own."""
    other = practice.root / "attacker"
    other.mkdir()
    (other / "pass").write_text(PASSPHRASE + "\n")
    built = Practice(other)
    built.owner(
        "init",
        "--classic",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--no-recovery-key",
    )
    return built


def test_a_vault_replaced_wholesale_at_a_known_path_is_refused(
    practice: Practice,
) -> None:
    built = _attackers_own_vault(practice)
    shutil.rmtree(practice.vault)
    shutil.copytree(built.vault, practice.vault, symlinks=True)

    for command in (["note", "list"], ["verify"]):
        done = practice.run(*command)
        assert done.returncode == INTEGRITY, done.stdout + done.stderr
        assert "not the one this machine knew there" in done.stdout + done.stderr


def test_a_grantee_pins_the_owner_key_and_refuses_a_vault_signed_by_another(
    practice: Practice, tmp_path: Path
) -> None:
    grantee, key = _grantee(tmp_path, "sup")
    granted = json.loads(
        practice.owner(
            "grant", str(grantee.recipient), "--client", "Ann", "--label", "s", "--json"
        )
    )
    owner_key = granted["owner_key"]
    assert owner_key == json.loads(practice.owner("status", "--json"))["owner_key"]
    assert len(owner_key.replace(" ", "")) == 32

    # First use on the grantee's machine: a notice naming the key it trusts.
    state = tmp_path / "grantee-state"
    first = _grantee_run(practice.vault, key, state, "note", "list")
    assert first.returncode == 0, first.stderr
    assert "first use of this vault" in first.stderr
    assert owner_key in first.stderr
    again = _grantee_run(practice.vault, key, state, "note", "list")
    assert again.returncode == 0, again.stderr
    assert "first use" not in again.stderr

    # An attacker builds a vault of their own that grants the same grantee and
    # puts it in place of the grantee's copy.
    built = _attackers_own_vault(practice)
    built.owner("client", "add", "Ann")
    built.owner("note", "add", "Ann", stdin="forged: stop the medication.\n")
    built.owner("grant", str(grantee.recipient), "--client", "Ann", "--label", "s")
    copy = tmp_path / "grantee-copy"
    shutil.copytree(built.vault, copy, symlinks=True)

    # With the key pinned from the grant, even a machine that never saw the
    # vault refuses it; without the pin, the first-use notice names another key.
    fresh = tmp_path / "fresh-state"
    pin = ("--owner-key", owner_key)
    pinned = _grantee_run(copy, key, fresh, *pin, "note", "list")
    assert pinned.returncode == INTEGRITY, pinned.stdout + pinned.stderr
    assert "not signed by the owner key you pinned" in pinned.stderr
    assert "forged" not in pinned.stdout
    unpinned = _grantee_run(copy, key, fresh, "note", "list")
    assert owner_key not in unpinned.stderr
    assert "first use of this vault" in unpinned.stderr

    # The genuine vault passes the pin, also after the owner rotates identity.
    practice.owner("identity", "rotate")
    ok = _grantee_run(practice.vault, key, tmp_path / "third", *pin, "note", "list")
    assert ok.returncode == 0, ok.stderr
    assert "first use" not in ok.stderr


def test_a_damaged_rollback_memory_fails_closed(practice: Practice) -> None:
    (memory,) = (practice.state / "confvault" / "seen").glob("*.json")
    memory.write_text("{not json")
    done = practice.run("note", "list")
    assert done.returncode == INTEGRITY, done.stderr
    assert "memory of the vault" in done.stderr
    assert memory.read_text() == "{not json"


def test_verify_says_when_this_machine_never_saw_the_vault(
    practice: Practice,
) -> None:
    shutil.rmtree(practice.state)
    done = practice.run("verify", "--json")
    assert done.returncode == 0, done.stderr
    codes = [f["code"] for f in json.loads(done.stdout)["findings"]]
    assert codes == ["never-seen"]


def test_an_open_vault_directory_is_refused_with_exit_13(practice: Practice) -> None:
    practice.vault.chmod(0o777)
    done = practice.run("note", "list")
    assert done.returncode == INTEGRITY, done.stderr
    assert "accessible to other users" in done.stderr
