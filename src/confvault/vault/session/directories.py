"""Grantee directories: the per-grant view of the clients a grantee key may read,
kept in line on every root write."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import replace
from typing import TYPE_CHECKING

from confvault import age
from confvault.vault.model.directory import GRANTEE_FORMAT, GranteeDirectory
from confvault.vault.model.grant import Grant
from confvault.vault.model.root import RootRecord
from confvault.vault.store import transaction
from confvault.vault.store.manifest import canonical

if TYPE_CHECKING:
    from confvault.vault.session.core import Session

__all__ = ["GRANTEE_FORMAT", "GRANTEE_POINTER", "sync_grantees"]

GRANTEE_POINTER = "grantee:"  # manifest pointers to grantee directories


def sync_grantees(
    s: Session,
    txn: transaction.Transaction,
    root: RootRecord,
    changed: Collection[str] | None = None,
) -> RootRecord:
    """Reseal each grantee's directory whose content changed; drop stale ones.
    Returns ``root`` with each grant's new directory hash.

    ``changed``: the only clients this write changed (a note written); a
    grant that covers none of them lists nothing new and is passed over
    without rebuilding its directory, which lists every client it covers.
    """
    current = txn.current
    live = {f"{GRANTEE_POINTER}{g.id}" for g in root.grants}
    for name, digest in current.body.pointers.items() if current else []:
        if name.startswith(GRANTEE_POINTER) and name not in live:
            txn.retire(digest)
            txn.point(name, None)
    grants = []
    for grant in root.grants:
        grants.append(grant)
        name = f"{GRANTEE_POINTER}{grant.id}"
        if (
            changed is not None
            and grant.directory
            and current is not None
            and current.pointer(name)
            and not grant.all_clients
            and not set(changed) & set(grant.clients)
        ):
            continue
        doc = _directory(s, root, grant).to_doc()
        digest = hashlib.sha256(canonical(doc)).hexdigest()
        if grant.directory == digest and current and current.pointer(name):
            continue
        recipient = age.parse_recipient(grant.recipient)
        txn.retire(current.pointer(name) if current else None)
        txn.point(name, txn.put_document(doc, [recipient]))
        grants[-1] = replace(grant, directory=digest)
    return root.with_grants(tuple(grants))


def _directory(s: Session, root: RootRecord, grant: Grant) -> GranteeDirectory:
    # so the grantee's reads can be logged in the audit inbox, sealed to the owner
    return GranteeDirectory.of(root, grant, str(s.require_owner().recipient))
