"""Batch work at the physical limit (issue 19): whole processes at 100, 10,000
and 100,000 notes, beside the tools a user would pick instead.

Run from the repository root (after the README set-up)::

    .venv/bin/python bench/batch.py --dir /dev/shm --runs 5
    .venv/bin/python bench/batch.py --dir /dev/shm --only verify
    .venv/bin/python bench/batch.py --dir /dev/shm --only search --sizes 10000

It builds (or reuses: kept under ``--dir``/confvault-bench-batch, built by
``bench/vault_scale.build_vault``: ``Vault.add_notes``, one client per
commit, scrypt work factor 10, LOW, for benchmarks only) vaults of each size
and times, as whole processes taking turns run by run (round-robin: the
shared machine's load weighs on every row alike), the median of ``--runs``
after one warm-up run each:

verify   ``confvault --vault V verify --json`` (keyless, in-process: the
         command server is not running for it) beside ``sha256sum`` of the
         same object files (``find V/objects -type f -print0 | xargs -0
         sha256sum``, one core, as a user would), at every size;
age      ``confvault age encrypt|decrypt`` of 1 GiB file to file beside the
         stock ``age`` (one core), with each process's peak RSS (``wait4``);
backup   ``confvault backup create OUT.tar`` beside ``tar -cf`` of the vault
         directory (and ``tar`` then ``sync OUT``);
add      one library ``note add`` on an open vault at each size;
search   ``confvault --vault V note search insomnia`` unlocked (``confvault
         unlock --allow-jobs``: the agent holds the keys) and served (the
         command server running in a private runtime directory), at every
         size.

``--before SRC`` adds the same rows run on the ``src/`` of an earlier commit
(``git archive COMMIT src | tar -x -C DIR``, SRC = DIR/src, put on PYTHONPATH), side by
side. The load average (``/proc/loadavg``) is printed at the start and at the
end.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vault_scale  # bench/ is not a package

CONFVAULT = str(Path(sys.executable).parent / "confvault")
WORD = "insomnia"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> str:
    return (
        f"{vault_scale.cpu_model()}, {os.cpu_count()} processors, Linux "
        f"{platform.release()}, Python {platform.python_version()}"
    )


Run = Callable[[], object]


def proc(args: list[str], env: dict[str, str], *, bash: bool = False) -> Run:
    """A whole process to time; a failure stops the run."""

    def run() -> bytes:
        done = subprocess.run(
            args if not bash else ["bash", "-c", args[0]],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )  # no timeout: with one, subprocess polls the child every 50 ms
        if done.returncode != 0:
            raise SystemExit(
                f"{args} exited {done.returncode}: {done.stderr.decode()[-500:]}"
            )
        return done.stdout

    return run


PEAK_RSS: dict[str, int] = {}  # row -> the largest peak RSS (KiB) of its processes


def timed_child(name: str, args: list[str], env: dict[str, str]) -> None:
    """Run ``args`` with no output kept; its peak RSS goes to ``PEAK_RSS``."""
    with open(os.devnull, "wb") as null:
        child = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=null)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{args} exited {child.returncode}")
    PEAK_RSS[name] = max(PEAK_RSS.get(name, 0), usage.ru_maxrss)


def age_rows(work: Path, before: Path | None) -> dict[str, Run]:
    """1 GiB (``work``/plain.bin, made once) sealed and opened by the stock
    ``age`` and by ``confvault age``, file to file; each output is checked
    against the stock tool's once, before the timed runs."""
    work.mkdir(mode=0o700, exist_ok=True)
    plain, key = work / "plain.bin", work / "key.txt"
    if not plain.exists():
        with plain.open("wb") as f:
            for _ in range(1024):
                f.write(os.urandom(1 << 20))
    if not key.exists():
        subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    sealed = work / "sealed-age.age"
    if not sealed.exists():
        subprocess.run(
            ["age", "-r", recipient, "-o", str(sealed), str(plain)], check=True
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFVAULT_")}
    env["CONFVAULT_NO_SERVER"] = "1"
    tools: dict[str, tuple[list[str], dict[str, str]]] = {
        "age": (["age"], env),
        "confvault age": ([CONFVAULT, "age"], env),
    }
    if before is not None:
        tools["confvault age (before)"] = (
            [CONFVAULT, "age"],
            env | {"PYTHONPATH": str(before)},
        )
    rows: dict[str, Run] = {}
    for tool, (cmd, tool_env) in tools.items():
        out = work / f"out-{len(rows)}"
        enc = [*cmd, "-r", recipient, "-o", str(out), str(plain)]
        dec = [*cmd, "-d", "-i", str(key), "-o", str(out), str(sealed)]
        if tool != "age":
            enc = [*cmd, "encrypt", "-r", recipient, "-o", str(out), str(plain)]
            dec = [*cmd, "decrypt", "-i", str(key), "-o", str(out), str(sealed)]
        for direction, args in (("encrypt", enc), ("decrypt", dec)):
            name = f"{tool} {direction} 1 GiB"

            def run(
                name: str = name,
                args: list[str] = args,
                out: Path = out,
                e: dict[str, str] = tool_env,
            ) -> None:
                out.unlink(missing_ok=True)
                timed_child(name, args, e)

            run()
            if direction == "decrypt":
                done = subprocess.run(["cmp", str(out), str(plain)], check=False)
                if done.returncode != 0:
                    raise SystemExit(f"{name}: not the input")
            else:  # stock age opens it to the input
                check = [
                    f"age -d -i {key} {out} | cmp - {plain}",
                ]
                proc(check, env, bash=True)()
            rows[name] = run
    return rows


def backup_rows(builts: list[vault_scale.Built], runtime: Path) -> dict[str, Run]:
    """``confvault backup create OUT.tar`` (keyless, in-process) beside ``tar
    -cf`` of the vault directory, and ``tar`` then ``sync OUT`` (durable, as
    ``backup create`` is); each run writes a new file."""
    rows: dict[str, Run] = {}
    for built in builts:
        env = environment(built, runtime) | {"CONFVAULT_NO_SERVER": "1"}
        out = built.path.with_name(built.path.name + ".bench.tar")
        variants = {
            "backup create": [CONFVAULT, "backup", "create", str(out)],
            "tar -cf": ["tar", "-cf", str(out), "-C", str(built.path), "."],
            "tar -cf + sync": [
                f"tar -cf {out} -C {built.path} . && sync {out}",
            ],
        }
        for what, args in variants.items():

            def run(
                args: list[str] = args, out: Path = out, env: dict[str, str] = env
            ) -> None:
                out.unlink(missing_ok=True)
                proc(args, env, bash=len(args) == 1)()

            rows[f"{what} {built.notes:,}"] = run
    return rows


def add_rows(builts: list[vault_scale.Built], runs: int) -> dict[str, Run]:
    """One library ``note add`` (``Vault.add_note`` on an open vault, ~3 KB)
    at each size; in the round-robin the sizes take turns."""
    rows: dict[str, Run] = {}
    for built in builts:
        adder = vault_scale.LibraryAdder(built, runs + 1)
        rows[f"library note add {built.notes:,}"] = adder.add
    return rows


def round_robin(
    rows: dict[str, Run], runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each row's wall-clock and CPU times (user + system of the process and
    its children); the rows take turns, run by run (one warm-up each)."""
    times: dict[str, list[float]] = {name: [] for name in rows}
    cpus: dict[str, list[float]] = {name: [] for name in rows}
    for i in range(runs + 1):
        for name, run in rows.items():
            cpu = vault_scale.cpu_seconds()
            start = time.perf_counter()
            run()
            took = time.perf_counter() - start
            if i:
                times[name].append(took)
                cpus[name].append(vault_scale.cpu_seconds() - cpu)
    return times, cpus


def table(
    times: dict[str, list[float]], cpus: dict[str, list[float]], base: dict[str, str]
) -> None:
    """Median and range of each row, its CPU time, and its ratios (wall, CPU)
    to the row ``base`` names."""
    print("| what | median s | range s | CPU s | peak RSS MiB | ratio (wall, CPU) |")
    print("|---|---:|---:|---:|---:|---|")
    for name, values in times.items():
        med = statistics.median(values)
        cpu = statistics.median(cpus[name])
        ratio = ""
        if name in base:
            other = statistics.median(times[base[name]])
            other_cpu = statistics.median(cpus[base[name]])
            ratio = f"{med / other:.2f}x, {cpu / other_cpu:.2f}x {base[name]}"
        print(
            f"| {name} | {med:.3f} | {min(values):.3f}-{max(values):.3f} "
            f"| {cpu:.3f} | {PEAK_RSS[name] / 1024 if name in PEAK_RSS else 0:.0f} "
            f"| {ratio} |"
        )


def environment(built: vault_scale.Built, runtime: Path) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CONFVAULT_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    return base | {
        "XDG_STATE_HOME": str(built.xdg_state),
        "XDG_RUNTIME_DIR": str(runtime),
        "CONFVAULT_VAULT": str(built.path),
        "NO_COLOR": "1",
    }


def verify_rows(
    builts: list[vault_scale.Built], runtime: Path, before: Path | None
) -> dict[str, Run]:
    rows: dict[str, Run] = {}
    for built in builts:
        env = environment(built, runtime) | {"CONFVAULT_NO_SERVER": "1"}
        rows[f"verify {built.notes:,}"] = proc([CONFVAULT, "verify", "--json"], env)
        if before is not None:
            rows[f"verify {built.notes:,} (before)"] = proc(
                [CONFVAULT, "verify", "--json"], env | {"PYTHONPATH": str(before)}
            )
        objects = built.path / "objects"
        rows[f"sha256sum {built.notes:,}"] = proc(
            [f"find {objects} -type f -print0 | xargs -0 sha256sum > /dev/null"],
            env,
            bash=True,
        )
    return rows


def search_rows(
    builts: list[vault_scale.Built], runtime: Path, passfile: Path, before: Path | None
) -> tuple[dict[str, Run], Callable[[], None]]:
    """The rows, and what ends the agents and the servers afterwards. With
    ``before``, a second agent and server (their own runtime directory) run
    the earlier commit's code on the same vault."""
    rows: dict[str, Run] = {}
    stops: list[Callable[[], None]] = []
    variants = [("", None)] if before is None else [("", None), (" (before)", before)]
    for built in builts:
        for suffix, src in variants:
            own = runtime / f"{built.notes}{'b' if src else ''}"
            own.mkdir(mode=0o700, exist_ok=True)
            env = environment(built, own) | ({"PYTHONPATH": str(src)} if src else {})
            keyed = env | {
                "CONFVAULT_NO_SERVER": "1",
                "CONFVAULT_PASSPHRASE_FILE": str(passfile),
            }
            unlock = [CONFVAULT, "unlock", "--allow-jobs", "--idle", "1h"]
            subprocess.run(unlock, env=keyed, check=True, stdout=subprocess.DEVNULL)
            server = [sys.executable, "-m", "confvault.server"]
            subprocess.run([*server, "start"], env=env, check=True)

            def stop(env: dict[str, str] = env, server: list[str] = server) -> None:
                subprocess.run([*server, "stop"], env=env, check=False)
                local = env | {"CONFVAULT_NO_SERVER": "1"}
                subprocess.run([CONFVAULT, "lock"], env=local, check=False)

            stops.append(stop)
            rows[f"note search {WORD} {built.notes:,}{suffix}"] = proc(
                [CONFVAULT, "note", "search", WORD], env
            )

    def stop_all() -> None:
        for stop in stops:
            stop()

    return rows, stop_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm"))
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="verify,search,age")
    parser.add_argument(
        "--before",
        type=Path,
        help="the src/ of an earlier commit (git archive COMMIT src | tar -x): "
        "its rows run beside this tree's, with PYTHONPATH set to it",
    )
    args = parser.parse_args()
    print(machine())
    print(f"load at the start: {load()}  ({time.strftime('%Y-%m-%d %H:%M UTC')})")
    print(f"confvault: {vault_scale.confvault_source()}")
    work = args.dir / "confvault-bench-batch"
    work.mkdir(mode=0o700, exist_ok=True)
    # short: the agent's socket path must fit in sun_path (108 bytes)
    runtime = Path(tempfile.mkdtemp(prefix="cvb-"))
    builts = []
    for size in (int(x) for x in args.sizes.split(",")):
        built = vault_scale.build_vault(
            work / f"vault-{size}", size, work_factor=10, reuse=True
        )
        builts.append(built)
    passfile = vault_scale.write_passphrase_file(work)
    only = set(args.only.split(","))
    rows: dict[str, Run] = {}
    base: dict[str, str] = {}
    stop = None
    try:
        if "verify" in only:
            rows |= verify_rows(builts, runtime, args.before)
            for b in builts:
                base[f"verify {b.notes:,}"] = f"sha256sum {b.notes:,}"
                base[f"verify {b.notes:,} (before)"] = f"sha256sum {b.notes:,}"
        if "search" in only:
            more, stop = search_rows(builts, runtime, passfile, args.before)
            rows |= more
            small = f"note search {WORD} {builts[0].notes:,}"
            base |= {name: small for name in more if name != small}
            for b in builts:
                mine = f"note search {WORD} {b.notes:,}"
                if args.before is not None and mine != small:
                    base[mine + " (before)"] = small + " (before)"
        if "backup" in only:
            rows |= backup_rows(builts, runtime)
            for b in builts:
                base[f"backup create {b.notes:,}"] = f"tar -cf {b.notes:,}"
        if "add" in only:
            more = add_rows(builts, args.runs * 5)
            rows |= more
            small = next(iter(more))
            base |= {name: small for name in more if name != small}
        if "age" in only:
            more = age_rows(args.dir / "confvault-bench-batch-age", args.before)
            rows |= more
            for name in more:
                if not name.startswith("age "):
                    way = "encrypt" if " encrypt " in name else "decrypt"
                    base[name] = f"age {way} 1 GiB"
        times, cpus = round_robin(rows, args.runs)
    finally:
        if stop is not None:
            stop()
        passfile.unlink(missing_ok=True)
        shutil.rmtree(runtime, ignore_errors=True)
    print(
        f"\nmedian of {args.runs} runs, round-robin (whole processes but the library rows)\n"
    )
    table(times, cpus, base)
    print(f"\nload at the end: {load()}")


if __name__ == "__main__":
    main()
