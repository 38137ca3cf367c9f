"""Classic and post-quantum vaults side by side, in one run, on the same notes:
seal N notes (~3 KB each, 100 per client), search them, rotate every key, and
the size on disk; with the stock `age` loop of bench/rotate.py as the yardstick.

    .venv/bin/python bench/pq.py [--notes 10000] [--dir /dev/shm/cv-pq] [--skip-age]

Times are processor time (user + system) of the process, not wall time: the
machine is shared, and processor time is what other work disturbs least.
Goals (issue 17): post-quantum rotation of N notes within 1.5x of classic
rotation and still at least 10x faster than the stock `age` loop; search
unchanged (the kept file keys make it independent of the recipient type);
the size overhead per note stated. scrypt work factor 10 (the passphrase
cost is not what is measured).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import rotate

from confvault.vault import Vault

PASSPHRASE = rotate.PASSPHRASE
PER_CLIENT = 100


def _size(root: Path) -> tuple[int, int]:
    """(bytes of the files, bytes allocated on disk) under ``root``."""
    files = allocated = 0
    for path in root.rglob("*"):
        if path.is_file():
            info = path.stat()
            files += info.st_size
            allocated += info.st_blocks * 512
    return files, allocated


def _build(base: Path, files: list[Path], postquantum: bool) -> tuple[Path, float]:
    """A vault of ``files`` (100 notes a client); the seconds sealing took."""
    kind = "postquantum" if postquantum else "classic"
    root = base / kind
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(base / f"{kind}-state", ignore_errors=True)
    vault, _ = Vault.init(
        root,
        PASSPHRASE,
        work_factor=10,
        min_work_factor=10,
        state_dir=base / f"{kind}-state",
        postquantum=postquantum,
    )
    chunks = [files[i : i + PER_CLIENT] for i in range(0, len(files), PER_CLIENT)]
    start = time.process_time()
    for number, chunk in enumerate(chunks):
        client = vault.add_client(f"Client {number}")
        vault.add_notes(
            client.id, [(p.stem, "2025-01-01", p.read_bytes()) for p in chunk]
        )
    return root, time.process_time() - start


def _search(root: Path) -> float:
    """A search over every note, in a freshly opened vault (as a command does)."""
    vault = Vault.open(
        root, passphrase=PASSPHRASE, state_dir=root.with_name(root.name + "-state")
    )
    start = time.process_time()
    hits = vault.search("grief")
    seconds = time.process_time() - start
    if not hits:
        raise SystemExit("the search found nothing")
    return seconds


def _rotate(root: Path, notes: int) -> float:
    vault = Vault.open(
        root, passphrase=PASSPHRASE, state_dir=root.with_name(root.name + "-state")
    )
    start = time.process_time()
    report = vault.rotate(all_clients=True)
    seconds = time.process_time() - start
    if sum(r.notes for r in report.rotated) != notes:
        raise SystemExit(f"the rotation re-sealed too few notes: {report.failed}")
    return seconds


def _age_loop(files: list[Path], base: Path) -> tuple[float, float]:
    """bench/rotate.py's loop of the stock `age` (decrypt, encrypt, mv for each
    note): its wall time, and the processor time of its processes."""
    keys = {name: base / f"{name}.key" for name in ("old", "new")}
    public = {}
    for name, key in keys.items():
        key.unlink(missing_ok=True)
        subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
        public[name] = subprocess.run(
            ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
        ).stdout.strip()
    store = base / "age-store"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir()
    for p in files:  # set-up, not timed
        target = store / (p.stem + ".age")
        subprocess.run(
            ["age", "-r", public["old"], "-o", str(target), str(p)], check=True
        )
    script = (
        f'for f in "{store}"/*.age; do age -d -i "{keys["old"]}" "$f" | '
        f'age -r {public["new"]} -o "$f.new" && mv "$f.new" "$f"; done'
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(["sh", "-c", script], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm/cv-pq"))
    parser.add_argument("--skip-age", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base: Path = args.dir
    base.mkdir(parents=True, exist_ok=True)
    _, files = rotate.build(base, args.notes)
    print(
        f"{args.notes} notes, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} processors, Python {platform.python_version()}, {base}",
        flush=True,
    )
    # Built one after the other, measured interleaved (classic, post-quantum,
    # classic, ...) so that other work on the machine weighs on both alike.
    kinds = ("classic", "postquantum")
    roots, seal = {}, {}
    for kind in kinds:
        roots[kind], seal[kind] = _build(base, files, kind == "postquantum")
    search: dict[str, list[float]] = {k: [] for k in kinds}
    rotation: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(args.runs):
        for kind in kinds:
            search[kind].append(_search(roots[kind]))
            rotation[kind].append(_rotate(roots[kind], len(files)))
    size = {k: _size(roots[k] / "objects") for k in kinds}
    n = len(files)
    for kind in kinds:
        print(
            f"  {kind:>11}: seal {seal[kind]:6.2f} s, search "
            f"{statistics.median(search[kind]):5.2f} s, rotate "
            f"{statistics.median(rotation[kind]):6.2f} s (medians of {args.runs}: "
            f"{', '.join(f'{r:.2f}' for r in rotation[kind])}), objects "
            f"{size[kind][0] / 2**20:6.1f} MiB ({size[kind][1] / 2**20:6.1f} MiB "
            "allocated)",
            flush=True,
        )
    ratio = statistics.median(rotation["postquantum"]) / statistics.median(
        rotation["classic"]
    )
    print(f"rotation, post-quantum / classic: {ratio:.2f}x (goal <= 1.5x)")
    print(
        "search, post-quantum / classic: "
        f"{statistics.median(search['postquantum']) / statistics.median(search['classic']):.2f}x"
        " (goal: unchanged)"
    )
    print(f"seal, post-quantum / classic: {seal['postquantum'] / seal['classic']:.2f}x")
    per_note = (size["postquantum"][0] - size["classic"][0]) / n
    per_note_disk = (size["postquantum"][1] - size["classic"][1]) / n
    print(
        f"size: {per_note:.0f} bytes more per note in the files, "
        f"{per_note_disk:.0f} allocated"
    )
    pq = {"rotate": statistics.median(rotation["postquantum"])}
    if not args.skip_age:
        wall, cpu = _age_loop(files, base)
        print(
            f"stock age loop (X25519): {wall:.2f} s wall, {cpu:.2f} s processor; "
            f"post-quantum rotation {cpu / pq['rotate']:.1f}x faster (goal >= 10x)"
        )


if __name__ == "__main__":
    main()
