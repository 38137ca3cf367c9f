"""docs/CONTINUITY.md works: its exact commands, with the stock `age` for the
custodians' step and `confvault custodian open` for the executor's."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from confvault import age
from confvault.vault import Vault
from confvault.vault.model.custody import SealedShare
from tests.cli.conftest import PASSPHRASE
from tests.conftest import require_binary

DOC = (Path(__file__).parents[2] / "docs" / "CONTINUITY.md").read_text()
CONFVAULT = str(Path(sys.executable).parent / "confvault")


def _block(heading: str, names: tuple[str, ...], values: dict[str, str]) -> str:
    """The page's ``sh`` block under ``heading``, its first lines (the
    variables the reader sets) given ``values``, the rest as written."""
    section = DOC.split(f"## {heading}", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    lines = block.splitlines()
    for number, name in enumerate(names):
        assert lines[number].startswith(f"{name}="), lines[number]
    head = [f"{name}={values[name]}" for name in names]
    return "\n".join([*head, *lines[len(names) :]]) + "\n"


def _run(script: str, home: Path, state: Path) -> subprocess.CompletedProcess[str]:
    age_dir = str(Path(require_binary("age")).parent)
    env = {
        "HOME": str(home),
        "PATH": f"{Path(CONFVAULT).parent}:{age_dir}:/usr/bin:/bin",
        "XDG_STATE_HOME": str(state),
        "CONFVAULT_NO_SERVER": "1",
    }
    return subprocess.run(
        ["/bin/sh", "-e", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_pages_commands_open_and_hand_over(tmp_path: Path) -> None:
    state = tmp_path / "state"
    vault, _ = Vault.init(
        tmp_path / "records",
        PASSPHRASE.encode(),
        work_factor=10,
        min_work_factor=10,
        postquantum=False,  # the stock age 1.1.1 opens the custodians' files
        state_dir=state / "confvault",
    )
    vault.add_client("Ann Example")
    vault.add_note("Ann", b"a session")
    vault.add_client("Bo Other")
    homes = {}
    for name in ("jane", "omar", "lee"):
        home = tmp_path / name
        home.mkdir()
        key = age.X25519Identity.generate()
        (home / "my-age-key.txt").write_text(key.encode() + "\n")
        vault.add_custodian(name, str(key.recipient))
        homes[name] = home
    files: list[SealedShare] = []
    vault.split_custody(2, files.extend)
    for share in files:
        (homes[share.custodian] / share.file_name).write_bytes(share.sealed)
    # Step 1, by two custodians on their own machines.
    for name in ("jane", "omar"):
        home = homes[name]
        step1 = _block(
            "Step 1",
            ("share", "key"),
            {"share": f"share-{name}.age", "key": "$HOME/my-age-key.txt"},
        )
        done = _run(f"cd {home}\n{step1}", home, tmp_path / f"{name}-state")
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.split()) == 33
    # They send their words to the executor.
    executor = tmp_path / "executor"
    executor.mkdir()
    for name in ("jane", "omar"):
        shutil.copy(homes[name] / "my-share-words.txt", executor / f"{name}-words.txt")
    step2 = _block(
        "Step 2",
        ("vault", "out", "shares"),
        {
            "vault": str(vault.root),
            "out": "$HOME/handover",
            "shares": '"$HOME/jane-words.txt $HOME/omar-words.txt"',
        },
    )
    done = _run(step2, executor, state)
    assert done.returncode == 0, done.stderr
    assert "opened by the shares of jane, omar" in done.stdout
    assert "Ann Example  1 notes" in done.stdout
    assert "exported 2 clients" in done.stdout
    folders = sorted(p.name for p in (executor / "handover").iterdir())
    assert [f.split("-")[0] for f in folders] == ["Ann_Example", "Bo_Other"]
    note = next((executor / "handover" / folders[0] / "notes").iterdir())
    assert note.read_text().endswith("a session")
    audit = Vault.open(
        vault.root, passphrase=PASSPHRASE.encode(), state_dir=state / "confvault"
    ).audit(action="custodian-open")
    assert [e.details["custodians"] for e in audit] == [["jane", "omar"]] * 2
