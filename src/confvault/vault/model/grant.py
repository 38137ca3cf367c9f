"""What a grant covers: a pure rule over the stored grant record."""

from __future__ import annotations

from typing import Any

from confvault.vault.model.note_format import PSYCHOTHERAPY


def grant_covers(grant: dict[str, Any], client_id: str, compartment: str) -> bool:
    """True when ``grant`` lets its key read ``client_id``'s ``compartment``."""
    if compartment == PSYCHOTHERAPY and not grant.get("psychotherapy", False):
        return False
    return bool(grant.get("all")) or client_id in grant.get("clients", [])
