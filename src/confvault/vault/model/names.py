"""Validation of user-supplied names, titles and fields.

Names never become paths (files are named by random IDs and hashes), but
they are shown in terminals and exported, so control characters, bidi
overrides and path-like forms are refused with a clear reason.
"""

from __future__ import annotations

import re
import unicodedata

from confvault.errors import ClientReferenceError, UnsafeInputError

MAX_NAME = 200
MAX_TITLE = 200
MAX_FIELD_VALUE = 2000
_WORDS = re.compile(r"[\s\-]+")
_BIDI_CONTROLS = {
    chr(c)
    for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
}


def _check_text(value: str, what: str, limit: int) -> str:
    if not value or not value.strip():
        raise UnsafeInputError(f"the {what} is empty")
    if len(value) > limit:
        raise UnsafeInputError(f"the {what} is longer than {limit} characters")
    for ch in value:
        if ch in _BIDI_CONTROLS:
            raise UnsafeInputError(
                f"the {what} contains a right-to-left or bidi control mark"
            )
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") and ch not in "\t":
            raise UnsafeInputError(f"the {what} contains a control character")
    if value != value.strip():
        raise UnsafeInputError(f"the {what} starts or ends with white space")
    return unicodedata.normalize("NFC", value)


def client_name(value: str) -> str:
    """A client's display name: printable, no path separators."""
    name = _check_text(value, "client name", MAX_NAME)
    if "/" in name or "\\" in name or name in (".", ".."):
        raise UnsafeInputError("the client name looks like a path (contains / or \\)")
    return name


def client_ref(value: str) -> str:
    """What a CLIENT argument says, trimmed and NFC-normalised: refused with
    :class:`ClientReferenceError` when no client could match it (empty, white
    space only, longer than a name, or holding a control character)."""
    try:
        return _check_text(value.strip(), "client reference", MAX_NAME)
    except UnsafeInputError as err:
        raise ClientReferenceError(str(err)) from err


def name_matches(name: str, folded_ref: str) -> bool:
    """Whether ``folded_ref`` (casefolded) begins ``name`` or one of its
    words (split at white space and hyphens), case-insensitively."""
    folded = unicodedata.normalize("NFC", name).casefold()
    if folded.startswith(folded_ref):
        return True
    return any(word.startswith(folded_ref) for word in _WORDS.split(folded) if word)


def title(value: str) -> str:
    return _check_text(value, "title", MAX_TITLE)


def field(item: str) -> tuple[str, str]:
    """``KEY=VALUE`` → (key, value)."""
    key, sep, value = item.partition("=")
    if not sep:
        raise UnsafeInputError(f"field {item[:40]!r} is not KEY=VALUE")
    key = _check_text(key.strip(), "field name", 60)
    if not all(c.isalnum() or c in "-_." for c in key):
        raise UnsafeInputError(
            "a field name may contain letters, digits, - _ and . only"
        )
    return key, _check_text(value, f"value of field {key}", MAX_FIELD_VALUE)


MAX_REASON = 500


def reason(value: str, what: str = "reason") -> str:
    """Free text the vault records (a hold's reason, a request's outcome or
    requester): printable, no control characters."""
    return _check_text(value, what, MAX_REASON)
