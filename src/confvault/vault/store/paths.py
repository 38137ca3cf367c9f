"""Default locations: the vault (XDG data dir) and this machine's memory of
each vault (XDG state dir, kept by ``store.seen``); the default lock
timeout; and the check of a vault directory before anything is read from it."""

from __future__ import annotations

import os
from pathlib import Path

from confvault.errors import VaultNotFoundError
from confvault.vault.model.policy import DEFAULT_LOCK_TIMEOUT  # noqa: F401 - re-exported
from confvault.vault.store import fs


def check_vault_dir(path: Path) -> None:
    """Refuse a missing, symlinked or shared vault directory, or such a
    directory of the format in it (each opened as a vault is: by descriptor,
    never following a link)."""
    try:
        fs.check_vault_dirs(path)
    except FileNotFoundError as err:
        raise VaultNotFoundError(f"no vault at {path}") from err


def default_vault_path() -> Path:
    """``$XDG_DATA_HOME/confvault/vault`` (``~/.local/share/confvault/vault``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "confvault" / "vault"


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/confvault`` (``~/.local/state/confvault``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "confvault"
