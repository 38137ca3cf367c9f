"""Custodians (issue 18): the colleagues who together may open the vault when
the owner cannot, as the root records them (its ``custodians`` field, absent
in vaults that never had one).

    "custodians": {
      "members": [{"name": ..., "recipient": "age1...", "added": ...}],
      "split": {"created": ..., "threshold": K, "executor": "age1...",
                "notice": SECONDS, "shares": {NAME: FINGERPRINT}},
      "notice": {"started": ..., "shares": [NAME, ...]}
    }

``split`` is the latest ``custodian split`` (absent before the first): the
public key of the executor key whose secret was split, and a fingerprint of
each custodian's share (``share_fingerprint``) so that an opening can say
whose shares were used. ``notice`` is a waiting period started by the
custodians' first ``custodian open`` (absent otherwise, and after the
owner's ``custodian cancel``).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

from confvault.errors import UnsafeInputError
from confvault.vault.model import _doc
from confvault.vault.store.documents import JSONObject, JSONValue

MAX_CUSTODIAN_NAME = 64
_NAME_PUNCTUATION = frozenset("._-")
_SHARE_LABEL = b"confvault/custodian-share/v1\n"


def custodian_name(value: str) -> str:
    """A custodian's name: it names their share file (``share-NAME.age``),
    so letters, digits and ``. _ -`` only, starting with a letter or digit."""
    name = unicodedata.normalize("NFC", value)
    if not name or len(name) > MAX_CUSTODIAN_NAME:
        raise UnsafeInputError(
            f"a custodian name has 1 to {MAX_CUSTODIAN_NAME} characters"
        )
    if not name[0].isalnum() or not all(
        c.isalnum() or c in _NAME_PUNCTUATION for c in name
    ):
        raise UnsafeInputError(
            "a custodian name may hold letters, digits, '.', '_' and '-' only, "
            "and starts with a letter or digit (it names their share file)"
        )
    if not name.isprintable():
        raise UnsafeInputError("the custodian name contains a control character")
    return name


def normal_words(text: str) -> str:
    """A share's words, one space between, lowercase (as SLIP-39 reads them)."""
    return " ".join(text.lower().split())


def share_fingerprint(words: str) -> str:
    """What the root records of a share: 16 hex digits of a hash of its words
    (the words carry 256 bits and more: the hash reveals nothing of them)."""
    digest = hashlib.sha256(_SHARE_LABEL + normal_words(words).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Custodian:
    name: str
    recipient: str  # age1... or age1pq1..., of the vault's kind
    added: str

    @classmethod
    def from_doc(cls, value: JSONValue) -> Custodian:
        what = "custodian record of the root index"
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, frozenset(("name", "recipient", "added")), what)
        return cls(
            name=_doc.text(doc, "name", what),
            recipient=_doc.text(doc, "recipient", what),
            added=_doc.text(doc, "added", what),
        )

    def to_doc(self) -> JSONObject:
        return {"name": self.name, "recipient": self.recipient, "added": self.added}


@dataclass(frozen=True)
class Split:
    """The latest split: K of the shares listed open the executor copy."""

    created: str
    threshold: int
    executor: str  # the executor key's public key
    shares: Mapping[str, str]  # custodian name -> share fingerprint
    notice: int | None = None  # the waiting period, in seconds

    @classmethod
    def from_doc(cls, value: JSONValue) -> Split:
        what = "custodian split record of the root index"
        doc = _doc.as_object(value, what)
        keys = frozenset(("created", "threshold", "executor", "shares"))
        _doc.check_keys(doc, keys, what, frozenset(("notice",)))
        return cls(
            created=_doc.text(doc, "created", what),
            threshold=_doc.number(doc, "threshold", what),
            executor=_doc.text(doc, "executor", what),
            shares=_doc.text_mapping(doc, "shares", what),
            notice=_doc.optional_number(doc, "notice", what),
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {
            "created": self.created,
            "threshold": self.threshold,
            "executor": self.executor,
            "shares": dict(self.shares),
        }
        if self.notice is not None:
            doc["notice"] = self.notice
        return doc

    def holders(self, fingerprints: list[str]) -> list[str]:
        """The custodians whose shares these are (``?FINGERPRINT`` if none)."""
        names = {fp: name for name, fp in self.shares.items()}
        return [names.get(fp, f"?{fp}") for fp in fingerprints]


@dataclass(frozen=True)
class Notice:
    """A waiting period the custodians started; access opens at its end."""

    started: str
    shares: tuple[str, ...]  # the custodians whose shares started it

    @classmethod
    def from_doc(cls, value: JSONValue) -> Notice:
        what = "custodian notice record of the root index"
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, frozenset(("started", "shares")), what)
        return cls(
            started=_doc.text(doc, "started", what),
            shares=_doc.texts(doc, "shares", what),
        )

    def to_doc(self) -> JSONObject:
        return {"started": self.started, "shares": list(self.shares)}


@dataclass(frozen=True)
class Custody:
    """The root's ``custodians`` field."""

    members: tuple[Custodian, ...] = ()
    split: Split | None = None
    notice: Notice | None = None

    @classmethod
    def from_doc(cls, value: JSONValue) -> Custody:
        what = "custodians record of the root index"
        doc = _doc.as_object(value, what)
        _doc.check_keys(
            doc, frozenset(("members",)), what, frozenset(("split", "notice"))
        )
        members = doc["members"]
        if type(members) is not list:
            raise _doc.malformed(what, "'members' is not a list")
        return cls(
            members=tuple(Custodian.from_doc(m) for m in members),
            split=Split.from_doc(doc["split"]) if "split" in doc else None,
            notice=Notice.from_doc(doc["notice"]) if "notice" in doc else None,
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {"members": [m.to_doc() for m in self.members]}
        if self.split is not None:
            doc["split"] = self.split.to_doc()
        if self.notice is not None:
            doc["notice"] = self.notice.to_doc()
        return doc

    def member(self, name: str) -> Custodian | None:
        return next((m for m in self.members if m.name == name), None)

    def with_members(self, members: tuple[Custodian, ...]) -> Custody:
        return replace(self, members=members)

    def split_is_current(self) -> bool:
        """Whether the latest split gave a share to exactly today's custodians."""
        if self.split is None:
            return False
        return set(self.split.shares) == {m.name for m in self.members}


# Results (their ``to_json`` is what ``--json`` prints).


@dataclass(frozen=True)
class CustodianInfo:
    name: str
    recipient: str
    added: str
    has_share: bool  # the latest split gave them a share

    def to_json(self) -> JSONObject:
        return asdict(self)


@dataclass(frozen=True)
class SealedShare:
    """One custodian's share file: the share's words sealed to their key."""

    custodian: str
    file_name: str  # share-NAME.age
    sealed: bytes

    def __repr__(self) -> str:
        return f"SealedShare({self.custodian!r})"


@dataclass(frozen=True)
class SplitReport:
    threshold: int
    shares: tuple[str, ...]  # the custodians, in the order of their files
    executor: str
    notice: int | None
    created: str

    def to_json(self) -> JSONObject:
        doc = asdict(self)
        doc["shares"] = list(self.shares)
        return doc


@dataclass(frozen=True)
class CustodianOpening:
    """A ``custodian open``: whose shares, when, and the notice if any."""

    shares: tuple[str, ...]  # the custodians whose shares were combined
    opened: str
    notice_started: str | None = None

    def to_json(self) -> JSONObject:
        doc = asdict(self)
        doc["shares"] = list(self.shares)
        return doc


@dataclass(frozen=True)
class CustodyStatus:
    """What ``status`` says of the custodians."""

    custodians: int
    threshold: int | None  # of the latest split
    split: str | None  # when
    split_current: bool
    notice: str | None  # a running or ended notice: when it started
    access_from: str | None  # when the notice ends

    def to_json(self) -> JSONObject:
        return asdict(self)
