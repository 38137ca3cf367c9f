"""The vault directory's tree, checked without a key: symlinks anywhere,
permissions that let other users in, and files confvault did not write.

``walk`` goes over everything under the vault root (through a
``store.survey.Survey``: by descriptor, no link followed) and keeps what it
listed; ``extra_files`` then judges those listings against the format
(``store.layout``) and the manifest, with no second listing.
"""

from __future__ import annotations

import operator
import os
import stat
from collections.abc import Callable

from confvault.vault.check.findings import Findings
from confvault.vault.store import layout
from confvault.vault.store.survey import Survey

Listings = dict[str, list[tuple[str, int]]]  # directory -> its (name, mode) entries
_NAME = operator.itemgetter(0)


def walk(survey: Survey, report: Findings, owned: Findings | None = None) -> Listings:
    """Report symlinks and open permissions, in ``os.walk``'s order (each
    directory's subdirectories, then its other entries, then deeper; a
    symlink counts as a file: it is never followed, not even to stat it),
    then the vault directory's own mode; the listings of every directory.

    With ``owned``, what normal commands refuse beyond modes, links and
    types goes there too, from the same listing (see ``_ownership``)."""
    listings: Listings = {}
    statuses = None if owned is None else _ownership(survey, owned)
    for rel, entries in survey.walk(statuses):
        listings[rel] = entries
        dirs = [e for e in entries if stat.S_ISDIR(e[1])]
        others = [e for e in entries if not stat.S_ISDIR(e[1])]
        for name, mode in dirs + others:
            if stat.S_ISLNK(mode):
                path = f"{rel}/{name}" if rel else name
                report.error("symlink", path, "a symlink was planted in the vault")
            elif mode & 0o077:
                path = f"{rel}/{name}" if rel else name
                report.error(
                    "permissions",
                    path,
                    f"accessible to other users (mode {mode & 0o777:o})",
                )
    mode = survey.root.status().st_mode
    if mode & 0o077:
        report.error(
            "permissions",
            ".",
            f"the vault directory is accessible to other users (mode {mode & 0o777:o})",
        )
    return listings


def _names(entries: list[tuple[str, int]] | None) -> list[str]:
    return [name for name, _ in entries or ()]


def extra_files(
    listings: Listings, live: set[str], shards: set[str], report: Findings
) -> None:
    """Warn of what the walk found that the format or the manifest does not name."""
    for name in sorted(_names(listings.get(""))):
        if name not in layout.TOP_LEVEL:
            report.warning(
                "unexpected-file",
                name,
                "a file confvault did not write is in the vault",
            )
    for bucket, mode in sorted(listings.get(layout.OBJECTS, ())):
        if not stat.S_ISDIR(mode):
            report.warning(
                "unexpected-file", f"objects/{bucket}", "not an object bucket"
            )
            continue
        for name in _names(listings.get(f"{layout.OBJECTS}/{bucket}")):
            if not layout.HASH.fullmatch(name) or name[:2] != bucket:
                report.warning(
                    "unexpected-file", f"objects/{bucket}/{name}", "not an object"
                )
            elif name not in live:
                report.warning(
                    "unreferenced",
                    name,
                    "object not in the manifest (left by an interrupted command; harmless)",
                )
    for name in _names(listings.get(layout.SHARDS)):
        if name not in shards:
            report.warning(
                "unreferenced", f"shards/{name}", "shard not in the manifest (harmless)"
            )
    _inbox(sorted(_names(listings.get(layout.INBOX))), report)
    for rel in (layout.TMP, layout.INBOX):
        _not_files(rel, listings.get(rel) or [], report)
    for name in _names(listings.get(layout.TMP)):
        if name.endswith((layout.TEMP_SUFFIX, layout.JOURNAL_SUFFIX)):
            report.warning(
                "leftover",
                f"tmp/{name}",
                "left by an interrupted command; the next write removes it",
            )


def _not_files(rel: str, entries: list[tuple[str, int]], report: Findings) -> None:
    """A directory, socket, FIFO or device where only files belong: normal
    commands refuse it (exit 13), so ``verify`` says so too."""
    for name, mode in sorted(entries):
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):  # a link: ``symlink``
            report.error(
                "not-a-file",
                f"{rel}/{name}",
                "not a regular file (a directory, socket, FIFO or device) where "
                "the format has only files: remove it",
            )


def _inbox(names: list[str], report: Findings) -> None:
    """Entries waiting in audit-inbox/, and anything there that is not one."""
    waiting = [n for n in names if layout.INBOX_ENTRY.fullmatch(n)]
    for name in names:
        if name not in waiting:
            report.warning(
                "unexpected-file", f"{layout.INBOX}/{name}", "not an inbox entry"
            )
    if waiting:
        report.warning(
            "audit-inbox",
            layout.INBOX,
            f"{len(waiting)} grantee entries wait for the owner's next command; "
            "one that stays is not authenticated (inspect it, then remove it)",
        )


def _format_dir(rel: str) -> bool:
    """Whether the directory ``rel`` (as the walk names it) is one of the format's."""
    if rel in ("", layout.OBJECTS, layout.SHARDS, layout.TMP, layout.INBOX):
        return True
    return (
        rel.startswith(f"{layout.OBJECTS}/")
        and layout.BUCKET.fullmatch(rel[len(layout.OBJECTS) + 1 :]) is not None
    )


def _ownership(
    survey: Survey, report: Findings
) -> Callable[[str, list[tuple[str, os.stat_result]]], None]:
    """What normal commands refuse beyond modes, links and types, in the
    format's directories: a file or directory of another user, a file with
    more than one hard link (it can be changed, or kept, from elsewhere).
    The vault directory's owner is judged now; each directory's entries as
    the walk lists them (the statuses it took: no second ``lstat``)."""
    uid = os.getuid()
    if survey.root.status().st_uid != uid:
        report.error(
            "foreign-owner", ".", "the vault directory belongs to another user"
        )

    def judge(rel: str, statuses: list[tuple[str, os.stat_result]]) -> None:
        if not _format_dir(rel):
            return
        for name, info in sorted(statuses, key=_NAME):
            mode = info.st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                continue  # a symlink or special file is reported as such
            if info.st_uid == uid and (info.st_nlink == 1 or stat.S_ISDIR(mode)):
                continue
            path = f"{rel}/{name}" if rel else name
            if info.st_uid != uid:
                report.error(
                    "foreign-owner",
                    path,
                    f"belongs to another user (uid {info.st_uid}); normal commands "
                    "refuse it",
                )
            if stat.S_ISREG(mode) and info.st_nlink != 1:
                report.error(
                    "hard-link",
                    path,
                    f"has {info.st_nlink} hard links (a copy elsewhere can change "
                    "or keep it); normal commands refuse it",
                )

    return judge
