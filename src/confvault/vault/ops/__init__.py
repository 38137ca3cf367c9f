"""The operations on an open vault: functions over a ``Session``, one module per job.

A module is imported when first used as ``ops.NAME`` (PEP 562), so that a
command loads only the operations it runs (``note add`` needs no rotation,
export or grants): the start of every command stays short.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what ``__getattr__`` gives, as the type checker sees it
    from confvault.vault.ops import (
        audit,
        clients,
        compartments,
        custody,
        export,
        export_sinks,
        grants,
        migrate,
        notes,
        reading,
        rekey,
        requests,
        retention,
        rotation,
        status,
        unlocking,
    )

__all__ = [
    "audit",
    "clients",
    "compartments",
    "custody",
    "export",
    "export_sinks",
    "grants",
    "migrate",
    "notes",
    "reading",
    "rekey",
    "requests",
    "retention",
    "rotation",
    "status",
    "unlocking",
]
_MODULES = frozenset(__all__)


def __getattr__(name: str) -> ModuleType:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")
