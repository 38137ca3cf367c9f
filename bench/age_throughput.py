"""age codec throughput: stock ``age`` vs the confvault CLI vs the library in-process.

Run from the repository root::

    .venv/bin/python bench/age_throughput.py --size-mib 1024 --dir /dev/shm --runs 3
    .venv/bin/python bench/age_throughput.py --output-dir-disk      # on the disk

It writes a random input file of ``--size-mib`` MiB into a scratch directory
under ``--dir``, then encrypts and decrypts it with

(a) the stock binary: ``age -r RECIPIENT -o OUT IN`` / ``age -d -i KEYFILE -o OUT IN``
(b) the confvault CLI: ``confvault age encrypt|decrypt`` with the same flags
(c) the library in-process: ``confvault.age.encrypt_stream`` / ``decrypt_stream``

Every decryption is compared with the input (``cmp``), and stock age and
confvault decrypt each other's files (interop). The figure reported is the
median wall-clock time of ``--runs`` runs (``time.perf_counter`` around the
child process, started with ``Popen`` and reaped with ``os.wait4`` so its own
peak RSS is known; for the library, the process high-water mark is reset
through ``/proc/self/clear_refs`` before each operation). MB = 10**6 bytes.

Every timed run writes a fresh output file (the old one is removed first) and
``os.sync()`` runs before it, so write-back of an earlier run never lands in a
later one's time. The page cache stays warm and nothing is fsync'ed: on a disk
this measures what a user waits for, not the device.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from confvault import age

MIB = 1 << 20
REPO = Path(__file__).resolve().parent.parent
CONFVAULT = Path(sys.executable).with_name("confvault")
AGE = shutil.which("age") or "/usr/bin/age"
AGE_KEYGEN = shutil.which("age-keygen") or "/usr/bin/age-keygen"
TOOLS = ("age", "confvault CLI", "confvault library")
DIRECTIONS = ("encrypt", "decrypt")


class BenchError(RuntimeError):
    """A tool failed or produced wrong output."""


@dataclass
class Sample:
    seconds: list[float] = field(default_factory=list)
    rss_kib: list[float] = field(default_factory=list)


@dataclass
class Setup:
    work: Path
    plain: Path
    key_file: Path
    recipient: str
    identities: list[age.X25519Identity]
    size: int


# --------------------------------------------------------------------------- info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _filesystem(path: Path) -> str:
    """``fstype source on mountpoint`` for the mount holding ``path``."""
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


def _age_version() -> str:
    done = subprocess.run(
        [AGE, "--version"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or done.stderr.strip() or "unknown"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def print_machine(args: argparse.Namespace, bench_dir: Path) -> None:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print("command:  ", shlex.join([sys.executable, *sys.argv]))
    print("machine:  ", f"nproc={affinity} (cpu_count={os.cpu_count()}),", _cpu_model())
    print("kernel:   ", platform.system(), platform.release())
    print("python:   ", sys.version.split()[0], f"({sys.executable})")
    print("age:      ", _age_version(), f"({AGE})")
    print("directory:", bench_dir, "-", _filesystem(bench_dir))
    print("load avg: ", _loadavg(), "(1, 5, 15 min) at start")
    if os.getloadavg()[0] > 0.5:
        print("WARNING:   the machine is busy; figures will be noisy")
    rss_how = f"GNU time %M ({GNU_TIME})" if GNU_TIME else "os.wait4 (upper bound)"
    print("peak RSS: ", f"children via {rss_how}; library via VmHWM of this process")
    print(
        "input:    ",
        f"{args.size_mib} MiB random; median of {args.runs} run(s)",
        f"after {args.warmup} warm-up round(s)",
    )
    print()


# ------------------------------------------------------------------------ running


def _gnu_time() -> str | None:
    path = shutil.which("time") or "/usr/bin/time"
    try:
        done = subprocess.run([path, "--version"], capture_output=True, check=False)
    except OSError:
        return None
    return path if b"GNU" in done.stdout + done.stderr else None


# A child's ru_maxrss also counts the image it was exec'ed from: at exec the
# kernel folds the old mm's high-water mark into the new image's maxrss, and
# Popen's (v)fork child *is* this Python process. Measured from here, stock age
# would report this script's ~30 MiB. GNU time forks its own small child, so
# the %M it reports belongs to the tool alone.
GNU_TIME = _gnu_time()


def _run_child(argv: list[str]) -> tuple[float, float]:
    """Run ``argv``; return (wall seconds, peak RSS KiB of that child)."""
    with tempfile.NamedTemporaryFile("w+") as rss, tempfile.TemporaryFile() as err:
        wrapped = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv] if GNU_TIME else argv
        start = time.perf_counter()
        proc = subprocess.Popen(
            wrapped, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            detail = err.read().decode(errors="replace").strip()
            raise BenchError(f"{shlex.join(argv)} exited {proc.returncode}: {detail}")
        if GNU_TIME:
            rss.seek(0)
            return elapsed, float(rss.read().split()[-1])
    return elapsed, float(usage.ru_maxrss)  # KiB on Linux; see GNU_TIME above


def _reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_kib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _run_library(
    direction: str, setup: Setup, src: Path, dst: Path
) -> tuple[float, float]:
    _reset_peak_rss()
    start = time.perf_counter()
    with src.open("rb") as fin, dst.open("wb") as fout:
        if direction == "encrypt":
            age.encrypt_stream(fin, fout, [age.parse_recipient(setup.recipient)])
        else:
            age.decrypt_stream(fin, fout, setup.identities)
    return time.perf_counter() - start, _peak_rss_kib()


def _command(
    tool: str, direction: str, setup: Setup, src: Path, dst: Path
) -> list[str]:
    exe = AGE if tool == "age" else str(CONFVAULT)
    prefix = [exe] if tool == "age" else [exe, "age", direction]
    if direction == "encrypt":
        return [*prefix, "-r", setup.recipient, "-o", str(dst), str(src)]
    flag = ["-d"] if tool == "age" else []
    return [*prefix, *flag, "-i", str(setup.key_file), "-o", str(dst), str(src)]


def _sealed(setup: Setup, tool: str) -> Path:
    return setup.work / f"sealed-{tool.replace(' ', '-')}.age"


def _opened(setup: Setup, tool: str) -> Path:
    return setup.work / f"opened-{tool.replace(' ', '-')}.bin"


def run_once(tool: str, direction: str, setup: Setup) -> tuple[float, float]:
    """One timed operation; decryption output is checked against the input."""
    if direction == "encrypt":
        src, dst = setup.plain, _sealed(setup, tool)
    else:
        src, dst = _sealed(setup, tool), _opened(setup, tool)
    dst.unlink(missing_ok=True)
    os.sync()
    if tool == "confvault library":
        result = _run_library(direction, setup, src, dst)
    else:
        result = _run_child(_command(tool, direction, setup, src, dst))
    if direction == "decrypt":
        _check_same(setup.plain, dst, f"{tool} decrypt")
        dst.unlink()
    return result


def _check_same(expected: Path, got: Path, what: str) -> None:
    done = subprocess.run(["cmp", "-s", str(expected), str(got)], check=False)
    if done.returncode != 0:
        raise BenchError(
            f"{what}: output differs from the input (cmp exit {done.returncode})"
        )


# ------------------------------------------------------------------------- checks


def cli_available(setup: Setup) -> str | None:
    """None when the CLI round-trips a small file with age; else why not."""
    if not CONFVAULT.exists():
        return f"{CONFVAULT} does not exist"
    probe = setup.work / "probe.txt"
    probe.write_bytes(os.urandom(100_000))
    sealed, opened = setup.work / "probe.age", setup.work / "probe.out"
    try:
        _run_child(_command("confvault CLI", "encrypt", setup, probe, sealed))
        _run_child(
            [AGE, "-d", "-i", str(setup.key_file), "-o", str(opened), str(sealed)]
        )
        _check_same(probe, opened, "probe")
        opened.unlink()
        _run_child([AGE, "-r", setup.recipient, "-o", str(sealed), str(probe)])
        _run_child(_command("confvault CLI", "decrypt", setup, sealed, opened))
        _check_same(probe, opened, "probe")
    except BenchError as err:
        return f"`confvault age encrypt/decrypt` does not work yet ({err})"
    finally:
        for path in (probe, sealed, opened):
            path.unlink(missing_ok=True)
    return None


def cli_fixed_cost(setup: Setup, runs: int = 5) -> float:
    """Median seconds for the CLI to seal a 1-byte file: its start-up cost."""
    tiny, sealed = setup.work / "tiny.txt", setup.work / "tiny.age"
    tiny.write_bytes(b"x")
    seconds = []
    for _ in range(runs):
        sealed.unlink(missing_ok=True)
        seconds.append(
            _run_child(_command("confvault CLI", "encrypt", setup, tiny, sealed))[0]
        )
    tiny.unlink()
    sealed.unlink()
    return statistics.median(seconds)


def interop(setup: Setup, tools: list[str]) -> None:
    """Stock age opens confvault's files and confvault opens stock age's."""
    out = setup.work / "interop.bin"
    for tool in tools:
        if tool == "age":
            continue
        out.unlink(missing_ok=True)
        _run_child(_command("age", "decrypt", setup, _sealed(setup, tool), out))
        _check_same(setup.plain, out, f"age decrypting {tool}'s file")
        print(f"interop: age decrypts {tool}'s file: identical")
        out.unlink()
        if tool == "confvault library":
            _run_library("decrypt", setup, _sealed(setup, "age"), out)
        else:
            _run_child(_command(tool, "decrypt", setup, _sealed(setup, "age"), out))
        _check_same(setup.plain, out, f"{tool} decrypting age's file")
        print(f"interop: {tool} decrypts age's file: identical")
        out.unlink()


# -------------------------------------------------------------------------- setup


def make_setup(work: Path, size_mib: int) -> Setup:
    plain = work / "plain.bin"
    with plain.open("wb") as out:
        for _ in range(size_mib):
            out.write(os.urandom(MIB))
    key_file = work / "key.txt"
    subprocess.run([AGE_KEYGEN, "-o", str(key_file)], check=True, capture_output=True)
    recipient = subprocess.run(
        [AGE_KEYGEN, "-y", str(key_file)], check=True, capture_output=True, text=True
    ).stdout.strip()
    identities = age.parse_identities(key_file.read_text())
    return Setup(work, plain, key_file, recipient, identities, size_mib * MIB)


# ------------------------------------------------------------------------- report


def print_table(
    setup: Setup, tools: list[str], samples: dict[tuple[str, str], Sample]
) -> None:
    mb = setup.size / 1e6
    header = (
        f"{'tool':<18} {'direction':<9} {'MB/s':>8} {'vs age':>7} {'peak RSS MiB':>13}"
    )
    print(header)
    print("-" * len(header))
    for direction in DIRECTIONS:
        base = mb / statistics.median(samples["age", direction].seconds)
        for tool in tools:
            sample = samples[tool, direction]
            rate = mb / statistics.median(sample.seconds)
            rss = max(sample.rss_kib) / 1024
            ratio = rate / base
            print(f"{tool:<18} {direction:<9} {rate:>8.0f} {ratio:>6.2f}x {rss:>13.1f}")
    print()
    print("per run (MB/s):")
    for direction in DIRECTIONS:
        for tool in tools:
            rates = ", ".join(f"{mb / s:.0f}" for s in samples[tool, direction].seconds)
            print(f"  {tool:<18} {direction:<8} {rates}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="input size (MiB)")
    parser.add_argument(
        "--dir", type=Path, default=Path("/dev/shm"), help="scratch dir"
    )
    parser.add_argument(
        "--output-dir-disk",
        nargs="?",
        type=Path,
        const=REPO.parent,
        default=None,
        metavar="DIR",
        help=f"run on the disk instead: in DIR (default {REPO.parent})",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.size_mib < 1 or args.warmup < 0:
        parser.error("--runs and --size-mib must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_dir: Path = args.output_dir_disk or args.dir
    print_machine(args, bench_dir)
    work = Path(tempfile.mkdtemp(prefix="confvault-bench-", dir=bench_dir))
    try:
        setup = make_setup(work, args.size_mib)
        tools = list(TOOLS)
        missing = cli_available(setup)
        if missing:
            print(f"NOTE: skipping the confvault CLI: {missing}\n")
            tools.remove("confvault CLI")
        samples = {(t, d): Sample() for t in tools for d in DIRECTIONS}
        for round_ in range(args.warmup + args.runs):
            for tool in tools:
                for direction in DIRECTIONS:
                    seconds, rss = run_once(tool, direction, setup)
                    if round_ >= args.warmup:
                        samples[tool, direction].seconds.append(seconds)
                        samples[tool, direction].rss_kib.append(rss)
        interop(setup, tools)
        if "confvault CLI" in tools:
            fixed = cli_fixed_cost(setup)
            print(f"CLI fixed cost (seal a 1-byte file, median of 5): {fixed:.3f} s")
        print("load avg at end:", _loadavg())
        print()
        print_table(setup, tools, samples)
    except BenchError as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
