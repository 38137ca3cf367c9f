"""Write a crash state to disk: the world directory holds exactly that tree.

The state goes to the very path the command ran in, because this machine's
memory of a vault is keyed by the vault's real path (``seen/places/``): a
copy elsewhere would not meet that memory at all.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.crashstates.ops import Node


def clear(world: Path) -> None:
    """Empty ``world`` (the directory itself stays)."""
    for entry in os.scandir(world):
        if entry.is_dir(follow_symlinks=False):
            os.chmod(entry.path, 0o700)
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def materialise(
    world: Path, files: dict[str, Node], now: dict[str, Node] | None = None
) -> None:
    """Make ``world`` hold exactly ``files`` (relative path -> Node).

    ``now``: what the world holds (``scan``), to change only what differs;
    without it the world is emptied first.
    """
    if now is None:
        clear(world)
        now = {}
    base = os.fspath(world)
    for rel in sorted(set(now) - set(files), reverse=True):  # children first
        _remove(f"{base}/{rel}", now[rel])
    dirs = []
    for rel, node in sorted(files.items()):
        old = now.get(rel)
        path = f"{base}/{rel}"
        if old is not None and old.kind != node.kind:
            _remove(path, old)
            old = None
        if node.kind == "dir":
            if old is None:
                os.mkdir(path, 0o700)
            if old is None or old.mode != node.mode:
                dirs.append((path, node.mode))
        elif old is not None and old.data == node.data:
            if old.mode != node.mode:
                os.chmod(path, node.mode)
        else:
            if old is not None:
                os.unlink(path)
            _write(path, node)
    for path, mode in reversed(dirs):  # deepest first: a 0500 parent comes last
        os.chmod(path, mode)


def _remove(path: str, node: Node) -> None:
    if node.kind == "dir":
        if os.path.isdir(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _write(path: str, node: Node) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(node.data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, node.mode)
        if node.mtime_ns is not None:
            os.utime(fd, ns=(node.mtime_ns, node.mtime_ns))
    finally:
        os.close(fd)


def scan(world: Path) -> dict[str, Node]:
    """What ``world`` holds now, in the form ``materialise`` takes."""
    out: dict[str, Node] = {}
    base = os.fspath(world)

    def walk(rel: str) -> None:
        for entry in sorted(
            os.scandir(f"{base}/{rel}" if rel else base), key=lambda e: e.name
        ):
            sub = f"{rel}{entry.name}"
            info = entry.stat(follow_symlinks=False)
            mode = info.st_mode & 0o7777
            if entry.is_dir(follow_symlinks=False):
                out[sub] = Node("dir", mode)
                walk(sub + "/")
            else:
                with open(entry.path, "rb") as f:
                    out[sub] = Node("file", mode, f.read(), info.st_mtime_ns)

    walk("")
    return out
