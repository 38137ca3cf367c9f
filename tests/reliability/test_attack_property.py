"""Issue 13's property: an attacker step between owner commands is refused or
changes nothing.

Random sequences of owner commands run on a real vault; before one of them a
random attacker step drawn from a list is applied to the directory (plant a
symlink, a journal or a FIFO, roll back a file or the whole vault, swap two
objects, replace the manifest with one signed by another key, chmod). The
same command also runs on an untouched copy of the vault. Either the
attacked command raises a ``ConfvaultError`` (it refused), or what the owner
then reads is exactly what the untouched copy reads; and the canary tree
beside the vault never changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confvault.errors import ConfvaultError
from confvault.vault import Vault

PASSPHRASE = b"correct horse battery staple"


def _open(vault: Path, state: Path) -> Vault:
    return Vault.open(vault, passphrase=PASSPHRASE, state_dir=state)


def _content(vault: Path, state: Path) -> list[tuple[str, list[bytes]]]:
    """What the owner reads: every client and every note's body."""
    v = _open(vault, state)
    out = []
    for client in v.clients():
        bodies = sorted(v.note(n.id).body for n in v.notes(client.id))
        out.append((client.name, bodies))
    return sorted(out)


def _tree(top: Path) -> dict[str, str]:
    out = {}
    for path in sorted(top.rglob("*")):
        rel = str(path.relative_to(top))
        if path.is_symlink():
            out[rel] = "link"
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


# --- owner commands --------------------------------------------------------------------

Command = Callable[[Vault, int], object]
COMMANDS: dict[str, Command] = {
    "add-client": lambda v, i: v.add_client(f"Client {i}"),
    "add-note": lambda v, i: v.add_note(v.clients()[0].id, f"note {i}".encode()),
    "list": lambda v, i: v.notes(v.clients()[0].id),
    "rotate": lambda v, i: v.rotate(all_clients=True),
}


# --- attacker steps --------------------------------------------------------------------


def _objects(vault: Path) -> list[Path]:
    return sorted(p for p in (vault / "objects").rglob("*") if p.is_file())


def plant_symlink(vault: Path, ctx: dict[str, Path]) -> None:
    (vault / "tmp" / "txn-9-00000000.journal").symlink_to(ctx["canary"] / "a.age")


def plant_journal(vault: Path, ctx: dict[str, Path]) -> None:
    names = [p.name for p in _objects(vault)]
    doc = {"added": names, "retired": names, "shards": ["../" * 21 + "a"]}
    path = vault / "tmp" / "txn-9-11111111.journal"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)


def plant_fifo(vault: Path, ctx: dict[str, Path]) -> None:
    target = _objects(vault)[-1]
    target.unlink()
    os.mkfifo(target, 0o600)


def roll_back_vault(vault: Path, ctx: dict[str, Path]) -> None:
    shutil.rmtree(vault)
    shutil.copytree(ctx["first"], vault, symlinks=True)


def roll_back_manifest(vault: Path, ctx: dict[str, Path]) -> None:
    shutil.copyfile(ctx["first"] / "manifest", vault / "manifest")


def swap_objects(vault: Path, ctx: dict[str, Path]) -> None:
    a, b = _objects(vault)[:2]
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)


def foreign_manifest(vault: Path, ctx: dict[str, Path]) -> None:
    shutil.copyfile(ctx["foreign"] / "manifest", vault / "manifest")


def chmod_open(vault: Path, ctx: dict[str, Path]) -> None:
    for bucket in (vault / "objects").iterdir():
        bucket.chmod(0o777)


ATTACKS = {
    f.__name__: f
    for f in (
        plant_symlink,
        plant_journal,
        plant_fifo,
        roll_back_vault,
        roll_back_manifest,
        swap_objects,
        foreign_manifest,
        chmod_open,
    )
}


def _run(vault: Path, state: Path, command: str, i: int) -> bool:
    """True when the command did its work, False when it refused."""
    try:
        COMMANDS[command](_open(vault, state), i)
    except ConfvaultError:
        return False
    return True


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    commands=st.lists(st.sampled_from(sorted(COMMANDS)), min_size=1, max_size=4),
    attack=st.sampled_from(sorted(ATTACKS)),
    when=st.integers(min_value=0, max_value=3),
)
def test_an_attack_is_refused_or_changes_nothing(
    tmp_path_factory, commands: list[str], attack: str, when: int
) -> None:
    top = tmp_path_factory.mktemp("prop")
    vault, state = top / "vault", top / "state"
    v, _ = Vault.init(
        vault,
        PASSPHRASE,
        work_factor=10,
        postquantum=False,
        min_work_factor=10,
        state_dir=state,
    )
    v.add_client("Ann")
    first = top / "first"  # older than anything the attack sees
    shutil.copytree(vault, first, symlinks=True)
    v.add_note(v.clients()[0].id, b"first")
    canary = top / "canary"
    canary.mkdir()
    (canary / "a.age").write_bytes(b"not the vault's\n")
    foreign = top / "foreign"
    Vault.init(
        foreign,
        PASSPHRASE,
        work_factor=10,
        postquantum=False,
        min_work_factor=10,
        state_dir=top / "fs",
    )
    ctx = {"canary": canary, "first": first, "foreign": foreign}
    canary_before = _tree(canary)
    when = min(when, len(commands) - 1)

    for i, command in enumerate(commands):
        if i == when:
            twin, twin_state = top / "twin", top / "twin-state"
            shutil.copytree(vault, twin, symlinks=True)
            shutil.copytree(state, twin_state, symlinks=True)
            ATTACKS[attack](vault, ctx)
            done = _run(vault, state, command, i)
            assert _run(twin, twin_state, command, i)
            assert _tree(canary) == canary_before
            if not done:
                return  # refused: the attack was caught
            try:
                attacked = _content(vault, state)
            except ConfvaultError:
                return  # caught when the owner reads: never shown as genuine
            assert attacked == _content(twin, twin_state), attack
            shutil.rmtree(vault)  # go on from the untouched result
            shutil.copytree(twin, vault, symlinks=True)
            shutil.rmtree(state)
            shutil.copytree(twin_state, state, symlinks=True)
        else:
            assert _run(vault, state, command, i)
    assert _tree(canary) == canary_before
