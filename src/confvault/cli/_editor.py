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
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

from confvault.cli import _secrets
from confvault.errors import ConfvaultError, UnsafeInputError
from confvault.vault.store.hardening import harden_process

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
    harden_process()  # the draft is plaintext: no core dump may hold it
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    base = private_ram_dir(candidates)
    if base is None and not insecure_tmp:
        raise UnsafeInputError(
            "no private RAM-backed directory for the editor's file; write the note with "
            "--file/stdin, or pass --insecure-tmp to use the disk's temporary directory"
        )
    remove_stale(Path(base or tempfile.gettempdir()))
    workdir = Path(tempfile.mkdtemp(prefix=_prefix(os.getpid()), dir=base))
    os.chmod(workdir, 0o700)
    path = workdir / f"note{suffix}"
    previous = {sig: signal.signal(sig, _interrupted) for sig in _CLEANUP_SIGNALS}
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
        status = _run_editor(args, env)
        if status != 0:
            raise ConfvaultError(
                f"the editor exited with status {status}; nothing saved"
            )
        return path.read_bytes()
    finally:
        # The whole private directory goes: the draft and whatever the editor
        # kept beside it (a swap or backup file holds the same plaintext).
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_editor(args: list[str], env: dict[str, str]) -> int:
    """Run the editor; if confvault is stopped meanwhile, stop the editor too
    (politely first, so it can remove its own swap file) before cleaning up."""
    editor = subprocess.Popen(args, env=env)  # noqa: S603 - the user's editor
    try:
        return editor.wait()
    except BaseException:
        editor.terminate()
        try:
            editor.wait(timeout=2)
        except subprocess.TimeoutExpired:
            editor.kill()
            editor.wait()
        raise


# SIGINT already arrives as KeyboardInterrupt; these would otherwise end the
# process without running the cleanup above.
_CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the finally removes the draft; exit 130


def _prefix(pid: int) -> str:
    return f"confvault-edit-{os.getuid()}-{pid}-"


def remove_stale(base: Path) -> int:
    """Remove draft directories that a crashed (killed) edit left in ``base``.

    Only a real directory (not a link) named with our prefix, owned by us,
    private (0700), whose process is gone, and holding nothing but regular
    files (the draft, an editor's swap or backup file) is removed, file by
    file relative to its descriptor. Anything else is left alone.
    """
    mine = f"confvault-edit-{os.getuid()}-"
    try:
        base_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return 0
    removed = 0
    try:
        for name in os.listdir(base_fd):
            pid_text = name[len(mine) :].partition("-")[0]
            if (
                name.startswith(mine)
                and pid_text.isdigit()
                and not _alive(int(pid_text))
            ):
                removed += _remove_draft_dir(base_fd, name)
    finally:
        os.close(base_fd)
    return removed


def _remove_draft_dir(base_fd: int, name: str) -> int:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=base_fd)
    except OSError:
        return 0
    try:
        entries = os.listdir(fd)
        info = os.fstat(fd)
        if (
            info.st_uid != os.getuid()
            or info.st_mode & 0o077
            or not all(
                stat.S_ISREG(os.stat(e, dir_fd=fd, follow_symlinks=False).st_mode)
                for e in entries
            )
        ):
            return 0
        for entry in entries:
            os.unlink(entry, dir_fd=fd)
        os.rmdir(name, dir_fd=base_fd)
    except OSError:
        return 0
    finally:
        os.close(fd)
    return 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
