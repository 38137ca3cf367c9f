"""docs/RECOVERY.md's commands for a post-quantum vault work with the npm
library `age-encryption` (tests/agejs/age.mjs), an implementation
independent of confvault's: every note back, with the passphrase or the
recovery key."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from confvault.vault import Vault
from tests.vault.conftest import PASSPHRASE, init_vault

DOC = Path(__file__).parents[2] / "docs" / "RECOVERY.md"


def _blocks() -> tuple[list[str], list[str]]:
    text = DOC.read_text()
    section = text.split("## A post-quantum vault with the npm library", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    main, recovery = (block.splitlines() for block in blocks)
    return main, recovery


def _script(vault: Path, out: Path, agejs: list[str], recovery: Path | None) -> str:
    lines, with_recovery = _blocks()
    assert lines[0].startswith("vault=")
    assert lines[1].startswith("out=")
    assert lines[2].startswith("agejs=")
    body = lines[3:]
    if recovery is not None:  # steps 1 and 2 replaced, as the doc says
        start = next(i for i, line in enumerate(body) if line.startswith("# 1."))
        end = next(i for i, line in enumerate(body) if line.startswith("# 3."))
        steps = [
            line.replace("/path/to/recovery-key.txt", str(recovery))
            for line in with_recovery
        ]
        body = [*body[:start], *steps, *body[end:]]
    head = [f"vault={vault}", f"out={out}", f'agejs="{agejs[0]} {agejs[1]}"']
    return "\n".join([*head, *body]) + "\n"


def _vault(tmp_path: Path) -> tuple[Vault, str, dict[str, bytes]]:
    vault, recovery = init_vault(
        tmp_path / "vault", tmp_path / "state", postquantum=True
    )
    assert recovery is not None
    ann = vault.add_client("Ann Example")
    expected = {}
    for i in range(2):
        body = f"Note {i}: sleep improved.\n".encode()
        expected[vault.add_note(ann.id, body).id] = body
    pt = vault.add_note(ann.id, b"process note\n", kind="psychotherapy")
    expected[pt.id] = b"process note\n"
    attachment = tmp_path / "consent.pdf"
    attachment.write_bytes(os.urandom(70_000))
    expected[vault.add_attachment(ann.id, attachment).id] = attachment.read_bytes()
    return vault, recovery, expected


def _recovered(out: Path) -> dict[str, bytes]:
    found = {}
    for path in out.glob("*.txt"):
        first, _, rest = path.read_bytes().partition(b"\n")
        if first.startswith(b'{"addendum_of"'):
            found[json.loads(first)["id"]] = rest
    return found


def test_the_npm_library_recovers_a_post_quantum_vault_with_the_passphrase(
    agejs: list[str], tmp_path: Path
) -> None:
    vault, _, expected = _vault(tmp_path)
    out = tmp_path / "recovered"
    done = subprocess.run(
        ["/bin/sh", "-c", _script(vault.root, out, agejs, None)],
        input=PASSPHRASE + b"\n",
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(expected)).encode()
    assert out.stat().st_mode & 0o777 == 0o700
    assert not (out / "passphrase.txt").exists()
    assert _recovered(out) == expected


def test_the_npm_library_recovers_a_post_quantum_vault_with_the_recovery_key(
    agejs: list[str], tmp_path: Path
) -> None:
    vault, recovery, expected = _vault(tmp_path)
    key = tmp_path / "recovery-key.txt"
    key.write_text(recovery + "\n")
    key.chmod(0o600)
    out = tmp_path / "recovered"
    done = subprocess.run(
        ["/bin/sh", "-c", _script(vault.root, out, agejs, key)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(expected)).encode()
    assert _recovered(out) == expected
