"""Where the agents' sockets live: one private directory per user.

``$XDG_RUNTIME_DIR/confvault`` when the runtime directory exists, is ours and
is private (mode 0700, as systemd makes it); otherwise ``/tmp/confvault-UID``.
Either is created 0700 and refused unless it is a real directory (no link)
owned by this user and closed to everyone else. One socket per vault, named
by a hash of the vault directory's real path, beside its lock file (two
unlocks of one vault take turns on it).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from confvault.errors import AgentError

SOCKET_SUFFIX = ".sock"
LOCK_SUFFIX = ".lock"


def runtime_dir() -> Path:
    """The directory of this user's agent sockets (not created)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and _private(Path(base), must_exist=True):
        return Path(base) / "confvault"
    return Path("/tmp") / f"confvault-{os.getuid()}"  # noqa: S108 - checked, 0700


def ensure_runtime_dir() -> Path:
    """The runtime directory, created 0700 if missing; AgentError if unsafe."""
    path = runtime_dir()
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as err:
        raise AgentError(f"cannot create {path}: {err.strerror}") from err
    if not _private(path, must_exist=True):
        raise AgentError(
            f"{path} is not a private directory of this user (a link, another "
            "owner, or open to others): no agent socket goes there"
        )
    return path


def checked_runtime_dir() -> Path | None:
    """The runtime directory if it exists and is safe, else None (no agent)."""
    path = runtime_dir()
    return path if _private(path, must_exist=True) else None


def vault_key(vault: Path) -> str:
    """The name of a vault's socket: a hash of its directory's real path."""
    real = os.path.realpath(vault)
    return hashlib.sha256(os.fsencode(real)).hexdigest()[:32]


def socket_path(directory: Path, vault: Path) -> Path:
    return directory / (vault_key(vault) + SOCKET_SUFFIX)


def lock_path(directory: Path, vault: Path) -> Path:
    return directory / (vault_key(vault) + LOCK_SUFFIX)


def sockets(directory: Path) -> list[Path]:
    """Every agent socket in ``directory`` (for ``lock --all``)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [directory / n for n in names if n.endswith(SOCKET_SUFFIX)]


def _private(path: Path, *, must_exist: bool) -> bool:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return not must_exist
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )
