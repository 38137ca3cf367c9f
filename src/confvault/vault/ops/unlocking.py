"""Unlock sessions in the vault: their audit entries (``confvault unlock``,
``lock``, an agent's auto-lock) and their default lifetimes (the root's
settings, ``unlock --remember``)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from confvault.errors import IntegrityError

if TYPE_CHECKING:
    from confvault.vault.session.core import Session

ACTIONS = frozenset(("unlock", "lock", "auto-lock"))


def defaults(s: Session) -> tuple[int | None, int | None]:
    """The vault's default (idle, max) in seconds; None where none is set."""
    with s.reading() as current:
        settings = s.root_record(current).settings
    if settings is None:
        return None, None
    return settings.unlock_idle, settings.unlock_max


def record(
    s: Session,
    action: str,
    details: dict[str, str | int | bool],
    remember: tuple[int, int] | None = None,
) -> None:
    """Commit one entry of an unlock session (``ACTIONS``) to the audit trail;
    with ``remember`` (idle, max), make those the vault's defaults in the
    same commit."""
    if action not in ACTIONS:
        raise ValueError(f"not an unlock session action: {action}")
    with s.writing() as txn:
        if remember is not None:
            root = s.root_record(txn.current)
            if root.settings is None:
                raise IntegrityError("the root index holds no settings")
            idle, most = remember
            settings = replace(root.settings, unlock_idle=idle, unlock_max=most)
            s.write_root(txn, replace(root, settings=settings), changed=())
        s.note_audit(action, None, None, **details)
