"""Two (or more) versions of confvault side by side: note add, search, rotation, verify.

Run from the repository root, with a second checkout (for example the commit
before a change) that has its own ``.venv`` made by the README's first
command::

    git worktree add --detach /tmp/cv-before COMMIT
    (cd /tmp/cv-before && python3 -m venv .venv && .venv/bin/pip install -e .)
    .venv/bin/python bench/before_after.py --tree before=/tmp/cv-before --tree after=.
    .venv/bin/python bench/before_after.py ... --dir /tmp          # on the disk

Each tree builds its own vault of ``--notes`` ~3 KB notes (100 per client,
the corpus of ``bench/vault_scale.py``) with its own library, at a low scrypt
work factor (``--work-factor``, 10) so that the figures show the vault's own
cost. Then every workload is timed as a whole process of that tree's
``confvault``, round-robin over the trees (the order alternating from run to
run), so that the machine's changing load weighs on every tree alike:

- ``note add CLIENT --title T < note.txt``: one ~3 KB note;
- ``note search WORD``: a topic word found in about 2-6 % of the notes;
- ``rotate --all``: a new key for every client, every note re-sealed;
- ``verify``: keyless (every object's hash, the shards, the signed manifest).

It prints the median wall-clock time of ``--runs`` runs after one warm-up run,
the spread, and the ratio of each tree to the first one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vault_scale import (  # the corpus of bench/vault_scale.py (same directory)
    PASSPHRASE,
    cpu_model,
    note_text,
)

BENCH = Path(__file__).resolve().parent
SEARCH_WORD = "insomnia"

# Run by each tree's interpreter: build the vault with that tree's library.
_BUILDER = """
import json, sys
from pathlib import Path
sys.path.insert(0, {bench!r})
from vault_scale import build_vault
built = build_vault(Path({path!r}), {notes}, work_factor={wf}, reuse=False, quiet=True)
print(json.dumps({{"clients": built.clients, "seconds": built.build_seconds}}))
"""


@dataclass
class Tree:
    """One checkout of confvault with its own virtual environment."""

    label: str
    root: Path
    vault: Path
    state: Path
    clients: list[str]

    @property
    def confvault(self) -> Path:
        return self.root / ".venv" / "bin" / "confvault"

    @property
    def python(self) -> Path:
        return self.root / ".venv" / "bin" / "python"


def parse_tree(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"--tree wants LABEL=PATH, not {text!r}")
    root = Path(path).resolve()
    if not (root / ".venv" / "bin" / "confvault").exists():
        raise argparse.ArgumentTypeError(f"{root} has no .venv/bin/confvault")
    return label, root


def build(label: str, root: Path, work: Path, notes: int, wf: int) -> Tree:
    vault = work / f"vault-{label}"
    code = _BUILDER.format(bench=str(BENCH), path=str(vault), notes=notes, wf=wf)
    python = root / ".venv" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"building the {label} vault failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  built {label}: {notes:,} notes in {result['seconds']:.1f} s", flush=True)
    state = vault.with_name(vault.name + ".state")
    return Tree(label, root, vault, state, result["clients"])


def run(tree: Tree, passfile: Path, args: list[str], stdin: Path | None) -> float:
    env = dict(os.environ, XDG_STATE_HOME=str(tree.state), NO_COLOR="1")
    for name in ("CONFVAULT_PASSPHRASE_FILE", "CONFVAULT_VAULT", "CONFVAULT_OWNER_KEY"):
        env.pop(name, None)
    argv = [str(tree.confvault), "--vault", str(tree.vault)]
    argv += ["--passphrase-file", str(passfile), *args]
    with stdin.open("rb") if stdin else open(os.devnull, "rb") as src:
        start = time.perf_counter()
        done = subprocess.run(
            argv, stdin=src, capture_output=True, env=env, check=False
        )
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{tree.label}: confvault {' '.join(args)} exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    return seconds


def workloads(note: Path) -> list[tuple[str, list[str], Path | None]]:
    return [
        ("note add", ["note", "add", "Client 00001", "--title", "Bench"], note),
        ("note search", ["note", "search", SEARCH_WORD], None),
        ("rotate --all", ["rotate", "--all"], None),
        ("verify", ["verify"], None),
    ]


def machine() -> str:
    model = cpu_model()
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", type=parse_tree, required=True)
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rotate-runs", type=int, default=3)
    parser.add_argument("--work-factor", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm"))
    parser.add_argument("--keep", action="store_true", help="keep the vaults")
    args = parser.parse_args(argv)
    if len(args.tree) < 2:
        parser.error("give at least two --tree")
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="confvault-before-after-", dir=args.dir))
    try:
        passfile = work / "passphrase.txt"
        passfile.write_bytes(PASSPHRASE + b"\n")
        passfile.chmod(0o600)
        note = work / "note.txt"
        note.write_bytes(note_text(random.Random(7)))
        print(f"{machine()}; {args.dir}; {args.notes:,} notes", flush=True)
        trees = [
            build(label, root, work, args.notes, args.work_factor)
            for label, root in args.tree
        ]
        times: dict[tuple[str, str], list[float]] = {}
        for name, cmd, stdin in workloads(note):
            runs = args.rotate_runs if name == "rotate --all" else args.runs
            for tree in trees:  # one warm-up run each
                run(tree, passfile, cmd, stdin)
            for number in range(runs):
                order = trees if number % 2 == 0 else trees[::-1]
                for tree in order:
                    seconds = run(tree, passfile, cmd, stdin)
                    times.setdefault((name, tree.label), []).append(seconds)
        print()
        head = f"| workload | {' | '.join(t.label for t in trees)} |"
        ratios = " | ".join(f"{t.label}/{trees[0].label}" for t in trees[1:])
        print(f"{head} {ratios} |")
        print("|---" * (1 + len(trees) + len(trees) - 1) + "|")
        for name, _, _ in workloads(note):
            base = statistics.median(times[(name, trees[0].label)])
            cells = []
            for tree in trees:
                sample = times[(name, tree.label)]
                cells.append(
                    f"{statistics.median(sample) * 1e3:.0f} ms"
                    f" ({min(sample) * 1e3:.0f}-{max(sample) * 1e3:.0f})"
                )
            rel = [
                f"{statistics.median(times[(name, t.label)]) / base:.2f}x"
                for t in trees[1:]
            ]
            print(f"| {name} | {' | '.join(cells)} | {' | '.join(rel)} |")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
