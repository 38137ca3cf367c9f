"""Shard files: the manifest's lists of live object names, one per first byte.

A shard file (``shards/<sha256 of the file>``) is the line
``confvault/shard/v1`` and then sorted lines of 64 lowercase hex digits, all
starting with the shard's prefix (the first byte of the names, two digits).
Here are the check of a shard file's bytes and the edit of its lines for a
commit, on bytes only: the manifest loads shard files (``manifest.lines``)
and the transaction writes them. A loaded shard is kept as its checked lines:
a lookup is a substring search and an edit a few slices, so neither builds a
set of the ~400 names a shard of a 100,000-note vault holds.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from confvault.errors import IntegrityError
from confvault.vault.store.objects import is_hash

HEADER = b"confvault/shard/v1\n"
LINE = 65  # 64 hex digits and a newline
_HEX_AND_NEWLINE = b"0123456789abcdef\n"


def check_lines(data: bytes, name: str, prefix: str) -> bytes:
    """Check one shard file's bytes against its name: its lines of names."""
    if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), name):
        raise IntegrityError(f"manifest shard {prefix} is damaged or was replaced")
    body = data[len(HEADER) :]
    if not data.startswith(HEADER) or not _well_formed(body, prefix):
        raise IntegrityError(f"manifest shard {prefix} is malformed")
    return body


def _well_formed(body: bytes, prefix: str) -> bool:
    """Lines of 64 lowercase hex digits, each starting with ``prefix``.

    Checked with slices and ``translate``, which run in C: a shard of a
    100,000-note vault holds about 400 names.
    """
    lines, rest = divmod(len(body), 65)
    if rest or len(prefix) != 2 or not is_hash(prefix * 32):
        return False
    first, second = prefix.encode("ascii")
    return (
        body[64::65] == b"\n" * lines
        and body.count(b"\n") == lines
        and body[0::65] == bytes([first]) * lines
        and body[1::65] == bytes([second]) * lines
        and not body.translate(None, _HEX_AND_NEWLINE)
    )


def edit(
    lines: bytes, prefix: str, added: Iterable[str], removed: Iterable[str]
) -> bytes:
    """The sorted ``lines`` of the shard ``prefix`` with the ``removed`` names
    cut out and the ``added`` ones inserted (a name already there stays once)."""
    for digest in removed:
        at = lines.find(digest.encode("ascii"))
        if at >= 0:
            if at % LINE:  # cannot happen with 64-digit names; never cut a line apart
                raise IntegrityError(f"manifest shard {prefix} is malformed")
            lines = lines[:at] + lines[at + LINE :]
    for digest in sorted(added):
        line = digest.encode("ascii") + b"\n"
        if line not in lines:
            at = _insertion_point(lines, line)
            lines = lines[:at] + line + lines[at:]
    return lines


def _insertion_point(lines: bytes, line: bytes) -> int:
    """Where ``line`` goes in sorted fixed-width ``lines`` (a byte offset)."""
    low, high = 0, len(lines) // LINE
    while low < high:
        middle = (low + high) // 2
        if lines[middle * LINE : (middle + 1) * LINE] < line:
            low = middle + 1
        else:
            high = middle
    return low * LINE


def file_of(lines: bytes) -> tuple[str, bytes]:
    """The shard file holding ``lines``: its name and its bytes."""
    data = HEADER + lines
    return hashlib.sha256(data).hexdigest(), data
