"""Record one CLI command, build its crash states, and check every one.

    run = record_command(world, command)      # strace of a real subprocess
    result = explore(run)                     # every state, checked in-process

A world is a directory holding the vault (``vault/``), this machine's state
directory (``xdg/confvault``: the rollback memory ``seen/``) and, for a
backup, its target (``backup/``); the passphrase and the command's inputs
live beside it, outside. Each distinct state (states are deduplicated by
their whole tree) is written to the world's own path and checked:

1. keyless verify finds nothing but what a crash may leave and the next
   write removes (``FINE``);
2. the vault opens; its content (``content.read``) is the content before
   the command or that of a manifest the command committed (for a single
   commit: before or after), and it is the last one when the crash came
   after the command's last barrier (the command had reported success);
3. the next ordinary write (a new client) succeeds, and after it keyless
   verify finds nothing at all;
4. a backup target verifies, or is absent, or is refused; and when it
   verifies it is the whole backup.

Deep verify and the content are functions of the manifest's bytes once
keyless verify found every object the manifest names intact (objects are
named by their hash), so they are read once per distinct manifest.
"""

from __future__ import annotations

import hashlib
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confvault.errors import ConfvaultError
from confvault.vault import Vault, backup
from confvault.vault.check.keyless import verify_keyless
from confvault.vault.store.seen import SeenStore
from tests.crashstates import content, model
from tests.crashstates.materialise import materialise, scan
from tests.crashstates.ops import Node, Op, Tree
from tests.crashstates.syscalls import operations
from tests.crashstates.trace import record

# What a crash may leave that is fine:
# - "unreferenced", "leftover": an object or shard no manifest names (the
#   command's journal lists it), a temporary file or a journal in tmp/: the
#   next write removes them (every writer clears tmp/ and obeys journals),
#   which the check after that write confirms;
# - "never-seen": this machine's memory of the vault (seen/) had not reached
#   the disk, after init: a memory older than the vault (here, none) is the
#   weaker direction; the vault opens and the next open records it, as for
#   a vault copied in. A memory newer than the vault is not fine: the vault
#   would refuse to open as rolled back.
FINE = {"unreferenced", "leftover", "never-seen"}
VAULT, STATE, BACKUP = "vault", "xdg/confvault", "backup"
MANIFEST = f"{VAULT}/manifest"


@dataclass(frozen=True)
class Command:
    name: str
    args: Callable[[World], list[str]]
    stdin: bytes = b""
    creates_vault: bool = False  # init: before it, there is no vault
    backup: bool = False  # writes a backup to the world's backup/


@dataclass
class World:
    path: Path  # the world: vault/, xdg/ and backup/
    outside: Path  # the passphrase file and the command's inputs
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def vault(self) -> Path:
        return self.path / VAULT

    @property
    def state(self) -> Path:
        return self.path / STATE

    @property
    def passphrase_file(self) -> Path:
        return self.outside / "passphrase"


@dataclass
class Run:
    command: Command
    world: World
    before: Tree
    ops: list[Op]
    seconds: float  # the recorded run, wall time
    cpu: float  # and its processor time (strace and the command)


def record_command(world: World, command: Command, strace: str) -> Run:
    """Run ``command`` as a real subprocess under strace, from the world as it is."""
    world_path = Path(os.path.realpath(world.path))
    before = Tree.scan(os.fspath(world_path))
    argv = [
        sys.executable,
        "-m",
        "confvault",
        "--vault",
        os.fspath(world_path / VAULT),
        "--passphrase-file",
        os.fspath(world.passphrase_file),
        *command.args(world),
    ]
    env = dict(os.environ, XDG_STATE_HOME=os.fspath(world_path / "xdg"))
    env.pop("CONFVAULT_DEBUG", None)
    start, children = time.monotonic(), _children_cpu()
    done = record(argv, env=env, cwd=world.outside, stdin=command.stdin, strace=strace)
    seconds, cpu = time.monotonic() - start, _children_cpu() - children
    if done.returncode != 0:
        raise AssertionError(
            f"{command.name} failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
        )
    mask = os.umask(0)
    os.umask(mask)
    ops = operations(
        done.calls,
        world=os.fspath(world_path),
        cwd=os.fspath(world.outside),
        umask=mask,
        tree=before,
    )
    replayed = model.apply(before, ops, {op.index for op in ops})
    actual = scan(world_path)
    if model.fingerprint(replayed) != model.fingerprint(actual):
        missing = sorted(set(actual) ^ set(replayed))
        differ = [
            r for r in actual if r in replayed and actual[r].data != replayed[r].data
        ]
        raise AssertionError(
            f"the trace of {command.name} does not replay to the tree it left: "
            f"names {missing[:5]}, contents {differ[:5]}"
        )
    return Run(command, world, before, ops, seconds, cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Result:
    """What exploring one command found."""

    command: str
    ops: int
    barriers: int
    synced: dict[
        str, tuple[int, int]
    ]  # model -> (durable, free) once the command ended
    raw: dict[str, int]  # model -> states generated (before deduplication)
    distinct: int  # distinct states checked (both models together)
    contents: int  # distinct vault contents seen (before, after, intermediate)
    seconds: float  # wall time
    cpu: float  # processor time (what the one-minute bound is about)
    problems: list[str] = field(default_factory=list)


def _manifest_key(files: dict[str, Node]) -> str | None:
    node = files.get(MANIFEST)
    return hashlib.sha256(node.data).hexdigest() if node is not None else None


def _barriers(ops: list[Op]) -> int:
    return sum(op.kind in ("fsync", "syncfs") for op in ops)


class Explorer:
    """Checks the crash states of one recorded run."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.world = run.world
        ops = run.ops
        self.cache: dict[str, content.Content] = {}  # manifest digest -> content
        self.ondisk: dict[str, Node] | None = None  # what the world holds, if known
        self.last_barrier = max(
            (op.index for op in ops if op.kind in ("fsync", "syncfs")), default=-1
        )
        # The contents allowed: before, then each manifest the command committed.
        self.allowed: list[content.Content | None] = []
        for point in [0] + [
            op.index + 1 for op in ops if op.kind == "rename" and op.where == MANIFEST
        ]:
            files = model.apply(run.before, ops, set(range(point)))
            self.put(files)
            found = self._content(files)
            assert not isinstance(found, str), (
                f"{run.command.name}: a committed state: {found}"
            )
            if found not in self.allowed:
                self.allowed.append(found)
        self.full = model.apply(run.before, ops, {op.index for op in ops})

    def _content(self, files: dict[str, Node]) -> content.Content | str | None:
        """The content of the state in the world (None: no vault), or a problem."""
        key = _manifest_key(files)
        if key is None:
            return None
        if key in self.cache:
            return self.cache[key]
        try:
            vault = content.open_vault(self.world.vault, self.world.state)
            found = content.read(vault)
            report = vault.verify(deep=True)
        except ConfvaultError as err:
            return f"does not read: {type(err).__name__}: {err}"
        bad = [f for f in report.findings if f.severity == "error"]
        if bad:
            return f"deep verify: {bad}"
        self.cache[key] = found
        self.ondisk = None
        self.put(files)  # the reads appended audit entries: back to the state
        return found

    def put(self, files: dict[str, Node]) -> None:
        """Make the world hold the state ``files``, changing only what differs."""
        now = self.ondisk if self.ondisk is not None else scan(self.world.path)
        materialise(self.world.path, files, now)
        self.ondisk = files

    def check(self, files: dict[str, Node], past_end: bool) -> str | None:
        """The problem with one state, or None."""
        self.put(files)
        try:
            return self._check(files, past_end)
        finally:
            self.ondisk = None  # the checks write to the world

    def _check(self, files: dict[str, Node], past_end: bool) -> str | None:
        vault_dir, state = self.world.vault, self.world.state
        if MANIFEST not in files:
            if self.allowed[0] is not None:
                return "the vault's manifest is gone"
            if past_end:
                return "init had reported success, but there is no vault"
            return self._recover_init()
        report, _ = verify_keyless(vault_dir, seen=SeenStore(state))
        bad = [f for f in report.findings if f.code not in FINE]
        if bad:
            return f"keyless verify: {[(f.code, f.subject, f.message) for f in bad]}"
        found = self._content(files)
        if isinstance(found, str):
            return found
        if found not in self.allowed:
            return (
                "content is neither before nor a committed state: " + found.summary()
                if found
                else "no vault"
            )
        if past_end and found != self.allowed[-1]:
            return f"the command had finished, but the content is state {self.allowed.index(found)} of {len(self.allowed) - 1}"
        problem = self._next_write(files)
        if problem is None and self.run.command.backup:
            problem = self._backup(files, past_end)
        return problem

    def _next_write(self, files: dict[str, Node]) -> str | None:
        """The next ordinary write succeeds, cleans up, and raises no false alarm."""
        try:
            vault = content.open_vault(self.world.vault, self.world.state)
            vault.add_client(f"After crash {os.urandom(4).hex()}")
            # A journal it could not authenticate is audited as planted: a
            # crash must never leave one (only when the state holds a journal).
            journals = [
                r
                for r in files
                if r.startswith(f"{VAULT}/tmp/") and r.endswith(".journal")
            ]
            refused = vault.audit(action="journal-refused") if journals else []
        except ConfvaultError as err:
            return f"the next write fails: {type(err).__name__}: {err}"
        if refused:
            return f"the next write reports a journal the crash left as planted: {[e.details for e in refused]}"
        report, _ = verify_keyless(self.world.vault, seen=SeenStore(self.world.state))
        if report.findings:
            return f"after the next write, verify reports {[(f.code, f.subject) for f in report.findings]}"
        return None

    def _recover_init(self) -> str | None:
        """Before init there is no vault: init again must succeed."""
        try:
            Vault.init(
                self.world.vault,
                content.PASSPHRASE,
                work_factor=content.WORK_FACTOR,
                postquantum=False,
                min_work_factor=content.WORK_FACTOR,
                state_dir=self.world.state,
            )
        except ConfvaultError as err:
            return f"init again fails: {type(err).__name__}: {err}"
        return self._next_write({})

    def _backup(self, files: dict[str, Node], past_end: bool) -> str | None:
        target = self.world.path / BACKUP
        if not target.exists():
            return (
                "the backup had been reported written, but it is absent"
                if past_end
                else None
            )
        report = backup.verify(target)
        if not report.ok:
            if past_end:
                return f"the backup had been reported written, but it fails verify: {report.findings}"
            return None
        mine = {k: v for k, v in files.items() if k.startswith(BACKUP + "/")}
        whole = {k: v for k, v in self.full.items() if k.startswith(BACKUP + "/")}
        if model.fingerprint(mine) != model.fingerprint(whole):
            return "a half-written backup verifies"
        return None


def explore(run: Run, models: tuple[str, ...] = model.MODELS) -> Result:
    """Build the states of ``run`` under each model; check each distinct one."""
    start, cpu = time.monotonic(), time.process_time()
    explorer = Explorer(run)
    seen: dict[str, tuple[model.State, bool]] = {}
    raw: dict[str, int] = {}
    for name in models:
        raw[name] = 0
        for st in model.states(run.ops, name, run.command.name):
            raw[name] += 1
            files = model.apply(run.before, run.ops, st.present)
            key = model.fingerprint(files)
            past_end = st.point > explorer.last_barrier
            if key not in seen or (past_end and not seen[key][1]):
                seen[key] = (st, past_end or seen.get(key, (st, False))[1])
    problems = []
    for st, past_end in seen.values():
        files = model.apply(run.before, run.ops, st.present)
        problem = explorer.check(files, past_end)
        if problem:
            problems.append(describe(run, st, problem))
    synced = {name: model.durable_at_end(run.ops, name) for name in models}
    return Result(
        run.command.name,
        len(run.ops),
        _barriers(run.ops),
        synced,
        raw,
        len(seen),
        len(explorer.allowed),
        time.monotonic() - start + run.seconds,
        time.process_time() - cpu + run.cpu,
        problems,
    )


def describe(run: Run, st: model.State, problem: str) -> str:
    dropped = ", ".join(run.ops[i].describe() for i in st.dropped[:6])
    more = f" (+{len(st.dropped) - 6} more)" if len(st.dropped) > 6 else ""
    return (
        f"{run.command.name} [{st.model}] crash after op {st.point}"
        f" ({run.ops[st.point - 1].describe() if st.point else 'before the first'}),"
        f" lost: {dropped or 'nothing'}{more}: {problem}"
    )
