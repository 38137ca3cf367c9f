"""Vault scaling: the cost of ONE ``note add`` at 100, 10,000 and 100,000 notes.

Run from the repository root (after the README set-up)::

    .venv/bin/python bench/vault_scale.py                       # on /dev/shm
    .venv/bin/python bench/vault_scale.py --dir /tmp            # on the disk
    .venv/bin/python bench/vault_scale.py --sizes 100,10000 --runs 9

For each size it builds (or reuses, see below) a vault of that many ~3 KB
clinical-style notes, 100 notes per client (100 notes = 1 client, 10,000 =
100 clients, 100,000 = 1,000 clients), written with ``Vault.add_notes`` one
client per commit. Then it times, as the median of ``--runs`` runs after
``--warmup`` untimed ones:

(a) ``Vault.add_note`` on an already-open vault (the library call), timed
    round-robin over the sizes so that the machine's changing load weighs
    on every size alike;
(b) the whole CLI process ``confvault --vault V --passphrase-file F note add
    CLIENT --title T < note.txt`` (Python start-up, imports and the
    passphrase's scrypt included);
(c) the passphrase cost alone: ``Vault.open`` at the vault's work factor and
    one bare scrypt at that work factor and at the default 18;
(d) ``verify`` (keyless: every object's hash, the shards, the signed
    manifest) through the library (``verify_vault``) and the CLI.

The vaults use a LOW scrypt work factor (``--work-factor``, 10 by default) so
that the CLI figure shows the vault's own cost; what the default work factor
18 adds is printed separately. Goals: a library ``note add`` at 100,000 notes
within 1.5x of the time at 100 notes, and ``verify`` of the 100,000-note vault
under 10 s.

Vaults of 10,000 notes or more are kept under ``--dir`` (``confvault-bench-
scale/``) and reused by later runs (``--fresh`` rebuilds them); each run adds
only ~20 notes to them. Smaller vaults are rebuilt every run. The page cache
is warm: on a disk this measures what a user waits for, fsyncs included.
Note that on an ext4 file system without a journal, creating files soon after
many were deleted is much slower (0.3-1 ms per file instead of ~25 us), so a
run right after ``--fresh`` (or after other jobs deleted many files) is slower
on a disk.

``--profile`` adds the top functions of one library ``note add`` (and of one
library verify at the largest size) by cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import io
import json
import math
import os
import platform
import pstats
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import confvault
from confvault import age
from confvault.errors import ConfvaultError
from confvault.vault import Vault

PASSPHRASE = b"correct horse battery staple"
CONFVAULT = Path(sys.executable).with_name("confvault")
NOTES_PER_CLIENT = 100
CACHE_FROM = 10_000  # vaults at least this big are kept between runs
BUILD_FORMAT = 1
DEFAULT_WORK_FACTOR = 18

# ----------------------------------------------------------------- the notes

# fmt: off
_MOODS = [
    "anxious", "low", "tired", "irritable", "hopeful", "calm", "flat", "tearful",
    "restless", "guarded", "engaged", "withdrawn", "optimistic"
]
_PEOPLE = [
    "partner", "mother", "father", "sister", "brother", "manager", "colleague",
    "daughter", "son", "friend", "flatmate", "teacher"
]
_PLACES = [
    "work", "home", "school", "the gym", "the supermarket", "church", "the bus",
    "a family dinner", "the office", "university"
]
_SKILLS = [
    "grounding", "paced breathing", "thought records", "behavioural activation",
    "sleep hygiene", "cognitive restructuring", "exposure hierarchy",
    "mindfulness of breath", "problem solving", "assertive communication",
    "values clarification", "urge surfing", "progressive muscle relaxation"
]
# Each note mentions one to three of these topics, so a topic word is found
# in roughly 2-6 % of the notes: searches have a realistic number of hits.
TOPICS = [
    "insomnia", "panic", "grief", "bereavement", "divorce", "redundancy",
    "rumination", "perfectionism", "procrastination", "loneliness", "anger",
    "self-harm", "nightmares", "flashbacks", "migraine", "debt", "custody",
    "pregnancy", "retirement", "bullying", "caregiving", "relapse", "gambling",
    "alcohol", "cannabis", "shoplifting", "eviction", "diabetes", "fatigue",
    "tinnitus", "infertility", "miscarriage", "promotion", "exams", "immigration",
    "burnout", "jealousy", "hoarding", "agoraphobia", "vertigo"
]
# fmt: on
_SENTENCES = [
    "Client reported feeling {mood} for most of the week, especially at {place}.",
    "Client described a disagreement with their {person} about {topic}.",
    "We reviewed the homework on {skill}; client practised it {n} times.",
    "Client rated their mood {n} out of 10, compared with {m} last session.",
    "Sleep was broken on {n} nights; client links this to worries about {topic}.",
    "Client noticed automatic thoughts such as 'I always get it wrong' at {place}.",
    "Affect appeared {mood}; speech normal in rate and volume; good eye contact.",
    "We explored how {topic} has shaped the client's relationship with their {person}.",
    "Client identified early warning signs and agreed to use {skill} when they appear.",
    "No current thoughts of harm to self or others were reported; risk remains low.",
    "Client brought up {topic} again and became {mood} when discussing it.",
    "Between sessions the client will practise {skill} daily and keep a brief diary.",
    "Client said their {person} has been supportive since the last appointment.",
    "We agreed to revisit the formulation around {topic} at the next review.",
    "Client arrived on time, appeared {mood}, and engaged well with the session.",
]
_SECTIONS = ["Subjective", "Objective", "Assessment", "Plan"]


def note_text(rng: random.Random, size: int = 3000) -> bytes:
    """A SOAP-style progress note of about ``size`` bytes (plain UTF-8)."""
    topics = rng.sample(TOPICS, rng.randint(1, 3))
    parts: list[str] = []
    length = 0
    section = 0
    while length < size:
        if length >= section * size // len(_SECTIONS) and section < len(_SECTIONS):
            heading = f"\n{_SECTIONS[section]}:\n" if parts else f"{_SECTIONS[0]}:\n"
            parts.append(heading)
            length += len(heading)
            section += 1
        sentence = (
            rng.choice(_SENTENCES).format(
                mood=rng.choice(_MOODS),
                person=rng.choice(_PEOPLE),
                place=rng.choice(_PLACES),
                skill=rng.choice(_SKILLS),
                topic=rng.choice(topics),
                n=rng.randint(1, 9),
                m=rng.randint(1, 9),
            )
            + " "
        )
        parts.append(sentence)
        length += len(sentence)
    return "".join(parts).strip().encode("utf-8") + b"\n"


def note_items(
    rng: random.Random, count: int, first: int
) -> list[tuple[str, str, bytes]]:
    """``count`` (title, date, body) tuples for ``Vault.add_notes``."""
    items = []
    for number in range(first, first + count):
        day = f"2024-{1 + number % 12:02d}-{1 + number % 28:02d}"
        items.append((f"Session {number}", day, note_text(rng)))
    return items


def corpus(
    notes: int, per_client: int = NOTES_PER_CLIENT, seed: int = 1
) -> Iterator[list[tuple[str, str, bytes]]]:
    """Each client's notes in turn; the same arguments give the same notes."""
    rng = random.Random(seed)
    for number in range(math.ceil(notes / per_client)):
        batch = min(per_client, notes - number * per_client)
        yield note_items(rng, batch, number * per_client + 1)


def client_name(number: int) -> str:
    """The name of the ``number``-th client (from 0)."""
    return f"Client {number + 1:05d}"


# ------------------------------------------------------------------ building


@dataclass
class Built:
    """A vault on disk and what the benchmark needs to drive it."""

    path: Path
    xdg_state: Path  # XDG_STATE_HOME for the CLI
    notes: int
    clients: list[str]
    work_factor: int
    build_seconds: float | None = None  # None when reused from an earlier run
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        """The state directory the CLI uses under ``XDG_STATE_HOME``."""
        return self.xdg_state / "confvault"


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".built.json")


def _opens(path: Path, xdg_state: Path) -> bool:
    """Whether a cached vault still opens (a format change makes it stale)."""
    try:
        Vault.open(path, passphrase=PASSPHRASE, state_dir=xdg_state / "confvault")
    except ConfvaultError as err:
        print(f"  cached {path.name} does not open ({err}); rebuilding it", flush=True)
        return False
    return True


def build_vault(
    path: Path,
    notes: int,
    *,
    per_client: int = NOTES_PER_CLIENT,
    work_factor: int,
    seed: int = 1,
    reuse: bool,
    quiet: bool = False,
) -> Built:
    """Build (or reuse) a vault of ``notes`` notes, ``per_client`` per client."""
    xdg_state = path.with_name(path.name + ".state")
    marker = _marker(path)
    wanted = {
        "format": BUILD_FORMAT,
        "notes": notes,
        "per_client": per_client,
        "work_factor": work_factor,
        "seed": seed,
    }
    if reuse and marker.exists() and path.is_dir():
        try:
            saved = json.loads(marker.read_text())
        except ValueError:
            saved = {}
        if {k: saved.get(k) for k in wanted} == wanted and _opens(path, xdg_state):
            return Built(path, xdg_state, notes, list(saved["clients"]), work_factor)
    for old in (marker, path, xdg_state):
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    start = time.perf_counter()
    state = xdg_state / "confvault"
    # classic keys, as these figures always were (older trees have no choice)
    kind = (
        {"postquantum": False}
        if "postquantum" in inspect.signature(Vault.init).parameters
        else {}
    )
    vault, _ = Vault.init(
        path,
        PASSPHRASE,
        work_factor=work_factor,
        min_work_factor=min(work_factor, 15),
        state_dir=state,
        **kind,
    )
    clients = []
    done = 0
    last_print = start
    for number, items in enumerate(corpus(notes, per_client, seed)):
        client = vault.add_client(client_name(number))
        clients.append(client.id)
        vault.add_notes(client.id, items)
        done += len(items)
        now = time.perf_counter()
        if not quiet and now - last_print > 10:
            last_print = now
            print(
                f"  building {path.name}: {done:,}/{notes:,} notes,"
                f" {now - start:.0f} s",
                flush=True,
            )
    seconds = time.perf_counter() - start
    marker.write_text(json.dumps(wanted | {"clients": clients, "seconds": seconds}))
    return Built(path, xdg_state, notes, clients, work_factor, seconds)


def write_passphrase_file(directory: Path) -> Path:
    """A 0600 passphrase file holding ``PASSPHRASE``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "passphrase.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(PASSPHRASE + b"\n")
    path.chmod(0o600)
    return path


# ------------------------------------------------------------------- timing


class BenchError(RuntimeError):
    """A command failed or gave a wrong answer."""


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def median_time(
    action: Callable[[], object],
    runs: int,
    warmup: int = 1,
    cpu: list[float] | None = None,
) -> list[float]:
    """Wall-clock seconds of ``runs`` calls of ``action`` after ``warmup`` calls.

    With ``cpu``, the CPU seconds of each call (this process and the child
    processes it waited for) are appended to it: on a shared machine the CPU
    time varies much less than the wall-clock time.
    """
    for _ in range(warmup):
        action()
    times = []
    for _ in range(runs):
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
        if cpu is not None:
            cpu.append(cpu_seconds() - cpu_start)
    return times


def run_cli(
    args: list[str], *, xdg_state: Path, stdin: Path | None = None, expect: int = 0
) -> str:
    """Run the confvault CLI; return stdout, raise on an unexpected exit code."""
    env = dict(os.environ, XDG_STATE_HOME=str(xdg_state), NO_COLOR="1")
    env.pop("CONFVAULT_PASSPHRASE_FILE", None)
    env.pop("CONFVAULT_VAULT", None)
    with stdin.open("rb") if stdin else open(os.devnull, "rb") as src:
        done = subprocess.run(
            [str(CONFVAULT), *args],
            stdin=src,
            capture_output=True,
            env=env,
            check=False,
        )
    if done.returncode != expect:
        raise BenchError(
            f"{shlex.join(['confvault', *args])} exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    return done.stdout.decode()


def cli_times(
    args: list[str],
    *,
    xdg_state: Path,
    runs: int,
    warmup: int = 1,
    stdin: Path | None = None,
    expect: int = 0,
    cpu: list[float] | None = None,
) -> list[float]:
    return median_time(
        lambda: run_cli(args, xdg_state=xdg_state, stdin=stdin, expect=expect),
        runs,
        warmup,
        cpu,
    )


def scrypt_seconds(work_factor: int, runs: int) -> list[float]:
    """One bare scrypt (sealing a file to a passphrase) at ``work_factor``."""
    recipient = age.ScryptRecipient(PASSPHRASE, work_factor)
    return median_time(lambda: age.encrypt(b"x", [recipient]), runs, warmup=0)


def profile_top(action: Callable[[], object], calls: int, limit: int = 12) -> str:
    """cProfile ``calls`` calls of ``action``; the top functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        action()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line for line in lines[start:] if line.strip())


def fmt_ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1e3:7.1f}"


def fmt_s(times: list[float]) -> str:
    return f"{statistics.median(times):6.2f}"


def spread(times: list[float]) -> str:
    return f"{min(times) * 1e3:.1f}-{max(times) * 1e3:.1f}"


# -------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def filesystem(path: Path) -> str:
    """``fstype (source on mountpoint)`` for the mount holding ``path``."""
    target = str(path.resolve())
    best = ("", "?", "?")
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    for line in lines:
        source, mountpoint, fstype = line.split()[:3]
        inside = target == mountpoint or target.startswith(mountpoint.rstrip("/") + "/")
        if inside and len(mountpoint) >= len(best[0]):
            best = (mountpoint, fstype, source)
    return f"{best[1]} ({best[2]} on {best[0]})"


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def confvault_source() -> str:
    """Where confvault was imported from, and its git state when known."""
    package = Path(confvault.__file__).resolve().parent
    where = str(package)
    try:
        head = subprocess.run(
            ["git", "-C", str(package), "log", "-1", "--format=%h %cI"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.splitlines()
    except OSError:
        return where
    if head:
        where += f" (git {head}" + (f", {len(dirty)} files changed)" if dirty else ")")
    return where


def print_machine(directory: Path, extra: list[str]) -> None:
    print("command:  ", shlex.join([sys.executable, *sys.argv]))
    print(
        "machine:  ",
        f"nproc={len(os.sched_getaffinity(0))} (cpu_count={os.cpu_count()}),",
        cpu_model(),
    )
    print("kernel:   ", platform.system(), platform.release())
    print("python:   ", sys.version.split()[0], f"({sys.executable})")
    print("confvault:", confvault_source())
    print("directory:", directory, "-", filesystem(directory))
    for line in extra:
        print(line)
    print("load avg: ", load(), "(1, 5, 15 min) at start")
    print(flush=True)


# ---------------------------------------------------------------------- main


@dataclass
class Row:
    notes: int
    clients: int
    objects: int
    build: float | None
    lib_add: list[float]
    lib_cpu: list[float]
    cli_add: list[float]
    cli_cpu: list[float]
    open_s: list[float]
    verify_lib: list[float]
    verify_lib_cpu: list[float]
    verify_cli: list[float]
    verify_ok: bool
    load: str


class LibraryAdder:
    """One open vault of a size, and its next library ``note add``."""

    def __init__(self, built: Built, runs: int) -> None:
        self.vault = Vault.open(
            built.path, passphrase=PASSPHRASE, state_dir=built.state_dir
        )
        self.before = self.vault.status()
        self.client = built.clients[len(built.clients) // 2]
        rng = random.Random(1000 + built.notes)
        self.bodies = iter([note_text(rng) for _ in range(3 * runs)])
        self.times: list[float] = []
        self.cpu: list[float] = []

    def add(self) -> None:
        self.vault.add_note(self.client, next(self.bodies), title="Benchmark note")


def interleaved_adds(adders: list[LibraryAdder], runs: int, warmup: int) -> None:
    """Time the library adds round-robin over the sizes (100, 10k, 100k, 100,
    ...), so that a change in the machine's load during the run weighs on
    every size alike instead of on whichever was measured then."""
    for _ in range(warmup):
        for adder in adders:
            adder.add()
    for _ in range(runs):
        for adder in adders:
            adder.times += median_time(adder.add, 1, 0, cpu=adder.cpu)


def measure_size(
    built: Built,
    adder: LibraryAdder,
    args: argparse.Namespace,
    passfile: Path,
    note_file: Path,
) -> Row:
    before, client, lib, lib_cpu = adder.before, adder.client, adder.times, adder.cpu
    lib_add = adder.add
    cli_args = ["--vault", str(built.path), "--passphrase-file", str(passfile)]
    cli_args += ["note", "add", client, "--title", "Benchmark note"]
    cli_cpu: list[float] = []
    cli = cli_times(
        cli_args,
        xdg_state=built.xdg_state,
        runs=args.runs,
        warmup=args.warmup,
        stdin=note_file,
        cpu=cli_cpu,
    )
    opened = median_time(
        lambda: Vault.open(
            built.path, passphrase=PASSPHRASE, state_dir=built.state_dir
        ),
        args.runs,
        1,
    )
    # imported here: bench/before_after.py builds older trees' vaults with
    # this module, and those trees keep these elsewhere
    from confvault.vault.check.keyless import verify_vault
    from confvault.vault.store.seen import SeenStore

    seen = SeenStore(built.state_dir)
    reports = []

    def lib_verify() -> None:
        reports.append(verify_vault(built.path, seen=seen))

    vlib_cpu: list[float] = []
    vlib = median_time(lib_verify, args.verify_runs, warmup=1, cpu=vlib_cpu)
    report = reports[-1]
    vcli = cli_times(
        ["--vault", str(built.path), "verify", "--json"],
        xdg_state=built.xdg_state,
        runs=args.verify_runs,
        warmup=0,
    )
    if args.profile:
        print(
            f"--- cProfile: {args.runs} library `note add` at {before.notes:,} notes "
            "(top by own time)"
        )
        print(profile_top(lib_add, args.runs))
        if built.notes == max(args.sizes):
            print(f"--- cProfile: one library verify at {before.notes:,} notes")
            print(profile_top(lib_verify, 1))
        print(flush=True)
    return Row(
        notes=before.notes,
        clients=before.clients,
        objects=report.objects_checked,
        build=built.build_seconds,
        lib_add=lib,
        lib_cpu=lib_cpu,
        cli_add=cli,
        cli_cpu=cli_cpu,
        open_s=opened,
        verify_lib=vlib,
        verify_lib_cpu=vlib_cpu,
        verify_cli=vcli,
        verify_ok=report.ok,
        load=load(),
    )


def med(times: list[float]) -> float:
    return statistics.median(times)


def print_table(
    rows: list[Row],
    args: argparse.Namespace,
    wf_cost: list[float],
    default_cost: list[float] | None,
    startup: list[float],
) -> None:
    print(
        f"ONE note add: median of {args.runs} runs after {args.warmup} warm-up, "
        "the library adds round-robin over the sizes; "
        f"wall-clock and CPU (user+sys) time. Work factor {args.work_factor} "
        "(LOW, for benchmarks)."
    )
    print()
    head = (
        f"{'notes':>8} {'clients':>7} {'build s':>8} | {'lib add ms':>10} "
        f"{'(min-max)':>12} {'CPU ms':>7} {'x wall':>6} {'x CPU':>6} | "
        f"{'CLI add ms':>10} {'CPU ms':>7} | {'open ms':>7} | load"
    )
    print(head)
    print("-" * len(head))
    base, base_cpu = (med(rows[0].lib_add), med(rows[0].lib_cpu)) if rows else (1, 1)
    for r in rows:
        build = f"{r.build:8.1f}" if r.build is not None else "  reused"
        print(
            f"{r.notes:>8,} {r.clients:>7,} {build} | {fmt_ms(r.lib_add):>10} "
            f"{spread(r.lib_add):>12} {fmt_ms(r.lib_cpu):>7} "
            f"{med(r.lib_add) / base:>6.2f} {med(r.lib_cpu) / base_cpu:>6.2f} | "
            f"{fmt_ms(r.cli_add):>10} {fmt_ms(r.cli_cpu):>7} | "
            f"{fmt_ms(r.open_s):>7} | {r.load}"
        )
    print()
    print(f"verify (keyless): median of {args.verify_runs} runs")
    print()
    head = (
        f"{'notes':>8} {'objects':>8} | {'library s':>9} {'CPU s':>6} | "
        f"{'CLI s':>6} | {'ok':>3}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.notes:>8,} {r.objects:>8,} | {fmt_s(r.verify_lib):>9} "
            f"{fmt_s(r.verify_lib_cpu):>6} | {fmt_s(r.verify_cli):>6} | "
            f"{'yes' if r.verify_ok else 'NO':>3}"
        )
    print()
    print(f"CLI start-up alone (`confvault --version`): {fmt_ms(startup).strip()} ms")
    print(
        f"scrypt alone at work factor {args.work_factor}: {fmt_ms(wf_cost).strip()} ms "
        "(included in 'CLI add' and 'open')"
    )
    if default_cost:
        print(
            f"scrypt alone at the default work factor {DEFAULT_WORK_FACTOR}: "
            f"{fmt_ms(default_cost).strip()} ms (median of {len(default_cost)});"
            " a real vault's "
            f"CLI note add costs about 'CLI add' + {fmt_ms(default_cost).strip()} "
            f"- {fmt_ms(wf_cost).strip()} ms"
        )
    print()
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        ratio = med(last.lib_add) / med(first.lib_add)
        ratio_cpu = med(last.lib_cpu) / med(first.lib_cpu)
        met = "MET" if ratio <= 1.5 else "MISSED"
        print(
            f"goal: library note add at {last.notes:,} notes"
            f" within 1.5x of {first.notes:,}: "
            f"{ratio:.2f}x wall-clock ({ratio_cpu:.2f}x CPU) -> {met}"
        )
    big = [r for r in rows if r.notes >= 100_000]
    if big:
        v = statistics.median(big[-1].verify_lib)
        met = "MET" if v < 10 and big[-1].verify_ok else "MISSED"
        print(
            f"goal: verify (keyless) of the {big[-1].notes:,}-note vault under 10 s: "
            f"library {v:.2f} s,"
            f" CLI {statistics.median(big[-1].verify_cli):.2f} s -> {met}"
        )
    else:
        print(
            "goal: verify under 10 s at 100,000 notes:"
            " not measured (no size >= 100,000)"
        )


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(s.replace("_", "")) for s in text.split(",") if s.strip()})
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from err
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("100,10000,100000"),
        help="comma-separated note counts (default 100,10000,100000)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("/dev/shm"),
        help="where the vaults live: /dev/shm (RAM) or a disk path such as "
        "/tmp or /work (default /dev/shm)",
    )
    parser.add_argument(
        "--runs", type=int, default=15, help="timed runs per figure (default 15)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed runs first (default 2)"
    )
    parser.add_argument(
        "--verify-runs",
        type=int,
        default=3,
        help="timed verify runs per size (default 3)",
    )
    parser.add_argument(
        "--work-factor",
        type=int,
        default=10,
        help="scrypt work factor of the benchmark vaults (default 10: LOW)",
    )
    parser.add_argument(
        "--no-default-scrypt",
        action="store_true",
        help="skip timing scrypt at the default work factor 18",
    )
    parser.add_argument("--fresh", action="store_true", help="rebuild cached vaults")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print cProfile top functions of note add (and verify)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.verify_runs < 1:
        parser.error("--runs and --verify-runs must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not CONFVAULT.exists():
        print(
            f"error: {CONFVAULT} not found; run the README set-up first",
            file=sys.stderr,
        )
        return 2
    if not args.dir.is_dir():
        print(f"error: --dir {args.dir} is not a directory", file=sys.stderr)
        return 2
    work = args.dir / "confvault-bench-scale"
    work.mkdir(mode=0o700, exist_ok=True)
    print_machine(
        work,
        [
            "notes:     ~3 KB SOAP-style text, 100 per client,"
            " built with Vault.add_notes",
            f"scrypt:    work factor {args.work_factor} in the benchmark vaults"
            " (LOW: benchmark "
            f"only; the default is {DEFAULT_WORK_FACTOR})",
        ],
    )
    passfile = write_passphrase_file(work)
    note_file = work / "note.txt"
    note_file.write_bytes(note_text(random.Random(7)))
    rows = []
    try:
        builts = []
        for size in args.sizes:
            path = work / f"vault-{size}"
            started = time.perf_counter()
            built = build_vault(
                path,
                size,
                work_factor=args.work_factor,
                reuse=size >= CACHE_FROM and not args.fresh,
            )
            how = (
                "reused"
                if built.build_seconds is None
                else f"built in {time.perf_counter() - started:.1f} s"
            )
            print(
                f"vault of {size:,} notes ({len(built.clients):,} clients) {how}",
                flush=True,
            )
            builts.append(built)
        adders = [LibraryAdder(built, args.runs + args.warmup) for built in builts]
        print("measuring library adds, round-robin over the sizes...", flush=True)
        interleaved_adds(adders, args.runs, args.warmup)
        for built, adder in zip(builts, adders, strict=True):
            print(f"measuring the rest at {built.notes:,} notes...", flush=True)
            rows.append(measure_size(built, adder, args, passfile, note_file))
        startup = cli_times(
            ["--version"], xdg_state=work / "xdg", runs=args.runs, warmup=1
        )
        wf_cost = scrypt_seconds(args.work_factor, args.runs)
        default_cost = (
            None if args.no_default_scrypt else scrypt_seconds(DEFAULT_WORK_FACTOR, 3)
        )
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        passfile.unlink(missing_ok=True)
    print()
    print_table(rows, args, wf_cost, default_cost, startup)
    print(f"\nload avg at end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
