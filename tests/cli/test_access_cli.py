"""grant / grants / revoke / rotate / passphrase / identity rotate via the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from confvault import age
from tests.cli.conftest import PASSPHRASE


def _key_file(
    tmp_path: Path, name: str = "colleague.key"
) -> tuple[Path, age.X25519Identity]:
    identity = age.X25519Identity.generate()
    path = tmp_path / name
    path.write_text(
        f"# created by a test\n# public key: {identity.recipient}\n{identity.encode()}\n"
    )
    path.chmod(0o600)
    return path, identity


def _setup(ready) -> None:
    for name in ("Ann", "Bob"):
        ready("client", "add", name)
        ready("note", "add", name, input=f"{name} note")


def test_grant_read_as_grantee_then_revoke(ready, cli, tmp_path: Path) -> None:
    _setup(ready)
    key_file, identity = _key_file(tmp_path)
    granted = ready(
        "grant",
        str(key_file),
        "--client",
        "Ann",
        "--label",
        "supervisor",
        "--until",
        "2030-01-31",
        "--json",
    )
    assert granted.exit_code == 0
    doc = json.loads(granted.stdout)
    assert (doc["label"], doc["clients"], doc["until"]) == (
        "supervisor",
        ["Ann"],
        "2030-01-31T23:59:59Z",
    )
    assert doc["recipient"] == str(identity.recipient)
    listing = json.loads(ready("grants", "--json").stdout)
    assert [g["label"] for g in listing] == ["supervisor"]

    as_grantee = cli(
        "--vault",
        str(ready.vault),
        "--identity",
        str(key_file),
        "note",
        "list",
        "--json",
    )
    assert as_grantee.exit_code == 0
    assert [n["client_name"] for n in json.loads(as_grantee.stdout)] == ["Ann"]
    refused = cli(
        "--vault",
        str(ready.vault),
        "--identity",
        str(key_file),
        "note",
        "add",
        "Ann",
        input="x",
    )
    assert refused.exit_code == 1
    assert "can only read" in refused.stderr

    revoked = ready("revoke", "supervisor", "--json")
    assert revoked.exit_code == 0
    report = json.loads(revoked.stdout)
    assert [(e["client_name"], e["notes"]) for e in report["exposure"]] == [("Ann", 1)]
    assert [r["client_name"] for r in report["rotated"]] == ["Ann"]
    assert "cannot undo" in report["cannot_undo"]
    after = cli(
        "--vault", str(ready.vault), "--identity", str(key_file), "note", "list"
    )
    assert after.exit_code == 12
    assert "no access" in after.stderr


def test_grant_by_recipient_string_and_bad_recipient(ready, tmp_path: Path) -> None:
    _setup(ready)
    recipient = str(age.X25519Identity.generate().recipient)
    assert ready("grant", recipient, "--all").exit_code == 0
    bad = ready("grant", "age1bogus", "--all")
    assert bad.exit_code == 2
    missing = ready("grant", str(tmp_path / "nofile"), "--all")
    assert missing.exit_code == 2
    assert "neither an age1" in missing.stderr
    no_scope = ready("grant", recipient)
    assert no_scope.exit_code == 1
    assert "--client" in no_scope.stderr


def test_rotate_exit_codes_for_jobs(ready) -> None:
    _setup(ready)
    nothing = ready("rotate", "--json")
    assert nothing.exit_code == 3
    assert json.loads(nothing.stdout)["outcome"] == "nothing-to-do"
    dry = ready("rotate", "--all", "--dry-run", "--json")
    assert dry.exit_code == 0
    assert json.loads(dry.stdout)["dry_run"] is True
    done = ready("rotate", "--all", "--json")
    assert done.exit_code == 0
    report = json.loads(done.stdout)
    assert (report["outcome"], report["notes_resealed"]) == ("done", 2)
    bad = ready("rotate", "--older-than", "soon")
    assert bad.exit_code == 1
    assert "not a duration" in bad.stderr
    assert ready("verify").exit_code == 0


def test_revoke_unknown_grant(ready) -> None:
    _setup(ready)
    result = ready("revoke", "nobody")
    assert result.exit_code == 1
    assert "no grant for that key or label" in result.stderr


def test_passphrase_change_and_recovery_key(vcli, cli, tmp_path: Path) -> None:
    key = tmp_path / "recovery.txt"
    assert (
        vcli(
            "init",
            "--work-factor",
            "10",
            "--allow-weak-work-factor",
            "--recovery-key-file",
            str(key),
        ).exit_code
        == 0
    )
    new = tmp_path / "new.txt"
    new.write_text("a completely new passphrase\n")
    new.chmod(0o600)
    assert vcli("passphrase", "--new-passphrase-file", str(new)).exit_code == 0
    old_fails = vcli("client", "list")
    assert old_fails.exit_code == 12
    assert (
        cli(
            "--vault", str(vcli.vault), "--passphrase-file", str(new), "client", "list"
        ).exit_code
        == 0
    )
    # forgotten passphrase: the recovery key sets a new one
    newest = tmp_path / "newest.txt"
    newest.write_text(PASSPHRASE + " again\n")
    newest.chmod(0o600)
    reset = cli(
        "--vault",
        str(vcli.vault),
        "passphrase",
        "--recovery-key-file",
        str(key),
        "--new-passphrase-file",
        str(newest),
    )
    assert reset.exit_code == 0
    assert (
        cli(
            "--vault",
            str(vcli.vault),
            "--passphrase-file",
            str(newest),
            "client",
            "list",
        ).exit_code
        == 0
    )


def test_identity_rotate(ready) -> None:
    _setup(ready)
    result = ready("identity", "rotate", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["client_keys_rewrapped"] == 2
    assert ready("verify", "--deep").exit_code == 0
    shown = json.loads(ready("note", "list", "--json").stdout)
    assert (
        json.loads(ready("note", "show", shown[0]["id"], "--json").stdout)["signature"]
        == "valid"
    )
