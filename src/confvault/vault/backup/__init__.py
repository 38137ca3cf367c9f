"""Backups that need no passphrase: create, check and restore, and where they go."""

from confvault.vault.backup.snapshot import BackupResult, create, restore, verify

__all__ = ["BackupResult", "create", "restore", "verify"]
