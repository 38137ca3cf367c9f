"""Which synced device this machine is, for one vault (read by the audit
trail: each entry names the device that wrote it).

The sync layer (``confvault.sync.state``) owns the file and writes it:
``$XDG_STATE_HOME/confvault/sync/<vault id>.json``; the vault only reads its
``device_id`` and ``device_name``. A vault never connected has no file, and
its entries name no device.
"""

from __future__ import annotations

import json
from pathlib import Path

from confvault.errors import SyncError

SYNC_DIR = "sync"


def state_path(state_dir: Path, vault_id: str) -> Path:
    """The sync state of ``vault_id`` on this device."""
    if not vault_id.isalnum():
        raise SyncError("malformed vault id")
    return state_dir / SYNC_DIR / f"{vault_id}.json"


def this_device(state_dir: Path, vault_id: str) -> tuple[str, str] | None:
    """``(device ID, device name)`` of this machine for the vault, or None
    when it is not connected (or its state cannot be read: ``sync`` says so)."""
    try:
        doc = json.loads(state_path(state_dir, vault_id).read_text(encoding="utf-8"))
        device_id, name = doc["device_id"], doc["device_name"]
    except (OSError, ValueError, KeyError, TypeError, SyncError):
        return None
    if not isinstance(device_id, str) or not isinstance(name, str):
        return None
    return device_id, name
