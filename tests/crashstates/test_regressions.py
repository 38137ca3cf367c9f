"""Each crash state that once failed, found again in a fresh trace.

A case names a command, a model, a crash point and the operations lost
(``cases.Case``). ``durable``: the fix put a barrier before the point, so
the lost operations can no longer be lost there (the test fails if that
barrier goes). ``recovers``: the state still happens, and now passes every
check of the explorer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from confvault.errors import VaultExistsError
from confvault.vault import Vault
from tests.crashstates import cases, model
from tests.crashstates.cases import Case
from tests.crashstates.explorer import Explorer, record_command
from tests.crashstates.worlds import COMMANDS, make_world

CASES = {
    # 1. The journal was written but not synced before the objects it names
    #    were moved in: objects survived a power cut, their journal did not,
    #    and nothing ever removed them (no ordering).
    "journal-lost-objects-kept": (
        Case(
            "note-add",
            "none",
            "before fsync vault/objects/*/*",
            ("rename vault/tmp/txn-*.journal",),
        ),
        "durable",
    ),
    "journal-lost-objects-kept-syncfs": (
        Case(
            "rotate-all", "none", "before syncfs *", ("rename vault/tmp/txn-*.journal",)
        ),
        "durable",
    ),
    # 2. The same on ext4: the journal's name survived, its data (delayed
    #    allocation) did not; the next write took the empty journal for a
    #    planted one and audited `journal-refused`: a false alarm.
    "journal-empty-false-alarm": (
        Case(
            "note-add",
            "ext4",
            "before fsync vault/objects/*/*",
            ("write vault/tmp/txn-*.journal.*",),
        ),
        "durable",
    ),
    # 3. After the commit, the journal was removed before the removals it
    #    stands for were durable: the objects came back, unnamed by anything.
    "removals-lost-journal-gone": (
        Case(
            "note-add",
            "none",
            "end",
            ("unlink vault/objects/*/*", "unlink vault/shards/*"),
        ),
        "durable",
    ),
    # 4. init reported success, but the vault directory's own entry in its
    #    parent was never synced: the whole vault could vanish.
    "init-vault-entry-lost": (Case("init", "none", "end", ("mkdir vault",)), "durable"),
    # 5. init interrupted after creating its directories: init again
    #    refused the directory as "not empty", and nothing else could use it.
    "init-interrupted-then-init": (
        Case("init", "ext4", "after mkdir vault/tmp"),
        "recovers",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_replayed_state(name: str, strace_bin: str, world_root: Path) -> None:
    case, expect = CASES[name]
    command = next(c for c in COMMANDS if c.name == case.command)
    world = make_world(world_root, with_vault=not command.creates_vault)
    run = record_command(world, command, strace_bin)
    built = cases.build(case, run.ops)
    if expect == "durable":
        assert isinstance(built, str), f"{name}: the state still happens"
        assert built.startswith("now durable"), built
        return
    assert not isinstance(built, str), built
    point, present = built
    explorer = Explorer(run)
    files = model.apply(run.before, run.ops, present)
    assert explorer.check(files, point > explorer.last_barrier) is None


def test_init_again_clears_only_what_an_interrupted_init_leaves(tmp_path: Path) -> None:
    """Case 5's fix, at its edges: a vault, a stranger's file, a name outside
    the format's grammar keep the directory "not empty"; the skeleton of an
    init cut short (directories, a lock, objects, temporary files) does not."""

    def init(path: Path) -> None:
        Vault.init(
            path,
            b"pass",
            work_factor=10,
            postquantum=False,
            min_work_factor=10,
            state_dir=tmp_path / "state",
        )

    init(tmp_path / "vault")
    stranger = tmp_path / "stranger"
    (stranger / "objects").mkdir(mode=0o700, parents=True)
    (stranger / "notes.txt").write_text("mine")
    odd = tmp_path / "odd"
    (odd / "tmp").mkdir(mode=0o700, parents=True)
    (odd / "tmp" / "evil").write_text("not a temporary file of ours")
    for path in (tmp_path / "vault", stranger, odd):
        before = sorted(p.relative_to(path) for p in path.rglob("*"))
        with pytest.raises(VaultExistsError, match="is not empty"):
            init(path)
        assert sorted(p.relative_to(path) for p in path.rglob("*")) == before
    cut = tmp_path / "cut"
    for sub in ("", "objects", "objects/ab", "shards", "tmp"):
        (cut / sub).mkdir(mode=0o700, exist_ok=True)
    (cut / "lock").write_bytes(b"")
    (cut / "objects" / "ab" / ("ab" + "0" * 62)).write_bytes(b"half an object")
    (cut / "tmp" / f"manifest.123.{'0' * 12}.tmp").write_bytes(b"")
    init(cut)
    assert (
        Vault.open(cut, passphrase=b"pass", state_dir=tmp_path / "state")
        .verify()
        .findings
        == ()
    )
