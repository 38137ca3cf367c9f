"""From traced system calls to the operations they made on the world.

``operations`` replays the calls over a model of the world's tree (names,
inodes, each process's descriptor table and offsets) and keeps, in program
order, what touched the world. Whatever the command does elsewhere (reading
its inputs, Python's imports, the terminal) is left out. What the model
cannot represent is refused with ``TraceError`` rather than guessed: a hard
link or symlink made in the world, a writable shared mapping of one of its
files (its writes never pass through a system call), ``copy_file_range``,
``sendfile`` or ``splice`` into one of its files (strace does not print
those bytes), a rename into or out of the world, a change of directory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from tests.crashstates.ops import Op, Tree
from tests.crashstates.trace import AT_FDCWD, Arg, Call, Fd, TraceError, iovec_bytes


@dataclass
class _Desc:
    inode: int
    offset: int = 0
    append: bool = False


@dataclass
class _Replay:
    world: str
    cwd: str
    umask: int
    tree: Tree
    ops: list[Op] = field(default_factory=list)
    paths: dict[str, int] = field(default_factory=dict)  # live path -> inode
    kinds: dict[int, str] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)
    tables: dict[int, dict[int, _Desc | None]] = field(default_factory=dict)
    parents: dict[int, tuple[int, bool]] = field(default_factory=dict)
    next_inode: int = 0

    def __post_init__(self) -> None:
        def walk(path: str, inode: int) -> None:
            self.paths[path] = inode
            node = self.tree.nodes[inode]
            self.kinds[inode] = node.kind
            self.sizes[inode] = len(node.data)
            for name, child in self.tree.entries.get(inode, {}).items():
                walk(f"{path}/{name}", child)

        walk(self.world, Tree.ROOT)
        self.next_inode = len(self.tree.nodes)

    # --- where things are ---------------------------------------------------------

    def inside(self, path: str) -> bool:
        return path == self.world or path.startswith(self.world + "/")

    def resolve(self, base: Arg | None, path: Arg) -> str:
        if not isinstance(path, bytes):
            raise TraceError(f"a path argument that is not a string: {path!r}")
        text = os.fsdecode(path)
        if not text.startswith("/"):
            if isinstance(base, Fd) and base.number != AT_FDCWD:
                text = f"{base.path}/{text}"
            else:
                text = f"{self.cwd}/{text}"
        return os.path.normpath(text)

    def table(self, pid: int) -> dict[int, _Desc | None]:
        if pid not in self.tables:
            parent, shared = self.parents.get(pid, (-1, False))
            if parent in self.tables:
                source = self.tables[parent]
                self.tables[pid] = source if shared else dict(source)
            else:
                self.tables[pid] = {}
        return self.tables[pid]

    def desc(self, call: Call, arg: Arg) -> _Desc | None:
        if not isinstance(arg, Fd):
            return None
        found = self.table(call.pid).get(arg.number)
        if found is None and self.inside(arg.path.removesuffix(" (deleted)")):
            raise TraceError(f"descriptor {arg.number} of {arg.path} was never opened")
        return found

    def emit(
        self, call: Call, kind: str, inode: int, where: str, **fields: object
    ) -> None:
        self.ops.append(
            Op(
                len(self.ops),
                kind,
                inode,
                pid=call.pid,
                where=self.rel(where),
                **fields,
            )  # type: ignore[arg-type]
        )

    def rel(self, path: str) -> str:
        return path[len(self.world) :].lstrip("/") or "."

    def split(self, path: str) -> tuple[int, str]:
        parent, _, name = path.rpartition("/")
        if parent not in self.paths:
            raise TraceError(f"{path}: its directory is not known to the model")
        return self.paths[parent], name

    def forget(self, path: str) -> None:
        """Drop ``path`` and everything under it from the live names."""
        for known in [p for p in self.paths if p == path or p.startswith(path + "/")]:
            del self.paths[known]

    def new_inode(self, kind: str) -> int:
        number = self.next_inode
        self.next_inode += 1
        self.kinds[number] = kind
        self.sizes[number] = 0
        return number

    # --- the calls ------------------------------------------------------------------

    def open(
        self, call: Call, base: Arg | None, path: Arg, flags: str, mode: int
    ) -> None:
        table = self.table(call.pid)
        if call.result_fd is None:
            return
        where = self.resolve(base, path)
        if not self.inside(where):
            table[call.result] = None
            return
        inode = self.paths.get(where)
        if inode is None:
            if "O_CREAT" not in flags:
                raise TraceError(f"{where} opened without O_CREAT but unknown")
            parent, name = self.split(where)
            inode = self.new_inode("file")
            self.paths[where] = inode
            self.emit(
                call,
                "create",
                inode,
                where,
                dir=parent,
                name=name,
                mode=mode & ~self.umask,
            )
        elif (
            "O_TRUNC" in flags
            and self.kinds[inode] == "file"
            and re.search(r"O_WRONLY|O_RDWR", flags)
        ):
            self.sizes[inode] = 0
            self.emit(call, "truncate", inode, where, size=0)
        table[call.result] = _Desc(inode, append="O_APPEND" in flags)

    def write(self, call: Call, arg: Arg, data: bytes, at: int | None) -> None:
        desc = self.desc(call, arg)
        if desc is None or call.result <= 0:
            return
        data = data[: call.result]
        if at is None:
            at = self.sizes[desc.inode] if desc.append else desc.offset
            desc.offset = at + len(data)
        self.sizes[desc.inode] = max(self.sizes[desc.inode], at + len(data))
        assert isinstance(arg, Fd)
        self.emit(call, "write", desc.inode, arg.path, offset=at, data=data)

    def entry_rename(self, call: Call, src: str, dst: str, flags: str) -> None:
        if not (self.inside(src) or self.inside(dst)):
            return
        if not (self.inside(src) and self.inside(dst)):
            raise TraceError(f"a rename across the world's edge: {src} -> {dst}")
        if "RENAME_EXCHANGE" in flags:
            raise TraceError("RENAME_EXCHANGE is not modelled")
        inode = self.paths[src]
        src_dir, src_name = self.split(src)
        dst_dir, dst_name = self.split(dst)
        replaced = self.paths.get(dst, -1)
        moved = {
            p[len(src) :]: i
            for p, i in self.paths.items()
            if p == src or p.startswith(src + "/")
        }
        self.forget(src)
        self.forget(dst)
        for tail, number in moved.items():
            self.paths[dst + tail] = number
        self.emit(
            call,
            "rename",
            inode,
            dst,
            dir=dst_dir,
            name=dst_name,
            src_dir=src_dir,
            src_name=src_name,
            replaced=replaced,
        )

    def entry_remove(self, call: Call, where: str, kind: str) -> None:
        if not self.inside(where):
            return
        parent, name = self.split(where)
        inode = self.paths[where]
        self.forget(where)
        self.emit(call, kind, inode, where, dir=parent, name=name)

    def mkdir(self, call: Call, where: str, mode: int) -> None:
        if not self.inside(where):
            return
        parent, name = self.split(where)
        inode = self.new_inode("dir")
        self.paths[where] = inode
        self.emit(
            call, "mkdir", inode, where, dir=parent, name=name, mode=mode & ~self.umask
        )

    def on_inode(
        self, call: Call, base: Arg, path: Arg | None
    ) -> tuple[int, str] | None:
        """The inode a call names by descriptor (path None or empty) or by path."""
        if path is None or path == b"" or path == "NULL":
            desc = self.desc(call, base)
            if desc is None:
                return None
            assert isinstance(base, Fd)
            return desc.inode, base.path
        where = self.resolve(base, path)
        if not self.inside(where):
            return None
        return self.paths[where], where


def _mtime(arg: Arg) -> int | None:
    """The modification time a ``utimensat`` sets, when it is a fixed one."""
    if not isinstance(arg, list) or len(arg) != 2 or not isinstance(arg[1], str):
        return None
    match = re.fullmatch(r"\{tv_sec=(-?\d+), tv_nsec=(\d+)\s*\}", arg[1].strip())
    return int(match.group(1)) * 10**9 + int(match.group(2)) if match else None


def operations(
    calls: list[Call], *, world: str, cwd: str, umask: int, tree: Tree
) -> list[Op]:
    """The operations ``calls`` made on the world whose tree before was ``tree``."""
    r = _Replay(world, cwd, umask, tree)
    for call in calls:
        if call.name in ("clone", "clone3", "fork", "vfork") and call.result > 0:
            shared = "CLONE_FILES" in " ".join(map(str, call.args))
            r.parents[call.result] = (call.pid, shared)
            if call.result in r.tables:
                continue
            r.table(call.result)
    for call in calls:
        _one(r, call)
    return r.ops


def _one(r: _Replay, call: Call) -> None:  # noqa: C901 - one branch per call
    a, name = call.args, call.name
    if call.result < 0 and name not in ("sync",):
        return
    if name == "openat":
        r.open(
            call,
            a[0],
            a[1],
            str(a[2]),
            a[3] if len(a) > 3 and isinstance(a[3], int) else 0,
        )
    elif name == "open":
        r.open(
            call,
            None,
            a[0],
            str(a[1]),
            a[2] if len(a) > 2 and isinstance(a[2], int) else 0,
        )
    elif name == "creat":
        r.open(call, None, a[0], "O_CREAT|O_WRONLY|O_TRUNC", int(a[1]))  # type: ignore[arg-type]
    elif name == "openat2":
        raise TraceError("openat2 is not modelled")
    elif name == "close":
        if isinstance(a[0], Fd):
            r.table(call.pid).pop(a[0].number, None)
    elif name in ("dup", "dup2", "dup3") or (
        name == "fcntl" and "F_DUPFD" in str(a[1])
    ):
        if isinstance(a[0], Fd) and call.result_fd is not None:
            table = r.table(call.pid)
            table[call.result] = table.get(a[0].number)
    elif name == "lseek":
        desc = r.desc(call, a[0])
        if desc is not None:
            desc.offset = call.result
    elif name == "write":
        r.write(call, a[0], a[1], None)  # type: ignore[arg-type]
    elif name == "pwrite64":
        r.write(call, a[0], a[1], int(a[3]))  # type: ignore[arg-type]
    elif name == "writev":
        r.write(call, a[0], iovec_bytes(a[1]), None)
    elif name in ("pwritev", "pwritev2"):
        r.write(call, a[0], iovec_bytes(a[1]), int(a[3]))  # type: ignore[arg-type]
    elif name in ("ftruncate", "truncate"):
        found = (
            r.on_inode(call, a[0], None)
            if name == "ftruncate"
            else r.on_inode(call, None, a[0])
        )
        if found:
            r.sizes[found[0]] = int(a[1])  # type: ignore[arg-type]
            r.emit(call, "truncate", found[0], found[1], size=int(a[1]))  # type: ignore[arg-type]
    elif name in ("fsync", "fdatasync"):
        found = r.on_inode(call, a[0], None)
        if found:
            r.emit(call, "fsync", found[0], found[1])
    elif name in ("syncfs", "sync"):
        r.emit(call, "syncfs", Tree.ROOT, r.world)
    elif name == "rename":
        r.entry_rename(call, r.resolve(None, a[0]), r.resolve(None, a[1]), "")
    elif name in ("renameat", "renameat2"):
        flags = str(a[4]) if len(a) > 4 else ""
        r.entry_rename(call, r.resolve(a[0], a[1]), r.resolve(a[2], a[3]), flags)
    elif name == "unlink":
        r.entry_remove(call, r.resolve(None, a[0]), "unlink")
    elif name == "unlinkat":
        kind = "rmdir" if "AT_REMOVEDIR" in str(a[2]) else "unlink"
        r.entry_remove(call, r.resolve(a[0], a[1]), kind)
    elif name == "rmdir":
        r.entry_remove(call, r.resolve(None, a[0]), "rmdir")
    elif name == "mkdir":
        r.mkdir(call, r.resolve(None, a[0]), int(a[1]))  # type: ignore[arg-type]
    elif name == "mkdirat":
        r.mkdir(call, r.resolve(a[0], a[1]), int(a[2]))  # type: ignore[arg-type]
    elif name in ("link", "linkat", "symlink", "symlinkat"):
        targets = [r.resolve(b, p) for b, p in _link_paths(name, a)]
        if any(r.inside(t) for t in targets):
            raise TraceError(f"{name} in the world is not modelled")
    elif name == "utimensat":
        found = r.on_inode(call, a[0], a[1])
        if found:
            r.emit(call, "times", found[0], found[1], mtime_ns=_mtime(a[2]))
    elif name in ("fchmod", "chmod", "fchmodat"):
        found = {
            "fchmod": lambda: r.on_inode(call, a[0], None),
            "chmod": lambda: r.on_inode(call, None, a[0]),
            "fchmodat": lambda: r.on_inode(call, a[0], a[1]),
        }[name]()
        if found:
            r.emit(
                call,
                "chmod",
                found[0],
                found[1],
                mode=int(a[-1] if name != "fchmodat" else a[2]),
            )  # type: ignore[arg-type]
    elif name in ("chdir", "fchdir"):
        raise TraceError("a change of directory is not modelled")
    elif name == "mmap":
        if (
            r.desc(call, a[4]) is not None
            and "MAP_SHARED" in str(a[3])
            and "PROT_WRITE" in str(a[2])
        ):
            raise TraceError("a writable shared mapping of a file in the world")
    elif name in ("copy_file_range", "sendfile", "splice"):
        out = a[2] if name in ("copy_file_range", "splice") else a[0]
        if r.desc(call, out) is not None:
            raise TraceError(
                f"{name} into a file of the world: its bytes are not traced"
            )


def _link_paths(name: str, a: tuple[Arg, ...]) -> list[tuple[Arg | None, Arg]]:
    if name == "link":
        return [(None, a[1])]
    if name == "symlink":
        return [(None, a[1])]
    if name == "symlinkat":
        return [(a[1], a[2])]
    return [(a[2], a[3])]
