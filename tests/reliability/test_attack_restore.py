"""Issue 13: a restore into a directory someone else can write (a sync folder),
from a stream that someone paces (a backup host).

Each test runs the real CLI as a subprocess reading a real pipe; the test
holds the stream back, plants a real symlink in the target meanwhile, then
lets the stream go on. The restore must write nothing outside the target,
refuse what appeared, and leave behind what it did not make.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

PAYLOAD = b"echo PWNED-by-restore > /tmp/pwned\n"


def _evil_tar() -> bytes:
    """A tar whose one member is a shard named by its own hash (it passes the
    member checks) holding a shell script."""
    name = f"shards/{hashlib.sha256(PAYLOAD).hexdigest()}"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(PAYLOAD), 0o600
        tar.addfile(info, io.BytesIO(PAYLOAD))
    return out.getvalue()


def _stalled_restore(tmp_path: Path, target: Path) -> subprocess.Popen[bytes]:
    """``backup restore - target``, its stdin a pipe the test holds."""
    return subprocess.Popen(
        [sys.executable, "-m", "confvault", "backup", "restore", "-", str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / "xdg")),
    )


def _wait_for(path: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not path.is_dir():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _release(proc: subprocess.Popen[bytes], data: bytes) -> tuple[int, str]:
    _, err = proc.communicate(data, timeout=60)
    return proc.returncode, err.decode()


def test_a_symlink_planted_in_a_new_target_during_a_stall_is_refused(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "home" / ".bashrc.d"
    elsewhere.mkdir(parents=True)
    target = tmp_path / "sync" / "vault-restored"
    proc = _stalled_restore(tmp_path, target)
    _wait_for(target, proc)
    (target / "shards").symlink_to(elsewhere)  # the attacker, during the stall

    code, err = _release(proc, _evil_tar())

    assert list(elsewhere.iterdir()) == []  # nothing written outside the target
    assert code == 1, err
    assert f"{target}/shards appeared in the target" in err
    assert "Traceback" not in err
    # what the restore made is gone; what it did not make is left alone
    assert sorted(p.name for p in target.iterdir()) == ["shards"]
    assert (target / "shards").is_symlink()
    assert os.readlink(target / "shards") == str(elsewhere)


def test_a_symlink_planted_in_an_empty_target_during_a_stall_is_refused(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "sync"
    target.mkdir(mode=0o755)
    target.chmod(0o755)
    proc = _stalled_restore(tmp_path, target)
    deadline = time.monotonic() + 30
    while target.stat().st_mode & 0o777 != 0o700:  # the restore has taken it
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    (target / "shards").symlink_to(elsewhere)

    code, err = _release(proc, _evil_tar())

    assert list(elsewhere.iterdir()) == []
    assert code == 1, err
    assert f"{target}/shards appeared in the target" in err
    assert sorted(p.name for p in target.iterdir()) == ["shards"]
    assert target.stat().st_mode & 0o777 == 0o755  # given back as it was
