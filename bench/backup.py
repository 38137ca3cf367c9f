"""`confvault backup create` and `backup verify` of a vault of N notes, side by
side with plain `tar` of the same directory and `restic backup` of it.

    .venv/bin/python bench/backup.py [--notes 10000] [--dir /dev/shm/confvault-bench-backup] [--runs 3]

Goal (issue 5): within 2x of plain tar. Needs `tar`, `cp` and `restic`
(apt-get install -y restic) on PATH; restic is skipped with a note if missing.
`backup verify DEST.tar` writes nothing. Wall time is what the goal is about;
CPU time (user + system of every process, the forked copier's too) is
printed beside it because `backup create` and `verify` use two processes for
vaults of 2,000 files or more. "one process" is the library with jobs=1.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from confvault.vault import Vault

PASSPHRASE = b"correct horse battery staple"
CREATE_TAR = "confvault backup create DEST.tar"
VERIFY_TAR = "confvault backup verify DEST.tar"
WORDS = [
    "sleep",
    "anxiety",
    "work",
    "family",
    "stress",
    "mood",
    "plan",
    "goals",
    "session",
    "progress",
    "coping",
    "grief",
]


def build(base: Path, n: int) -> Path:
    root = base / f"vault-{n}"
    if (root / "manifest").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(11)
    vault, _ = Vault.init(
        root,
        PASSPHRASE,
        work_factor=10,
        postquantum=False,
        min_work_factor=10,
        state_dir=base / "state",
    )
    per_client = 100
    for c in range(max(1, n // per_client)):
        vault.add_client(f"Client {c}")
        items = [
            (
                f"n{i}",
                "2025-01-01",
                " ".join(rng.choice(WORDS) for _ in range(450)).encode(),
            )
            for i in range(per_client)
        ]
        vault.add_notes(f"Client {c}", items)
    return root


def median_time(
    argv: list[str], runs: int, cleanup: Path | None, env: dict[str, str]
) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (user + system, with every
    process the command started: `backup create` may fork a second copier)."""
    walls, cpus = [], []
    for _ in range(runs):
        if cleanup is not None:
            if cleanup.is_dir():
                shutil.rmtree(cleanup)
            else:
                cleanup.unlink(missing_ok=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument(
        "--dir", type=Path, default=Path("/dev/shm/confvault-bench-backup")
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = args.dir
    base.mkdir(parents=True, exist_ok=True)
    confvault = str(Path(sys.executable).parent / "confvault")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(f"command: {' '.join(sys.argv)}   dir: {base}   notes: {args.notes}")
    vault = build(base, args.notes)
    files = sum(1 for p in vault.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in vault.rglob("*") if p.is_file())
    print(f"vault: {files} files, {size / 1e6:.1f} MB")
    env = dict(os.environ, XDG_STATE_HOME=str(base / "xdg"))
    tar_out = base / "plain.tar"
    snap_tar = base / "snap.tar"
    snap_dir = base / "snapdir"
    plain_copy = base / "plain-copy"
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = [
        (
            "tar -cf (plain tar of the vault directory)",
            median_time(
                ["tar", "-cf", str(tar_out), "-C", str(vault), "."],
                args.runs,
                tar_out,
                env,
            ),
        ),
        (
            "tar -cf, then sync FILE (durable, as create DEST.tar is)",
            median_time(
                [
                    "sh",
                    "-c",
                    'tar -cf "$1" -C "$2" . && sync "$1"',
                    "sh",
                    str(tar_out),
                    str(vault),
                ],
                args.runs,
                tar_out,
                env,
            ),
        ),
        (
            "cp -a (plain copy of the vault directory; for create DIR)",
            median_time(
                ["cp", "-a", str(vault), str(plain_copy)],
                args.runs,
                plain_copy,
                env,
            ),
        ),
        (
            "start-up floor: python -c 'import confvault.vault.backup'",
            median_time(
                [sys.executable, "-c", "import confvault.vault.backup"],
                args.runs,
                None,
                env,
            ),
        ),
        (
            CREATE_TAR,
            median_time(
                [confvault, "--vault", str(vault), "backup", "create", str(snap_tar)],
                args.runs,
                snap_tar,
                env,
            ),
        ),
        (
            "the same in one process (library, jobs=1)",
            median_time(
                [
                    sys.executable,
                    "-c",
                    "import sys; from pathlib import Path; "
                    "from confvault.vault import backup; "
                    "backup.create(Path(sys.argv[1]), Path(sys.argv[2]), jobs=1)",
                    str(vault),
                    str(snap_tar),
                ],
                args.runs,
                snap_tar,
                env,
            ),
        ),
        (
            "confvault backup create DIR",
            median_time(
                [confvault, "--vault", str(vault), "backup", "create", str(snap_dir)],
                args.runs,
                snap_dir,
                env,
            ),
        ),
        (
            VERIFY_TAR,
            median_time(
                [confvault, "backup", "verify", str(snap_tar)], args.runs, None, env
            ),
        ),
        (
            "confvault backup verify DIR",
            median_time(
                [confvault, "backup", "verify", str(snap_dir)], args.runs, None, env
            ),
        ),
    ]
    if shutil.which("restic"):
        repo = base / "restic-repo"
        renv = dict(
            env,
            RESTIC_PASSWORD="bench",  # noqa: S106 - a throwaway benchmark repository
            RESTIC_REPOSITORY=str(repo),
            RESTIC_CACHE_DIR=str(base / "restic-cache"),
        )
        walls, cpus = [], []
        for _ in range(args.runs):
            shutil.rmtree(repo, ignore_errors=True)
            subprocess.run(
                ["restic", "init"], check=True, env=renv, capture_output=True
            )
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(
                ["restic", "backup", "--quiet", str(vault)], check=True, env=renv
            )
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(
                after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            )
        rows.append(
            (
                "restic backup DIR (first snapshot)",
                (statistics.median(walls), statistics.median(cpus)),
            )
        )
    else:
        print("restic not installed (apt-get install -y restic): its row is skipped")
    shutil.rmtree(plain_copy, ignore_errors=True)
    tar_s, tar_cpu = rows[0][1]
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| what | median wall s | vs tar | median CPU s | CPU vs tar |")
    print("|---|---|---|---|---|")
    for label, (seconds, cpu) in rows:
        print(
            f"| {label} | {seconds:.3f} | {seconds / tar_s:.2f}x "
            f"| {cpu:.3f} | {cpu / tar_cpu:.2f}x |"
        )
    create = dict(rows)[CREATE_TAR][0]
    verify = dict(rows)[VERIFY_TAR][0]
    for what, seconds in (("backup create", create), ("backup verify", verify)):
        print(
            f"goal: {what} DEST.tar within 2x of tar (wall): {seconds / tar_s:.2f}x -> "
            f"{'met' if seconds / tar_s <= 2 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
