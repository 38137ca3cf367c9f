"""The owner's root index, sealed as a small top document and client buckets.

The top document (``confvault/root/v2``) holds the settings, the grants and,
for each of up to 64 buckets, its object name and age file key; each bucket
(``confvault/clients/v1``) holds the clients whose ID starts with one of its
four two-digit prefixes (bucket ``a4``: ``a4``-``a7``). A note add changes
one client, so a write re-seals that client's bucket and the top document
only: the cost of a write no longer grows with the number of clients. All
are sealed to the owner key and padded like every sealed document; the kept
file keys let a reader open 64 buckets without 64 X25519 unwraps.

A version 1 root (every client inline) is still read; the next write turns
it into version 2.

Callers get one ``RootRecord`` (a value: a change is a new record);
``write`` finds the buckets that changed by comparing each bucket's clients,
as documents, with those it was read or last written with.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from confvault import age
from confvault.errors import AgeError, IntegrityError
from confvault.vault.model.root import ROOT_V1, ROOT_V2, ClientRecord, RootRecord
from confvault.vault.store import sealing
from confvault.vault.store.documents import JSONObject, JSONValue

if TYPE_CHECKING:
    from confvault.vault.store.transaction import Transaction

__all__ = [
    "BUCKET_FORMAT",
    "ROOT_V1",
    "ROOT_V2",
    "Buckets",
    "label_of",
    "read",
    "write",
]

BUCKET_FORMAT = "confvault/clients/v1"
_HEX_PAIR = re.compile(r"[0-9a-f]{2}")


def label_of(client_id: str) -> str:
    """The bucket of a client: its ID's first byte with the two low bits cleared."""
    if not _HEX_PAIR.match(client_id):
        raise IntegrityError("a client ID is not hexadecimal")
    return f"{int(client_id[:2], 16) & 0xFC:02x}"


@dataclass
class Buckets:
    """What the vault holds now: bucket label -> (object name, its clients as
    sealed, as documents), each bucket's file key (base64), and the client
    records read from or written to each (a root that still holds those
    very records has not changed that bucket: records are values)."""

    sealed: dict[str, tuple[str, JSONObject]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    records: dict[str, dict[str, ClientRecord]] = field(default_factory=dict)

    @property
    def objects(self) -> set[str]:
        return {digest for digest, _ in self.sealed.values()}


class ObjectSource(Protocol):
    """Where sealed objects are read by name (a vault's ``ObjectStore``)."""

    def get(self, digest: str) -> bytes: ...


def _parse(plain: bytes, formats: Sequence[str], what: str) -> JSONObject:
    try:
        doc = json.loads(plain)
    except ValueError as err:  # includes a UnicodeDecodeError
        raise IntegrityError(f"the {what} is malformed") from err
    if not isinstance(doc, dict) or doc.get("format") not in formats:
        raise IntegrityError(f"the {what} has the wrong format")
    return doc


def _bucket_entry(entry: JSONValue) -> tuple[str, str]:
    """A top document's entry for one bucket: (object name, file key text).

    ``TypeError`` or ``KeyError`` when it is not an object of two strings.
    """
    if not isinstance(entry, dict):
        raise TypeError("the bucket entry is not an object")
    digest, file_key = entry["object"], entry["file_key"]
    if not isinstance(digest, str) or not isinstance(file_key, str):
        raise TypeError("the bucket entry's object or file key is not text")
    return digest, file_key


def read(
    store: ObjectSource, identity: age.Identity, digest: str, vault_id: str
) -> tuple[RootRecord, Buckets]:
    """The root of this vault, and its buckets as sealed now."""
    top = _parse(
        age.decrypt(store.get(digest), [identity]), (ROOT_V1, ROOT_V2), "root index"
    )
    if top.get("vault") != vault_id:
        raise IntegrityError("the root index belongs to another vault")
    if top["format"] == ROOT_V1:
        # every client inline: all buckets are new
        return RootRecord.from_doc(top), Buckets()
    clients: dict[str, ClientRecord] = {}
    buckets = Buckets()
    named = top.pop("buckets", None)
    if not isinstance(named, dict):
        raise IntegrityError("the root index names no client buckets")
    for label, entry in sorted(named.items()):
        try:
            bucket, key_text = _bucket_entry(entry)
            file_key = base64.b64decode(key_text, validate=True)
            plain = age.decrypt_with_file_key(store.get(bucket), file_key)
        except (KeyError, TypeError, binascii.Error, ValueError, AgeError) as err:
            raise IntegrityError(f"client bucket {label} does not open: {err}") from err
        doc = _parse(plain, (BUCKET_FORMAT,), "client bucket")
        members = doc.get("clients")
        if (
            doc.get("vault") != vault_id
            or doc.get("bucket") != label
            or not isinstance(members, dict)
            or not all(label_of(cid) == label for cid in members)
        ):
            raise IntegrityError(f"client bucket {label} was swapped or altered")
        held = {cid: ClientRecord.from_doc(c, cid) for cid, c in members.items()}
        clients.update(held)
        # never changed: records are values, read from it and not into it
        buckets.sealed[label] = (bucket, members)
        buckets.keys[label] = key_text
        buckets.records[label] = held
    return RootRecord.from_doc(top, clients), buckets


def write(
    txn: Transaction,
    root: RootRecord,
    buckets: Buckets,
    owner: age.Recipient,
    changed: Collection[str] | None = None,
) -> tuple[str, Buckets]:
    """Seal the changed buckets and a new top document; return its name.

    ``changed``, when given, promises that no client outside it was changed,
    added or removed: only their buckets are compared (a note add changes
    one client; comparing every bucket costs O(clients)).
    """
    clients = root.clients
    by_label: dict[str, list[str]] = {}
    if changed is None or not buckets.sealed:  # a v1 root: write every bucket
        for cid in clients:
            by_label.setdefault(label_of(cid), []).append(cid)
        labels = by_label.keys() | buckets.sealed.keys()
    else:
        labels = {label_of(cid) for cid in changed}
        for label in labels:
            before = buckets.sealed.get(label)
            ids = {c for c in changed if label_of(c) == label} | set(
                before[1] if before else ()
            )
            by_label[label] = [c for c in sorted(ids) if c in clients]
    now = Buckets(dict(buckets.sealed), dict(buckets.keys), dict(buckets.records))
    for label in sorted(labels):
        cids = by_label.get(label, [])
        held = buckets.records.get(label)
        if (
            held is not None
            and len(held) == len(cids)
            and all(clients.get(cid) is record for cid, record in held.items())
        ):
            continue  # the very records it was sealed with
        members: JSONObject = {c: clients[c].to_doc() for c in cids}
        before = buckets.sealed.get(label)
        if before is not None and before[1] == members:
            now.records[label] = {c: clients[c] for c in cids}
            continue
        if before is not None:
            txn.retire(before[0])
            del now.sealed[label], now.keys[label]
            now.records.pop(label, None)
        if not members:
            continue
        data = sealing.encode_document(
            {
                "format": BUCKET_FORMAT,
                "vault": root.vault,
                "bucket": label,
                "clients": members,
            }
        )
        sealed, file_key = age.encrypt_keyed(sealing.pad_text(data), [owner])
        now.sealed[label] = (txn.put(sealed), members)
        now.keys[label] = base64.b64encode(file_key).decode("ascii")
        now.records[label] = {c: clients[c] for c in cids}
    top = root.top_doc()
    top["buckets"] = {
        label: {"object": digest, "file_key": now.keys[label]}
        for label, (digest, _) in sorted(now.sealed.items())
    }
    return txn.put_document(top, [owner]), now
