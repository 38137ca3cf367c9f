"""The operations a command makes on its world, and the world's tree.

The world is a directory holding everything the command may change: the
vault, the state directory ($XDG_STATE_HOME) and a backup's target. Its tree
is snapshot before the command (``Tree.scan``); ``syscalls.operations``
turns the traced calls into ``Op``s, in program order, of three kinds:

- entry operations (a name in a directory): ``create``, ``mkdir``,
  ``rename``, ``unlink``, ``rmdir``;
- data operations (an inode's content or attributes): ``write``,
  ``truncate``, ``times``, ``chmod``;
- barriers: ``fsync`` (of a file or of a directory; ``fdatasync`` too) and
  ``syncfs`` (``sync`` too).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from tests.crashstates.trace import TraceError

ENTRY = ("create", "mkdir", "rename", "unlink", "rmdir")
DATA = ("write", "truncate", "times", "chmod")
BARRIER = ("fsync", "syncfs")


@dataclass
class Node:
    """A file or directory of the snapshot: what it holds before the command."""

    kind: str  # "file" | "dir"
    mode: int
    data: bytes = b""
    mtime_ns: int | None = None


@dataclass
class Tree:
    """A world's tree: inodes, and each directory's entries (name -> inode)."""

    nodes: dict[int, Node] = field(default_factory=dict)
    entries: dict[int, dict[str, int]] = field(default_factory=dict)

    ROOT = 0

    @classmethod
    def scan(cls, world: str) -> Tree:
        tree = cls()
        tree.nodes[cls.ROOT] = Node("dir", 0o700)
        tree.entries[cls.ROOT] = {}

        def walk(path: str, inode: int) -> None:
            for name in sorted(os.listdir(path)):
                full = f"{path}/{name}"
                info = os.lstat(full)
                number = len(tree.nodes)
                if stat.S_ISDIR(info.st_mode):
                    tree.nodes[number] = Node("dir", stat.S_IMODE(info.st_mode))
                    tree.entries[number] = {}
                    tree.entries[inode][name] = number
                    walk(full, number)
                elif stat.S_ISREG(info.st_mode):
                    with open(full, "rb") as f:
                        data = f.read()
                    mode = stat.S_IMODE(info.st_mode)
                    tree.nodes[number] = Node("file", mode, data, info.st_mtime_ns)
                    tree.entries[inode][name] = number
                else:
                    raise TraceError(f"{full}: only files and directories are modelled")

        walk(world, cls.ROOT)
        return tree


@dataclass(frozen=True)
class Op:
    """One operation on the world, in program order."""

    index: int
    kind: str
    inode: int  # the file or directory it is about (for an entry: the entry's)
    dir: int = -1  # entry operations: the directory (rename: the destination)
    name: str = ""
    src_dir: int = -1  # rename: where the name was
    src_name: str = ""
    replaced: int = -1  # rename: the inode the destination named before, if any
    offset: int = 0
    data: bytes = b""
    size: int = 0  # truncate
    mode: int = 0  # create, mkdir, chmod
    mtime_ns: int | None = None  # times
    pid: int = 0
    where: str = ""  # a path, for reports

    def describe(self) -> str:
        extra = ""
        if self.kind == "write":
            extra = f" {len(self.data)} bytes at {self.offset}"
        elif self.kind == "truncate":
            extra = f" to {self.size}"
        return f"{self.index}: {self.kind} {self.where}{extra}"
