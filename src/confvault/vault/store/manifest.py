"""The signed manifest: the vault's single commit point.

``manifest`` (JSON, one key a line so plain shell tools can read it) names the
live objects through 256 shards (``shards/<sha256>``, one per first byte of
the object names, each a sorted list of names) plus a few pointers (owner key,
recovery copy, root index, audit head). It carries a generation counter and an
Ed25519 signature by the owner over its canonical body.

Writing new objects, making them durable, then atomically replacing the
manifest makes every multi-file change all-or-nothing. A note added to a vault
of 100,000 notes rewrites a handful of ~25 KB shards, never the whole list.
The format of a shard file, its check and its edit are in ``shards``; this
module loads the shard files the manifest names (``Manifest.lines``).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from confvault.errors import IntegrityError
from confvault.vault.store import fs, layout, shards, signing
from confvault.vault.store.objects import is_hash

MANIFEST_NAME = layout.MANIFEST
SHARDS_DIR = layout.SHARDS
FORMAT = "confvault/manifest/v1"
_HASHES = re.compile(r"(?:[0-9a-f]{64})*")
_PREFIXES = re.compile(r"(?:[0-9a-f]{2})*")


# A retired owner signing key's hand-over to the next ("from" is a keyword).
Endorsement = TypedDict("Endorsement", {"from": str, "to": str, "signature": str})


class ManifestBodyDocument(TypedDict):
    """The manifest body as JSON: what is signed (``canonical``) and written."""

    format: str
    vault: str
    generation: int
    signer: str
    pointers: dict[str, str]
    shards: dict[str, str]
    objects: int
    time: str
    endorsements: list[Endorsement]


def canonical(document: object) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces.

    ``document`` is anything ``json.dumps`` encodes (TypeError otherwise).
    """
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class ManifestBody:
    """What the manifest states; signed as a whole."""

    vault_id: str
    generation: int
    signer: str  # base64 Ed25519 public key
    pointers: dict[str, str]  # owner, recovery, root, audit -> object names
    shards: dict[str, str]  # "00".."ff" -> shard name (empty shards omitted)
    objects: int
    time: str
    # Owner signing keys retired by `identity rotate`, each endorsing the next.
    endorsements: tuple[Endorsement, ...] = ()

    @property
    def former_signers(self) -> set[str]:
        return {e["from"] for e in self.endorsements}

    def to_json(self) -> ManifestBodyDocument:
        return {
            "format": FORMAT,
            "vault": self.vault_id,
            "generation": self.generation,
            "signer": self.signer,
            "pointers": dict(sorted(self.pointers.items())),
            "shards": dict(sorted(self.shards.items())),
            "objects": self.objects,
            "time": self.time,
            "endorsements": [e.copy() for e in self.endorsements],
        }

    @classmethod
    def from_json(cls, parsed: object) -> ManifestBody:
        """The body of a parsed manifest; ``IntegrityError`` unless well formed."""
        # Checked by trying: every lookup and conversion below raises one of
        # the errors caught when ``parsed`` is not what a manifest holds.
        doc: Any = parsed
        try:
            if doc["format"] != FORMAT:
                raise IntegrityError("manifest has an unknown format")
            body = cls(
                vault_id=str(doc["vault"]),
                generation=int(doc["generation"]),
                signer=str(doc["signer"]),
                pointers={str(k): str(v) for k, v in doc["pointers"].items()},
                shards={str(k): str(v) for k, v in doc["shards"].items()},
                objects=int(doc["objects"]),
                time=str(doc["time"]),
                endorsements=tuple(
                    {
                        "from": str(e["from"]),
                        "to": str(e["to"]),
                        "signature": str(e["signature"]),
                    }
                    for e in doc["endorsements"]
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise IntegrityError("manifest is malformed") from err
        names = [*body.pointers.values(), *body.shards.values()]
        if not _HASHES.fullmatch("".join(names)) or any(len(n) != 64 for n in names):
            raise IntegrityError("manifest names a malformed object")
        if not _PREFIXES.fullmatch("".join(body.shards)) or any(
            len(p) != 2 for p in body.shards
        ):
            raise IntegrityError("manifest has a malformed shard prefix")
        return body


@dataclass
class Manifest:
    """A verified manifest, with its shards loaded on demand.

    A loaded shard is kept as its checked lines of names (bytes): a lookup is
    a substring search, and a commit edits the lines, so neither builds a
    set of the ~400 names a shard of a 100,000-note vault holds.
    """

    disk: fs.Root | Path | None  # None: a manifest checked from a backup's bytes
    body: ManifestBody
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False)
    raw: bytes = field(default=b"", repr=False)  # the file, as checked or written
    # Shard files by name, already in memory (a backup checked as it streams
    # by); None: read from root/shards.
    shard_files: Mapping[str, bytes] | None = field(default=None, repr=False)

    @property
    def generation(self) -> int:
        return self.body.generation

    def pointer(self, name: str) -> str | None:
        return self.body.pointers.get(name)

    def lines(self, prefix: str) -> bytes:
        """The checked lines of the shard ``prefix`` (empty when there is none)."""
        body = self._cache.get(prefix)
        if body is None:
            name = self.body.shards.get(prefix)
            if name is None:
                body = b""
            elif self.shard_files is None and self.disk is not None:
                self.disk = fs.as_root(self.disk)
                body = read_shard_lines(self.disk, name, prefix)
            elif self.shard_files is None:
                raise IntegrityError(f"manifest shard {prefix} is missing")
            elif name in self.shard_files:
                body = shards.check_lines(self.shard_files[name], name, prefix)
            else:
                raise IntegrityError(f"manifest shard {prefix} is missing")
            self._cache[prefix] = body
        return body

    def shard(self, prefix: str) -> frozenset[str]:
        """The live object names starting with ``prefix``."""
        return frozenset(self.lines(prefix).decode("ascii").split())

    def contains(self, digest: str) -> bool:
        # Every line is 64 hex digits and a newline, so a 64-digit name can
        # only occur in the lines as a whole line.
        return is_hash(digest) and digest.encode("ascii") in self.lines(digest[:2])

    def all_objects(self) -> set[str]:
        out: set[str] = set()
        for prefix in self.body.shards:
            out |= self.shard(prefix)
        return out


def read_shard(disk: fs.Root | Path, name: str, prefix: str) -> frozenset[str]:
    """Load and check one shard file: its names."""
    return frozenset(read_shard_lines(disk, name, prefix).decode("ascii").split())


def read_shard_lines(disk: fs.Root | Path, name: str, prefix: str) -> bytes:
    """Load and check one shard file: its lines of names, after the header."""
    try:
        data = fs.as_root(disk).read(SHARDS_DIR, name)
    except FileNotFoundError as err:
        raise IntegrityError(f"manifest shard {prefix} is missing") from err
    return shards.check_lines(data, name, prefix)


def read_raw(disk: fs.Root | Path) -> bytes:
    """The manifest file's bytes, unchecked."""
    try:
        return fs.as_root(disk).read("", MANIFEST_NAME)
    except FileNotFoundError as err:
        raise IntegrityError("the manifest is missing") from err


def load(disk: fs.Root | Path, *, expected_signer: str | None = None) -> Manifest:
    """Read the manifest and check its signature (and signer, when pinned)."""
    disk = fs.as_root(disk)
    return parse(disk, read_raw(disk), expected_signer=expected_signer)


def parse(
    disk: fs.Root | Path | None, raw: bytes, *, expected_signer: str | None = None
) -> Manifest:
    """Check a manifest file's signature (and signer, when pinned)."""
    try:
        doc = json.loads(raw)
        body_doc = doc["body"]
        signature = signing.unb64(doc["signature"])
    except (ValueError, KeyError, TypeError) as err:
        raise IntegrityError("the manifest is malformed") from err
    body = ManifestBody.from_json(body_doc)
    try:
        signer = signing.unb64(body.signer)
    except ValueError as err:
        raise IntegrityError("the manifest's signer key is malformed") from err
    if not signing.verify(signer, canonical(body.to_json()), signature):
        raise IntegrityError("the manifest's signature does not verify")
    if canonical(body.to_json()) != canonical(body_doc):
        raise IntegrityError("the manifest has fields that are not signed")
    if raw != encode(body, signature):
        raise IntegrityError("the manifest is not in its canonical form (altered)")
    _check_endorsements(body)
    if expected_signer is not None and not signer_descends(body, expected_signer):
        raise IntegrityError("the manifest is signed by a different key than before")
    return Manifest(disk, body, raw=raw)


def endorsement_message(vault_id: str, new_signer: str) -> bytes:
    """What a retiring owner key signs to hand the vault to its successor."""
    return b"confvault/endorse/v1\0" + vault_id.encode() + b"\0" + new_signer.encode()


def _check_endorsements(body: ManifestBody) -> None:
    for e in body.endorsements:
        try:
            ok = signing.verify(
                signing.unb64(e["from"]),
                endorsement_message(body.vault_id, e["to"]),
                signing.unb64(e["signature"]),
            )
        except ValueError:
            ok = False
        if not ok:
            raise IntegrityError("the manifest has an invalid owner-key endorsement")


def signer_descends(body: ManifestBody, earlier: str) -> bool:
    """True when ``earlier`` is the signer, or endorsed its way to it."""
    current = earlier
    steps = {e["from"]: e["to"] for e in body.endorsements}
    for _ in range(len(steps) + 1):
        if hmac.compare_digest(current, body.signer):
            return True
        if current not in steps:
            return False
        current = steps[current]
    return False


def descends_from_fingerprint(body: ManifestBody, pinned: str) -> bool:
    """True when the signer is the key with fingerprint ``pinned``, or endorsed by it.

    ``pinned`` is 32 hex digits (``signing.normal_fingerprint``).
    """
    candidates = {body.signer, *(e["from"] for e in body.endorsements)}
    for signer in candidates:
        try:
            flat = signing.fingerprint(signer).replace(" ", "")
        except ValueError:
            continue
        if hmac.compare_digest(flat, pinned) and signer_descends(body, signer):
            return True
    return False


def encode(body: ManifestBody, signature: bytes) -> bytes:
    """The manifest file: indented JSON so ``grep``/``sed`` can read a pointer."""
    doc = {"body": body.to_json(), "signature": signing.b64(signature)}
    return (_indented(doc, "\n") + "\n").encode("ascii")


def _indented(value: object, newline: str) -> str:
    """``json.dumps(value, indent=1, sort_keys=True)``, byte for byte.

    With ``indent`` the standard library falls back to its pure-Python
    encoder; this walks the few containers and encodes the strings in C.
    """
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = newline + " "
        items = [
            f"{_quote(str(k))}: {_indented(v, inner)}" for k, v in sorted(value.items())
        ]
        return "{" + inner + ("," + inner).join(items) + newline + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = newline + " "
        items = [_indented(v, inner) for v in value]
        return "[" + inner + ("," + inner).join(items) + newline + "]"
    if isinstance(value, str):
        return _quote(value)
    return json.dumps(value)


_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii


@dataclass
class Changes:
    """What one transaction adds and retires."""

    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    pointers: dict[str, str | None] = field(default_factory=dict)
    endorsement: Endorsement | None = None
    # The lowest generation the next manifest may have (sync's merge: above
    # both sides'); 0: the current one plus one.
    generation_floor: int = 0


def next_body(
    current: Manifest | None,
    changes: Changes,
    *,
    vault_id: str,
    signer: str,
    time: str,
) -> tuple[ManifestBody, dict[str, bytes], dict[str, bytes]]:
    """The next body, the new shard files it needs, and the shard contents known."""
    added: dict[str, set[str]] = {}
    removed: dict[str, set[str]] = {}
    for digest in changes.added:
        added.setdefault(digest[:2], set()).add(digest)
    for digest in changes.removed:
        removed.setdefault(digest[:2], set()).add(digest)
    touched = added.keys() | removed.keys()
    shard_names = dict(current.body.shards) if current else {}
    pointers = dict(current.body.pointers) if current else {}
    count = current.body.objects if current else 0
    new_files: dict[str, bytes] = {}
    # The next manifest starts with every shard it shares with this one loaded.
    cache = dict(current._cache) if current else {}
    for prefix in sorted(touched):
        lines = current.lines(prefix) if current else b""
        before = len(lines) // shards.LINE
        lines = shards.edit(
            lines, prefix, added.get(prefix, ()), removed.get(prefix, ())
        )
        count += len(lines) // shards.LINE - before
        cache[prefix] = lines
        if lines:
            name, data = shards.file_of(lines)
            shard_names[prefix] = name
            new_files[name] = data
        else:
            shard_names.pop(prefix, None)
    for key, value in changes.pointers.items():
        if value is None:
            pointers.pop(key, None)
        else:
            pointers[key] = value
    generation = current.body.generation + 1 if current else 1
    generation = max(generation, changes.generation_floor)
    endorsements = tuple(current.body.endorsements) if current else ()
    if changes.endorsement is not None:
        endorsements += (changes.endorsement,)
    body = ManifestBody(
        vault_id, generation, signer, pointers, shard_names, count, time, endorsements
    )
    return body, new_files, cache
