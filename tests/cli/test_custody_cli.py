"""`confvault custodian ...` (issue 18): the commands, their --json, exit
codes, files, and no prompt without a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from confvault import age
from tests.conftest import require_binary

CONFVAULT = str(Path(sys.executable).parent / "confvault")


def _custodians(
    ready: Callable[..., Any], tmp_path: Path, n: int
) -> list[tuple[str, Path]]:
    """n custodians added, each (name, their key file)."""
    out = []
    for number in range(n):
        key = age.X25519Identity.generate()
        key_file = tmp_path / f"key-{number}.txt"
        key_file.write_text(key.encode() + "\n")
        name = f"colleague{number}"
        result = ready("custodian", "add", name, str(key.recipient), "--json")
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert (doc["name"], doc["recipient"], doc["has_share"]) == (
            name,
            str(key.recipient),
            False,
        )
        out.append((name, key_file))
    return out


def _words(share: Path, key_file: Path, into: Path) -> Path:
    """The custodian's step: stock age opens their share file."""
    done = subprocess.run(
        [require_binary("age"), "-d", "-i", str(key_file), str(share)],
        capture_output=True,
        check=True,
    )
    into.write_bytes(done.stdout)
    return into


@pytest.fixture
def split_vault(ready: Callable[..., Any], tmp_path: Path) -> dict[str, Path]:
    """A vault with a client, three custodians and a 2-of-3 split; each
    custodian's words in a file, opened with stock age."""
    assert ready("client", "add", "Ann Example").exit_code == 0
    assert ready("note", "add", "Ann", input="first session").exit_code == 0
    people = _custodians(ready, tmp_path, 3)
    shares = tmp_path / "shares"
    shares.mkdir()
    result = ready(
        "custodian", "split", "--threshold", "2", "--out", str(shares), "--json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["threshold"], doc["shares"], doc["notice"]) == (
        2,
        ["colleague0", "colleague1", "colleague2"],
        None,
    )
    assert sorted(p.name for p in shares.iterdir()) == [
        "share-colleague0.age",
        "share-colleague1.age",
        "share-colleague2.age",
    ]
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in shares.iterdir())
    return {
        name: _words(shares / f"share-{name}.age", key, tmp_path / f"words-{name}")
        for name, key in people
    }


def test_list_remove_and_json(ready: Callable[..., Any], tmp_path: Path) -> None:
    _custodians(ready, tmp_path, 2)
    listed = json.loads(ready("custodian", "list", "--json").stdout)
    assert [c["name"] for c in listed] == ["colleague0", "colleague1"]
    removed = ready("custodian", "remove", "colleague0", "--json")
    assert removed.exit_code == 0
    assert json.loads(removed.stdout)["name"] == "colleague0"
    again = ready("custodian", "remove", "colleague0")
    assert again.exit_code == 1
    assert "no custodian of that name" in again.stderr
    hostile = ready(
        "custodian", "add", "../x", str(age.X25519Identity.generate().recipient)
    )
    assert hostile.exit_code == 1
    assert "letters, digits" in hostile.stderr


def test_k_shares_open_and_list_k_minus_1_do_not(
    ready: Callable[..., Any], split_vault: dict[str, Path]
) -> None:
    opened = ready(
        "custodian",
        "open",
        str(split_vault["colleague2"]),
        str(split_vault["colleague0"]),
        "--list",
        "--json",
    )
    assert opened.exit_code == 0, opened.output
    doc = json.loads(opened.stdout)
    assert doc["shares"] == ["colleague2", "colleague0"]
    assert [c["name"] for c in doc["clients"]] == ["Ann Example"]
    assert doc["clients"][0]["notes"] == 1
    few = ready("custodian", "open", str(split_vault["colleague1"]))
    assert few.exit_code == 12
    assert "1 share given; this split needs 2" in few.stderr
    assert few.stdout == ""
    audit = json.loads(ready("audit", "--json").stdout)
    opens = [e for e in audit if e["action"] == "custodian-open"]
    assert len(opens) == 1
    assert opens[0]["details"]["custodians"] == ["colleague2", "colleague0"]


def test_open_export_writes_every_client(
    ready: Callable[..., Any], split_vault: dict[str, Path], tmp_path: Path
) -> None:
    assert ready("client", "add", "Bo Other").exit_code == 0
    counts = ("clients", "notes", "drafts", "attachments", "psychotherapy_notes")
    before = json.loads(ready("status", "--json").stdout)
    out = tmp_path / "handover"
    opened = ready(
        "custodian",
        "open",
        str(split_vault["colleague0"]),
        str(split_vault["colleague1"]),
        "--export",
        str(out),
    )
    assert opened.exit_code == 0, opened.output
    folders = sorted(p.name for p in out.iterdir())
    assert len(folders) == 2
    assert folders[0].startswith("Ann_Example-")
    assert folders[1].startswith("Bo_Other-")
    notes = list((out / folders[0] / "notes").iterdir())
    assert len(notes) == 1
    assert notes[0].read_text().endswith("first session")
    assert "# Record of Ann Example" in (out / folders[0] / "index.md").read_text()
    after = json.loads(ready("status", "--json").stdout)
    assert [after[k] for k in counts] == [before[k] for k in counts]  # a read path
    again = ready(
        "custodian",
        "open",
        str(split_vault["colleague0"]),
        str(split_vault["colleague1"]),
        "--export",
        str(out),
    )
    assert again.exit_code == 1
    assert "exists" in again.stderr


def test_a_sealed_share_file_is_refused_with_its_step(
    ready: Callable[..., Any], split_vault: dict[str, Path], tmp_path: Path
) -> None:
    sealed = tmp_path / "shares" / "share-colleague0.age"
    result = ready("custodian", "open", str(sealed), str(split_vault["colleague1"]))
    assert result.exit_code == 1
    assert "age -d -i THEIR_KEY" in result.stderr


def test_notice_and_cancel(
    ready: Callable[..., Any], tmp_path: Path, split_vault: dict[str, Path]
) -> None:
    out = tmp_path / "again"
    out.mkdir()
    assert (
        ready(
            "custodian", "split", "-k", "2", "--notice", "7d", "--out", str(out)
        ).exit_code
        == 0
    )
    shares = {
        name: _words(
            out / f"share-{name}.age",
            tmp_path / f"key-{n}.txt",
            tmp_path / f"w2-{name}",
        )
        for n, name in enumerate(("colleague0", "colleague1", "colleague2"))
    }
    first = ready(
        "custodian", "open", str(shares["colleague0"]), str(shares["colleague1"])
    )
    assert first.exit_code == 1
    assert "access opens at" in first.stderr
    status = ready("status", "--json")
    doc = json.loads(status.stdout)["custodians"]
    assert doc["custodians"] == 3
    assert doc["threshold"] == 2
    assert doc["notice"] is not None
    shown = ready("status")
    assert "custodians started a notice" in shown.stderr
    cancelled = ready("custodian", "cancel", "--json")
    assert cancelled.exit_code == 0
    assert json.loads(cancelled.stdout)["shares"] == ["colleague0", "colleague1"]
    assert ready("custodian", "cancel").exit_code == 3
    # The old shares (the split before) open nothing now.
    old = ready(
        "custodian",
        "open",
        str(split_vault["colleague0"]),
        str(split_vault["colleague1"]),
    )
    assert old.exit_code == 12
    assert "earlier split" in old.stderr


def test_no_prompt_without_a_terminal(
    ready: Callable[..., Any], split_vault: dict[str, Path]
) -> None:
    vault = str(ready.vault)  # type: ignore[attr-defined]

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [CONFVAULT, "--vault", vault, "custodian", "open", *args],
            input=stdin,
            capture_output=True,
            env={**os.environ, "CONFVAULT_NO_SERVER": "1"},
            timeout=60,
            check=False,
        )

    none = run()
    assert none.returncode == 2
    assert b"Missing argument" in none.stderr
    empty = run("-")
    assert empty.returncode == 12
    assert b"no share given" in empty.stderr
    words = (
        split_vault["colleague0"].read_bytes() + split_vault["colleague2"].read_bytes()
    )
    piped = run("-", "--json", stdin=words)
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["shares"] == ["colleague0", "colleague2"]


def test_post_quantum_vault_with_confvault_age_decrypt(
    vcli: Callable[..., Any], tmp_path: Path
) -> None:
    init = vcli(
        "init", "--work-factor", "10", "--allow-weak-work-factor", "--no-recovery-key"
    )
    assert init.exit_code == 0, init.output
    assert vcli("client", "add", "Ann Example").exit_code == 0
    classic = vcli(
        "custodian", "add", "old", str(age.X25519Identity.generate().recipient)
    )
    assert classic.exit_code == 2
    assert "post-quantum" in classic.stderr
    words = []
    for name in ("jane", "omar"):
        key = age.HybridIdentity.generate()
        key_file = tmp_path / f"{name}.key"
        key_file.write_text(key.encode() + "\n")
        assert vcli("custodian", "add", name, str(key.recipient)).exit_code == 0
    assert vcli("custodian", "split", "-k", "2", "--out", str(tmp_path)).exit_code == 0
    for name in ("jane", "omar"):
        out = tmp_path / f"{name}-words.txt"
        opened = vcli(
            "age",
            "decrypt",
            "-i",
            str(tmp_path / f"{name}.key"),
            "-o",
            str(out),
            str(tmp_path / f"share-{name}.age"),
        )
        assert opened.exit_code == 0, opened.output
        words.append(str(out))
    listed = vcli("custodian", "open", *words, "--list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [c["name"] for c in json.loads(listed.stdout)["clients"]] == ["Ann Example"]
