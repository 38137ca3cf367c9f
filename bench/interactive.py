"""Interactive speed (issue 15): whole ``confvault`` processes, served by the
command server and in-process, beside ``age -d`` of one note and ``pass
show`` with gpg-agent holding the key.

Run from the repository root (after the README set-up; ``age`` from the
system package ``age``; ``pass`` and ``gpg`` from ``pass`` and ``gnupg``)::

    .venv/bin/python bench/interactive.py              # 30 runs each
    .venv/bin/python bench/interactive.py --runs 10    # quicker

It builds, in a temporary directory: a vault (scrypt work factor 10: LOW,
for benchmarks only; the passphrase from a file) with 3 clients of 5 notes
each; one note sealed by the stock ``age`` to an ``age-keygen`` key; a
password store of one entry sealed to a passphrase-less gpg key in a
throwaway GNUPGHOME (so no passphrase is asked, as with a cached
gpg-agent; the agent is started by a first ``pass show`` and stopped at the
end). Bytecode is cached as in an installed package (``compileall`` over
src/, and PYTHONDONTWRITEBYTECODE left out of the commands' environment). It
unlocks the vault (``confvault unlock --allow-jobs``: the key agent holds the
owner's keys, no command reads the passphrase), starts a command server
(``python -m confvault.server``) in a private runtime directory, and times
every command as a whole process, warm: two runs discarded, then ``--runs``
runs, median (and minimum), the served and the in-process run of each command
taking turns. scrypt at the default work factor 18, what a locked vault's
command pays once, is timed apart.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFVAULT = str(Path(sys.executable).parent / "confvault")
NOTE_TEXT = (
    "Session 12. Client reports better sleep since the last visit; practised "
    "the breathing exercise daily. Discussed the conflict at work.\n" * 8
)
GOALS = {
    "note show ID": 60,
    "note list CLIENT": 60,
    "client list": 60,
    "status": 60,
    "note add CLIENT (stdin)": 90,
    "--version": 30,
    "--help": 120,
    "note --help": 120,
}


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        args, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def timed(args: list[str], env: dict[str, str], stdin: bytes | None) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        args,
        env=env,
        input=stdin,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # no timeout: with one, subprocess polls the child every 50 ms
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}")
    return took


def measure(
    variants: dict[str, tuple[list[str], dict[str, str], bytes | None]], runs: int
) -> dict[str, list[float]]:
    """Each variant's times; the variants take turns, run by run."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(runs + 2):
        for name, (args, env, stdin) in variants.items():
            took = timed(args, env, stdin)
            if i >= 2:
                times[name].append(took)
    return times


def build_vault(work: Path, env: dict[str, str]) -> tuple[str, str]:
    run(
        [
            CONFVAULT,
            "init",
            "--work-factor",
            "10",
            "--allow-weak-work-factor",
            "--no-recovery-key",
        ],
        env,
    )
    client = note = ""
    for c in range(3):
        added = run([CONFVAULT, "client", "add", f"Client {c} Example"], env)
        client = added.split()[2]
        for _ in range(5):
            note = run([CONFVAULT, "note", "add", client], env, NOTE_TEXT).split()[3]
    return client, note


def age_note(work: Path) -> list[str] | None:
    if not (shutil.which("age") and shutil.which("age-keygen")):
        print("age: not installed (apt-get install -y age); its row is left out")
        return None
    key = work / "age.key"
    subprocess.run(["age-keygen", "-o", str(key)], capture_output=True, check=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(key)], capture_output=True, text=True, check=True
    ).stdout.strip()
    sealed = work / "note.age"
    subprocess.run(
        ["age", "-r", recipient, "-o", str(sealed)],
        input=NOTE_TEXT.encode(),
        check=True,
    )
    return ["age", "-d", "-i", str(key), str(sealed)]


def pass_store(work: Path) -> tuple[list[str], dict[str, str]] | None:
    if not (shutil.which("pass") and shutil.which("gpg")):
        print(
            "pass: not installed (apt-get install -y pass gnupg); its row is left out"
        )
        return None
    gnupg, store = work / "gnupg", work / "pass"
    gnupg.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(gnupg), PASSWORD_STORE_DIR=str(store))
    uid = "confvault bench <bench@example.invalid>"
    subprocess.run(
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
        capture_output=True,
        check=True,
    )
    run(["pass", "init", uid], env)
    run(["pass", "insert", "-m", "client-0/note-0"], env, NOTE_TEXT)
    run(["pass", "show", "client-0/note-0"], env)  # starts gpg-agent
    return ["pass", "show", "client-0/note-0"], env


def scrypt_seconds(log_n: int) -> float:
    start = time.perf_counter()
    hashlib.scrypt(b"passphrase", salt=b"s" * 16, n=2**log_n, r=8, p=1, maxmem=2**30)
    return time.perf_counter() - start


def machine() -> str:
    cpu = "unknown processor"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} processors, Linux {platform.release()}, "
        f"Python {platform.python_version()}, load {load:.1f} at the start"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--served-only",
        action="store_true",
        help="only the served vault commands and the interpreter (quicker)",
    )
    options = parser.parse_args()
    runs = options.runs
    print(machine())
    with tempfile.TemporaryDirectory(prefix="confvault-bench-interactive-") as tmp:
        work = Path(tmp)
        runtime = work / "run"
        runtime.mkdir(mode=0o700)
        (work / "pp").write_text("bench passphrase\n")
        (work / "pp").chmod(0o600)
        # As installed: the modules' compiled bytecode cached (pip compiles what
        # it installs; an editable install's modules are compiled here once).
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True
        )
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CONFVAULT_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env = base | {
            "XDG_RUNTIME_DIR": str(runtime),
            "CONFVAULT_VAULT": str(work / "vault"),
        }
        local = env | {"CONFVAULT_NO_SERVER": "1"}
        keyed = local | {"CONFVAULT_PASSPHRASE_FILE": str(work / "pp")}
        client, note = build_vault(work, keyed)
        # Unlocked: the agent holds the keys, no command reads the passphrase
        # (--allow-jobs: the bench's commands have no terminal).
        unlock = [CONFVAULT, "unlock", "--allow-jobs", "--idle", "1h"]
        subprocess.run(unlock, env=keyed, check=True, stdout=subprocess.DEVNULL)
        age = None if options.served_only else age_note(work)
        gpass = None if options.served_only else pass_store(work)
        server = [sys.executable, "-m", "confvault.server"]
        if subprocess.run([*server, "start"], env=env, check=False).returncode != 0:
            raise SystemExit("the command server did not start")
        try:
            commands = {
                "note show ID": (["note", "show", note], None),
                "note list CLIENT": (["note", "list", client], None),
                "client list": (["client", "list"], None),
                "status": (["status"], None),
                "note add CLIENT (stdin)": (
                    ["note", "add", client],
                    NOTE_TEXT.encode(),
                ),
                "--version": (["--version"], None),
                "--help": (["--help"], None),
                "note --help": (["note", "--help"], None),
            }
            variants: dict[str, tuple[list[str], dict[str, str], bytes | None]] = {}
            for name, (args, stdin) in commands.items():
                if options.served_only and name not in list(GOALS)[:5]:
                    continue
                variants[f"{name}|server"] = ([CONFVAULT, *args], env, stdin)
                if not options.served_only:
                    variants[f"{name}|in-process"] = ([CONFVAULT, *args], local, stdin)
            if age:
                variants["age -d -i KEY (one note)|-"] = (age, base, None)
            if gpass:
                variants["pass show (cached gpg-agent)|-"] = (gpass[0], gpass[1], None)
            variants["python3 -c pass (the interpreter alone)|-"] = (
                [sys.executable, "-c", "pass"],
                base,
                None,
            )
            times = measure(variants, runs)
        finally:
            subprocess.run([*server, "stop"], env=env, check=False)
            subprocess.run([CONFVAULT, "lock"], env=local, check=False)
            if gpass:
                subprocess.run(
                    ["gpgconf", "--kill", "gpg-agent"], env=gpass[1], check=False
                )
    rows: dict[str, dict[str, list[float]]] = {}
    for key, values in times.items():
        name, how = key.split("|")
        rows.setdefault(name, {})[how] = values

    def cell(values: list[float] | None) -> str:
        if not values:
            return "-"
        return f"{statistics.median(values) * 1000:.0f} ms ({min(values) * 1000:.0f})"

    print(f"\nmedian of {runs} whole processes (minimum in brackets), warm\n")
    print("| command | unlocked, served | unlocked, in-process | goal | met |")
    print("|---|---|---|---|---|")
    for name, by in rows.items():
        goal = GOALS.get(name)
        served = by.get("server") or by.get("-")
        met = (
            "-"
            if goal is None
            else ("yes" if statistics.median(served or [1e9]) * 1000 <= goal else "no")
        )
        print(
            f"| `{name}` | {cell(by.get('server') or by.get('-'))} | "
            f"{cell(by.get('in-process'))} | {f'{goal} ms' if goal else '-'} | {met} |"
        )
    print(
        f"\nscrypt alone: work factor 10 {scrypt_seconds(10) * 1000:.1f} ms, "
        f"default 18 {scrypt_seconds(18) * 1000:.0f} ms (paid by every command "
        "that opens the vault with the passphrase; none when unlocked)"
    )


if __name__ == "__main__":
    main()
