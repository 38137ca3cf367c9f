"""The vault each command starts from, and the commands explored.

A small practice: three clients, five notes (one a psychotherapy note, one
an attachment), a grant to a colleague for two clients, all dated in the
past by ``content.past_clock``. Small on purpose: every state is checked,
and a state's cost grows with the vault.
"""

from __future__ import annotations

import os
from pathlib import Path

from confvault import age
from confvault.vault import Vault
from tests.conftest import ram_dir
from tests.crashstates import content
from tests.crashstates.explorer import (
    BACKUP,
    Command,
    Result,
    World,
    explore,
    record_command,
)

IMPORTS = 4  # files in the `note import` batch


def make_world(root: Path, *, with_vault: bool = True) -> World:
    """A world under ``root`` (``root/world``), with the base vault unless told not to."""
    world = World(root / "world", root / "outside")
    world.path.mkdir(mode=0o700)
    world.outside.mkdir()
    world.passphrase_file.write_bytes(content.PASSPHRASE)
    world.passphrase_file.chmod(0o600)
    for n in range(1, IMPORTS + 1):
        (world.outside / f"imp{n}.md").write_bytes(
            f"---\ntitle: Imported {n}\ndate: 2024-03-0{n}\n---\nImported session {n}.\n".encode()
        )
    (world.outside / "grantee").write_text(str(age.X25519Identity.generate().recipient))
    if not with_vault:
        return world
    vault, _ = Vault.init(
        world.vault,
        content.PASSPHRASE,
        work_factor=content.WORK_FACTOR,
        postquantum=False,
        min_work_factor=content.WORK_FACTOR,
        state_dir=world.state,
        clock=content.past_clock(),
    )
    vault = Vault.open(
        world.vault,
        passphrase=content.PASSPHRASE,
        state_dir=world.state,
        clock=content.past_clock("2024-02-01T00:00:00"),
    )
    for name in ("Ann Example", "Bob Sample", "Cleo Third"):
        world.ids[name] = vault.add_client(name).id
    vault.add_note(
        "Ann Example", b"Intake: first session.\n", kind="intake", title="Intake"
    )
    vault.add_note("Ann Example", b"Second session.\n", title="Session 2")
    vault.add_note(
        "Bob Sample", b"Process notes, kept apart.\n", kind="psychotherapy", title="PT"
    )
    vault.add_note("Cleo Third", b"Cleo's only note.\n", title="Cleo 1")
    consent = world.outside / "consent.pdf"
    consent.write_bytes(b"%PDF-1.4 consent form\n" * 40)
    vault.add_attachment("Bob Sample", consent)
    colleague = age.X25519Identity.generate()
    vault.grant(
        str(colleague.recipient), clients=["Ann Example", "Bob Sample"], label="locum"
    )
    return world


def _imports(world: World) -> list[str]:
    return [os.fspath(world.outside / f"imp{n}.md") for n in range(1, IMPORTS + 1)]


COMMANDS = [
    Command(
        "init",
        lambda w: [
            "init",
            "--work-factor",
            "10",
            "--allow-weak-work-factor",
            "--no-recovery-key",
        ],
        creates_vault=True,
    ),
    Command(
        "note-add",
        lambda w: ["note", "add", "Ann Example", "--title", "Crash note"],
        stdin=b"Written while the power failed.\n",
    ),
    Command("note-import", lambda w: ["note", "import", "Cleo Third", *_imports(w)]),
    Command("rotate-all", lambda w: ["rotate", "--all"]),
    Command("revoke", lambda w: ["revoke", "locum"]),
    Command(
        "grant",
        lambda w: [
            "grant",
            os.fspath(w.outside / "grantee"),
            "--client",
            "Cleo Third",
            "--label",
            "supervisor",
        ],
    ),
    Command("client-shred", lambda w: ["client", "shred", "Cleo Third", "--yes"]),
    Command(
        "backup-create",
        lambda w: ["backup", "create", os.fspath(w.path / BACKUP)],
        backup=True,
    ),
]


def explore_command(name: str, fallback: str, strace: str) -> Result:
    """Build the world of the command ``name``, record it, explore it (in a
    worker process: the world lives on a tmpfs when there is one)."""
    command = next(c for c in COMMANDS if c.name == name)
    with ram_dir(Path(fallback)) as root:
        world = make_world(root, with_vault=not command.creates_vault)
        run = record_command(world, command, strace)
        return explore(run)
