"""The vault domain: sealed records on disk. No terminal, no prints, no exits."""

from confvault.vault.vault import Vault

__all__ = ["Vault"]
