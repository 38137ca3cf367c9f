"""What a backup may contain, and reading its members from a tar or a directory.

A backup from elsewhere is hostile input: a member is judged by its name and
kind (``classify``) before anything is read, and only ``manifest``,
``shards/<sha256>`` and ``objects/<xx>/<sha256>`` are ever handed on; absolute
paths, ``..``, links, devices and duplicates become findings. A backup
directory is read through ``store.survey`` (by descriptor, no link followed,
no FIFO waited on, whatever its modes: a copy may have lost them).
"""

from __future__ import annotations

import contextlib
import lzma
import os
import re
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from confvault.vault.backup import sinks, tarformat, tarreader
from confvault.vault.backup.dirsink import DirSink
from confvault.vault.model.results import Finding
from confvault.vault.store import fs, layout
from confvault.vault.store.survey import Survey

_OBJECT_NAME = re.compile(r"objects/([0-9a-f]{2})/\1[0-9a-f]{62}")
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


def classify(name: str, kind: str) -> tuple[str, str]:
    """(verdict, detail): verdict is dir, file, skip, unexpected or hostile.

    ``name`` is a member name from a tar or a path relative to a backup
    directory; ``kind`` is file, dir, link or special. For dir and file the
    detail is the normalised relative path; otherwise it says why.
    """
    if kind == "file" and _OBJECT_NAME.fullmatch(name):
        return "file", name  # what the rules below say, for nearly every member
    if "\0" in name or "\\" in name:
        return "hostile", "a name with a NUL or backslash"
    if name.startswith("/"):
        return "hostile", "an absolute path"
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    parts = [] if name in ("", ".") else name.split("/")
    if ".." in parts:
        return "hostile", "a path that leaves the backup ('..')"
    if kind == "link":
        return "hostile", "a symlink or hard link"
    if kind == "special":
        return "hostile", "a device, FIFO or sparse file"
    rel = "/".join(parts)
    top = parts[0] if parts else ""
    if top in (layout.LOCK, layout.TMP):
        return "skip", "transient vault state"
    if top == layout.INBOX:  # grantee reads waiting for the owner
        return (
            "unexpected",
            "grantee audit entries not yet in the signed chain; not restored",
        )
    if kind == "dir" and (
        not parts
        or rel in (layout.OBJECTS, layout.SHARDS)
        or (
            len(parts) == 2
            and top == layout.OBJECTS
            and layout.BUCKET.fullmatch(parts[1])
        )
    ):
        return "dir", rel
    if kind == "file" and (
        rel == layout.MANIFEST
        or (
            len(parts) == 2 and top == layout.SHARDS and layout.HASH.fullmatch(parts[1])
        )
        or (
            len(parts) == 3
            and top == layout.OBJECTS
            and layout.HASH.fullmatch(parts[2])
            and parts[2][:2] == parts[1]
        )
    ):
        return "file", rel
    return "unexpected", "not part of a vault backup; not restored"


def read_tar(
    stream: BinaryIO,
    put: Callable[[str, tarformat.Read, int], int],
    label: str,
    put_dir: Callable[[str], None] | None = None,
) -> list[Finding]:
    """Hand each vault member of the tar to ``put``; findings for everything else.

    ``put(rel, read)`` consumes the member through ``read`` and returns the
    number of bytes it got; ``put_dir(rel)`` is told of each vault directory.
    """
    findings: list[Finding] = []
    written: set[str] = set()
    try:
        for name, kind, size, read in tarreader.members(stream):
            verdict, detail = classify(name, kind)
            subject = name[:200]
            if verdict == "hostile":
                findings.append(
                    Finding(
                        "error", "hostile-member", subject, f"{detail}; not extracted"
                    )
                )
            elif verdict == "unexpected":
                findings.append(
                    Finding("warning", "unexpected-member", subject, detail)
                )
            elif verdict == "dir":
                if put_dir is not None:
                    put_dir(detail)
            elif verdict == "file" and read is not None:
                if detail in written:
                    findings.append(
                        Finding(
                            "error",
                            "duplicate-member",
                            subject,
                            "the archive holds this file twice; the copy was ignored",
                        )
                    )
                    continue
                written.add(detail)
                if put(detail, read, size) != size:
                    raise tarfile.ReadError("unexpected end of data")
    except _READ_ERRORS as err:
        findings.append(
            Finding(
                "error",
                "tar-damaged",
                label,
                f"the archive is truncated, damaged or not a tar ({err})",
            )
        )
    return findings


@contextlib.contextmanager
def open_tar_file(path: Path) -> Iterator[BinaryIO]:
    """A tar file (or a pipe) the user named, outside any vault."""
    with os.fdopen(sinks.open_tar_source(path), "rb") as stream:
        yield stream


def copy_tree(source: Survey, sink: DirSink) -> list[Finding]:
    """Copy a backup directory's vault files into ``sink``; findings for the rest."""
    findings: list[Finding] = []
    for rel, kind in _walk(source):
        verdict, detail = classify(rel, kind)
        if verdict == "hostile":
            findings.append(
                Finding("error", "hostile-member", rel, f"{detail}; not copied")
            )
        elif verdict == "unexpected":
            findings.append(Finding("warning", "unexpected-member", rel, detail))
        elif verdict == "dir":
            sink.add_dir(detail)
        elif verdict == "file":
            directory, _, name = detail.rpartition("/")
            try:  # non-blocking: a FIFO swapped in cannot hang us
                fd, info = source.open(directory, name)
            except OSError as err:
                raise fs.storage_error(err, f"read {rel}") from err
            with os.fdopen(fd, "rb") as stream:
                if not stat.S_ISREG(info.st_mode):
                    findings.append(
                        Finding("error", "hostile-member", rel, "not a regular file")
                    )
                    continue
                sink.add_file(detail, reading(stream, rel), None)
    return findings


def _walk(source: Survey, rel: str = "") -> Iterator[tuple[str, str]]:
    """(relative path, kind) of everything in the backup's vault directories,
    sorted, each directory followed by what it holds; links not followed."""
    try:
        entries = sorted(source.entries(rel))
    except OSError as err:
        raise fs.storage_error(err, f"read {source.root.where(rel)}") from err
    for entry, mode in entries:
        name = f"{rel}/{entry}" if rel else entry
        if stat.S_ISLNK(mode):
            kind = "link"
        elif stat.S_ISDIR(mode):
            kind = "dir"
        elif stat.S_ISREG(mode):
            kind = "file"
        else:
            kind = "special"
        yield name, kind
        if kind == "dir" and classify(name, kind)[0] == "dir":
            yield from _walk(source, name)


def reading(source: BinaryIO, rel: str) -> Callable[[int], bytes]:
    """``read(n)`` of ``source``, its errors said as a failure to read ``rel``."""

    def read(size: int) -> bytes:
        try:
            return source.read(size)
        except OSError as err:
            raise fs.storage_error(err, f"read {rel}") from err

    return read
