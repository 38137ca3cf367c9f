"""This device's sync state, outside the vault (reached by path).

``$XDG_STATE_HOME/confvault/sync/<vault id>.git`` is the device's bare git
repository; ``<vault id>.json`` beside it holds the device (ID and name),
the vault directory it syncs, and the last sync (time, device, commit,
generation). The vault directory itself never holds anything of git: its
layout check would refuse it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from confvault.errors import DeviceNameError, SyncError
from confvault.vault.store import devices

DEVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SYNCED_REF = "refs/confvault/synced"  # the last commit both sides agreed on
REMOTE_REF = "refs/confvault/remote"  # the remote's head, as last fetched
OUTGOING_REF = "refs/confvault/outgoing"  # this device's state, to push
BRANCH = "confvault"  # the remote's branch


def check_device_name(name: str) -> str:
    if not DEVICE_NAME.fullmatch(name):
        raise DeviceNameError(
            "a device name is 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def default_device_name() -> str:
    """The host name, cut to the device-name grammar (else ``device``)."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._")[:64]
    return host if DEVICE_NAME.fullmatch(host) else "device"


@dataclass
class LastSync:
    time: str
    device: str
    commit: str
    generation: int


@dataclass
class DeviceState:
    """What this device knows of its sync of one vault."""

    vault_id: str
    vault: str  # the real path of the vault directory synced
    device_id: str
    device_name: str
    last: LastSync | None = None
    # The highest generation of a manifest this device verified on the remote.
    remote_generation: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def to_doc(self) -> dict[str, object]:
        doc = asdict(self)
        doc.pop("extra")
        return doc


def sync_dir(state_dir: Path) -> Path:
    return state_dir / devices.SYNC_DIR


def repo_path(state_dir: Path, vault_id: str) -> Path:
    if not vault_id.isalnum():
        raise SyncError("malformed vault id")
    return sync_dir(state_dir) / f"{vault_id}.git"


def _state_path(state_dir: Path, vault_id: str) -> Path:
    return devices.state_path(state_dir, vault_id)


def new_device(vault_id: str, vault: Path, name: str) -> DeviceState:
    return DeviceState(
        vault_id, os.path.realpath(vault), secrets.token_hex(8), check_device_name(name)
    )


def load(state_dir: Path, vault_id: str) -> DeviceState | None:
    """The device's state for the vault, None when it is not connected."""
    path = _state_path(state_dir, vault_id)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        last = doc.get("last")
        return DeviceState(
            vault_id=str(doc["vault_id"]),
            vault=str(doc["vault"]),
            device_id=str(doc["device_id"]),
            device_name=check_device_name(str(doc["device_name"])),
            last=None
            if last is None
            else LastSync(
                str(last["time"]),
                str(last["device"]),
                str(last["commit"]),
                int(last["generation"]),
            ),
            remote_generation=int(doc.get("remote_generation", 0)),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SyncError(f"this device's sync state ({path}) is unreadable") from err


def save(state_dir: Path, state: DeviceState) -> None:
    """Write the state atomically (temp + fsync + rename)."""
    path = _state_path(state_dir, state.vault_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(state.to_doc(), indent=1).encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SyncError(f"this device's sync state ({path}) cannot be written") from err


def forget(state_dir: Path, vault_id: str) -> None:
    """Remove the device's state and repository (an init that failed)."""
    with contextlib.suppress(OSError):
        _state_path(state_dir, vault_id).unlink()
    shutil.rmtree(repo_path(state_dir, vault_id), ignore_errors=True)


def staging_dir(target: Path) -> Path:
    """Where ``clone`` builds a vault before renaming it onto ``target``."""
    return target.parent / f".{target.name}.confvault-clone"


def prepare_staging(target: Path) -> Path:
    """A fresh, empty 0700 staging directory (a leftover one of an
    interrupted clone is removed first); refuses an existing ``target``."""
    if os.path.lexists(target):
        raise SyncError(f"{target} already exists: clone makes a new vault directory")
    if not target.parent.is_dir():
        raise SyncError(f"{target.parent} is not a directory")
    staging = staging_dir(target)
    if os.path.lexists(staging):
        if staging.is_symlink() or not staging.is_dir():
            raise SyncError(f"{staging} is in the way; remove it")
        shutil.rmtree(staging)
    staging.mkdir(mode=0o700)
    return staging


def discard_staging(staging: Path) -> None:
    """Remove a staging directory (a clone that failed a check)."""
    shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, target: Path) -> None:
    """Rename the finished staging directory onto ``target``, durably."""
    staging.rename(target)
    fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_repo_path(state_dir: Path) -> Path:
    """A fresh name for a repository whose vault is not known yet (clone)."""
    return sync_dir(state_dir) / f"clone-{secrets.token_hex(6)}.git"


def adopt_repo(state_dir: Path, fetched: Path, vault_id: str) -> Path:
    """Move a clone's repository to its vault's name (replacing a leftover
    of an interrupted clone of the same vault)."""
    final = repo_path(state_dir, vault_id)
    shutil.rmtree(final, ignore_errors=True)
    fetched.rename(final)
    return final


def discard_repo(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def sync_status(
    state_dir: Path, vault_id: str, generation: int
) -> dict[str, object] | None:
    """What `status` shows of sync: None when the vault is not connected."""
    device = load(state_dir, vault_id)
    if device is None:
        return None
    last = device.last
    return {
        "device": device.device_name,
        "device_id": device.device_id,
        "last_sync": None if last is None else last.time,
        "last_sync_device": None if last is None else last.device,
        "synced_generation": None if last is None else last.generation,
        "unpushed": last is None or generation != last.generation,
    }
