"""Crash safety: SIGKILL every mutating command at every durable step.

For each command, a run under ``crash_runner.py`` with KILL_AT=0 counts its
durable steps (fsync, replace, rename, syncfs) and gives the state after it.
(Each worker runs the CLI through its own crash runner fork server: one
interpreter that imported confvault once, a fork per run.)
Then, for every step N, a fresh copy of the base vault is given the same
command, killed just before (``N``) and just after (``N+``) step N. Each
survivor must:

(a) open, and verify (keyless and deep) with no error;
(b) be exactly the old state, or exactly the new one (which one follows from
    whether the command's last manifest swap had happened when it died; a
    read before the change may commit an audit entry of its own first);
(c) read back every note committed before byte for byte;
(d) take a further write, after which verify finds nothing at all: the next
    writer removed the crashed transaction's journal, temp files and
    unreferenced objects.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import multiprocessing
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from confvault.errors import WrongPassphraseError
from confvault.vault import Vault
from confvault.vault.check.keyless import verify_keyless
from confvault.vault.store.seen import SeenStore
from tests.conftest import ram_dir
from tests.vault import crash_runner

pytestmark = pytest.mark.slow

PASSPHRASE = b"correct horse battery staple"
NEW_PASSPHRASE = b"a different horse, battery and staple"
# Each point is a fork of a crash runner server plus checks in a worker process:
# both cores busy.
WORKERS = int(os.environ.get("CRASH_WORKERS", "0")) or max(
    2, min(3, os.cpu_count() or 2)
)
ALLOWED_AFTER_CRASH = {"unreferenced", "leftover"}

# command name -> crash points tried (filled by test_crash_command)
CRASH_POINTS: dict[str, int] = {}


# --- the base vault -------------------------------------------------------------------


@dataclass
class Base:
    root: Path  # holds vault/, state/, inputs/ and the passphrase file
    ids: dict[str, str] = field(default_factory=dict)  # role -> client or note id

    @property
    def vault(self) -> Path:
        return self.root / "vault"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def passphrase_file(self) -> Path:
        return self.root / "passphrase"


def _state_dir(xdg_state: Path) -> Path:
    return xdg_state / "confvault"  # what the CLI uses under XDG_STATE_HOME


def _write_inputs(inputs: Path) -> None:
    inputs.mkdir()
    for number in range(1, 13):
        (inputs / f"imp{number:02d}.md").write_bytes(
            f"---\ntitle: Imported {number}\ndate: 2024-03-{number:02d}\n---\n"
            f"Imported session {number}.\n".encode()
        )
    (inputs / "edit.txt").write_bytes(b"The draft, rewritten after the session.\n")
    (inputs / "new-passphrase").write_bytes(NEW_PASSPHRASE)
    (inputs / "new-passphrase").chmod(0o600)
    (inputs / "scan.bin").write_bytes(
        hashlib.sha256(b"seed").digest() * (200 * 1024 // 32)
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Base]:
    with ram_dir(tmp_path_factory.mktemp("crash-base")) as root:
        yield _make_base(Base(root))


def _make_base(b: Base) -> Base:
    b.passphrase_file.write_bytes(PASSPHRASE)
    b.passphrase_file.chmod(0o600)
    _write_inputs(b.inputs)
    vault, _ = Vault.init(
        b.vault,
        PASSPHRASE,
        work_factor=10,
        min_work_factor=10,
        state_dir=_state_dir(b.state),
    )
    ann = vault.add_client("Ann Example")
    bob = vault.add_client("Bob Sample")
    b.ids["ann"] = ann.id
    b.ids["bob"] = bob.id
    b.ids["signed"] = vault.add_note(
        ann.id, b"Intake: first session.\n", kind="intake", title="Intake"
    ).id
    b.ids["draft_edit"] = vault.add_note(
        ann.id, b"draft to edit\n", title="Draft A", draft=True
    ).id
    b.ids["draft_sign"] = vault.add_note(
        ann.id, b"draft to sign\n", title="Draft B", draft=True
    ).id
    vault.add_note(
        bob.id, b"Process notes, kept apart.\n", kind="psychotherapy", title="Bob PT"
    )
    small = b.inputs / "consent.pdf"
    small.write_bytes(b"%PDF-1.4 consent form\n" * 40)
    vault.add_attachment(bob.id, small)
    return b


@dataclass(frozen=True)
class Command:
    name: str
    args: Callable[[Base], list[str]]
    stdin: bytes = b""
    passphrases: tuple[bytes, ...] = (PASSPHRASE,)  # what may open the vault afterwards


COMMANDS = [
    Command("client-add", lambda b: ["client", "add", "Carl New"]),
    Command(
        "note-add",
        lambda b: ["note", "add", "Ann Example", "--title", "Crash note"],
        b"Written while the power failed.\n",
    ),
    Command(
        "note-edit",
        lambda b: [
            "note",
            "edit",
            b.ids["draft_edit"],
            "-f",
            str(b.inputs / "edit.txt"),
            "--title",
            "Draft A edited",
        ],
    ),
    Command("note-sign", lambda b: ["note", "sign", b.ids["draft_sign"]]),
    Command(
        "note-amend",
        lambda b: [
            "note",
            "amend",
            b.ids["signed"],
            "-f",
            "-",
            "--title",
            "Correction",
        ],
        b"The date of the intake was wrong.\n",
    ),
    Command(
        "client-rename", lambda b: ["client", "rename", "Ann Example", "Ann Renamed"]
    ),
    Command(
        "note-import-3",
        lambda b: [
            "note",
            "import",
            "Ann Example",
            *(str(b.inputs / f"imp{n:02d}.md") for n in (1, 2, 3)),
        ],
    ),
    Command(
        "attach-200k", lambda b: ["attach", "Bob Sample", str(b.inputs / "scan.bin")]
    ),
    # the first psychotherapy note of a client creates its compartment (key + index)
    Command(
        "note-add-psychotherapy",
        lambda b: [
            "note",
            "add",
            "Ann Example",
            "--kind",
            "psychotherapy",
            "--title",
            "PT first",
        ],
        b"Process notes.\n",
    ),
    # more than 16 new files: make_durable takes the syncfs path
    Command(
        "note-import-12",
        lambda b: [
            "note",
            "import",
            "Bob Sample",
            *(str(b.inputs / f"imp{n:02d}.md") for n in range(1, 13)),
        ],
    ),
    # owner keys: a new signer endorsed by the old one; a re-sealed owner key file
    Command("identity-rotate", lambda b: ["identity", "rotate"]),
    # issue 18: a legal hold, a records request (retention apply:
    # test_crash_retention.py, as this check expects no note to go)
    Command(
        "client-hold", lambda b: ["client", "hold", "Bob Sample", "--reason", "order"]
    ),
    Command(
        "request-open",
        lambda b: ["request", "open", "Ann Example", "--received", "2026-01-05"],
    ),
    Command(
        "passphrase-change",
        lambda b: [
            "passphrase",
            "--new-passphrase-file",
            str(b.inputs / "new-passphrase"),
        ],
        passphrases=(PASSPHRASE, NEW_PASSPHRASE),
    ),
]


# --- running the CLI under the crash runner --------------------------------------------


@dataclass
class Run:
    returncode: int
    steps: list[tuple[int, str, str]]  # (number, op, arguments) as traced
    total: int | None  # "durable-steps: N" (absent when killed)
    stderr: str


_SERVERS: list[crash_runner.Servers] = []  # this process's fork server, once started


def _servers() -> crash_runner.Servers:
    """This process's crash runner (a fork server: one interpreter, a fork per run)."""
    if not _SERVERS:
        _SERVERS.append(crash_runner.Servers(1))
        atexit.register(_SERVERS[0].close)
    return _SERVERS[0]


def run_cli(kill_at: str, root: Path, base: Base, args: list[str], stdin: bytes) -> Run:
    env = dict(os.environ)
    env["XDG_STATE_HOME"] = str(root / "state")
    env.pop("CONFVAULT_DEBUG", None)
    argv = [
        "--vault",
        str(root / "vault"),
        "--passphrase-file",
        str(base.passphrase_file),
        *args,
    ]
    proc = _servers().run(kill_at, argv, env=env, stdin=stdin)
    stderr = proc.stderr.decode("utf-8", "replace")
    steps = []
    total = None
    for line in stderr.splitlines():
        if line.startswith("durable-step "):
            head, _, rest = line.partition(": ")
            op, _, arguments = rest.partition(" ")
            steps.append((int(head.split()[1]), op, arguments))
        elif line.startswith("durable-steps: "):
            total = int(line.split()[1])
    return Run(proc.returncode, steps, total, stderr)


def manifest_swaps(run: Run, vault: Path) -> list[int]:
    """The numbers of the steps that rename a new manifest into place (the commits)."""
    target = str(vault / "manifest")
    return [
        number
        for number, op, arguments in run.steps
        if op in ("replace", "rename") and arguments.split()[-1] == target
    ]


def copy_base(base: Base, root: Path) -> None:
    root.mkdir()
    shutil.copytree(base.vault, root / "vault", symlinks=True)
    shutil.copytree(base.state, root / "state", symlinks=True)


# --- the state of a vault ---------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    clients: tuple[tuple[str, str], ...]  # (id or NEW, name)
    notes: tuple[
        tuple[str, ...], ...
    ]  # (id or NEW, client, kind, title, status, addendum_of, sha256)
    bodies: dict[str, bytes]  # id -> body, for every note
    manifest: tuple[tuple[str, str], ...]  # signer and pointers (value or NEW)

    @property
    def state(self) -> tuple[object, ...]:
        return self.clients, self.notes, self.manifest


def read_body(vault: Vault, note_id: str, kind: str) -> bytes:
    if kind == "attachment":
        sink = io.BytesIO()
        vault.save_attachment(note_id, sink)
        return sink.getvalue()
    return vault.note(note_id).body


def snapshot(vault: Vault, known: set[str]) -> Snapshot:
    """The vault's clients and notes; ids not in ``known`` become NEW."""

    def norm(ident: str | None) -> str:
        if ident is None:
            return "-"
        return ident if ident in known else "NEW"

    clients = tuple(sorted((norm(c.id), c.name) for c in vault.clients()))
    notes = []
    bodies = {}
    for info in vault.notes(None, psychotherapy=True):
        body = read_body(vault, info.id, info.kind)
        bodies[info.id] = body
        notes.append(
            (
                norm(info.id),
                norm(info.client),
                info.kind,
                info.title,
                info.status,
                norm(info.addendum_of),
                hashlib.sha256(body).hexdigest(),
            )
        )
    assert vault.manifest is not None
    body = vault.manifest.body
    # The audit trail grows with every command, reads included: not part of the state.
    marks = [
        ("signer", norm(body.signer)),
        *((f"pointer {k}", norm(v)) for k, v in body.pointers.items() if k != "audit"),
    ]
    return Snapshot(clients, tuple(sorted(notes)), bodies, tuple(sorted(marks)))


def known_ids(vault: Vault) -> set[str]:
    assert vault.manifest is not None
    return (
        {c.id for c in vault.clients()}
        | {n.id for n in vault.notes(None, psychotherapy=True)}
        | {vault.manifest.body.signer}
        | set(vault.manifest.body.pointers.values())
    )


def open_vault(path: Path, state: Path, passphrases: tuple[bytes, ...]) -> Vault:
    """Open with the first passphrase that works."""
    for passphrase in passphrases[:-1]:
        try:
            return Vault.open(path, passphrase=passphrase, state_dir=state)
        except WrongPassphraseError:
            continue
    return Vault.open(path, passphrase=passphrases[-1], state_dir=state)


# --- one crash point ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What a crash point needs (picklable: it goes to a worker process)."""

    base: Base
    name: str
    args: list[str]
    stdin: bytes
    passphrases: tuple[bytes, ...]
    known: set[str]
    before: Snapshot
    after: Snapshot
    commits: int  # manifest swaps the command makes (reads may commit audit entries)


def check_point(expected: Expected, root: Path, kill_at: str) -> tuple[str | None, str]:
    """Crash the command at ``kill_at`` in a copy under ``root``.

    Returns (problem or None, "old" or "new": the state the vault was left in).
    """
    base = expected.base
    copy_base(base, root)
    vault_dir = root / "vault"
    run = run_cli(kill_at, root, base, expected.args, expected.stdin)
    number = int(kill_at.rstrip("+"))
    where = f"{expected.name} killed at {kill_at}"
    if run.returncode == 0:
        # Past the end: the step count varies a little (shard prefixes, buckets).
        if run.total is None or run.total >= number:
            return (
                f"{where}: exited 0 without reaching step {number}\n{run.stderr}",
                "?",
            )
    elif run.returncode != -signal.SIGKILL:
        return f"{where}: exit status {run.returncode}, not SIGKILL\n{run.stderr}", "?"
    elif not run.steps or run.steps[-1][0] != number:
        return f"{where}: died at the wrong step\n{run.stderr}", "?"
    swaps = [
        n
        for n in manifest_swaps(run, vault_dir)
        if n < number or (n == number and kill_at.endswith("+"))
    ]
    swapped = run.returncode == 0 or len(swaps) == expected.commits
    want = expected.after if swapped else expected.before
    label = "new" if swapped else "old"

    # (a) opens, and verifies (keyless and deep) with no error
    state = _state_dir(root / "state")
    vault = open_vault(vault_dir, state, expected.passphrases)
    report = vault.verify(deep=True)
    bad = [f for f in report.findings if f.code not in ALLOWED_AFTER_CRASH]
    if not report.ok or bad or report.notes_checked != len(want.notes):
        return f"{where}: verify after the crash: {report}", label
    # (b) exactly the old or the new state
    got = snapshot(vault, expected.known)
    if got.state != want.state:
        return (
            f"{where}: state is not exactly the {label} one "
            f"(manifest swaps done at steps {swaps})\n got: {got.state}\nwant: {want.state}"
        ), label
    # (c) every note committed before reads back byte for byte
    for note_id in expected.before.bodies:
        if got.bodies.get(note_id) != want.bodies[note_id]:
            return f"{where}: note {note_id} does not read back as committed", label
    # (d) the next write succeeds and cleans up after the crashed one
    added = vault.add_note(base.ids["ann"], b"After the crash.\n", title="After crash")
    if vault.note(added.id).body != b"After the crash.\n":
        return f"{where}: the note written after the crash does not read back", label
    report, _ = verify_keyless(vault_dir, seen=SeenStore(state))
    if report.findings:
        return f"{where}: after the next write, verify reports {report.findings}", label
    leftovers = sorted(p.name for p in (vault_dir / "tmp").iterdir())
    if leftovers:
        return f"{where}: after the next write, tmp/ still holds {leftovers}", label
    return None, label


def check_point_safely(
    expected: Expected, root: Path, kill_at: str
) -> tuple[str | None, str]:
    """``check_point`` in a worker: every point reports, none hides the others."""
    try:
        problem, label = check_point(expected, root, kill_at)
    except Exception as err:  # noqa: BLE001
        return f"{expected.name} killed at {kill_at}: {type(err).__name__}: {err}", "?"
    if problem is None:
        shutil.rmtree(root, ignore_errors=True)
    return problem, label


def _worker_init(path: str) -> None:
    """Make this module importable in a spawned worker, whatever pytest named it.

    Only the killed subprocess's durable steps are under test. The checks' own
    writes (audit entries of their reads, the next note) need no durability, so
    the workers skip fsync and syncfs: it keeps hundreds of points fast.
    """
    if path not in sys.path:
        sys.path.insert(0, path)
    from confvault.vault.store import fs

    os.fsync = lambda fd: None
    fs._SYNCFS = None


def _import_root() -> str:
    """The sys.path entry from which ``__name__`` (e.g. tests.vault.test_crash) imports."""
    return str(Path(__file__).resolve().parents[__name__.count(".")])


# --- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    # spawn, not fork: the parent may already run the age codec's worker thread.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=WORKERS,
        mp_context=context,
        initializer=_worker_init,
        initargs=(_import_root(),),
    ) as executor:
        yield executor


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_crash_command(
    command: Command, base: Base, pool: ProcessPoolExecutor, ram_path: Path
) -> None:
    tmp_path = ram_path  # on a tmpfs when there is one: see ram_dir
    # Read a copy: with an audit trail, reading the base would change it.
    copy_base(base, tmp_path / "before")
    vault = Vault.open(
        tmp_path / "before" / "vault",
        passphrase=PASSPHRASE,
        state_dir=_state_dir(tmp_path / "before" / "state"),
    )
    known = known_ids(vault)
    before = snapshot(vault, known)
    args = command.args(base)

    reference = tmp_path / "reference"
    copy_base(base, reference)
    run = run_cli("0", reference, base, args, command.stdin)
    assert run.returncode == 0, run.stderr
    assert run.total is not None, run.stderr
    assert run.total == len(run.steps) > 0, run.stderr
    commits = len(manifest_swaps(run, reference / "vault"))
    assert commits > 0, run.stderr
    ref_vault = Vault.open(
        reference / "vault",
        passphrase=command.passphrases[-1],
        state_dir=_state_dir(reference / "state"),
    )
    after = snapshot(ref_vault, known)
    assert after.state != before.state
    expected = Expected(
        base,
        command.name,
        args,
        command.stdin,
        command.passphrases,
        known,
        before,
        after,
        commits,
    )

    # Every step, killed before and after it; and one point past the end.
    # A kill right after step N is the same state as a kill right before step
    # N+1, so CI kills before every step and after the last one;
    # CONFVAULT_CRASH_BOTH=1 also kills after every step (a longer run).
    modes = ("", "+") if os.environ.get("CONFVAULT_CRASH_BOTH") else ("",)
    points = [f"{n}{mode}" for n in range(1, run.total + 1) for mode in modes]
    points += [f"{run.total}+", str(run.total + 1)]
    futures = [
        pool.submit(check_point_safely, expected, tmp_path / f"kill-{p}", p)
        for p in points
    ]
    results = [future.result() for future in futures]
    CRASH_POINTS[command.name] = len(points)
    failures = [problem for problem, _ in results if problem]
    assert not failures, (
        f"{len(failures)} of {len(points)} crash points failed:\n"
        + "\n\n".join(failure[:1500] for failure in failures[:10])
    )
    # Not vacuous: some crashes left the old state, others the new one.
    labels = [label for _, label in results]
    assert "old" in labels, labels
    assert "new" in labels, labels


def test_crash_points_total(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs after the parametrized crash tests (file order)."""
    missing = [c.name for c in COMMANDS if c.name not in CRASH_POINTS]
    if missing:
        pytest.skip(f"crash tests not run in this session: {', '.join(missing)}")
    total = sum(CRASH_POINTS.values())
    with capsys.disabled():
        sys.stdout.write(
            f"\ncrash points tried: {total} ("
            + ", ".join(f"{name} {count}" for name, count in CRASH_POINTS.items())
            + ")\n"
        )
    assert total > 100
