"""Opening the vault's sealed records from its objects, with every check
that makes them trusted: a client key file, a compartment index (is it this
client's?), a note (its index entry, body hash and signature), an
attachment streamed, the audit chain.

Pure functions over an ``ObjectSource`` (a vault's ``ObjectStore``), used by
the operations (``vault.ops``) and the deep checker (``vault.check.deep``)
alike; the operations add the session (its keys, its lock) around them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import BinaryIO, Protocol

from confvault import age
from confvault.errors import DamagedNoteError, IntegrityError
from confvault.vault.model import note_format as fmt
from confvault.vault.model.audit import Segment
from confvault.vault.model.index import CompartmentIndex, NoteEntry
from confvault.vault.model.root import CompartmentEntry
from confvault.vault.store import sealing


class ObjectSource(Protocol):
    """Where sealed objects are read by name, each checked against its hash."""

    def get(self, digest: str) -> bytes: ...

    def open_checked(self, digest: str) -> BinaryIO: ...


def open_client_key(
    source: ObjectSource, digest: str, identities: Sequence[age.Identity]
) -> age.AnyIdentity:
    """The compartment key in the key file ``digest``."""
    return sealing.open_key_file(source.get(digest), identities)


def open_index(
    source: ObjectSource,
    entry: CompartmentEntry,
    key: age.AnyIdentity,
    client_id: str,
    compartment: str,
) -> CompartmentIndex:
    """The compartment's index, refused unless it is this client's compartment's."""
    doc = sealing.open_document(source.get(entry.index), [key], "index")
    if doc.get("client") != client_id or doc.get("compartment") != compartment:
        raise IntegrityError(f"the index of client {client_id[:8]} was swapped")
    what = f"{compartment} index of client {client_id[:8]}"
    return CompartmentIndex.from_doc(doc, what)


def require_intact(entry: NoteEntry) -> None:
    """``DamagedNoteError`` for a note a rotation recorded as damaged."""
    if entry.damaged is not None:
        raise DamagedNoteError(
            f"note {entry.id} is damaged: its object was unreadable when its "
            f"compartment key was rotated ({entry.damaged}); its entry is kept, "
            "its text is no longer in the vault"
        )


def read_note(
    source: ObjectSource,
    key: age.AnyIdentity,
    entry: NoteEntry,
    client_id: str,
    signers: set[str],
    *,
    check_signature: bool = True,
    by_identity: bool = False,
) -> tuple[fmt.NoteMeta, bytes]:
    """Decrypt a note and check it is the one the index names.

    The object's hash chains up to the signed manifest, so its content is
    authenticated; ``check_signature`` also checks the author signature by
    one of ``signers`` (done by show, sign, deep verify; skipped by search
    for speed). ``by_identity`` opens it with the client key, as stock age
    would, instead of the file key kept in the index.
    """
    require_intact(entry)
    data = source.get(entry.object)
    plain = fmt.open_object(data, entry, key, by_identity=by_identity)
    meta, body = fmt.parse_recorded(plain, entry.to_doc())
    if meta.client != client_id:
        raise IntegrityError(f"note {entry.id} does not match its index entry")
    if not fmt.body_matches(meta, body):
        raise IntegrityError(f"note {entry.id} body does not match its signed hash")
    if not check_signature:
        return meta, body
    status = fmt.signature_status(meta, signers)
    if status not in ("valid", "draft"):
        raise IntegrityError(f"note {entry.id} has an {status} signature; not shown")
    return meta, body


def stream_attachment(
    source: ObjectSource,
    key: age.AnyIdentity,
    entry: NoteEntry,
    signers: set[str],
    dst: age.Writer,
) -> None:
    """Stream an attachment's file into ``dst``, checking its signature, that
    the object is the one the index names and that the file matches its
    signed hash (``IntegrityError`` after the last chunk if it does not)."""
    require_intact(entry)
    meta = entry.meta
    if fmt.signature_status(meta, signers) != "valid":
        raise IntegrityError(f"note {entry.id} has an invalid signature")
    with source.open_checked(entry.object) as src:
        head = bytearray()
        sha = hashlib.sha256()
        size = 0
        for chunk in age.decrypt_chunks(src, [key]):
            if b"\n" not in head:
                head += chunk
                if b"\n" not in head:
                    continue
                line, _, rest = bytes(head).partition(b"\n")
                if fmt.parse_header(line) != meta:
                    raise IntegrityError(f"note {entry.id} does not match its index")
                chunk = memoryview(rest)
            sha.update(chunk)
            size += len(chunk)
            dst.write(chunk)
    if size != meta.body_size or sha.hexdigest() != meta.body_sha256:
        raise IntegrityError(f"note {entry.id} body does not match its signed hash")


def open_segment(data: bytes, identities: Sequence[age.Identity]) -> Segment:
    return Segment.from_doc(sealing.open_document(data, identities, "audit"))


def audit_chain(
    source: ObjectSource, identities: Sequence[age.Identity], head: str | None
) -> list[tuple[str, Segment]]:
    """Every segment of the chain ending at ``head``, oldest first."""
    out = []
    seen: set[str] = set()
    digest = head
    while digest is not None:
        if digest in seen:
            raise IntegrityError("the audit chain loops")
        seen.add(digest)
        segment = open_segment(source.get(digest), identities)
        out.append((digest, segment))
        digest = segment.previous
    return list(reversed(out))
