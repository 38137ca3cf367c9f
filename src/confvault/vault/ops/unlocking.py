"""The audit entries of unlock sessions (``confvault unlock``, ``lock``, and
an agent's auto-lock): who held the owner keys unlocked, and until when."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confvault.vault.session.core import Session

ACTIONS = frozenset(("unlock", "lock", "auto-lock"))


def record(s: Session, action: str, details: dict[str, str | int | bool]) -> None:
    """Commit one entry of an unlock session (``ACTIONS``) to the audit trail."""
    if action not in ACTIONS:
        raise ValueError(f"not an unlock session action: {action}")
    with s.writing():
        s.note_audit(action, None, None, **details)
