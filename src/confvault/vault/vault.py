"""``Vault``: the facade the CLI calls (see ``_core``, ``clients``, ``notebook``).

vault, recovery_key = Vault.init(path, passphrase)
vault = Vault.open(path, passphrase=passphrase)
client = vault.add_client("A. Client")
note = vault.add_note(client.id, b"Session went well.", kind="progress")
for info in vault.notes(client.id):
    print(vault.note(info.id).body)
"""

from __future__ import annotations

from confvault.vault._core import VaultCore
from confvault.vault.access import AccessMixin
from confvault.vault.audit import AuditMixin
from confvault.vault.clients import ClientsMixin
from confvault.vault.notebook import NotesMixin
from confvault.vault.records_out import RecordsMixin


class Vault(RecordsMixin, AuditMixin, AccessMixin, NotesMixin, ClientsMixin, VaultCore):
    """An open vault. Create with ``Vault.init`` or ``Vault.open``."""


__all__ = ["Vault"]
