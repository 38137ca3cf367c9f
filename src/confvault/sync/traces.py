"""A vault directory placed in a file-sync folder (Syncthing, Dropbox):
found by the traces such a folder leaves, so that commands refuse to write
there (reads go on). The safe way is ``sync init --folder`` (docs/SYNC.md).
Imported by every write command: standard library only.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from confvault.errors import VaultInSyncFolderError

MARKERS = (".stfolder", ".stignore", ".dropbox", ".dropbox.cache")


def traces(vault: Path) -> str | None:
    """What shows the vault directory itself in a file-sync folder (a
    marker in it or an ancestor, a conflicted copy, a sync tool's temporary
    file), or None."""
    root = Path(os.path.realpath(vault))
    for where in (root, *root.parents):
        for marker in MARKERS:
            if os.path.lexists(where / marker):
                return f"{where / marker} (a file-sync folder)"
    for sub in (root, root / "shards"):
        with contextlib.suppress(OSError):
            for name in os.listdir(sub):
                if (
                    ".sync-conflict-" in name
                    or "conflicted copy" in name
                    or (name.startswith(".syncthing.") and name.endswith(".tmp"))
                ):
                    return f"{sub / name} (a sync tool's file)"
    return None


def refuse_in_sync_folder(vault: Path) -> None:
    """``VaultInSyncFolderError`` when ``traces`` finds one (before a write)."""
    found = traces(vault)
    if found is not None:
        raise VaultInSyncFolderError(
            f"the vault directory is in a file-sync folder ({found}): a sync "
            "tool would overwrite one device's manifest with the other's and "
            "lose notes, so this command does not write; reads go on. Move the "
            "vault out and sync it through the folder with `confvault sync init "
            "--folder DIR`"
        )
