"""Reading a parsed JSON document into a record: every check raises
``IntegrityError`` naming the record and the key, never a ``KeyError`` or
``TypeError``.

A record's ``from_doc`` first checks the document's keys (``check_keys``:
no key missing, none unknown), then reads each value with the typed getter
that fits it. Records keep absent-or-present exactly as the document had it,
so that ``to_doc(from_doc(doc)) == doc`` for every document accepted: a
record read and written back is byte-identical once sealed.

``build`` makes a frozen dataclass from checked values without its generated
``__init__``, which sets each field through ``object.__setattr__``: about
five times slower, and a compartment index holds thousands of entries.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, Literal, TypeVar

from confvault.errors import IntegrityError
from confvault.vault.store.documents import JSONObject, JSONValue

T = TypeVar("T")


class Absent(enum.Enum):
    """A key the document does not hold, where null is also a value."""

    KEY = "absent"


ABSENT: Final = Absent.KEY
AbsentKey = Literal[Absent.KEY]


def malformed(what: str, detail: str) -> IntegrityError:
    return IntegrityError(f"the {what} is malformed: {detail}")


def build(cls: type[T], values: dict[str, object]) -> T:
    """An instance of the frozen (non-slots) dataclass ``cls`` holding ``values``,
    which must be exactly its fields, each of its declared type."""
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


def as_object(value: JSONValue, what: str) -> JSONObject:
    if type(value) is not dict:
        raise malformed(what, "not a JSON object")
    return value


def check_keys(
    doc: JSONObject,
    required: frozenset[str],
    what: str,
    optional: frozenset[str] = frozenset(),
) -> None:
    """No key of ``required`` missing, no key outside ``required | optional``."""
    keys = doc.keys()
    if keys == required:
        return
    unknown = sorted(keys - required - optional)
    if unknown:
        raise malformed(what, f"unexpected key {unknown[0]!r}")
    missing = sorted(required - keys)
    if missing:
        raise malformed(what, f"no {missing[0]!r}")


def text(doc: JSONObject, key: str, what: str) -> str:
    value = doc[key]
    if type(value) is not str:
        raise malformed(what, f"{key!r} is not text")
    return value


def text_or_null(doc: JSONObject, key: str, what: str) -> str | None:
    value = doc[key]
    if value is not None and type(value) is not str:
        raise malformed(what, f"{key!r} is not text or null")
    return value


def optional_text(doc: JSONObject, key: str, what: str) -> str | None:
    """A key that may be absent (None), else text."""
    value = doc.get(key)
    if value is not None and type(value) is not str:
        raise malformed(what, f"{key!r} is not text")
    return value


def number(doc: JSONObject, key: str, what: str) -> int:
    value = doc[key]
    if type(value) is not int:
        raise malformed(what, f"{key!r} is not a whole number")
    return value


def optional_number(doc: JSONObject, key: str, what: str) -> int | None:
    """A key that may be absent (None), else a whole number."""
    if key not in doc:
        return None
    return number(doc, key, what)


def flag(doc: JSONObject, key: str, what: str) -> bool:
    value = doc[key]
    if type(value) is not bool:
        raise malformed(what, f"{key!r} is not true or false")
    return value


def texts(doc: JSONObject, key: str, what: str) -> tuple[str, ...]:
    value = doc[key]
    if type(value) is not list:
        raise malformed(what, f"{key!r} is not a list")
    out = []
    for item in value:
        if type(item) is not str:
            raise malformed(what, f"{key!r} holds a value that is not text")
        out.append(item)
    return tuple(out)


def mapping(doc: JSONObject, key: str, what: str) -> JSONObject:
    value = doc[key]
    if type(value) is not dict:
        raise malformed(what, f"{key!r} is not a JSON object")
    return value


def text_mapping(doc: JSONObject, key: str, what: str) -> dict[str, str]:
    out = {}
    for name, item in mapping(doc, key, what).items():
        if type(item) is not str:
            raise malformed(what, f"{key!r} holds a value that is not text")
        out[name] = item
    return out


def json_copy(value: object, what: str) -> JSONValue:
    """``value`` as a JSON value (a fresh copy of its lists and objects);
    ``IntegrityError`` if it holds anything JSON cannot."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        out: JSONObject = {}
        for k, v in value.items():
            if type(k) is not str:
                raise malformed(what, "a key is not text")
            out[k] = json_copy(v, what)
        return out
    if isinstance(value, list | tuple):
        return [json_copy(v, what) for v in value]
    raise malformed(what, f"a {type(value).__name__} is not a JSON value")
