"""Grantee directories: the per-grant view of the clients a grantee key may read,
kept in line on every root write."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from confvault import age
from confvault.vault.model.grant import grant_covers
from confvault.vault.store import transaction
from confvault.vault.store.manifest import canonical

if TYPE_CHECKING:
    from confvault.vault.session.core import Session

GRANTEE_POINTER = "grantee:"  # manifest pointers to grantee directories


GRANTEE_FORMAT = "confvault/grantee/v1"


_DIRECTORY_FIELDS = ("key", "index", "key_created", "notes", "drafts", "attachments")


def sync_grantees(
    s: Session,
    txn: transaction.Transaction,
    root: dict[str, Any],
    changed: Collection[str] | None = None,
) -> None:
    """Reseal each grantee's directory whose content changed; drop stale ones.

    ``changed``: the only clients this write changed (a note written); a
    grant that covers none of them lists nothing new and is passed over
    without rebuilding its directory, which lists every client it covers.
    """
    current = txn.current
    live = {f"{GRANTEE_POINTER}{g['id']}" for g in root.get("grants", [])}
    for name, digest in current.body.pointers.items() if current else []:
        if name.startswith(GRANTEE_POINTER) and name not in live:
            txn.retire(digest)
            txn.point(name, None)
    for grant in root.get("grants", []):
        name = f"{GRANTEE_POINTER}{grant['id']}"
        if (
            changed is not None
            and grant.get("directory")
            and current is not None
            and current.pointer(name)
            and not grant.get("all")
            and not set(changed) & set(grant.get("clients", []))
        ):
            continue
        doc = _directory(s, root, grant)
        digest = hashlib.sha256(canonical(doc)).hexdigest()
        if grant.get("directory") == digest and current and current.pointer(name):
            continue
        recipient = age.parse_recipient(grant["recipient"])
        txn.retire(current.pointer(name) if current else None)
        txn.point(name, txn.put_document(doc, [recipient]))
        grant["directory"] = digest


def _directory(
    s: Session, root: dict[str, Any], grant: dict[str, Any]
) -> dict[str, Any]:
    clients = {}
    for cid, client in root["clients"].items():
        comps = {
            name: {k: entry[k] for k in _DIRECTORY_FIELDS if k in entry}
            for name, entry in client["compartments"].items()
            if grant_covers(grant, cid, name)
        }
        if comps:
            clients[cid] = {
                "name": client["name"],
                "created": client["created"],
                "compartments": comps,
            }
    return {
        "format": GRANTEE_FORMAT,
        "vault": root["vault"],
        "grant": grant["id"],
        "label": grant["label"],
        "clients": clients,
        # so the grantee's reads can be logged in the audit inbox, sealed to the owner
        "owner_recipient": str(s.require_owner().recipient),
    }
