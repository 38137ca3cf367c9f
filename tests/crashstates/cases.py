"""A crash state described in a few words, found again in a fresh trace.

A trace is never the same twice (object names are hashes of fresh
ciphertext, temporary names carry a process ID), so a state the explorer
found is stored as a description, not as files:

    Case("note-add", "none", point="before fsync vault/objects/*/*",
         drop=("rename vault/tmp/txn-*.journal",))

``point``: ``end`` (after the command's last operation), or ``before`` /
``after`` the first operation matching a pattern; a pattern is an
operation's kind and a glob over its path in the world. ``drop``: patterns
of operations issued before the point that did not reach the disk (every
match); every other issued operation did. ``build`` finds the state again
in a new recording; when a barrier now makes a dropped operation durable
(the fix), the state cannot happen any more and ``build`` says so.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from tests.crashstates import model
from tests.crashstates.ops import DATA, ENTRY, Op


@dataclass(frozen=True)
class Case:
    command: str
    model: str
    point: str
    drop: tuple[str, ...] = ()
    why: str = ""


def _matches(op: Op, pattern: str) -> bool:
    kind, _, glob = pattern.partition(" ")
    return op.kind == kind and fnmatch.fnmatchcase(op.where, glob)


def _point(ops: list[Op], point: str) -> int:
    if point == "end":
        return len(ops)
    where, _, pattern = point.partition(" ")
    for op in ops:
        if _matches(op, pattern):
            return op.index if where == "before" else op.index + 1
    raise AssertionError(f"no operation matches {pattern!r}")


def build(case: Case, ops: list[Op]) -> tuple[int, frozenset[int]] | str:
    """(crash point, operations present), or why the state cannot happen now."""
    point = _point(ops, case.point)
    issued = [op for op in ops[:point] if op.kind in DATA or op.kind in ENTRY]
    dropped = set()
    for pattern in case.drop:
        found = [op.index for op in issued if _matches(op, pattern)]
        if not found:
            raise AssertionError(f"no operation before the point matches {pattern!r}")
        dropped.update(found)
    cover = model.cover(ops, case.model)
    durable = sorted(i for i in dropped if cover[i] < point)
    if durable:
        return "now durable at that point: " + ", ".join(
            ops[i].describe() for i in durable
        )
    present = {op.index for op in issued} - dropped
    if case.model == "none":
        closed = model.closure(model.needs(ops), present)
        if closed & dropped:
            forced = sorted(closed & dropped)
            return "brought back by a later operation on the same name: " + ", ".join(
                ops[i].describe() for i in forced
            )
    return point, frozenset(present)
