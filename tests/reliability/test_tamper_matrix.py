"""Every kind of file the vault holds x every attack: flip a byte, truncate,
extend, delete, swap two files of the same kind, replace with an older valid
version. Each case must be reported by the keyless `verify`, and the commands
that read must either refuse with a typed error or (for files they do not
read) still show only genuine content; none may end in a traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import ConfvaultError
from confvault.vault import Vault
from confvault.vault.check.keyless import verify_vault
from confvault.vault.ops import compartments
from confvault.vault.store import root_index
from confvault.vault.store.seen import SeenStore
from tests.vault.conftest import PASSPHRASE

KINDS = [
    "manifest",
    "shard",
    "owner",
    "recovery",
    "root",
    "client-bucket",
    "audit",
    "grantee",
    "client-key",
    "index",
    "note",
]
ATTACKS = ["flip", "truncate", "extend", "delete", "swap", "older"]
SINGLE = {
    "manifest",
    "owner",
    "recovery",
    "root",
    "audit",
}  # one file of the kind: no swap
CASES = [(k, a) for k in KINDS for a in ATTACKS if not (a == "swap" and k in SINGLE)]
GENUINE: dict[str, bytes] = {}


def _build(
    path: Path, state: Path
) -> tuple[Vault, dict[str, list[Path]], dict[str, bytes]]:
    vault, _ = Vault.init(
        path,
        PASSPHRASE,
        work_factor=10,
        postquantum=False,
        min_work_factor=10,
        state_dir=state,
    )
    for name in ("Ann", "Bob"):
        vault.add_client(name)
        for i in range(2):
            GENUINE[vault.add_note(name, f"{name} note {i}".encode()).id] = (
                f"{name} note {i}".encode()
            )
    # Client IDs are random: add clients until two root buckets exist (to swap).
    extra = 0
    while len({root_index.label_of(c.id) for c in vault.clients()}) < 2:
        extra += 1
        vault.add_client(f"Extra {extra}")
    vault.grant(
        str(age.X25519Identity.generate().recipient), all_clients=True, label="executor"
    )
    older: dict[str, bytes] = {}
    files = _files_by_kind(vault)
    for kind, paths in files.items():
        older[kind] = paths[0].read_bytes()
    older["manifest"] = (path / "manifest").read_bytes()
    # One more commit, so that every logical file has an older valid version.
    vault.add_note("Ann", b"latest")
    vault.change_passphrase(PASSPHRASE)
    vault.rotate(all_clients=True)  # new client keys, every note re-sealed
    vault.rotate_identity(PASSPHRASE)  # new owner keys, recovery copy re-sealed
    vault.grant(
        str(age.X25519Identity.generate().recipient), clients=["Bob"], label="locum"
    )
    return vault, _files_by_kind(vault), older


def _files_by_kind(vault: Vault) -> dict[str, list[Path]]:
    current = vault.manifest
    pointers = current.body.pointers
    root = vault.session.root_record(current)
    store = vault.store
    files: dict[str, list[Path]] = {
        "manifest": [vault.root / "manifest"],
        "shard": [
            vault.root / "shards" / n for n in sorted(current.body.shards.values())
        ],
        "owner": [store.path(pointers["owner"])],
        "recovery": [store.path(pointers["recovery"])],
        "root": [store.path(pointers["root"])],
        "client-bucket": [
            store.path(d)
            for _, (d, _) in sorted(vault.session.root_buckets.sealed.items())
        ],
        "audit": [store.path(pointers["audit"])],
        "grantee": [
            store.path(d)
            for k, d in sorted(pointers.items())
            if k.startswith("grantee:")
        ],
        "client-key": [],
        "index": [],
        "note": [],
    }
    for cid in sorted(root.clients):
        comp = compartments.open_compartment(vault.session, root, cid, "records")
        files["client-key"].append(store.path(comp.entry.key))
        files["index"].append(store.path(comp.entry.index))
        files["note"] += [store.path(e.object) for e in comp.notes]
    return files


@pytest.fixture(scope="module")
def template(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, dict[str, bytes]]:
    base = tmp_path_factory.mktemp("tamper")
    vault, _, older = _build(base / "vault", base / "state")
    GENUINE[next(n.id for n in vault.notes() if n.size == len(b"latest"))] = b"latest"
    return base / "vault", base / "state", older


def _attack(
    files: dict[str, list[Path]], older: dict[str, bytes], kind: str, attack: str
) -> bool:
    """Apply the attack; False when it does not apply to this kind."""
    target = files[kind][0]
    data = target.read_bytes()
    if attack == "flip":
        target.write_bytes(data[:-20] + bytes([data[-20] ^ 0x40]) + data[-19:])
    elif attack == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif attack == "extend":
        target.write_bytes(data + b"\n")
    elif attack == "delete":
        target.unlink()
    elif attack == "swap":
        if len(files[kind]) < 2:
            return False
        other = files[kind][1]
        other_data = other.read_bytes()
        target.write_bytes(other_data)
        other.write_bytes(data)
    elif attack == "older":
        if older.get(kind) is None or older[kind] == data:
            return False
        target.write_bytes(older[kind])
    return True


@pytest.mark.parametrize(("kind", "attack"), CASES)
def test_tamper_case(template, tmp_path: Path, kind: str, attack: str) -> None:
    source, state_src, older = template
    vault_dir, state = tmp_path / "vault", tmp_path / "state"
    shutil.copytree(source, vault_dir)
    shutil.copytree(state_src, state)
    owner = Vault.open(vault_dir, passphrase=PASSPHRASE, state_dir=state)
    files = _files_by_kind(owner)
    assert _attack(files, older, kind, attack), (
        f"{attack} of {kind} could not be staged"
    )
    report = verify_vault(vault_dir, seen=SeenStore(state))
    assert not report.ok, f"verify missed {attack} of {kind}"
    try:
        reader = Vault.open(vault_dir, passphrase=PASSPHRASE, state_dir=state)
        shown = {}
        for info in reader.notes(psychotherapy=True):
            shown[info.id] = reader.note(info.id).body
    except ConfvaultError:
        return  # refused with a typed error: the CLI maps it to a message and exit code
    # Whatever was shown must be genuine.
    assert all(GENUINE.get(note_id) == body for note_id, body in shown.items()), (
        kind,
        attack,
    )


def test_matrix_size() -> None:
    """11 kinds x 6 attacks, less the swaps of kinds that exist once: 61 cases."""
    assert len(CASES) == len(KINDS) * len(ATTACKS) - len(SINGLE) == 61
