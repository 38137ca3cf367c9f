"""Library `note add` in a vault of many clients, without grants, with five
grants of one client each, and with one grant of all clients.

    .venv/bin/python bench/grants.py [--clients 1000] [--adds 40] [--dir /dev/shm/confvault-bench-grants]

Each vault is built once (CLIENTS `add_client`, then the grants) and reused;
the notes go to a client no one-client grant covers. Prints the median and
range of the adds, in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

from confvault import age
from confvault.vault import Vault

PASSPHRASE = b"correct horse battery staple"
KINDS = {
    "no grants": lambda vault, n: None,
    "five grants of one client each": lambda vault, n: [
        vault.grant(
            str(age.X25519Identity.generate().recipient),
            clients=[f"Client {c}"],
            label=f"one-{c}",
        )
        for c in range(5)
    ],
    "one grant of all clients": lambda vault, n: vault.grant(
        str(age.X25519Identity.generate().recipient), all_clients=True, label="all"
    ),
}


def build(base: Path, kind: str, clients: int) -> Path:
    root = base / f"{kind.replace(' ', '-')}-{clients}"
    if (root / "vault" / "manifest").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    vault, _ = Vault.init(
        root / "vault",
        PASSPHRASE,
        work_factor=10,
        postquantum=False,
        min_work_factor=10,
        state_dir=root / "state",
    )
    for c in range(clients):
        vault.add_client(f"Client {c}")
    KINDS[kind](vault, clients)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--adds", type=int, default=40)
    parser.add_argument(
        "--dir", type=Path, default=Path("/dev/shm/confvault-bench-grants")
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}"
    )
    print(f"command: {' '.join(sys.argv)}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    target = f"Client {args.clients // 2}"
    for kind in KINDS:
        root = build(args.dir, kind, args.clients)
        vault = Vault.open(
            root / "vault", passphrase=PASSPHRASE, state_dir=root / "state"
        )
        times = []
        for _ in range(args.adds):
            start = time.perf_counter()
            vault.add_note(target, b"x" * 3000)
            times.append((time.perf_counter() - start) * 1e3)
        rows.append((kind, statistics.median(times), min(times), max(times)))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(f"| vault of {args.clients} clients | note add ms (median) | range |")
    print("|---|---|---|")
    for kind, median, low, high in rows:
        print(f"| {kind} | {median:.1f} | {low:.1f}-{high:.1f} |")


if __name__ == "__main__":
    main()
