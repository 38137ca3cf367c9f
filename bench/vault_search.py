"""Vault search and listing vs ``pass grep`` and a shell loop of ``age -d``.

Run from the repository root (after the README set-up; ``pass``, ``gpg`` and
``age`` from the system packages ``pass``, ``gnupg`` and ``age``)::

    .venv/bin/python bench/vault_search.py                     # on /dev/shm
    .venv/bin/python bench/vault_search.py --dir /tmp          # on the disk
    .venv/bin/python bench/vault_search.py --notes 1000        # quicker

It builds ``--notes`` (10,000) clinical-style notes of ~3 KB, 100 per client,
three times over, all from the same text:

- a confvault vault (``Vault.add_notes``, one commit per client; scrypt work
  factor ``--work-factor``, 10 by default: LOW, for benchmarks only);
- a password store for ``pass``: one gpg file per note (``client-N/note-M.gpg``)
  sealed to a passphrase-less test key in a throwaway ``GNUPGHOME`` (created
  with ``gpg --batch --passphrase '' --quick-gen-key``), encrypted by
  ``gpg --encrypt-files`` in batches with pass's own options;
- one age v1 file per note (``client-N/note-M.age``) sealed to an X25519 key
  made by ``age-keygen`` (sealed by the confvault codec, which writes standard
  age v1; the stock ``age`` opens every one of them in the loop below).

All three are kept under ``--dir`` (``confvault-bench-search-N/``) and reused
by later runs (``--fresh`` rebuilds them). Then it times, as medians:

- ``note list CLIENT`` for one client: ``Vault.notes`` on an open vault, and
  the whole CLI process ``confvault ... note list CLIENT --json``;
- ``note search WORD`` across all clients: ``Vault.search`` on an open vault,
  and the whole CLI process ``confvault ... note search WORD --json``;
- the passphrase cost alone (``Vault.open``, and one bare scrypt at the
  vault's work factor and at the default 18), which the CLI figures include;
- ``pass grep -i WORD`` (one ``gpg -d`` per note, as pass does);
- ``for f in */*.age; do age -d -i KEY "$f" | grep -i -F WORD; done`` in bash.

Every tool must find the same number of notes, or the run fails. Goal: the
confvault search at least 20x faster than ``pass grep`` and under 1 s with the
passphrase excluded, at 10,000 notes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from vault_scale import (
    CONFVAULT,
    DEFAULT_WORK_FACTOR,
    NOTES_PER_CLIENT,
    PASSPHRASE,
    BenchError,
    Built,
    build_vault,
    client_name,
    corpus,
    load,
    median_time,
    print_machine,
    profile_top,
    run_cli,
    scrypt_seconds,
    write_passphrase_file,
)

from confvault import age
from confvault.vault import Vault

GPG_BATCH = 400  # files per gpg --encrypt-files call
# pass's own gpg options (pass 1.7: GPG_OPTS), used to build the store.
PASS_GPG_OPTS = ["--quiet", "--yes", "--compress-algo=none", "--no-encrypt-to"]
AGE_LOOP = r"""
shopt -s nullglob
for f in "$1"/*/*.age; do
    out=$(age -d -i "$2" "$f" | grep -i -F -- "$3") && printf '%s:\n%s\n' "$f" "$out"
done
exit 0
"""
STORE_FORMAT = 1


def missing_tools(need_pass: bool, need_age: bool) -> list[str]:
    """The system tools this run needs that are not installed."""
    wanted = []
    if need_pass:
        wanted += [("pass", "pass"), ("gpg", "gnupg"), ("gpgconf", "gnupg")]
    if need_age:
        wanted += [("age", "age"), ("age-keygen", "age")]
    wanted.append(("bash", "bash"))
    return [
        f"{tool} (apt-get install -y {pkg})"
        for tool, pkg in wanted
        if not shutil.which(tool)
    ]


def run(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    done = subprocess.run(argv, capture_output=True, env=env, cwd=cwd, check=False)
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(argv[:4])} ... exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace').strip()[-600:]}"
        )
    return done.stdout.decode(errors="replace")


# ----------------------------------------------------------------- the stores


@dataclass
class Stores:
    work: Path
    vault: Built
    pass_dir: Path | None
    gnupg: Path | None
    age_dir: Path | None
    age_key: Path | None
    notes: int

    def gpg_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(GNUPGHOME=str(self.gnupg), PASSWORD_STORE_DIR=str(self.pass_dir))
        for name in ("PASSWORD_STORE_GPG_OPTS", "PASSWORD_STORE_KEY", "GPG_AGENT_INFO"):
            env.pop(name, None)
        return env


def _fresh_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(mode=0o700, parents=True)


def _marker_ok(marker: Path, wanted: dict[str, object]) -> bool:
    try:
        return json.loads(marker.read_text()) == wanted
    except (OSError, ValueError):
        return False


def build_pass_store(
    work: Path, notes: int, reuse: bool
) -> tuple[Path, Path, float | None]:
    """A password store of one gpg file per note; (store, GNUPGHOME, seconds)."""
    store, gnupg, marker = (
        work / "pass-store",
        work / "gnupg",
        work / "pass-store.built.json",
    )
    wanted = {"format": STORE_FORMAT, "notes": notes, "per_client": NOTES_PER_CLIENT}
    if reuse and _marker_ok(marker, wanted) and store.is_dir() and gnupg.is_dir():
        return store, gnupg, None
    marker.unlink(missing_ok=True)
    start = time.perf_counter()
    if gnupg.exists():
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"],
            env=dict(os.environ, GNUPGHOME=str(gnupg)),
            capture_output=True,
            check=False,
        )
    _fresh_dir(gnupg)
    _fresh_dir(store)
    env = dict(os.environ, GNUPGHOME=str(gnupg))
    uid = "confvault bench <bench@example.invalid>"
    run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "default",
            "default",
            "never",
        ],
        env=env,
    )
    listing = run(["gpg", "--batch", "--with-colons", "--list-keys", uid], env=env)
    fpr = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    (store / ".gpg-id").write_text(fpr + "\n")
    pending: list[str] = []

    def flush() -> None:
        if pending:
            run(
                [
                    "gpg",
                    "--batch",
                    *PASS_GPG_OPTS,
                    "--trust-model",
                    "always",
                    "-r",
                    fpr,
                    "--encrypt-files",
                    *pending,
                ],
                env=env,
                cwd=store,
            )
            for name in pending:
                (store / name).unlink()
            pending.clear()

    for number, items in enumerate(corpus(notes)):
        folder = store / f"client-{number + 1:05d}"
        folder.mkdir(mode=0o700)
        for index, (_title, _date, body) in enumerate(items, start=1):
            name = f"{folder.name}/note-{index:03d}"
            fd = os.open(store / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            pending.append(name)
            if len(pending) >= GPG_BATCH:
                flush()
    flush()
    marker.write_text(json.dumps(wanted))
    return store, gnupg, time.perf_counter() - start


def build_age_files(
    work: Path, notes: int, reuse: bool
) -> tuple[Path, Path, float | None]:
    """One age file per note, sealed to an age-keygen key; (folder, key, seconds)."""
    folder, key, marker = (
        work / "age-notes",
        work / "age-key.txt",
        work / "age-notes.built.json",
    )
    wanted = {"format": STORE_FORMAT, "notes": notes, "per_client": NOTES_PER_CLIENT}
    if reuse and _marker_ok(marker, wanted) and folder.is_dir() and key.is_file():
        return folder, key, None
    marker.unlink(missing_ok=True)
    start = time.perf_counter()
    _fresh_dir(folder)
    key.unlink(missing_ok=True)
    run(["age-keygen", "-o", str(key)])
    recipient = age.parse_identities(key.read_text())[0].recipient
    for number, items in enumerate(corpus(notes)):
        sub = folder / f"client-{number + 1:05d}"
        sub.mkdir(mode=0o700)
        for index, (_title, _date, body) in enumerate(items, start=1):
            (sub / f"note-{index:03d}.age").write_bytes(age.encrypt(body, [recipient]))
    marker.write_text(json.dumps(wanted))
    return folder, key, time.perf_counter() - start


def build_all(
    args: argparse.Namespace, work: Path
) -> tuple[Stores, dict[str, float | None]]:
    reuse = not args.fresh
    built: dict[str, float | None] = {}
    vault = build_vault(
        work / "vault", args.notes, work_factor=args.work_factor, reuse=reuse
    )
    built["vault"] = vault.build_seconds
    pass_dir = gnupg = age_dir = age_key = None
    if not args.skip_pass:
        pass_dir, gnupg, built["pass store"] = build_pass_store(work, args.notes, reuse)
    if not args.skip_age:
        age_dir, age_key, built["age files"] = build_age_files(work, args.notes, reuse)
    return Stores(work, vault, pass_dir, gnupg, age_dir, age_key, args.notes), built


# ------------------------------------------------------------------ measuring


@dataclass
class Result:
    label: str
    times: list[float]
    found: int
    note: str = ""
    cpu: list[float] = field(default_factory=list)


def count_pass_hits(output: str) -> int:
    """pass grep prints a coloured ``dir/name:`` line before each file's matches."""
    return sum(1 for line in output.splitlines() if line.endswith("\x1b[0m:"))


def count_age_hits(output: str) -> int:
    return sum(1 for line in output.splitlines() if line.endswith(".age:"))


def timed_cli(
    args: list[str], stores: Stores, runs: int, cpu: list[float]
) -> tuple[list[float], str]:
    outputs: list[str] = []

    def once() -> None:
        outputs.append(run_cli(args, xdg_state=stores.vault.xdg_state))

    times = median_time(once, runs, warmup=1, cpu=cpu)
    return times, outputs[-1]


def measure(
    args: argparse.Namespace, stores: Stores, passfile: Path
) -> tuple[list[Result], dict[str, list[float]]]:
    built = stores.vault
    word = args.word
    client = client_name(len(built.clients) // 2)
    results: list[Result] = []
    costs: dict[str, list[float]] = {}

    opened: list[Vault] = []
    costs["open"] = median_time(
        lambda: opened.append(
            Vault.open(built.path, passphrase=PASSPHRASE, state_dir=built.state_dir)
        ),
        args.runs,
        warmup=1,
    )
    vault = opened[-1]
    listed: list[int] = []
    cpu: list[float] = []
    times = median_time(
        lambda: listed.append(len(vault.notes(client))), args.list_runs, 1, cpu
    )
    results.append(
        Result("list 1 client: library", times, listed[-1], "(open vault)", cpu)
    )
    base = ["--vault", str(built.path), "--passphrase-file", str(passfile)]
    cpu = []
    times, out = timed_cli(
        [*base, "note", "list", client, "--json"], stores, args.list_runs, cpu
    )
    results.append(
        Result(
            "list 1 client: CLI", times, len(json.loads(out)), "(whole process)", cpu
        )
    )

    hits: list[int] = []
    cpu = []
    times = median_time(lambda: hits.append(len(vault.search(word))), args.runs, 1, cpu)
    results.append(Result("search: library", times, hits[-1], "(open vault)", cpu))
    if args.profile:
        print(
            f"--- cProfile: one library search for {word!r} over {stores.notes:,} notes"
        )
        print(profile_top(lambda: vault.search(word), 1, limit=16))
        print(flush=True)
    cpu = []
    times, out = timed_cli(
        [*base, "note", "search", word, "--json"], stores, args.runs, cpu
    )
    results.append(
        Result("search: CLI", times, len(json.loads(out)), "(whole process)", cpu)
    )
    startup = median_time(
        lambda: run_cli(["--version"], xdg_state=built.xdg_state), args.runs
    )
    costs["startup"] = startup
    costs["scrypt"] = scrypt_seconds(args.work_factor, args.runs)
    if not args.no_default_scrypt:
        costs["scrypt18"] = scrypt_seconds(DEFAULT_WORK_FACTOR, 3)

    if stores.pass_dir is not None:
        env = stores.gpg_env()
        outputs: list[str] = []

        def pass_grep() -> None:
            done = subprocess.run(
                ["pass", "grep", "-i", word], capture_output=True, env=env, check=False
            )
            if done.returncode not in (0, 1):
                raise BenchError(
                    f"pass grep exited {done.returncode}: {done.stderr.decode()[-400:]}"
                )
            outputs.append(done.stdout.decode(errors="replace"))

        cpu = []
        times = median_time(pass_grep, args.slow_runs, warmup=0, cpu=cpu)
        results.append(
            Result(
                "search: pass grep -i",
                times,
                count_pass_hits(outputs[-1]),
                "(one gpg -d per note; CPU without gpg-agent)",
                cpu,
            )
        )
    if stores.age_dir is not None:
        outputs = []

        def age_loop() -> None:
            outputs.append(
                run(
                    [
                        "bash",
                        "-c",
                        AGE_LOOP,
                        "bash",
                        str(stores.age_dir),
                        str(stores.age_key),
                        word,
                    ]
                )
            )

        cpu = []
        times = median_time(age_loop, args.slow_runs, warmup=0, cpu=cpu)
        results.append(
            Result(
                "search: bash loop of age -d",
                times,
                count_age_hits(outputs[-1]),
                "(one age -d per note)",
                cpu,
            )
        )
    return results, costs


def print_report(
    args: argparse.Namespace,
    stores: Stores,
    results: list[Result],
    costs: dict[str, list[float]],
) -> bool:
    """The table and the goals; False when the tools disagree."""
    ms = lambda t: statistics.median(t) * 1e3  # noqa: E731
    print(
        f"{stores.notes:,} notes of ~3 KB, {len(stores.vault.clients):,} clients; "
        f"word {args.word!r}; medians (runs: confvault search {args.runs}, "
        f"list {args.list_runs}, pass/age {args.slow_runs}); scrypt work factor "
        f"{args.work_factor} (LOW, benchmark only)"
    )
    print()
    head = (
        f"{'what':<30} {'median ms':>11} {'min-max ms':>19} {'CPU ms':>10} "
        f"{'found':>6}  note"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        rng = f"{min(r.times) * 1e3:.1f}-{max(r.times) * 1e3:.1f}"
        cpu = f"{ms(r.cpu):.1f}" if r.cpu else "-"
        print(
            f"{r.label:<30} {ms(r.times):>11.1f} {rng:>19} {cpu:>10} {r.found:>6}"
            f"  {r.note}"
        )
    print()
    scrypt = ms(costs["scrypt"])
    print(
        f"passphrase: Vault.open {ms(costs['open']):.1f} ms,"
        " of which scrypt at work factor "
        f"{args.work_factor} {scrypt:.1f} ms (both inside the CLI figures)"
    )
    if "scrypt18" in costs:
        print(
            f"            scrypt at the default work factor {DEFAULT_WORK_FACTOR}: "
            f"{ms(costs['scrypt18']):.0f} ms,"
            " which a real vault adds to every CLI command"
        )
    print(f"CLI start-up alone (`confvault --version`): {ms(costs['startup']):.1f} ms")
    print()
    by = {r.label: r for r in results}
    search_hits = {r.label: r.found for r in results if r.label.startswith("search")}
    agree = len(set(search_hits.values())) == 1
    if not agree:
        print(f"ERROR: the tools found different numbers of notes: {search_hits}")
    cli = ms(by["search: CLI"].times)
    lib = ms(by["search: library"].times)
    no_pass = cli - scrypt
    under = no_pass < 1000
    print(
        f"goal: search under 1 s without the passphrase at {stores.notes:,} notes: "
        f"CLI {cli:.0f} ms - scrypt {scrypt:.0f} ms = {no_pass:.0f} ms;"
        f" library {lib:.0f} ms "
        f"-> {'MET' if under else 'MISSED'}"
    )
    if "search: pass grep -i" in by:
        pg = ms(by["search: pass grep -i"].times)
        ratio = pg / cli
        print(
            f"goal: search at least 20x faster than pass grep: pass grep {pg:.0f} ms / "
            f"CLI {cli:.0f} ms = {ratio:.1f}x (library: {pg / lib:.1f}x) "
            f"-> {'MET' if ratio >= 20 else 'MISSED'}"
        )
    else:
        print("goal: 20x faster than pass grep: not measured (--skip-pass)")
    if "search: bash loop of age -d" in by:
        al = ms(by["search: bash loop of age -d"].times)
        print(f"      (the bash loop of age -d: {al:.0f} ms = {al / cli:.1f}x the CLI)")
    return agree


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--notes", type=int, default=10_000, help="notes (default 10000)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("/dev/shm"),
        help="where the stores live: /dev/shm (RAM) or a disk path such as "
        "/tmp or /work (default /dev/shm)",
    )
    parser.add_argument(
        "--word", default="insomnia", help="the word searched (default insomnia)"
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="timed confvault search runs (default 5)"
    )
    parser.add_argument(
        "--list-runs", type=int, default=15, help="timed note list runs (default 15)"
    )
    parser.add_argument(
        "--slow-runs",
        type=int,
        default=3,
        help="timed pass grep and age loop runs (default 3)",
    )
    parser.add_argument(
        "--work-factor",
        type=int,
        default=10,
        help="scrypt work factor of the benchmark vault (default 10: LOW)",
    )
    parser.add_argument(
        "--no-default-scrypt",
        action="store_true",
        help="skip timing scrypt at the default work factor 18",
    )
    parser.add_argument("--skip-pass", action="store_true", help="leave out pass grep")
    parser.add_argument(
        "--skip-age", action="store_true", help="leave out the age loop"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="rebuild the cached stores"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print the cProfile top functions of one library search",
    )
    args = parser.parse_args(argv)
    if args.notes < 1 or min(args.runs, args.list_runs, args.slow_runs) < 1:
        parser.error("--notes and the run counts must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not CONFVAULT.exists():
        print(
            f"error: {CONFVAULT} not found; run the README set-up first",
            file=sys.stderr,
        )
        return 2
    missing = missing_tools(not args.skip_pass, not args.skip_age)
    if missing:
        print("error: missing system tools: " + "; ".join(missing), file=sys.stderr)
        print(
            "       (or leave them out with --skip-pass / --skip-age)", file=sys.stderr
        )
        return 2
    if not args.dir.is_dir():
        print(f"error: --dir {args.dir} is not a directory", file=sys.stderr)
        return 2
    work = args.dir / f"confvault-bench-search-{args.notes}"
    work.mkdir(mode=0o700, exist_ok=True)
    versions = []
    if not args.skip_pass:
        found = re.search(r"v\d+(\.\d+)+", run(["pass", "version"]))
        versions.append("pass:      " + (found.group(0) if found else "unknown"))
        versions.append("gpg:       " + run(["gpg", "--version"]).splitlines()[0])
    if not args.skip_age:
        versions.append("age:       " + run(["age", "--version"]).strip())
    print_machine(work, versions)
    stores = None
    try:
        started = time.perf_counter()
        stores, built = build_all(args, work)
        for name, seconds in built.items():
            print(
                f"{name}: "
                + ("reused" if seconds is None else f"built in {seconds:.1f} s")
            )
        print(f"set-up {time.perf_counter() - started:.1f} s; measuring...", flush=True)
        passfile = write_passphrase_file(work)
        try:
            results, costs = measure(args, stores, passfile)
        finally:
            passfile.unlink(missing_ok=True)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if stores is not None and stores.gnupg is not None:
            subprocess.run(
                ["gpgconf", "--kill", "gpg-agent"],
                env=stores.gpg_env(),
                capture_output=True,
                check=False,
            )
    print()
    ok = print_report(args, stores, results, costs)
    print(f"\nload avg at end: {load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
