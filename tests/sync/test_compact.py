"""`sync compact` (issue 16): the remote's history replaced by one commit of
the current state, signed by the owner; a shredded client's old files leave
the remote; the other devices follow (their unsynced notes merged on top);
a rewrite the owner did not sign stays exit 13, nothing changed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.sync.conftest import Device, Tamper, refused_sync


def _reachable(git: Callable[..., Any], remote: Path) -> set[str]:
    """Every path the bare remote still holds, once it collected garbage."""
    git(f"--git-dir={remote}", "gc", "--quiet", "--prune=now")
    out = git(f"--git-dir={remote}", "rev-list", "--objects", "--all").stdout
    return {line.split(" ", 1)[1] for line in out.splitlines() if " " in line}


def _local_commits(device: Device) -> set[str]:
    (repo,) = (device.state / "confvault" / "sync").glob("*.git")
    done = subprocess.run(
        ["git", f"--git-dir={repo}", "rev-list", "--all"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


_refused = refused_sync


def test_compaction_drops_a_shredded_client_and_the_other_device_follows(
    first: Device,
    second: Device,
    remote: Path,
    tamper: Tamper,
    git: Callable[..., Any],
) -> None:
    first.ok("client", "add", "Bob Byrne")
    first.ok("note", "add", "Bob", "--title", "bob", input="Bob's secret.\n")
    with_bob = set(first.files())
    first.ok("sync")
    assert second.json("sync")["action"] == "pulled"
    first.ok("client", "shred", "Bob", "--yes")
    gone = with_bob - set(first.files())
    assert any(p.startswith("objects/") for p in gone)
    first.ok("sync")
    assert second.json("sync")["action"] == "pulled"
    old_history = set(tamper.log())
    # Before compaction the remote's history still holds Bob's files.
    assert gone <= _reachable(git, remote)
    # B writes a note it has not synced yet.
    second.ok("note", "add", "Ada", "--title", "from b", input="B wrote.\n")

    done = first.json("sync", "compact")
    assert done["replaced"] in old_history
    assert done["commits_dropped"] == len(old_history)
    assert tamper.log() == [done["commit"]]
    assert "compacted: " in tamper.g("cat-file", "commit", done["commit"])
    assert not gone & _reachable(git, remote)
    assert not old_history & _local_commits(first)

    followed = second.json("sync")
    assert followed["action"] == "pushed"  # B's note, on top of the compaction
    assert len(tamper.log()) == 2  # the compacted root, then B's commit
    assert first.json("sync")["action"] == "pulled"
    assert first.files() == second.files()
    assert not old_history & _local_commits(second)
    titles = {n["title"] for n in json.loads(first.ok("note", "list", "--json").stdout)}
    assert {"intake", "from b"} <= titles
    for device in (first, second):
        device.ok("verify", "--deep")
        device.ok("audit", "verify")
    assert not gone & _reachable(git, remote)


def test_a_device_with_nothing_new_follows_a_compaction(
    first: Device, second: Device, tamper: Tamper
) -> None:
    first.ok("note", "add", "Ada", "--title", "two", input="two\n")
    first.ok("sync")
    done = first.json("sync", "compact")
    followed = second.json("sync")
    assert followed["action"] == "pulled"
    assert followed["commit"] in tamper.log()
    assert tamper.log()[-1] == done["commit"]
    assert first.json("sync")["action"] == "none"
    assert first.files() == second.files()


def test_a_rewrite_not_signed_by_the_owner_stays_refused(
    first: Device, second: Device, tamper: Tamper
) -> None:
    head = tamper.head()
    # A root commit of the very same state, without the owner's marker.
    tamper.point(tamper.commit(head, [], message="compacted, honest"))
    _refused(second, "rewritten, rolled back or forked", "nothing was changed")
    # The same with a marker whose signature the owner never made.
    marker = tamper.g("cat-file", "commit", head).split("\n\n", 1)[1]
    forged = f"{marker}compacted: 9 {'0' * 64}\nsignature: {'A' * 86}==\n"
    tamper.point(tamper.commit(head, [], message=forged))
    _refused(second, "rewritten, rolled back or forked")


def test_a_real_compaction_replayed_later_is_refused(
    first: Device, second: Device, tamper: Tamper
) -> None:
    old_root = first.json("sync", "compact")["commit"]
    assert second.json("sync")["commit"] == tamper.head()
    first.ok("note", "add", "Ada", "--title", "later", input="later\n")
    first.ok("sync")
    second.ok("sync")
    # A signed compaction, but older than what B synced since: a rollback.
    tamper.point(old_root)
    _refused(second, "rewritten, rolled back or forked")
