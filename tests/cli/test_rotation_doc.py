"""The cron and systemd examples in docs/ROTATION.md run as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from confvault import age
from confvault.vault import Vault
from tests.cli.conftest import PASSPHRASE

DOC = (Path(__file__).parents[2] / "docs" / "ROTATION.md").read_text()
CONFVAULT = str(Path(sys.executable).parent / "confvault")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".config" / "confvault").mkdir(parents=True)
    (home / ".local" / "state" / "confvault").mkdir(parents=True)
    secret = home / ".config" / "confvault" / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    vault, _ = Vault.init(
        home / "records",
        PASSPHRASE.encode(),
        work_factor=10,
        postquantum=False,  # it grants an age1 key
        min_work_factor=10,
        state_dir=home / ".local" / "state" / "confvault",
    )
    vault.add_client("Ann")
    vault.add_note("Ann", b"note")
    vault.grant(
        str(age.X25519Identity.generate().recipient),
        clients=["Ann"],
        label="locum",
        until="2020-01-01",
    )
    return home


def _env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": f"{Path(CONFVAULT).parent}:/usr/bin:/bin",
        "XDG_STATE_HOME": str(home / ".local" / "state"),
    }


def test_cron_line_runs(home: Path) -> None:
    line = next(
        ln
        for ln in re.search(r"```cron\n(.*?)```", DOC, re.DOTALL).group(1).splitlines()
        if ln and not ln.startswith("#")
    )
    command = " ".join(line.split()[5:])
    done = subprocess.run(
        ["/bin/sh", "-c", command], env=_env(home), check=False, timeout=120
    )
    assert done.returncode == 0
    log = (home / ".local" / "state" / "confvault" / "rotate.log").read_text()
    report = json.loads(log[log.index("{") :])
    assert report["outcome"] == "done"
    assert report["revoked_grants"] == ["locum"]
    again = subprocess.run(
        ["/bin/sh", "-c", command], env=_env(home), check=False, timeout=120
    )
    assert again.returncode == 3  # nothing to do


def test_systemd_service_execstart_runs(home: Path) -> None:
    unit = re.search(
        r"confvault-rotate.service`:\n\n```ini\n(.*?)```", DOC, re.DOTALL
    ).group(1)
    fields = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line)
    assert fields["Type"] == "oneshot"
    assert fields["SuccessExitStatus"] == "3"
    env = _env(home)
    key, value = fields["Environment"].split("=", 1)
    env[key] = value.replace("%h", str(home))
    argv = shlex.split(fields["ExecStart"].replace("%h", str(home)))
    argv[0] = shutil.which(argv[0], path=env["PATH"])
    done = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "done"
    timer = re.search(
        r"confvault-rotate.timer`:\n\n```ini\n(.*?)```", DOC, re.DOTALL
    ).group(1)
    assert "OnCalendar=*-*-* 02:30:00" in timer
    assert os.access(argv[0], os.X_OK)
