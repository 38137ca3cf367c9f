"""The facade's methods over custodians (issue 18; ``Vault`` inherits them):
who they are, the split of the executor key among them, and the owner's
cancelling of their notice. Opening by shares is ``Vault.open_by_custodians``."""

from __future__ import annotations

import datetime as dt

from confvault.vault import ops
from confvault.vault.model.custody import (
    CustodianInfo,
    CustodyStatus,
    Notice,
    SealedShare,
    SplitReport,
)
from confvault.vault.session.core import Session


class CustodyMethods:
    session: Session

    def add_custodian(self, name: str, recipient: str) -> CustodianInfo:
        """Record a custodian (a share comes with the next split)."""
        return ops.custody.add(self.session, name, recipient)

    def custodians(self) -> list[CustodianInfo]:
        """Every custodian, and whether the latest split gave them a share."""
        return ops.custody.custodians(self.session)

    def remove_custodian(self, name: str) -> CustodianInfo:
        """Remove a custodian; their share counts until the next split."""
        return ops.custody.remove(self.session, name)

    def split_custody(
        self,
        threshold: int,
        deliver: ops.custody.Deliver,
        notice: dt.timedelta | None = None,
    ) -> SplitReport:
        """A new executor key split among the custodians, ``threshold`` of N;
        ``deliver`` takes the share files before the one commit."""
        return ops.custody.split(self.session, threshold, notice, deliver)

    def cancel_custodian_notice(self) -> Notice | None:
        """Cancel the custodians' running notice (None: none was running)."""
        return ops.custody.cancel(self.session)

    def custody_status(self) -> CustodyStatus | None:
        """The custodians as ``status`` shows them (None: never any)."""
        return ops.custody.custody_status(self.session)


__all__ = ["CustodyMethods", "SealedShare"]
