"""Commands that need the terminal, run by a worker that has none of its
own: the passphrase prompt asks on the client's terminal (stdin), with the
echo off, and $EDITOR runs on the client's terminal descriptors."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.server.conftest import CONFVAULT, PASSPHRASE, Served


def _on_a_terminal(
    command: list[str],
    env: dict[str, str],
    answer: bytes | None = None,
    prompt: bytes = b"passphrase: ",
) -> tuple[int, bytes]:
    """Run ``command`` with a new pseudo-terminal as its controlling terminal
    and standard streams; type ``answer`` at the first ``prompt``."""
    master, slave = os.openpty()

    def own_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        command,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        preexec_fn=own_terminal,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every holder of the terminal is gone
                break
            if not chunk:
                break
            seen += chunk
            if answer is not None and prompt in seen:
                os.write(master, answer)
                answer = None
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), seen


TRACED = [sys.executable, "-X", "importtime", CONFVAULT]


def _split(seen: bytes) -> tuple[bytes, list[bytes]]:
    """The terminal's text without -X importtime's lines, and the modules."""
    lines = seen.splitlines(keepends=True)
    imported = [
        line.split(b"|")[-1].strip()
        for line in lines
        if line.startswith(b"import time:")
    ]
    return b"".join(
        line for line in lines if not line.startswith(b"import time:")
    ), imported


def test_the_passphrase_prompt_asks_on_the_clients_terminal(served: Served) -> None:
    env = {k: v for k, v in served.env.items() if k != "CONFVAULT_PASSPHRASE_FILE"}
    for name, extra in (("served", {}), ("in-process", {"CONFVAULT_NO_SERVER": "1"})):
        code, seen = _on_a_terminal(
            [*TRACED, "client", "list", "--json"],
            env | extra,
            PASSPHRASE.encode() + b"\n",
        )
        seen, imported = _split(seen)
        assert (b"typer" in imported) == (name == "in-process")
        assert code == 0, (name, seen)
        assert seen.startswith(b"Vault passphrase: "), (name, seen)
        assert b'"name": "Ann Example"' in seen, name
        assert PASSPHRASE.encode() not in seen, name  # not echoed


def test_the_editor_runs_on_the_clients_terminal(
    served: Served, tmp_path: Path
) -> None:
    editor = tmp_path / "editor"
    editor.write_text(
        "#!/bin/sh\n"
        "test -t 0 && test -t 1 || exit 9\n"
        'printf "written in the editor\\n" > "$1"\n'
    )
    editor.chmod(0o755)
    env = served.env | {"EDITOR": str(editor), "VISUAL": str(editor)}
    code, seen = _on_a_terminal([*TRACED, "note", "add", served.client], env)
    seen, imported = _split(seen)
    assert b"typer" not in imported
    assert code == 0, seen
    assert b"added progress note" in seen
    note = seen.split(b"added progress note ")[1].split()[0].decode()
    shown = subprocess.run(
        [sys.executable, "-X", "importtime", CONFVAULT, "note", "show", note],
        env=served.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0
    assert "written in the editor" in shown.stdout
