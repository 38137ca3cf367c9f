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


# --- passphrase: work factor bounds, --rekey, what it does and does not protect --------


def _tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _secret_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def test_passphrase_work_factor_bounds_are_inits(
    ready, cli, tmp_path: Path, pass_file: Path
) -> None:
    _setup(ready)
    new = _secret_file(tmp_path, "new.txt", "a completely new passphrase")
    before = _tree(ready.vault)
    for factor in ("1", "23", "14"):
        for extra in ((), ("--rekey",)):
            refused = ready(
                "passphrase", "--new-passphrase-file", str(new), "--work-factor",
                factor, *extra,
            )  # fmt: skip
            assert refused.exit_code == 2
            fresh = tmp_path / f"fresh-{factor}"
            init = cli(
                "--vault", str(fresh), "--passphrase-file", str(pass_file),
                "init", "--work-factor", factor,
            )  # fmt: skip
            assert init.exit_code == 2
            assert refused.stderr == init.stderr
            assert refused.stderr.startswith(
                "confvault: error: --work-factor must be between 15 and 22\n"
                "confvault: hint: it is log2 of scrypt's N"
            )
            assert not fresh.exists()
    assert _tree(ready.vault) == before
    # The floor gives way only where init's does, and the vault opens afterwards.
    assert ready(
        "passphrase", "--new-passphrase-file", str(new), "--work-factor", "0",
        "--allow-weak-work-factor",
    ).stderr.startswith("confvault: error: --work-factor must be between 1 and 22")  # fmt: skip
    weak = ready(
        "passphrase", "--new-passphrase-file", str(new), "--work-factor", "11",
        "--allow-weak-work-factor", "--json",
    )  # fmt: skip
    assert weak.exit_code == 0
    assert json.loads(weak.stdout)["work_factor"] == 11
    reopened = cli(
        "--vault", str(ready.vault), "--passphrase-file", str(new), "note", "list"
    )  # fmt: skip
    assert reopened.exit_code == 0


def test_rekey_with_wrong_passphrase_changes_nothing(ready, cli, tmp_path) -> None:
    _setup(ready)
    new = _secret_file(tmp_path, "new.txt", "a completely new passphrase")
    wrong = _secret_file(tmp_path, "wrong.txt", "not the passphrase at all")
    before = _tree(ready.vault)
    result = cli(
        "--vault", str(ready.vault), "--passphrase-file", str(wrong),
        "passphrase", "--rekey", "--new-passphrase-file", str(new), "--json",
    )  # fmt: skip
    assert result.exit_code == 12
    assert result.stdout == ""
    assert result.stderr.startswith(
        "confvault: error: the passphrase does not open this vault\n"
    )
    assert _tree(ready.vault) == before
    assert ready("verify", "--deep").exit_code == 0  # the old passphrase still opens


def test_passphrase_json_says_what_was_done(ready, cli, tmp_path: Path) -> None:
    _setup(ready)
    new = _secret_file(tmp_path, "new.txt", "a completely new passphrase")
    newer = _secret_file(tmp_path, "newer.txt", "and yet another passphrase")
    plain = ready("passphrase", "--new-passphrase-file", str(new), "--json")
    assert plain.exit_code == 0
    doc = json.loads(plain.stdout)
    assert {k: doc[k] for k in ("action", "passphrase_changed", "rekey")} == {
        "action": "passphrase-change",
        "passphrase_changed": True,
        "rekey": False,
    }
    assert doc["rewritten"] == ["owner key file"]
    assert doc["protects"] == (
        "the old passphrase no longer opens this vault's owner key file"
    )
    assert doc["does_not_protect"].startswith(
        "a copy of the vault taken before the change still opens with the old "
        "passphrase"
    )
    assert "passphrase --rekey" in doc["does_not_protect"]
    assert (
        "confvault: warning: the old passphrase no longer opens this vault's owner "
        "key file, but a copy of the vault taken before the change still opens"
    ) in plain.stderr

    as_new = ("--vault", str(ready.vault), "--passphrase-file", str(new))
    rekeyed = cli(*as_new, "passphrase", "--rekey", "--new-passphrase-file",
                  str(newer), "--json")  # fmt: skip
    assert rekeyed.exit_code == 0, rekeyed.stderr
    doc = json.loads(rekeyed.stdout)
    assert {
        k: doc[k]
        for k in (
            "action", "passphrase_changed", "rekey", "outcome", "client_keys_rotated",
            "notes_resealed", "client_keys_rewrapped", "failed",
        )
    } == {
        "action": "rekey", "passphrase_changed": True, "rekey": True,
        "outcome": "done", "client_keys_rotated": 2, "notes_resealed": 2,
        "client_keys_rewrapped": 2, "failed": [],
    }  # fmt: skip
    assert sorted(r["client_name"] for r in doc["rotated"]) == ["Ann", "Bob"]
    assert (
        "opened with the old passphrase or its owner key, opens no file"
        in (doc["protects"])
    )
    assert doc["does_not_protect"].startswith("what a copy taken before held")
    as_newer = ("--vault", str(ready.vault), "--passphrase-file", str(newer))
    assert cli(*as_newer, "verify", "--deep").exit_code == 0
    assert cli(*as_new, "note", "list").exit_code == 12

    rotated = cli(*as_newer, "identity", "rotate", "--rekey", "--json")
    assert rotated.exit_code == 0, rotated.stderr
    doc = json.loads(rotated.stdout)
    assert (doc["action"], doc["passphrase_changed"], doc["client_keys_rotated"]) == (
        "rekey",
        False,
        2,
    )
    assert "the passphrase is unchanged" in doc["protects"]
    plain_rotate = json.loads(cli(*as_newer, "identity", "rotate", "--json").stdout)
    assert (plain_rotate["action"], plain_rotate["rekey"]) == ("identity-rotate", False)
    assert plain_rotate["does_not_protect"].startswith("the client keys are unchanged")
