"""Vault commands through the CLI: exit codes, messages, JSON, nothing leaked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.conftest import PASSPHRASE


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "lock"
    }


def test_init_shows_recovery_key_once_and_makes_private_dirs(vcli) -> None:
    # classic: a post-quantum recovery key is AGE-SECRET-KEY-PQ-1 (test_postquantum_cli)
    result = vcli(
        "init", "--work-factor", "10", "--allow-weak-work-factor", "--classic"
    )
    assert result.exit_code == 0
    assert "AGE-SECRET-KEY-1" in result.stdout
    assert "below the floor" in result.stderr
    assert PASSPHRASE not in result.output
    vault = vcli.vault
    assert vault.stat().st_mode & 0o777 == 0o700
    for path in vault.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path


def test_init_recovery_key_file(vcli, tmp_path: Path) -> None:
    key = tmp_path / "recovery.txt"
    result = vcli(
        "init",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--recovery-key-file",
        str(key),
        "--json",
        "--classic",  # a post-quantum key file: test_postquantum_cli.py
    )
    doc = _json(result)
    assert doc["recovery_key"] == "file"
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_text().splitlines()[1].startswith("AGE-SECRET-KEY-1")
    assert "AGE-SECRET-KEY" not in result.output


def test_init_refuses_weak_passphrase_and_creates_nothing(cli, tmp_path: Path) -> None:
    weak = tmp_path / "weak.txt"
    weak.write_text("short\n")
    weak.chmod(0o600)
    result = cli("--vault", str(tmp_path / "v"), "--passphrase-file", str(weak), "init")
    assert result.exit_code == 1
    assert "passphrase too weak: it has 5 characters; use at least 12" in result.stderr
    assert not (tmp_path / "v").exists()


def test_init_refuses_non_empty_directory(vcli) -> None:
    vcli.vault.mkdir(mode=0o700)
    (vcli.vault / "precious.txt").write_text("keep")
    result = vcli("init", "--work-factor", "10", "--allow-weak-work-factor")
    assert result.exit_code == 1
    assert "is not empty" in result.stderr
    assert sorted(os.listdir(vcli.vault)) == ["precious.txt"]


def test_init_work_factor_floor(vcli) -> None:
    result = vcli("init", "--work-factor", "12")
    assert result.exit_code == 2  # a usage error (WorkFactorError), like `passphrase`
    assert "--work-factor must be between 15 and 22" in result.stderr


def test_missing_vault_exit_10(cli, tmp_path: Path, pass_file: Path) -> None:
    result = cli(
        "--vault",
        str(tmp_path / "nope"),
        "--passphrase-file",
        str(pass_file),
        "client",
        "list",
    )
    assert result.exit_code == 10
    assert "no vault at" in result.stderr
    assert "confvault init" in result.stderr


def test_wrong_passphrase_exit_12_and_nothing_changes(
    ready, cli, tmp_path: Path
) -> None:
    before = _tree(ready.vault)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("an entirely wrong passphrase\n")
    wrong.chmod(0o600)
    result = cli(
        "--vault",
        str(ready.vault),
        "--passphrase-file",
        str(wrong),
        "client",
        "add",
        "Ann",
    )
    assert result.exit_code == 12
    assert (
        result.stderr.splitlines()[0]
        == "confvault: error: the passphrase does not open this vault"
    )
    assert _tree(ready.vault) == before


def test_no_terminal_no_passphrase_fails_fast(ready, cli) -> None:
    result = cli("--vault", str(ready.vault), "client", "list")
    assert result.exit_code == 2
    assert "stdin is not a terminal" in result.stderr


def test_passphrase_from_env_file_and_fd(
    ready, cli, pass_file: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CONFVAULT_PASSPHRASE_FILE", str(pass_file))
    assert cli("--vault", str(ready.vault), "client", "list").exit_code == 0
    monkeypatch.delenv("CONFVAULT_PASSPHRASE_FILE")
    read_fd, write_fd = os.pipe()
    os.write(write_fd, PASSPHRASE.encode() + b"\n")
    os.close(write_fd)
    assert (
        cli(
            "--vault",
            str(ready.vault),
            "--passphrase-fd",
            str(read_fd),
            "client",
            "list",
        ).exit_code
        == 0
    )


def test_client_commands_json(ready) -> None:
    added = _json(
        ready("client", "add", "Ann Example", "--field", "dob=1990-01-01", "--json")
    )
    assert added["name"] == "Ann Example"
    assert added["fields"] == {"dob": "1990-01-01"}
    listed = _json(ready("client", "list", "--json"))
    assert [c["id"] for c in listed] == [added["id"]]
    shown = _json(ready("client", "show", added["id"][:6], "--json"))
    assert shown["fields"] == {"dob": "1990-01-01"}
    renamed = _json(ready("client", "rename", "Ann Example", "Ann B", "--json"))
    assert renamed["name"] == "Ann B"


def test_hostile_client_name_clear_error_nothing_changes(ready) -> None:
    before = _tree(ready.vault)
    result = ready("client", "add", "evil\u202ename")
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[0]
        == "confvault: error: the client name contains a right-to-left or bidi control mark"
    )
    assert _tree(ready.vault) == before


def test_unknown_client_has_hint(ready) -> None:
    result = ready("note", "add", "nobody", input="text")
    assert result.exit_code == 1
    assert "no client with that name or ID prefix" in result.stderr
    assert "confvault client list" in result.stderr


def test_note_flow_through_cli(ready, tmp_path: Path) -> None:
    ready("client", "add", "Ann")
    added = _json(
        ready(
            "note",
            "add",
            "Ann",
            "--title",
            "Session 1",
            "--json",
            input="Slept better; work stress.",
        )
    )
    assert added["status"] == "signed"
    text = tmp_path / "n.md"
    text.write_text("From a file")
    draft = _json(
        ready(
            "note",
            "add",
            "Ann",
            "--file",
            str(text),
            "--draft",
            "--kind",
            "intake",
            "--json",
        )
    )
    assert draft["status"] == "draft"
    assert draft["kind"] == "intake"
    # a unique prefix: 6 hex of the client, 6 of the note (8 collide 1 in 256)
    shown = _json(ready("note", "show", added["id"][:12], "--json"))
    assert (shown["body"], shown["signature"]) == (
        "Slept better; work stress.",
        "valid",
    )
    human = ready("note", "show", added["id"])
    assert "signature valid" in human.stdout
    hits = _json(ready("note", "search", "stress", "--json"))
    assert [h["note"]["id"] for h in hits] == [added["id"]]
    assert hits[0]["snippets"][0]["match"] == "stress"
    assert ready("note", "edit", draft["id"], input="edited").exit_code == 0
    assert _json(ready("note", "sign", draft["id"], "--json"))["status"] == "signed"
    locked = ready("note", "edit", draft["id"], input="again")
    assert locked.exit_code == 1
    assert "signed and locked" in locked.stderr
    addendum = _json(ready("note", "amend", added["id"], "--json", input="correction"))
    assert addendum["addendum_of"] == added["id"]
    listed = _json(ready("note", "list", "Ann", "--json"))
    assert sorted(n["id"] for n in listed) == sorted(
        [added["id"], draft["id"], addendum["id"]]
    )


def test_template_and_empty_note(ready) -> None:
    ready("client", "add", "Ann")
    empty = ready("note", "add", "Ann", input="   \n")
    assert empty.exit_code == 1
    assert "the note is empty; nothing saved" in empty.stderr
    unknown = ready("note", "add", "Ann", "--template", "nosuch", input="x")
    assert unknown.exit_code == 1
    assert "no template 'nosuch'" in unknown.stderr


def test_import_and_attach(ready, tmp_path: Path) -> None:
    ready("client", "add", "Ann")
    files = []
    for i in range(3):
        path = tmp_path / f"old-{i}.md"
        path.write_text(f"---\ndate: 2024-01-0{i + 1}\n---\nold note {i}\n")
        files.append(str(path))
    imported = _json(ready("note", "import", "Ann", *files, "--json"))
    assert [n["date"] for n in imported] == [
        "2024-01-01T00:00:00Z",
        "2024-01-02T00:00:00Z",
        "2024-01-03T00:00:00Z",
    ]
    pdf = tmp_path / "consent.pdf"
    pdf.write_bytes(os.urandom(150_000))
    attached = _json(ready("attach", "Ann", str(pdf), "--title", "Consent", "--json"))
    out = tmp_path / "restored.pdf"
    assert ready("note", "show", attached["id"], "-o", str(out)).exit_code == 0
    assert out.read_bytes() == pdf.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600
    again = ready("note", "show", attached["id"], "-o", str(out))
    assert again.exit_code == 1
    assert "already exists" in again.stderr


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))


def _object_path(vault: Path, digest: str) -> Path:
    return vault / "objects" / digest[:2] / digest


def test_verify_ok_then_tampered_exit_13(ready) -> None:
    ready("client", "add", "Ann")
    ready("note", "add", "Ann", input="text")
    ok = _json(ready("verify", "--json"))
    assert ok["ok"] is True
    assert ok["findings"] == []
    root = json.loads((ready.vault / "manifest").read_text())["body"]["pointers"][
        "root"
    ]
    _flip_byte(_object_path(ready.vault, root))
    bad = ready("verify")
    assert bad.exit_code == 13
    assert "vault damaged" in bad.stdout
    deep = ready("verify", "--deep", "--json")
    assert deep.exit_code == 13
    doc = json.loads(deep.stdout)
    assert doc["ok"] is False
    assert ("object-damaged", root) in {
        (f["code"], f["subject"]) for f in doc["findings"]
    }


@pytest.mark.parametrize("pointer", ["owner", "root", "audit"])
def test_verify_deep_reports_damage_even_when_the_keys_do_not_open(
    ready, pointer: str
) -> None:
    """Every object named by the manifest, the owner's own key among them:
    `verify --deep --json` still prints a report a script can read."""
    ready("client", "add", "Ann")
    ready("note", "add", "Ann", input="text")
    digest = json.loads((ready.vault / "manifest").read_text())["body"]["pointers"][
        pointer
    ]
    _flip_byte(_object_path(ready.vault, digest))
    before = {p: p.read_bytes() for p in ready.vault.rglob("*") if p.is_file()}
    deep = ready("verify", "--deep", "--json")
    assert deep.exit_code == 13
    doc = json.loads(deep.stdout)
    assert doc["ok"] is False
    assert doc["deep"] is True
    codes = {(f["code"], f["subject"]) for f in doc["findings"]}
    assert ("object-damaged", digest) in codes
    if pointer == "owner":
        assert ("unlock", "owner") in codes
    assert {p: p.read_bytes() for p in ready.vault.rglob("*") if p.is_file()} == before


def test_verify_needs_no_passphrase(ready, cli) -> None:
    result = cli("--vault", str(ready.vault), "verify")
    assert result.exit_code == 0
    assert "vault ok" in result.stdout


def test_status_dashboard(ready) -> None:
    ready("client", "add", "Ann")
    ready("note", "add", "Ann", input="x")
    ready("note", "add", "Ann", "--draft", input="y")
    doc = _json(ready("status", "--json"))
    assert (doc["clients"], doc["notes"], doc["drafts"], doc["recovery_key"]) == (
        1,
        1,
        1,
        False,
    )
    human = ready("status")
    assert "last verify" in human.stdout


def test_passphrase_and_plaintext_never_in_output_or_vault(ready) -> None:
    ready("client", "add", "Ann Secretname")
    results = [
        ready(
            "note",
            "add",
            "Ann Secretname",
            "--title",
            "Hidden title",
            input="very private words",
        ),
        ready("note", "list"),
        ready("status"),
        ready("verify"),
    ]
    for result in results:
        assert PASSPHRASE not in result.output
    for path in ready.vault.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in (
                b"Secretname",
                b"Hidden title",
                b"very private",
                PASSPHRASE.encode(),
            ):
                assert needle not in data
