"""docs/RECOVERY.md works: its exact commands, with only the stock `age` tool."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import time
from pathlib import Path

from confvault.vault import Vault
from tests.vault.conftest import PASSPHRASE

DOC = Path(__file__).parents[2] / "docs" / "RECOVERY.md"


def _script(vault: Path, out: Path) -> str:
    text = DOC.read_text()
    block = re.search(r"## The commands.*?```sh\n(.*?)```", text, re.DOTALL).group(1)
    lines = block.splitlines()
    assert lines[0].startswith("vault=")
    assert lines[1].startswith("out=")
    return "\n".join([f"vault={vault}", f"out={out}", *lines[2:]]) + "\n"


def _run_with_tty(
    script: str, passphrase: bytes, age_dir: str, timeout: float = 120
) -> bytes:
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["PATH"] = f"{age_dir}:/usr/bin:/bin"
        os.execv("/bin/sh", ["/bin/sh", "-c", script])
    output = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            while output.lower().count(b"passphrase") > answered:
                os.write(fd, passphrase + b"\n")
                answered += 1
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert answered == 1, "age should ask for the passphrase exactly once"
    return output


def test_recovery_doc_recovers_every_note_with_stock_age(
    vault: Vault, age_bin: str, tmp_path: Path
) -> None:
    ann = vault.add_client("Ann Example", {"dob": "1990-01-01"})
    bob = vault.add_client("Bob Example")
    expected = {}
    for client, n in ((ann, 3), (bob, 2)):
        for i in range(n):
            body = f"Note {i} for {client.name}: sleep improved.\n".encode()
            expected[vault.add_note(client.id, body, title=f"S{i}").id] = body
    pt = vault.add_note(bob.id, b"psychotherapy process note\n", kind="psychotherapy")
    expected[pt.id] = b"psychotherapy process note\n"
    attachment = tmp_path / "consent.pdf"
    attachment.write_bytes(os.urandom(70_000))
    att = vault.add_attachment(ann.id, attachment)
    expected[att.id] = attachment.read_bytes()

    out = tmp_path / "recovered"
    output = _run_with_tty(
        _script(vault.root, out), PASSPHRASE, str(Path(age_bin).parent)
    )
    assert output.strip().endswith(str(len(expected)).encode())
    assert out.stat().st_mode & 0o777 == 0o700
    recovered = {}
    for path in out.glob("*.txt"):
        data = path.read_bytes()
        first, _, rest = data.partition(b"\n")
        if first.startswith(b'{"addendum_of"'):
            recovered[json.loads(first)["id"]] = rest
    assert recovered == expected


def test_recovery_key_step_opens_the_owner_key(
    make_vault, age_bin: str, tmp_path: Path
) -> None:
    import subprocess

    vault, recovery = make_vault()
    text = DOC.read_text()
    block = re.search(
        r"## Forgotten passphrase.*?```sh\n(.*?)```", text, re.DOTALL
    ).group(1)
    key_file = tmp_path / "recovery-key.txt"
    key_file.write_text(recovery + "\n")
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    script = block.replace("/path/to/recovery-key.txt", str(key_file))
    subprocess.run(
        ["/bin/sh", "-c", f"out={out}\ncd {vault.root}\n{script}"],
        check=True,
        env={"PATH": f"{Path(age_bin).parent}:/usr/bin:/bin"},
    )
    owner_text = (out / "owner.txt").read_text()
    assert owner_text.startswith("# confvault owner identity\n")
    opened = Vault.open(vault.root, recovery_key=recovery, state_dir=tmp_path / "s2")
    assert opened.owner.key.encode() in owner_text
