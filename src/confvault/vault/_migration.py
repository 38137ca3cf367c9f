"""The facade's methods for changing a vault's key kind (``Vault`` inherits
them; kept here so that vault.py stays one screenful of one-line calls)."""

from __future__ import annotations

from collections.abc import Callable

from confvault.vault import ops
from confvault.vault.model import results
from confvault.vault.session.core import Session


class MigrationMethods:
    session: Session

    def migrate_pq(
        self,
        passphrase: bytes,
        progress: results.Progress | None = None,
        on_switched: Callable[[str | None], None] | None = None,
    ) -> ops.migrate.MigrateReport:
        """Convert a classic vault to post-quantum keys in place, or finish an
        earlier run; ``on_switched`` is told the new recovery key at once."""
        return ops.migrate.migrate_pq(
            self.session, passphrase, progress=progress, on_switched=on_switched
        )
