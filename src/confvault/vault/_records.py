"""The facade's methods for the record's lifetime: retention, legal hold and
records requests (``Vault`` inherits them; issue 18)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from confvault.vault import ops
from confvault.vault.model.requests import RequestInfo
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

    def open_request(
        self,
        client: str,
        received: str,
        *,
        by: str | None = None,
        due_days: int | None = None,
        tz: dt.tzinfo | None = None,
    ) -> RequestInfo:
        """Record a records request received on ``received``: its clock starts."""
        return ops.requests.open_request(
            self.session, client, received, by=by, due_days=due_days, tz=tz
        )

    def requests(
        self, *, closed: bool = False, tz: dt.tzinfo | None = None
    ) -> list[RequestInfo]:
        """Open records requests (with ``closed``, every one), by due date."""
        return ops.requests.requests(self.session, closed=closed, tz=tz)

    def close_request(
        self,
        ref: str,
        outcome: str,
        *,
        export: str | None = None,
        tz: dt.tzinfo | None = None,
    ) -> RequestInfo:
        """Record a request's outcome, which closes it."""
        return ops.requests.close_request(
            self.session, ref, outcome, export=export, tz=tz
        )

    def check_request(self, ref: str, client: str) -> str:
        """The ID of ``client``'s open request ``ref``; an error otherwise."""
        return ops.requests.check_open(self.session, ref, client)

    def set_request_days(self, days: int) -> int:
        """The days a new records request is due in, unless told otherwise."""
        return ops.requests.set_default_days(self.session, days)

    def records_status(
        self, *, tz: dt.tzinfo | None = None
    ) -> ops.requests.RecordsStatus:
        """Clients due under retention, and open and overdue records requests."""
        return ops.requests.records_status(self.session, tz=tz)
