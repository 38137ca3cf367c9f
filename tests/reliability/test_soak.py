"""A bounded soak: several writers, readers, the rotation job and a backup run
at once. Afterwards every note added is present and readable, the vault
verifies, and every backup taken meanwhile verifies.

CI runs it for CONFVAULT_SOAK_SECONDS (default 30); longer on demand:
    CONFVAULT_SOAK_SECONDS=600 .venv/bin/pytest tests/reliability/test_soak.py
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from confvault.vault import Vault, backup
from tests.vault.conftest import PASSPHRASE

CONFVAULT = str(Path(sys.executable).parent / "confvault")
SECONDS = float(os.environ.get("CONFVAULT_SOAK_SECONDS", "30"))


class Soak:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.state = tmp_path / "xdg"
        self.vault, _ = Vault.init(
            tmp_path / "vault",
            PASSPHRASE,
            work_factor=10,
            postquantum=False,
            min_work_factor=10,
            state_dir=self.state / "confvault",
        )
        secret = tmp_path / "pass"
        secret.write_bytes(PASSPHRASE + b"\n")
        secret.chmod(0o600)
        self.env = dict(
            os.environ, XDG_STATE_HOME=str(self.state), CONFVAULT_LOCK_TIMEOUT="300"
        )
        self.base = [
            CONFVAULT,
            "--vault",
            str(self.vault.root),
            "--passphrase-file",
            str(secret),
        ]
        self.deadline = time.monotonic() + SECONDS
        self.added: dict[str, str] = {}
        self.counts = {"writes": 0, "reads": 0, "rotations": 0, "backups": 0}
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.serial = itertools.count()

    def cli(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self.base, *args],
            input=stdin,
            capture_output=True,
            env=self.env,
            check=False,
        )

    def loop(self, kind: str, step: Callable[[], str | None]) -> None:
        while time.monotonic() < self.deadline:
            error = step()
            with self.lock:
                if error is None:
                    self.counts[kind] += 1
                else:
                    self.errors.append(error)

    def write(self, client: str) -> str | None:
        title = f"{client}-{next(self.serial)}"
        run = self.cli(
            "note", "add", client, "--title", title, stdin=f"{title} body".encode()
        )
        if run.returncode:
            return run.stderr.decode()
        with self.lock:
            self.added[title] = f"{title} body"
        return None

    def read(self) -> str | None:
        run = self.cli("note", "list", "--json")
        return (
            None
            if run.returncode == 0 and isinstance(json.loads(run.stdout), list)
            else run.stderr.decode()
        )

    def rotate(self) -> str | None:
        run = self.cli("rotate", "--all", "--json")
        return None if run.returncode == 0 else run.stderr.decode()

    def backup(self) -> str | None:
        target = self.tmp / f"backup-{next(self.serial)}.tar"
        backup.create(self.vault.root, target, lock_timeout=300)
        report = backup.verify(target)
        target.unlink()
        time.sleep(0.5)
        return None if report.ok else str(report.findings)


def test_soak(tmp_path: Path) -> None:
    soak = Soak(tmp_path)
    clients = ["Ann", "Bob", "Cleo"]
    for name in clients:
        soak.vault.add_client(name)
    jobs = [("writes", lambda c=c: soak.write(c)) for c in clients]
    jobs += [("reads", soak.read), ("rotations", soak.rotate), ("backups", soak.backup)]
    threads = [threading.Thread(target=soak.loop, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 600)
    assert soak.errors == []
    assert all(n > 0 for n in soak.counts.values()), soak.counts
    final = Vault.open(
        soak.vault.root, passphrase=PASSPHRASE, state_dir=soak.state / "confvault"
    )
    bodies = {info.title: final.note(info.id).body.decode() for info in final.notes()}
    assert bodies == soak.added
    assert final.verify(deep=True).findings == ()
    figures = soak.counts | {"seconds": SECONDS, "notes": len(bodies)}
    (Path(os.environ.get("CONFVAULT_SOAK_REPORT", tmp_path / "soak.json"))).write_text(
        json.dumps(figures)
    )
