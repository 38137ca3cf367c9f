"""The audit inbox (``audit-inbox/``): audit entries written by grantees,
sealed to the owner, waiting for the owner's next command to fold them in."""

from __future__ import annotations

from confvault.vault.store import layout
from confvault.vault.store.rootfs import Root

INBOX_DIR = layout.INBOX


def names(disk: Root) -> list[str]:
    """Entries waiting in the inbox (a checked directory; exact names only)."""
    return [n for n in disk.names(INBOX_DIR) if layout.INBOX_ENTRY.fullmatch(n)]
