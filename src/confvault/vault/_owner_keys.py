"""The facade's methods over the owner's keys: a new passphrase, new owner
keys, the full re-key, and the audit entries and defaults of unlock sessions
(``Vault`` inherits them; kept here so that vault.py stays one screenful of
one-line calls)."""

from __future__ import annotations

from confvault.vault import ops
from confvault.vault.model import results
from confvault.vault.session.core import Session
from confvault.vault.store.documents import JSONObject


class OwnerKeyMethods:
    session: Session

    def change_passphrase(
        self,
        new_passphrase: bytes,
        *,
        work_factor: int | None = None,
        allow_weak_work_factor: bool = False,
    ) -> results.PassphraseReport:
        """Re-seal only the owner key file with a new passphrase."""
        return ops.rekey.change_passphrase(
            self.session,
            new_passphrase,
            work_factor=work_factor,
            allow_weak_work_factor=allow_weak_work_factor,
        )

    def record_unlock(
        self,
        action: str,
        details: dict[str, str | int | bool],
        remember: tuple[int, int] | None = None,
    ) -> None:
        """Audit an unlock session's start or end (``unlock``, ``lock``,
        ``auto-lock``); ``remember``: new default (idle, max) seconds."""
        ops.unlocking.record(self.session, action, details, remember)

    def unlock_defaults(self) -> tuple[int | None, int | None]:
        """The vault's default unlock (idle, max) in seconds, None if unset."""
        return ops.unlocking.defaults(self.session)

    def rotate_identity(
        self, passphrase: bytes, progress: results.Progress | None = None
    ) -> JSONObject:
        """New owner keys in one commit; client keys re-wrapped to them, not changed."""
        return ops.rekey.rotate_identity(self.session, passphrase, progress).to_json()

    def rekey(
        self,
        passphrase: bytes,
        *,
        passphrase_changed: bool = True,
        work_factor: int | None = None,
        allow_weak_work_factor: bool = False,
        progress: results.Progress | None = None,
    ) -> results.RekeyReport:
        """The full re-key: new owner keys sealed with ``passphrase``, every client key rotated."""
        return ops.rekey.rekey(
            self.session,
            passphrase,
            passphrase_changed=passphrase_changed,
            work_factor=work_factor,
            allow_weak_work_factor=allow_weak_work_factor,
            progress=progress,
        )
