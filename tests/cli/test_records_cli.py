"""`confvault audit`, `export` and `client shred` through the CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from confvault import age


def _setup(ready) -> None:
    ready("client", "add", "Ann")
    ready("note", "add", "Ann", "--title", "S1", input="ann text")


def test_audit_show_and_verify(ready) -> None:
    _setup(ready)
    ready("note", "list")
    entries = json.loads(ready("audit", "--json").stdout)
    assert [e["action"] for e in entries] == [
        "vault-init",
        "client-add",
        "note-add",
        "note-list",
    ]
    assert (
        json.loads(ready("audit", "--action", "note-add", "--json").stdout)[0][
            "client_name"
        ]
        == "Ann"
    )
    ok = ready("audit", "verify")
    assert ok.exit_code == 0
    assert "audit trail ok" in ok.stdout


def test_audit_verify_detects_tampering_exit_13(ready) -> None:
    _setup(ready)
    vault = ready.vault
    manifest = json.loads((vault / "manifest").read_text())
    head = manifest["body"]["pointers"]["audit"]
    path = vault / "objects" / head[:2] / head
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    result = ready("audit", "verify", "--json")
    assert result.exit_code == 13
    assert json.loads(result.stdout)["findings"][0]["code"] == "audit-segment"


def test_export_dir_and_sealed(ready, tmp_path: Path, age_bin: str) -> None:
    _setup(ready)
    out = tmp_path / "req"
    result = ready("export", "Ann", "--out", str(out), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["notes"] == 1
    assert "plaintext clinical records" in result.stderr
    assert (out / "index.md").exists()
    identity = age.X25519Identity.generate()
    key = tmp_path / "req.key"
    key.write_text(identity.encode() + "\n")
    sealed = tmp_path / "ann.age"
    assert (
        ready(
            "export", "Ann", "--to", str(identity.recipient), "-o", str(sealed)
        ).exit_code
        == 0
    )
    plain = subprocess.run(
        [age_bin, "-d", "-i", str(key), str(sealed)], capture_output=True, check=True
    ).stdout
    assert b"ann text" in plain
    both = ready("export", "Ann")
    assert both.exit_code == 1
    assert "either --out" in both.stderr


def test_shred_needs_confirmation_without_terminal(ready) -> None:
    _setup(ready)
    refused = ready("client", "shred", "Ann")
    assert refused.exit_code == 1
    assert "typed confirmation" in refused.stderr
    assert json.loads(ready("client", "list", "--json").stdout)[0]["name"] == "Ann"
    done = ready("client", "shred", "Ann", "--yes", "--json")
    assert done.exit_code == 0
    assert json.loads(done.stdout)["notes"] == 1
    assert json.loads(ready("client", "list", "--json").stdout) == []
    assert ready("verify").exit_code == 0
