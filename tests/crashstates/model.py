"""The states a power cut can leave, under two models of the file system.

A crash point ``k`` is the moment after the first ``k`` operations of a
trace (``k = 0``: before the command; ``k = len(ops)``: after its last one).
At a crash point, some operations are *durable* (a barrier made them so) and
the others are *free*: each may have reached the disk or not. A state is a
crash point and a subset of its free operations; ``apply`` builds the tree it
leaves.

``ext4`` (ext4, ``data=ordered``, delayed allocation, ``auto_da_alloc``):
  - metadata (``create``, ``mkdir``, ``rename``, ``unlink``, ``rmdir``, and a
    ``truncate``, ``chmod`` or ``times``) is journaled in program order: every
    metadata operation before the crash point is there (a journal commit
    carries all metadata before it, and data reaching the disk needs the
    commit that allocates its blocks, so a metadata prefix shorter than the
    crash point shows nothing the longer one does not);
  - a file's data written since its last sync may be absent: a new file then
    comes back empty or short (delayed allocation), never with another
    file's bytes (``data=ordered``);
  - data is durable after an ``fsync``/``fdatasync`` of that file or a
    ``syncfs``/``sync``; and when a ``rename`` replaces an existing file,
    the renamed file's data written before it is durable with the rename
    (``auto_da_alloc``). ext4's other ``auto_da_alloc`` case (truncate to
    zero, rewrite, close) is not modelled: confvault never rewrites in place.

``none`` (no ordering at all): every operation after the last barrier that
  covers it is independently present or absent:
  - ``fsync`` of a file covers that file's earlier data operations (not its
    name: that needs its directory);
  - ``fsync`` of a directory covers earlier entry operations in it (a
    rename is atomic, one entry moving, and is covered by its destination
    directory);
  - ``syncfs``/``sync`` covers everything before it.
  To stay physically meaningful, an entry operation on a name brings the
  earlier operations on that name with it (a rename needs the creation of
  its source, an unlink the creation of what it removes): the operations on
  each name that are present are a prefix of that name's history. A name in
  a directory whose own entry is absent is lost with it.

In both models a file's free data operations form one unit, present or
absent as a whole (at each crash point, these are the file's writes since
its last sync, so a crash point between two writes still gives the short
file): a sealed object with any part missing fails its hash like an empty
one, so finer splits would add states, not findings.

Bound per crash point: all subsets of its free units when there are at most
``ALL_SUBSETS`` of them; otherwise none, all, every single drop, every
single one alone, and ``SAMPLES`` random subsets from a generator seeded by
the command, the model and the crash point (the same states every run).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

from tests.crashstates.ops import BARRIER, DATA, ENTRY, Node, Op, Tree

MODELS = ("ext4", "none")
ALL_SUBSETS = 4  # free units at a crash point up to which every subset is tried
SAMPLES = 8  # random subsets per sync point beyond that


@dataclass(frozen=True)
class State:
    """A crash state: the operations present, and where it came from."""

    model: str
    point: int  # crash point: the first ``point`` operations were issued
    present: frozenset[int]  # indexes of the operations that reached the disk
    dropped: tuple[int, ...]  # issued operations that did not (for reports)


def cover(ops: list[Op], model: str) -> list[int]:
    """For each operation, the index of the first barrier that makes it durable
    (its own index for ext4's journaled metadata; past the end when none does)."""
    never = len(ops) + 1
    first = [never] * len(ops)
    pending: dict[int, list[int]] = {}  # inode (data) or directory (entries) -> ops
    for op in ops:
        if op.kind == "syncfs":
            for waiting in pending.values():
                for i in waiting:
                    first[i] = op.index
            pending.clear()
        elif op.kind == "fsync":
            for i in pending.pop(op.inode, []):
                first[i] = op.index
        elif op.kind in DATA or op.kind in ENTRY:
            if model == "ext4" and op.kind != "write":
                first[op.index] = op.index
            else:
                key = op.inode if op.kind in DATA else op.dir
                pending.setdefault(key, []).append(op.index)
            if model == "ext4" and op.kind == "rename" and op.replaced >= 0:
                for i in pending.pop(op.inode, []):
                    first[i] = op.index  # auto_da_alloc
    return first


def needs(ops: list[Op]) -> dict[int, list[int]]:
    """For each entry operation, the latest earlier ones on the names it touches."""
    history: dict[tuple[int, str], int] = {}
    needs: dict[int, list[int]] = {}
    for op in ops:
        if op.kind not in ENTRY:
            continue
        keys = [(op.dir, op.name)]
        if op.kind == "rename":
            keys.append((op.src_dir, op.src_name))
        needs[op.index] = [history[k] for k in keys if k in history]
        for key in keys:
            history[key] = op.index
    return needs


def closure(deps: dict[int, list[int]], present: set[int]) -> set[int]:
    """Add, for every present entry operation, the earlier ones on its names."""
    todo = [i for i in present if i in deps]
    done = set(present)
    while todo:
        for before in deps.get(todo.pop(), []):
            if before not in done:
                done.add(before)
                todo.append(before)
    return done


def _subsets(
    units: list[tuple[int, ...]], seed: str, wide: bool
) -> Iterator[tuple[tuple[int, ...], ...]]:
    """The subsets of ``units`` tried: all when few; else the two extremes,
    and (``wide``: at a sync point) every single drop, every unit alone and
    ``SAMPLES`` seeded random subsets."""
    if len(units) <= ALL_SUBSETS:
        for size in range(len(units) + 1):
            yield from itertools.combinations(units, size)
        return
    yield ()
    yield tuple(units)
    if not wide:
        return
    for i in range(len(units)):
        yield tuple(units[:i] + units[i + 1 :])
        yield (units[i],)
    rng = random.Random(hashlib.sha256(seed.encode()).digest())  # noqa: S311 - a reproducible sample
    for _ in range(SAMPLES):
        yield tuple(u for u in units if rng.random() < 0.5)


def sync_points(ops: list[Op]) -> set[int]:
    """The crash points just before each run of barriers, and the end."""
    points = {len(ops)}
    for op in ops:
        if op.kind in BARRIER and (
            op.index == 0 or ops[op.index - 1].kind not in BARRIER
        ):
            points.add(op.index)
    return points


def states(ops: list[Op], model: str, seed: str) -> Iterator[State]:
    """Every bounded crash state of ``ops`` under ``model`` (duplicates included)."""
    if model not in MODELS:
        raise ValueError(model)
    covered_by = cover(ops, model)
    deps = needs(ops)
    wide = sync_points(ops)
    tracked = [op.index for op in ops if op.kind in DATA or op.kind in ENTRY]
    for point in range(len(ops) + 1):
        issued = [i for i in tracked if i < point]
        durable = {i for i in issued if covered_by[i] < point}
        free_data: dict[int, list[int]] = {}
        units: list[tuple[int, ...]] = []
        for i in issued:
            if i in durable:
                continue
            if ops[i].kind in DATA:
                free_data.setdefault(ops[i].inode, []).append(i)
            else:
                units.append((i,))
        units = sorted(units + [tuple(v) for v in free_data.values()])
        for chosen in _subsets(units, f"{seed}/{model}/{point}", point in wide):
            present = durable | {i for unit in chosen for i in unit}
            if model == "none":
                present = closure(deps, present)
            dropped = tuple(i for i in issued if i not in present)
            yield State(model, point, frozenset(present), dropped)


@dataclass
class _Disk:
    """What the operations present build: entries, contents, modes, mtimes."""

    entries: dict[int, dict[str, int]]
    data: dict[int, bytearray]
    modes: dict[int, int]
    mtimes: dict[int, int | None]

    def entry(self, op: Op) -> None:
        if op.kind in ("create", "mkdir"):
            self.modes[op.inode] = op.mode
            if op.kind == "mkdir":
                self.entries.setdefault(op.inode, {})
            else:
                self.data.setdefault(op.inode, bytearray())
        else:  # rename, unlink, rmdir: the name goes, if it names this inode
            where, name = (
                (op.src_dir, op.src_name) if op.kind == "rename" else (op.dir, op.name)
            )
            if self.entries.get(where, {}).get(name) == op.inode:
                del self.entries[where][name]
        if op.kind in ("create", "mkdir", "rename") and op.dir in self.entries:
            self.entries[op.dir][op.name] = op.inode  # a lost directory loses it

    def change(self, op: Op) -> None:
        buf = self.data.setdefault(op.inode, bytearray())
        if op.kind == "write":
            if len(buf) < op.offset:
                buf.extend(bytes(op.offset - len(buf)))
            buf[op.offset : op.offset + len(op.data)] = op.data
        elif op.kind == "truncate":
            del buf[op.size :]
            buf.extend(bytes(op.size - len(buf)))
        elif op.kind == "chmod":
            self.modes[op.inode] = op.mode
        elif op.kind == "times" and op.mtime_ns is not None:
            self.mtimes[op.inode] = op.mtime_ns


def apply(
    tree: Tree, ops: list[Op], present: frozenset[int] | set[int]
) -> dict[str, Node]:
    """The files and directories (relative path -> Node) a state leaves."""
    disk = _Disk(
        {d: dict(names) for d, names in tree.entries.items()},
        {i: bytearray(n.data) for i, n in tree.nodes.items() if n.kind == "file"},
        {i: n.mode for i, n in tree.nodes.items()},
        {i: n.mtime_ns for i, n in tree.nodes.items()},
    )
    for op in ops:
        if op.index in present:
            if op.kind in ENTRY:
                disk.entry(op)
            elif op.kind in DATA:
                disk.change(op)
    entries, data, modes, mtimes = disk.entries, disk.data, disk.modes, disk.mtimes
    out: dict[str, Node] = {}

    def walk(prefix: str, inode: int) -> None:
        for name, child in sorted(entries[inode].items()):
            rel = f"{prefix}{name}"
            if child in entries:
                out[rel] = Node("dir", modes.get(child, 0o700))
                walk(rel + "/", child)
            else:
                out[rel] = Node(
                    "file",
                    modes.get(child, 0o600),
                    bytes(data.get(child, b"")),
                    mtimes.get(child),
                )

    walk("", Tree.ROOT)
    return out


def fingerprint(files: dict[str, Node]) -> str:
    """One digest of a whole state (names, kinds, modes, contents)."""
    sha = hashlib.sha256()
    for rel, node in sorted(files.items()):
        sha.update(f"{rel}\0{node.kind}\0{node.mode:o}\0{len(node.data)}\0".encode())
        sha.update(node.data)
    return sha.hexdigest()


def durable_at_end(ops: list[Op], model: str) -> tuple[int, int]:
    """(operations durable once the command has finished, operations still free)."""
    covered_by = cover(ops, model)
    tracked = [op.index for op in ops if op.kind in DATA or op.kind in ENTRY]
    free = sum(covered_by[i] >= len(ops) for i in tracked)
    return len(tracked) - free, free
