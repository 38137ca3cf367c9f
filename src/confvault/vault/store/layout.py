"""Every path of the vault format, and the grammar of every name in it.

docs/FORMAT.md ("The vault directory") is this table in prose. A path under
the vault root is only ever built from a directory below and a name that
matched its grammar here: never from a string read out of a file.
"""

from __future__ import annotations

import functools
import re

from confvault.errors import UnsafeVaultEntryError

MANIFEST = "manifest"
LOCK = "lock"
OBJECTS = "objects"
SHARDS = "shards"
TMP = "tmp"
INBOX = "audit-inbox"

TOP_DIRS = (OBJECTS, SHARDS, TMP)  # created by init
TOP_LEVEL = frozenset({MANIFEST, LOCK, OBJECTS, SHARDS, TMP, INBOX})

JOURNAL_SUFFIX = ".journal"
TEMP_SUFFIX = ".tmp"

HASH = re.compile(r"[0-9a-f]{64}")
BUCKET = re.compile(r"[0-9a-f]{2}")
JOURNAL = re.compile(r"txn-[0-9]{1,10}-[0-9a-f]{8}\.journal")
INBOX_ENTRY = re.compile(r"[0-9a-f]{24}\.age")
# tmp/<target name>.<pid>.<12 hex>.tmp: a file on its way to its target
TEMP = re.compile(
    rf"(?:[0-9a-f]{{64}}|pending|manifest|{JOURNAL.pattern}|{INBOX_ENTRY.pattern})"
    r"\.[0-9]{1,10}\.[0-9a-f]{12}\.tmp"
)

# Each directory of the format, with the grammar of the files it may hold.
_FILES: dict[str, re.Pattern[str]] = {
    SHARDS: HASH,
    TMP: re.compile(f"(?:{TEMP.pattern})|(?:{JOURNAL.pattern})"),
    INBOX: INBOX_ENTRY,
}
_TOP_FILES = frozenset({MANIFEST, LOCK})
_TOP_FILE = re.compile("|".join(sorted(_TOP_FILES)))


def bucket_of(digest: str) -> str:
    """``objects/<xx>``: the directory of the object ``digest`` (checked)."""
    if not HASH.fullmatch(digest):
        raise UnsafeVaultEntryError(f"malformed object name {digest[:70]!r}")
    return f"{OBJECTS}/{digest[:2]}"


def is_dir(rel: str) -> bool:
    """True for a directory of the format: '', objects, objects/xx, shards, ..."""
    if rel in ("", OBJECTS, SHARDS, TMP, INBOX):
        return True
    head, sep, bucket = rel.partition("/")
    return head == OBJECTS and bool(sep) and bool(BUCKET.fullmatch(bucket))


def check_dir(rel: str) -> str:
    if not is_dir(rel):
        raise UnsafeVaultEntryError(
            f"{rel[:80]!r} is not a directory of the vault format"
        )
    return rel


def is_file(rel: str, name: str) -> bool:
    """True when ``name`` may be a file in the directory ``rel``."""
    grammar = files_of(rel)
    return (
        grammar is not None
        and grammar[0].fullmatch(name) is not None
        and name.startswith(grammar[1])
    )


@functools.lru_cache(maxsize=512)  # every directory of a vault, and then some
def files_of(rel: str) -> tuple[re.Pattern[str], str] | None:
    """``(grammar, prefix)`` of the files the directory ``rel`` holds: a name
    that matches the grammar and starts with the prefix. None when ``rel`` is
    not a directory of the format. (One match a file: a verify or a backup
    checks 100,000 names.)"""
    if rel == "":
        return _TOP_FILE, ""
    if rel.startswith(OBJECTS + "/") and is_dir(rel):
        return HASH, rel[-2:]  # a hash in its own bucket
    pattern = _FILES.get(rel)
    return None if pattern is None else (pattern, "")


def check_file(rel: str, name: str) -> str:
    if not is_file(rel, name):
        raise UnsafeVaultEntryError(
            f"{name[:80]!r} is not a valid name for a file in {rel or 'the vault'}/"
        )
    return name
