"""The vault domain: sealed records on disk. No terminal, no prints, no exits.

``Vault`` is imported on first use, so that a module of the domain (such as
``backup``, run by a nightly job) loads without the rest of it.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from confvault.vault.vault import Vault

__all__ = ["Vault"]


def __getattr__(name: str) -> Any:
    if name == "Vault":
        from confvault.vault.vault import Vault

        return Vault
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
