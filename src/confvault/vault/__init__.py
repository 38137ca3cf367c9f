"""The vault domain: sealed records on disk. No terminal, no prints, no exits.

``Vault`` is imported on first use, so that a module of the domain (such as
``backup``, run by a nightly job) loads without the rest of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confvault.vault.vault import Vault

__all__ = ["Vault"]


def __getattr__(name: str) -> type[Vault]:
    if name == "Vault":
        from confvault.vault.vault import Vault

        return Vault
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
