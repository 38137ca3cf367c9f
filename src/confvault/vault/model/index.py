"""A compartment's index: its notes' entries (metadata and where each is
stored) and, for the records compartment, the client's profile.

The index is sealed to the compartment's key; the root lists it with its
counts (``CompartmentEntry``). It may hold thousands of entries, so
``NoteEntry.from_doc`` checks an entry's keys and types in a few C-level
operations and builds it without the dataclass ``__init__`` (see ``_doc``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import chain
from operator import itemgetter
from typing import NoReturn, cast

from confvault.vault.model import _doc
from confvault.vault.model.note_format import NoteMeta
from confvault.vault.store.documents import JSONObject, JSONValue

INDEX_FORMAT = "confvault/index/v1"

_TEXT = (
    "id",
    "client",
    "kind",
    "title",
    "date",
    "created",
    "status",
    "body_sha256",
    "author",
    "compartment",
    "object",
)
_TEXT_OR_NULL = ("addendum_of", "template", "filename", "signed_at", "signature")
_ENTRY_KEYS = frozenset((*_TEXT, *_TEXT_OR_NULL, "body_size"))
_KEYED_KEYS = _ENTRY_KEYS | {"file_key"}
_OPTIONAL_KEYS = frozenset(("file_key", "damaged", "conflict"))
_texts = itemgetter(*_TEXT)
_texts_or_null = itemgetter(*_TEXT_OR_NULL)
_body_size = itemgetter("body_size")
_STR = {str}
_INT = {int}
_STR_OR_NULL = {str, type(None)}
_INDEX_KEYS = frozenset(("format", "client", "compartment", "notes"))
_PROFILE_KEYS = frozenset(("name", "fields", "created"))


@dataclass(frozen=True)
class NoteEntry:
    """One note in its compartment's index: its metadata (exactly as in the
    note's own header line) and where it is stored."""

    id: str
    client: str
    kind: str
    title: str
    date: str
    created: str
    status: str
    body_size: int
    body_sha256: str
    author: str
    compartment: str
    addendum_of: str | None
    template: str | None
    filename: str | None
    signed_at: str | None
    signature: str | None
    object: str  # the sealed note's object name
    # The age file key that opens the object (base64); absent for a note
    # streamed in (a large attachment), which opens with the compartment key.
    file_key: str | None = None
    # Why the note's object could not be read when its compartment key was
    # rotated (and when): the entry is kept, the object is no longer in the
    # vault. Absent (None) for every readable note; see docs/FORMAT.md.
    damaged: str | None = None
    # A draft changed on two devices (sync, issue 16): this entry is the
    # other device's version, kept as a new draft; the ID of the note whose
    # version won. Absent (None) for every other note; see docs/FORMAT.md.
    conflict: str | None = None

    @classmethod
    def of(cls, meta: NoteMeta, object_name: str, file_key: str | None) -> NoteEntry:
        return _doc.build(
            cls,
            {
                **meta.to_json(),
                "object": object_name,
                "file_key": file_key,
                "damaged": None,
                "conflict": None,
            },
        )

    def stored_at(self, object_name: str, file_key: str | None) -> NoteEntry:
        """This note, re-sealed: another object (and file key)."""
        moved = dict(self.__dict__, object=object_name, file_key=file_key)
        return _doc.build(NoteEntry, moved)

    def marked_damaged(self, reason: str) -> NoteEntry:
        """This note, recorded as damaged: its object could not be read."""
        return _doc.build(NoteEntry, dict(self.__dict__, damaged=reason))

    @property
    def meta(self) -> NoteMeta:
        """The note's metadata, its values checked (``IntegrityError``)."""
        return NoteMeta.from_json(self.meta_doc())

    def meta_doc(self) -> JSONObject:
        """The metadata as the note's header line holds it."""
        doc = self.to_doc()
        del doc["object"]
        doc.pop("file_key", None)
        doc.pop("damaged", None)
        doc.pop("conflict", None)
        return doc

    @classmethod
    def from_doc(cls, value: JSONValue, what: str) -> NoteEntry:
        if type(value) is not dict:
            raise _doc.malformed(what, "a note entry is not a JSON object")
        keys = value.keys()
        if keys != _KEYED_KEYS and keys != _ENTRY_KEYS:
            _doc.check_keys(value, _ENTRY_KEYS, what, _OPTIONAL_KEYS)
        keyed = "file_key" in keys
        damaged = "damaged" in keys
        conflict = "conflict" in keys
        if (
            not _STR.issuperset(map(type, _texts(value)))
            or not _STR_OR_NULL.issuperset(map(type, _texts_or_null(value)))
            or type(value["body_size"]) is not int
            or (keyed and type(value["file_key"]) is not str)
            or (damaged and type(value["damaged"]) is not str)
            or (conflict and type(value["conflict"]) is not str)
        ):
            _explain(value, what)
        entry = object.__new__(cls)  # as _doc.build, without a copy of ``value``
        fields = entry.__dict__
        fields.update(value)
        if not keyed:
            fields["file_key"] = None
        if not damaged:
            fields["damaged"] = None
        if not conflict:
            fields["conflict"] = None
        return entry

    @classmethod
    def from_docs(cls, values: list[JSONValue], what: str) -> tuple[NoteEntry, ...]:
        """The entries of an index: ``from_doc``'s checks, the types' made in
        a few C-level passes over all of them (a search reads every index);
        on any doubt each entry is read alone, which names what is wrong."""
        entries = []
        new = object.__new__
        for value in values:
            if type(value) is not dict:
                return cls._each(values, what)
            keys = value.keys()
            entry = new(cls)
            fields = entry.__dict__
            fields.update(value)
            fields["damaged"] = None  # an entry that has one is read alone
            fields["conflict"] = None  # as ``damaged``
            if keys == _ENTRY_KEYS:
                fields["file_key"] = None
            elif keys != _KEYED_KEYS or type(value["file_key"]) is not str:
                return cls._each(values, what)
            entries.append(entry)
        docs = cast("list[JSONObject]", values)  # each checked to be one above
        if (
            not _STR.issuperset(map(type, chain.from_iterable(map(_texts, docs))))
            or not _STR_OR_NULL.issuperset(
                map(type, chain.from_iterable(map(_texts_or_null, docs)))
            )
            or not _INT.issuperset(map(type, map(_body_size, docs)))
        ):
            return cls._each(values, what)
        return tuple(entries)

    @classmethod
    def _each(cls, values: list[JSONValue], what: str) -> tuple[NoteEntry, ...]:
        return tuple([cls.from_doc(value, what) for value in values])

    def to_doc(self) -> JSONObject:
        # Exactly the fields (as ``from_doc``, ``of`` and ``__init__`` set them).
        doc: JSONObject = dict(self.__dict__)
        if self.file_key is None:
            del doc["file_key"]
        if self.damaged is None:
            del doc["damaged"]
        if self.conflict is None:
            del doc["conflict"]
        return doc


def _explain(doc: JSONObject, what: str) -> NoReturn:
    """Raise the ``IntegrityError`` naming the entry's first ill-typed value."""
    note = f"{what}, note {str(doc.get('id'))[:16]}"
    for key in _TEXT:
        _doc.text(doc, key, note)
    for key in _TEXT_OR_NULL:
        _doc.text_or_null(doc, key, note)
    _doc.number(doc, "body_size", note)
    if "file_key" in doc:
        _doc.text(doc, "file_key", note)
    if "damaged" in doc:
        _doc.text(doc, "damaged", note)
    raise _doc.malformed(note, "a value has the wrong type")


@dataclass(frozen=True, slots=True)
class Profile:
    """The client's profile, kept in the records index (sealed to its key)."""

    name: str
    fields: dict[str, str]
    created: str
    born: str | None = None  # date of birth, YYYY-MM-DD (absent: not recorded)

    @classmethod
    def from_doc(cls, value: JSONValue, what: str) -> Profile:
        doc = _doc.as_object(value, what)
        _doc.check_keys(doc, _PROFILE_KEYS, what, frozenset(("born",)))
        return cls(
            name=_doc.text(doc, "name", what),
            fields=_doc.text_mapping(doc, "fields", what),
            created=_doc.text(doc, "created", what),
            born=_doc.optional_text(doc, "born", what),
        )

    def to_doc(self) -> JSONObject:
        fields: JSONObject = dict(self.fields)
        doc: JSONObject = {"name": self.name, "fields": fields, "created": self.created}
        if self.born is not None:
            doc["born"] = self.born
        return doc


@dataclass(frozen=True)
class CompartmentIndex:
    """The sealed index of one client's compartment."""

    client: str
    compartment: str
    notes: tuple[NoteEntry, ...]
    profile: Profile | None = None  # absent outside the records compartment

    @classmethod
    def from_doc(cls, doc: JSONObject, what: str) -> CompartmentIndex:
        _doc.check_keys(doc, _INDEX_KEYS, what, frozenset(("profile",)))
        notes = doc["notes"]
        if type(notes) is not list:
            raise _doc.malformed(what, "'notes' is not a list")
        return cls(
            client=_doc.text(doc, "client", what),
            compartment=_doc.text(doc, "compartment", what),
            notes=NoteEntry.from_docs(notes, what),
            profile=(
                Profile.from_doc(doc["profile"], f"profile in the {what}")
                if "profile" in doc
                else None
            ),
        )

    def to_doc(self) -> JSONObject:
        doc: JSONObject = {
            "format": INDEX_FORMAT,
            "client": self.client,
            "compartment": self.compartment,
            "notes": [n.to_doc() for n in self.notes],
        }
        if self.profile is not None:
            doc["profile"] = self.profile.to_doc()
        return doc

    def counts(self) -> tuple[int, int, int]:
        """(signed notes, drafts, attachments), as the root lists them."""
        signed = drafts = attachments = 0
        for note in self.notes:
            status = note.status
            signed += status == "signed"
            drafts += status == "draft"
            attachments += note.kind == "attachment"
        return signed, drafts, attachments

    def with_notes(self, entries: Iterable[NoteEntry]) -> CompartmentIndex:
        """This index with ``entries`` added at its end."""
        return replace(self, notes=(*self.notes, *entries))

    def replacing(self, old: NoteEntry, new: NoteEntry) -> CompartmentIndex:
        """This index with the entry ``old`` replaced by ``new``, in its place."""
        at = self.notes.index(old)
        return replace(self, notes=(*self.notes[:at], new, *self.notes[at + 1 :]))

    def with_profile(self, profile: Profile) -> CompartmentIndex:
        return replace(self, profile=profile)
