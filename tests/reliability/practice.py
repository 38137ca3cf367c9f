"""The practice the attack tests start from: a real vault in a temporary
directory, driven by the owner through the real CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PASSPHRASE = "correct horse battery staple"
INTEGRITY = 13


@dataclass
class Practice:
    root: Path
    xdg: Path | None = None  # $XDG_STATE_HOME when not root/xdg

    @property
    def state(self) -> Path:
        return self.xdg or self.root / "xdg"

    @property
    def vault(self) -> Path:
        return self.root / "vault"

    @property
    def canary(self) -> Path:
        return self.root / "canary"

    def run(
        self, *args: str, stdin: str = "", identity: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The CLI as the owner (or, with ``identity``, as a grantee) runs it."""
        source = (
            ["--identity", str(identity)]
            if identity
            else ["--passphrase-file", str(self.root / "pass")]
        )
        argv = [sys.executable, "-m", "confvault", "--vault", str(self.vault)]
        return subprocess.run(
            [*argv, *source, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=dict(os.environ, XDG_STATE_HOME=str(self.state)),
            timeout=120,
            check=False,
        )

    def owner(self, *args: str, stdin: str = "") -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def add(self, client: str, text: str, *extra: str) -> str:
        out = self.owner("note", "add", client, "--json", *extra, stdin=text)
        return str(json.loads(out)["id"])

    def audit_actions(self) -> list[str]:
        out = json.loads(self.owner("audit", "--json"))
        entries = out["entries"] if isinstance(out, dict) else out
        return [e["action"] for e in entries]

    def verify_ok(self) -> None:
        done = self.run("verify")
        assert done.returncode == 0, done.stdout + done.stderr


def start(root: Path, state: Path | None = None) -> Practice:
    """A new vault at ``root``/vault, its passphrase in ``root``/pass."""
    p = Practice(root, state)
    (root / "pass").write_text(PASSPHRASE + "\n")
    (root / "pass").chmod(0o600)
    p.owner(
        "init",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--no-recovery-key",
        "--classic",
    )
    return p
