"""The facade's methods for the record's lifetime: retention, legal hold and
records requests (``Vault`` inherits them; issue 18)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from confvault.vault import ops
from confvault.vault.model.results import ClientInfo
from confvault.vault.model.retention import RetentionReport, RetentionRule
from confvault.vault.session.core import Session


class RecordsMethods:
    session: Session

    def set_retention(
        self, rule: RetentionRule | None, client: str | None = None
    ) -> RetentionRule | None:
        """Set (None: clear) the vault's retention rule or a client's override."""
        return ops.retention.set_rule(self.session, rule, client)

    def retention(
        self, *, within: dt.timedelta, tz: dt.tzinfo | None = None
    ) -> RetentionReport:
        """The clients whose records are due, or due within ``within``."""
        return ops.retention.report(self.session, within=within, tz=tz)

    def apply_retention(
        self, *, only: Collection[str] | None = None, tz: dt.tzinfo | None = None
    ) -> ops.retention.RetentionApplied:
        """Shred every client due today (of ``only``, when given)."""
        return ops.retention.apply(self.session, only=only, tz=tz)

    def hold_client(self, client: str, reason: str) -> ClientInfo:
        """Place a legal hold: never due, never shredded."""
        return ops.retention.hold(self.session, client, reason)

    def release_client(self, client: str) -> ClientInfo:
        """Lift a legal hold."""
        return ops.retention.release(self.session, client)

    def set_born(self, client: str, born: str | None) -> ClientInfo:
        """Record (None: forget) a client's date of birth, sealed in their profile."""
        return ops.clients.set_born(self.session, client, born)
