"""The note format: a sealed age file whose plaintext is one JSON line of
metadata (padded with spaces), a newline, then the note's body.

    {"author":"…","body_sha256":"…","client":"…","kind":"progress",…}␠␠␠␠
    Subjective: …

The author's Ed25519 signature covers every metadata field, including the
body's SHA-256 and size, so a signed note cannot change without detection.
A draft has no signature; signing it creates the locked note. Corrections
are addenda (kind ``addendum``) that point at the original.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields, replace
from typing import TYPE_CHECKING, Protocol

from confvault import age
from confvault.errors import AgeError, IntegrityError
from confvault.vault.store import signing
from confvault.vault.store.documents import JSONObject
from confvault.vault.store.manifest import canonical
from confvault.vault.store.sealing import padded_size

if TYPE_CHECKING:
    from confvault.vault.model.index import NoteEntry

KINDS = ("progress", "psychotherapy", "intake", "addendum", "attachment")
WRITABLE_KINDS = ("progress", "psychotherapy", "intake")
RECORDS = "records"
PSYCHOTHERAPY = "psychotherapy"
MAX_TITLE = 200
MAX_HEADER = 64 * 1024


# Fields of an index entry that say where and how the note is stored, not
# what it is: the object's name and the age file key that opens it, and
# whether the object was found unreadable (``NoteEntry.damaged``).
STORAGE_FIELDS = ("object", "file_key", "damaged", "conflict")


def compartment_of(kind: str) -> str:
    """Psychotherapy notes live in their own compartment, under their own key."""
    return PSYCHOTHERAPY if kind == PSYCHOTHERAPY else RECORDS


@dataclass(frozen=True)
class NoteMeta:
    """Everything about a note but its body. ``signature`` is over the rest."""

    id: str
    client: str
    kind: str
    title: str
    date: str  # when the session took place (ISO 8601)
    created: str  # when the note was written
    status: str  # "draft" or "signed"
    body_size: int
    body_sha256: str
    author: str  # base64 Ed25519 key of the signer ("" for drafts)
    compartment: str = "records"  # records | psychotherapy
    addendum_of: str | None = None
    template: str | None = None
    filename: str | None = None
    signed_at: str | None = None
    signature: str | None = None

    def to_json(self) -> JSONObject:
        return {
            "id": self.id,
            "client": self.client,
            "kind": self.kind,
            "title": self.title,
            "date": self.date,
            "created": self.created,
            "status": self.status,
            "body_size": self.body_size,
            "body_sha256": self.body_sha256,
            "author": self.author,
            "compartment": self.compartment,
            "addendum_of": self.addendum_of,
            "template": self.template,
            "filename": self.filename,
            "signed_at": self.signed_at,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, doc: object) -> NoteMeta:
        """Metadata from a parsed header line or index entry (``IntegrityError``
        unless every field has its type and the values are known ones)."""
        if not isinstance(doc, dict) or not _REQUIRED <= doc.keys() <= _FIELDS:
            raise IntegrityError("note metadata is malformed")
        for key, value in doc.items():
            if not isinstance(value, _TYPES[key]) or isinstance(value, bool):
                raise IntegrityError("note metadata is malformed")
        meta = cls(**doc)
        if (
            meta.kind not in KINDS
            or meta.status not in ("draft", "signed")
            or meta.compartment not in (RECORDS, PSYCHOTHERAPY)
        ):
            raise IntegrityError(f"note {str(meta.id)[:12]} has malformed metadata")
        return meta

    def signed_bytes(self) -> bytes:
        doc = self.to_json()
        del doc["signature"]
        return canonical(doc)


_TYPES: dict[str, type | tuple[type, ...]] = {
    f.name: (
        int
        if f.name == "body_size"
        else str
        if f.default is MISSING
        else (str, type(None))
    )
    for f in fields(NoteMeta)
}
_FIELDS = _TYPES.keys()
_REQUIRED = {f.name for f in fields(NoteMeta) if f.default is MISSING}


class ObjectWriter(Protocol):
    """Where a sealed object goes (a ``Transaction``)."""

    def put(self, data: bytes) -> str: ...


def seal_object(
    txn: ObjectWriter, plaintext: bytes, key: age.AnyIdentity
) -> tuple[str, str]:
    """Seal a note's plaintext to its compartment key as a pending object.

    Returns its storage fields: the object's name, and the age file key that
    opens it, which is kept only in the compartment's index (sealed to the
    same key), so that reading many notes skips one X25519 each.
    """
    sealed, file_key = age.encrypt_keyed(plaintext, [key.recipient])
    return txn.put(sealed), base64.b64encode(file_key).decode()


def open_object(
    data: bytes,
    entry: NoteEntry,
    key: age.AnyIdentity,
    *,
    by_identity: bool = False,
) -> bytes:
    """A note object's plaintext, opened with the kept file key when there is one.

    ``by_identity`` opens it with the compartment key instead, as stock age
    and a recovery would, and then also checks that the kept key opens it.
    """
    encoded = entry.file_key
    if encoded is None:
        return age.decrypt(data, [key])
    try:
        file_key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as err:
        raise IntegrityError(f"note {entry.id} has a malformed file key") from err
    plain = age.decrypt(data, [key]) if by_identity else None
    try:
        opened = age.decrypt_with_file_key(data, file_key)
    except AgeError as err:
        raise IntegrityError(
            f"note {entry.id} does not open with the file key its index keeps"
        ) from err
    if plain is not None and plain != opened:
        raise IntegrityError(f"note {entry.id} opens differently with its file key")
    return opened


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign(
    meta: NoteMeta, author: str, sign_bytes: Callable[[bytes], bytes], signed_at: str
) -> NoteMeta:
    """Lock ``meta``: set author and time, then sign every field."""
    unsigned = replace(
        meta, status="signed", author=author, signed_at=signed_at, signature=None
    )
    return replace(unsigned, signature=signing.b64(sign_bytes(unsigned.signed_bytes())))


def signature_status(meta: NoteMeta, known_signers: set[str]) -> str:
    """ "valid", "draft", "unknown-signer" or "invalid" (metadata only)."""
    if meta.status == "draft":
        return "draft" if meta.signature is None else "invalid"
    if meta.signature is None:
        return "invalid"
    if meta.author not in known_signers:
        return "unknown-signer"
    try:
        public = signing.unb64(meta.author)
        signature = signing.unb64(meta.signature)
    except ValueError:
        return "invalid"
    return (
        "valid" if signing.verify(public, meta.signed_bytes(), signature) else "invalid"
    )


def body_matches(meta: NoteMeta, body: bytes) -> bool:
    """The body is exactly the one the metadata (and so the signature) names."""
    return len(body) == meta.body_size and hmac.compare_digest(
        body_digest(body), meta.body_sha256
    )


def header_line(meta: NoteMeta, body_size: int) -> bytes:
    """The metadata line, padded so header + body fill their size bucket."""
    line = json.dumps(
        meta.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    encoded = line.encode("utf-8")
    total = len(encoded) + 1 + body_size
    return encoded + b" " * (padded_size(total) - total) + b"\n"


def parse_recorded(
    plaintext: bytes, entry: Mapping[str, object]
) -> tuple[NoteMeta, bytes]:
    """Split a note's plaintext, checking its metadata is exactly what ``entry``
    (the index's entry for it, as a document) says."""
    end = plaintext.find(b"\n", 0, MAX_HEADER)
    try:
        doc = json.loads(plaintext[:end]) if end >= 0 else None
    except ValueError as err:  # includes a UnicodeDecodeError
        raise IntegrityError("a note's metadata line is malformed") from err
    recorded = {k: v for k, v in entry.items() if k not in STORAGE_FIELDS}
    if doc != recorded:
        raise IntegrityError(f"note {entry.get('id')} does not match its index entry")
    return NoteMeta.from_json(doc), plaintext[end + 1 :]


def body_recorded(plaintext: bytes, entry: NoteEntry) -> bytes:
    """A note's body, checked against the size and SHA-256 ``entry`` records.

    Those two are covered by the author's signature; the metadata line is
    skipped unparsed (for search, which shows the index's metadata).
    """
    end = plaintext.find(b"\n", 0, MAX_HEADER)
    body = plaintext[end + 1 :]
    if (
        end < 0
        or len(body) != entry.body_size
        or not hmac.compare_digest(body_digest(body), entry.body_sha256)
    ):
        raise IntegrityError(f"note {entry.id} body does not match its index entry")
    return body


def parse_header(line: bytes) -> NoteMeta:
    try:
        doc = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise IntegrityError("a note's metadata line is malformed") from err
    return NoteMeta.from_json(doc)


TEMPLATES: dict[str, str] = {
    "soap": "Subjective:\n\nObjective:\n\nAssessment:\n\nPlan:\n",
    "dap": "Data:\n\nAssessment:\n\nPlan:\n",
    "birp": "Behavior:\n\nIntervention:\n\nResponse:\n\nPlan:\n",
    "girp": "Goals:\n\nIntervention:\n\nResponse:\n\nPlan:\n",
    "intake": (
        "Presenting problem:\n\nHistory of the problem:\n\nMental status:\n\n"
        "Risk assessment:\n\nMedical history and medication:\n\nSocial history:\n\n"
        "Diagnostic impression:\n\nTreatment plan:\n"
    ),
}
