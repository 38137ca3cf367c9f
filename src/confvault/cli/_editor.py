"""Writing note text in ``$EDITOR`` without plaintext touching a shared disk.

The temporary file lives in a private (0700) directory on a RAM-backed file
system ($XDG_RUNTIME_DIR, /run/user/UID or /dev/shm), is created 0600, and is
removed afterwards. Where no RAM-backed location exists the command refuses,
unless the user passes --insecure-tmp. The editor's environment carries no
confvault passphrase variables.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from confvault.cli import _secrets
from confvault.errors import ConfvaultError, UnsafeInputError

_RAM_FS = {"tmpfs", "ramfs"}


def _fs_type(path: Path) -> str | None:
    best, kind = "", None
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if (
            len(parts) >= 3
            and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/"))
            and len(parts[1]) >= len(best)
        ):
            best, kind = parts[1], parts[2]
    return kind


def private_ram_dir(candidates: list[str] | None = None) -> Path | None:
    """A RAM-backed directory to make a private one in, or None."""
    if candidates is None:
        candidates = [
            os.environ.get("XDG_RUNTIME_DIR") or "",
            f"/run/user/{os.getuid()}",
            "/dev/shm",  # noqa: S108 - a private 0700 directory is made inside
        ]
    for candidate in candidates:
        if (
            candidate
            and Path(candidate).is_dir()
            and _fs_type(Path(candidate)) in _RAM_FS
        ):
            return Path(candidate)
    return None


def edit(
    initial: str,
    *,
    insecure_tmp: bool = False,
    suffix: str = ".md",
    candidates: list[str] | None = None,
) -> bytes:
    """Open ``$EDITOR`` (or ``$VISUAL``, else ``vi``) on ``initial``; return the text."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    base = private_ram_dir(candidates)
    if base is None and not insecure_tmp:
        raise UnsafeInputError(
            "no private RAM-backed directory for the editor's file; write the note with "
            "--file/stdin, or pass --insecure-tmp to use the disk's temporary directory"
        )
    workdir = Path(tempfile.mkdtemp(prefix="confvault-", dir=base))
    os.chmod(workdir, 0o700)
    path = workdir / f"note{suffix}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(initial)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in (_secrets.ENV_PASSPHRASE, _secrets.ENV_PASSPHRASE_FILE)
        }
        args = [*shlex.split(editor), str(path)]
        if shutil.which(args[0]) is None:
            raise ConfvaultError(f"the editor {args[0]!r} was not found; set $EDITOR")
        done = subprocess.run(args, env=env, check=False)  # noqa: S603 - the user's editor
        if done.returncode != 0:
            raise ConfvaultError(
                f"the editor exited with status {done.returncode}; nothing saved"
            )
        return path.read_bytes()
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        with contextlib.suppress(OSError):
            workdir.rmdir()
