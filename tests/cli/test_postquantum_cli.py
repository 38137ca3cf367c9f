"""The post-quantum vault through the CLI: init's default, grant saying which
kind of key it got, status and verify counting classic files, migrate --pq
with its report, exit codes and rerun."""

from __future__ import annotations

import json
import re
from pathlib import Path

from confvault import age


def _init(vcli, *extra: str):
    return vcli(
        "init",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--no-recovery-key",
        "--json",
        *extra,
    )


def _key_file(tmp_path: Path, identity: age.AnyIdentity) -> Path:
    path = tmp_path / "grantee.key"
    path.write_text(identity.encode() + "\n")
    path.chmod(0o600)
    return path


def test_init_is_post_quantum_unless_classic(vcli, cli, tmp_path: Path) -> None:
    result = _init(vcli)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["keys"] == "postquantum"
    status = json.loads(vcli("status", "--json").stdout)
    assert (status["key_kind"], status["classic_objects"]) == ("postquantum", 0)
    classic = cli(
        "--vault",
        str(tmp_path / "classic"),
        "--passphrase-file",
        str(tmp_path / "pass.txt"),
        "init",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--no-recovery-key",
        "--classic",
    )
    assert classic.exit_code == 0, classic.output
    assert "(classic keys)" in classic.stdout


def test_grant_says_which_kind_and_refuses_the_other(vcli, tmp_path: Path) -> None:
    assert _init(vcli).exit_code == 0
    assert vcli("client", "add", "Ann").exit_code == 0
    classic = str(age.X25519Identity.generate().recipient)
    refused = vcli("grant", classic, "--all")
    assert refused.exit_code == 2
    assert "age-keygen -pq" in refused.stderr
    grantee = age.HybridIdentity.generate()
    granted = vcli("grant", str(grantee.recipient), "--all", "--label", "locum")
    assert granted.exit_code == 0, granted.output
    assert "the grantee's key is a post-quantum key" in granted.stderr
    doc = json.loads(vcli("grants", "--json").stdout)
    assert [g["key_kind"] for g in doc] == ["postquantum"]
    # the grantee reads with its hybrid identity file
    reader = vcli(
        "--identity", str(_key_file(tmp_path, grantee)), "client", "list", "--json"
    )
    assert reader.exit_code == 0, reader.output
    assert [c["name"] for c in json.loads(reader.stdout)] == ["Ann"]


def test_migrate_pq_through_the_cli(ready, tmp_path: Path) -> None:
    assert ready("client", "add", "Ann").exit_code == 0
    assert ready("note", "add", "Ann", input="a classic note\n").exit_code == 0
    locum = age.X25519Identity.generate()
    assert (
        ready("grant", str(locum.recipient), "--all", "--label", "locum").exit_code == 0
    )
    verify = ready("verify")
    assert verify.exit_code == 0
    assert "sealed only to classic (X25519) keys" in verify.stderr
    status = json.loads(ready("status", "--json").stdout)
    assert status["key_kind"] == "classic"
    assert status["classic_objects"] == status["objects"] - 1
    result = ready("migrate", "--pq", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["outcome"] == "done"
    assert doc["dropped_grants"] == ["locum"]
    assert (doc["client_keys_rotated"], doc["notes_resealed"]) == (1, 1)
    assert doc["classic_objects"] == 0
    assert "grant locum dropped: its key is classic" in result.stderr
    verify = ready("verify", "--json")
    assert json.loads(verify.stdout)["classic_objects"] == 0
    assert "classic" not in verify.stderr
    assert json.loads(ready("status", "--json").stdout)["key_kind"] == "postquantum"
    again = ready("migrate", "--pq", "--json")
    assert again.exit_code == 3
    assert json.loads(again.stdout)["outcome"] == "nothing-to-do"
    assert ready("migrate").exit_code == 2  # the target must be named


def test_init_shows_a_post_quantum_recovery_key(vcli, tmp_path: Path) -> None:
    result = vcli("init", "--work-factor", "10", "--allow-weak-work-factor")
    assert result.exit_code == 0, result.output
    key = re.search(r"AGE-SECRET-KEY-PQ-1[0-9A-Z]+", result.stdout)
    assert key is not None
    parsed = age.parse_identity(key.group(0))
    assert isinstance(parsed, age.HybridIdentity)
    assert "(postquantum keys)" in result.stdout
