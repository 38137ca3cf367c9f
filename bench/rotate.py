"""Rotate every key of a vault of N notes (~3 KB), side by side with `pass init
NEW_KEY` re-encrypting the same notes and a loop of the stock `age` binary
decrypting and re-encrypting them, and with the raw cost of decrypting and
encrypting the same bytes in one process.

    .venv/bin/python bench/rotate.py [--notes 10000] [--dir /dev/shm/cv-bench] [--skip-pass]

Goals (issue 4): at least 30x faster than `pass`, at least 10x faster than the
`age` loop, within 3x of the raw in-process cost. The vault uses scrypt work
factor 10 (the passphrase cost is not what is measured here).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confvault import age
from confvault.vault import Vault

PASSPHRASE = b"correct horse battery staple"
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
    "relationship",
    "grief",
    "trauma",
    "panic",
    "routine",
    "exercise",
    "medication",
    "support",
    "boundary",
]


def note_text(rng: random.Random, size: int = 3000) -> bytes:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < size:
        words.append(rng.choice(WORDS))
    return " ".join(words).encode()


def build(base: Path, n: int) -> tuple[Path, list[Path]]:
    """A vault and a folder of the same notes as plain files (cached between runs)."""
    notes_dir = base / f"plain-{n}"
    vault_dir = base / f"vault-{n}"
    if not notes_dir.exists():
        rng = random.Random(7)
        tmp = base / f"plain-{n}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for i in range(n):
            (tmp / f"note-{i:06d}.txt").write_bytes(note_text(rng))
        tmp.rename(notes_dir)
    files = sorted(notes_dir.iterdir())
    return vault_dir, files


def fresh_vault(base: Path, files: list[Path]) -> Vault:
    vault_dir = base / "vault"
    shutil.rmtree(vault_dir, ignore_errors=True)
    vault, _ = Vault.init(
        vault_dir,
        PASSPHRASE,
        work_factor=10,
        postquantum=False,
        min_work_factor=10,
        state_dir=base / "state",
    )
    clients = max(1, len(files) // 100)
    for c in range(clients):
        vault.add_client(f"Client {c}")
        chunk = files[c * 100 : (c + 1) * 100] if c < clients - 1 else files[c * 100 :]
        vault.add_notes(
            f"Client {c}", [(p.stem, "2025-01-01", p.read_bytes()) for p in chunk]
        )
    return vault


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"  {label}: {seconds:.2f} s", flush=True)
    return seconds


def run_cli_rotate(base: Path) -> None:
    secret = base / "pass.txt"
    secret.write_bytes(PASSPHRASE + b"\n")
    secret.chmod(0o600)
    confvault = str(Path(sys.executable).parent / "confvault")
    env = dict(os.environ, XDG_STATE_HOME=str(base / "xdg"))
    subprocess.run(
        [
            confvault,
            "--vault",
            str(base / "vault"),
            "--passphrase-file",
            str(secret),
            "rotate",
            "--all",
            "--json",
        ],
        check=True,
        env=env,
        capture_output=True,
    )


def raw_reseal(files: list[Path], out: Path, fsync: bool) -> None:
    """Decrypt and re-encrypt the same bytes in one process (age codec, no vault)."""
    old, new = age.X25519Identity.generate(), age.X25519Identity.generate()
    sealed = [age.encrypt(p.read_bytes(), [old.recipient]) for p in files]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    start = time.perf_counter()
    for i, data in enumerate(sealed):
        plain = age.decrypt(data, [old])
        target = out / f"{i}.age"
        with open(target, "wb") as f:
            f.write(age.encrypt(plain, [new.recipient]))
            if fsync:
                f.flush()
                os.fsync(f.fileno())
    return time.perf_counter() - start  # type: ignore[return-value]


def age_loop(files: list[Path], base: Path) -> float:
    old_key, new_key = base / "old.key", base / "new.key"
    for key in (old_key, new_key):
        key.unlink(missing_ok=True)
        subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    new_pub = subprocess.run(
        ["age-keygen", "-y", str(new_key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    old_pub = subprocess.run(
        ["age-keygen", "-y", str(old_key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    store = base / "age-store"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir()
    for p in files:  # set-up, not timed
        subprocess.run(
            ["age", "-r", old_pub, "-o", str(store / (p.stem + ".age")), str(p)],
            check=True,
        )
    script = (
        f'for f in "{store}"/*.age; do age -d -i "{old_key}" "$f" | age -r {new_pub} '
        f'-o "$f.new" && mv "$f.new" "$f"; done'
    )
    start = time.perf_counter()
    subprocess.run(["sh", "-c", script], check=True)
    return time.perf_counter() - start


def pass_init(files: list[Path], base: Path) -> float | None:
    if not shutil.which("pass") or not shutil.which("gpg"):
        print("  pass or gpg not installed (apt-get install -y pass): skipped")
        return None
    gnupg = Path(tempfile.mkdtemp(prefix="gnupg-", dir=base))
    gnupg.chmod(0o700)
    env = dict(
        os.environ, GNUPGHOME=str(gnupg), PASSWORD_STORE_DIR=str(base / "pass-store")
    )
    for name in ("bench-old", "bench-new"):
        subprocess.run(
            [
                "gpg",
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--quick-gen-key",
                name,
                "future-default",
                "default",
                "never",
            ],
            check=True,
            env=env,
            capture_output=True,
        )
    store = base / "pass-store"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir()
    (store / ".gpg-id").write_text("bench-old\n")
    staging = base / "pass-staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(files[0].parent, staging)
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--yes",
            "-r",
            "bench-old",
            "--encrypt-files",
            *[str(p) for p in sorted(staging.iterdir())],
        ],
        check=True,
        env=env,
    )
    for p in staging.glob("*.gpg"):
        p.rename(store / p.name)
    start = time.perf_counter()
    subprocess.run(
        ["pass", "init", "bench-new"], check=True, env=env, capture_output=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument(
        "--dir", type=Path, default=Path("/dev/shm/confvault-bench-rotate")
    )
    parser.add_argument("--skip-pass", action="store_true")
    parser.add_argument("--skip-age", action="store_true")
    args = parser.parse_args()
    base = args.dir
    base.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(f"command: {' '.join(sys.argv)}   dir: {base}   notes: {args.notes} (~3 KB)")
    _, files = build(base, args.notes)
    rows = []
    vault = fresh_vault(base, files)
    lib = timed(
        "confvault library rotate --all", lambda: vault.rotate(all_clients=True)
    )
    fresh_vault(base, files)
    cli = timed(
        "confvault CLI rotate --all (whole process)", lambda: run_cli_rotate(base)
    )
    raw_nosync = raw_reseal(files, base / "raw", fsync=False)
    raw_sync = raw_reseal(files, base / "raw", fsync=True)
    print(
        f"  raw decrypt+encrypt in one process: {raw_nosync:.2f} s (no fsync), {raw_sync:.2f} s (fsync per file)"
    )
    age_s = None if args.skip_age else age_loop(files, base)
    pass_s = None if args.skip_pass else pass_init(files, base)
    rows.append(("confvault rotate --all (library)", lib))
    rows.append(("confvault rotate --all (CLI)", cli))
    rows.append(("raw in-process, no fsync", raw_nosync))
    rows.append(("raw in-process, fsync per file", raw_sync))
    if age_s is not None:
        rows.append(("stock age loop (decrypt | encrypt per file)", age_s))
    if pass_s is not None:
        rows.append(("pass init NEW_KEY", pass_s))
    print()
    print("| what | seconds | notes/s | confvault CLI is faster by |")
    print("|---|---|---|---|")
    for label, seconds in rows:
        print(
            f"| {label} | {seconds:.2f} | {args.notes / seconds:,.0f} | {seconds / cli:.1f}x |"
        )
    print()
    if pass_s:
        print(
            f"goal >= 30x faster than pass: {pass_s / cli:.1f}x -> {'met' if pass_s / cli >= 30 else 'NOT met'}"
        )
    if age_s:
        print(
            f"goal >= 10x faster than the age loop: {age_s / cli:.1f}x -> {'met' if age_s / cli >= 10 else 'NOT met'}"
        )
    print(
        f"goal within 3x of raw (no fsync): {lib / raw_nosync:.2f}x -> {'met' if lib / raw_nosync <= 3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
