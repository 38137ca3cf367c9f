"""`confvault backup create|verify|restore`: no passphrase, exit codes, JSON,
stdout/stdin tars, and a backup taken while other processes add notes."""

from __future__ import annotations

import io
import json
import os
import pty
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from confvault.cli import app
from confvault.cli import backup as backup_cli
from confvault.cli._app import COMMANDS
from confvault.vault import Vault
from confvault.vault.store import manifest
from tests.cli.conftest import PASSPHRASE

if not any(group.name == "backup" for group in app.registered_groups):
    app.add_typer(backup_cli.app, name="backup")  # until cli/__init__.py registers it

# The real entry point, with `backup` registered the same way, for subprocesses.
SHIM = (
    "from confvault.cli import app, backup\n"
    "if not any(g.name == 'backup' for g in app.registered_groups):\n"
    "    app.add_typer(backup.app, name='backup')\n"
    "app()\n"
)
CONFVAULT = [sys.executable, "-c", SHIM]
EXIT_INTEGRITY = 13


@pytest.fixture
def vault_with_notes(ready, tmp_path: Path) -> Path:
    assert ready("client", "add", "Ann").exit_code == 0
    for number in range(2):
        result = ready("note", "add", "Ann", input=f"session {number}\n")
        assert result.exit_code == 0, result.output
    return ready.vault


def _keyless(cli, vault: Path):
    """Run a command with no passphrase source at all."""

    def run(*args: str, input: bytes | str | None = None):
        return cli("--vault", str(vault), "backup", *args, input=input)

    return run


def _json(result) -> dict:
    return json.loads(result.stdout)


def _open(path: Path, state: Path) -> Vault:
    return Vault.open(path, passphrase=PASSPHRASE.encode(), state_dir=state)


def _bodies(vault: Vault) -> list[bytes]:
    return sorted(vault.note(n.id).body for n in vault.notes("Ann"))


def _modes(root: Path) -> set[tuple[bool, int]]:
    return {(p.is_dir(), p.stat().st_mode & 0o777) for p in [root, *root.rglob("*")]}


@pytest.mark.parametrize("form", ["snap", "vault.tar"])
def test_create_verify_restore_without_a_passphrase(
    cli, vault_with_notes: Path, tmp_path: Path, form: str
) -> None:
    backup = _keyless(cli, vault_with_notes)
    created = backup("create", str(tmp_path / form), "--json")
    assert created.exit_code == 0, created.output
    doc = _json(created)
    body = manifest.load(vault_with_notes).body
    assert (doc["destination"], doc["generation"], doc["vault_id"], doc["objects"]) == (
        str(tmp_path / form),
        body.generation,
        body.vault_id,
        body.objects,
    )

    checked = backup("verify", str(tmp_path / form), "--json")
    assert checked.exit_code == 0, checked.output
    assert _json(checked)["ok"] is True
    assert _json(checked)["findings"] == []

    restored = backup(
        "restore", str(tmp_path / form), str(tmp_path / "restored"), "--json"
    )
    assert restored.exit_code == 0, restored.output
    doc = _json(restored)
    assert doc["restored"]["generation"] == body.generation
    assert doc["restored"]["destination"] == str(tmp_path / "restored")
    assert doc["report"]["ok"] is True
    assert doc["report"]["findings"] == []
    assert _modes(tmp_path / "restored") == {(True, 0o700), (False, 0o600)}
    assert _bodies(_open(tmp_path / "restored", tmp_path / "other-machine")) == [
        b"session 0\n",
        b"session 1\n",
    ]
    assert PASSPHRASE not in created.output + checked.output + restored.output


def test_text_output(cli, vault_with_notes: Path, tmp_path: Path) -> None:
    backup = _keyless(cli, vault_with_notes)
    created = backup("create", str(tmp_path / "snap"))
    generation = manifest.load(vault_with_notes).generation
    assert created.exit_code == 0
    assert created.stdout.startswith("backed up vault ")
    assert f"generation {generation}: " in created.stdout
    checked = backup("verify", str(tmp_path / "snap"))
    assert checked.exit_code == 0
    assert checked.stdout.startswith(f"vault ok: generation {generation}")
    restored = backup("restore", str(tmp_path / "snap"), str(tmp_path / "r"))
    assert restored.exit_code == 0
    assert restored.stdout.startswith("restored vault ")


def test_stdout_tar_and_stdin(cli, vault_with_notes: Path, tmp_path: Path) -> None:
    backup = _keyless(cli, vault_with_notes)
    created = backup("create", "-")
    assert created.exit_code == 0, created.stderr
    data = created.stdout_bytes
    assert "backed up vault" in created.stderr
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames()[0] == "manifest"
    # The same generation gives the same bytes as a tar file.
    assert backup("create", str(tmp_path / "v.tar")).exit_code == 0
    assert (tmp_path / "v.tar").read_bytes() == data

    checked = backup("verify", "-", "--json", input=data)
    assert checked.exit_code == 0, checked.output
    assert _json(checked)["vault"] == "-"
    restored = backup("restore", "-", str(tmp_path / "restored"), "--json", input=data)
    assert restored.exit_code == 0, restored.output
    assert len(_bodies(_open(tmp_path / "restored", tmp_path / "other"))) == 2
    assert backup("create", "-", "--json").exit_code == 2


def _flip_object_byte(data: bytes) -> tuple[bytes, str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = next(
            m for m in tar.getmembers() if m.name.startswith("objects/") and m.isfile()
        )
    damaged = bytearray(data)
    damaged[member.offset_data + 30] ^= 0x80
    return bytes(damaged), member.name.rsplit("/", 1)[1]


def _with_member(data: bytes, info: tarfile.TarInfo, body: bytes = b"") -> bytes:
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as src,
        tarfile.open(fileobj=out, mode="w") as dst,
    ):
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        dst.addfile(info, io.BytesIO(body) if body else None)
    return out.getvalue()


def test_tampered_backups_exit_13(cli, vault_with_notes: Path, tmp_path: Path) -> None:
    backup = _keyless(cli, vault_with_notes)
    data = backup("create", "-").stdout_bytes

    flipped, digest = _flip_object_byte(data)
    (tmp_path / "flipped.tar").write_bytes(flipped)
    result = backup("verify", str(tmp_path / "flipped.tar"), "--json")
    assert result.exit_code == EXIT_INTEGRITY
    assert [(f["code"], f["subject"]) for f in _json(result)["findings"]] == [
        ("object-damaged", digest)
    ]

    evil = tarfile.TarInfo("../evil")
    evil.size = 4
    result = backup("verify", "-", input=_with_member(data, evil, b"evil"))
    assert result.exit_code == EXIT_INTEGRITY
    assert "hostile-member: ../evil a path that leaves the backup" in result.stdout
    assert "vault damaged: 1 problems" in result.stdout

    link = tarfile.TarInfo("shards/x")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/shadow"
    result = backup("verify", "-", "--json", input=_with_member(data, link))
    assert result.exit_code == EXIT_INTEGRITY
    assert [(f["code"], f["subject"]) for f in _json(result)["findings"]] == [
        ("hostile-member", "shards/x")
    ]

    result = backup("verify", "-", "--json", input=data[: len(data) // 3])
    assert result.exit_code == EXIT_INTEGRITY
    assert _json(result)["findings"][0]["code"] == "tar-damaged"

    assert backup("create", str(tmp_path / "snap")).exit_code == 0
    objects = sorted((tmp_path / "snap" / "objects").rglob("*"))
    gone = next(p for p in objects if p.is_file())
    gone.unlink()
    result = backup("verify", str(tmp_path / "snap"), "--json")
    assert result.exit_code == EXIT_INTEGRITY
    assert [(f["code"], f["subject"]) for f in _json(result)["findings"]] == [
        ("object-missing", gone.name)
    ]


def test_restore_refusals_change_nothing(
    cli, vault_with_notes: Path, tmp_path: Path
) -> None:
    backup = _keyless(cli, vault_with_notes)
    data = backup("create", "-").stdout_bytes
    (tmp_path / "v.tar").write_bytes(data)
    busy = tmp_path / "busy"
    busy.mkdir(mode=0o700)
    (busy / "notes.txt").write_text("mine")
    result = backup("restore", str(tmp_path / "v.tar"), str(busy))
    assert result.exit_code == 1
    assert "is not empty" in result.stderr
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    assert (busy / "notes.txt").read_text() == "mine"

    flipped, digest = _flip_object_byte(data)
    result = backup("restore", "-", str(tmp_path / "new"), "--json", input=flipped)
    assert result.exit_code == EXIT_INTEGRITY
    assert [(f["code"], f["subject"]) for f in _json(result)["findings"]] == [
        ("object-damaged", digest)
    ]
    assert "nothing was restored" in result.stderr
    assert not (tmp_path / "new").exists()


def test_restore_of_an_older_backup_and_accept_rollback(
    cli, ready, vault_with_notes: Path, tmp_path: Path
) -> None:
    backup = _keyless(cli, vault_with_notes)
    assert backup("create", str(tmp_path / "v.tar")).exit_code == 0
    assert ready("note", "add", "Ann", input="later\n").exit_code == 0
    result = backup("restore", str(tmp_path / "v.tar"), str(tmp_path / "old"))
    assert result.exit_code == 0
    assert "rollback" in result.stdout
    assert "--accept-rollback" in result.stderr
    opened = cli(
        "--vault",
        str(tmp_path / "old"),
        "--passphrase-file",
        str(tmp_path / "pass.txt"),
        "note",
        "list",
    )
    assert opened.exit_code == EXIT_INTEGRITY
    assert "rolled back" in opened.stderr

    result = backup(
        "restore",
        str(tmp_path / "v.tar"),
        str(tmp_path / "old2"),
        "--accept-rollback",
        "--json",
    )
    assert result.exit_code == 0
    assert [f["code"] for f in _json(result)["report"]["findings"]] == [
        "rollback-accepted"
    ]
    opened = cli(
        "--vault",
        str(tmp_path / "old2"),
        "--passphrase-file",
        str(tmp_path / "pass.txt"),
        "note",
        "list",
        "--json",
    )
    assert opened.exit_code == 0, opened.output
    assert len(json.loads(opened.stdout)) == 2


def _run_on_pty(
    args: list[str], *, stdin_tty: bool, entry: list[str] | None = None
) -> tuple[int, str]:
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [*(entry or CONFVAULT), *args],
            stdin=secondary if stdin_tty else subprocess.DEVNULL,
            stdout=secondary,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    return proc.returncode, proc.stderr.decode()


@pytest.mark.parametrize("entry", ["app", "main"])
def test_binary_never_goes_to_a_terminal(vault_with_notes: Path, entry: str) -> None:
    run = CONFVAULT if entry == "app" else FAST  # FAST: the console script's main()
    code, err = _run_on_pty(
        ["--vault", str(vault_with_notes), "backup", "create", "-"],
        stdin_tty=False,
        entry=run,
    )
    assert code == 2
    assert "refusing to write a binary tar to a terminal" in err
    code, err = _run_on_pty(["backup", "verify", "-"], stdin_tty=True, entry=run)
    assert code == 2
    assert "not a terminal" in err


def test_backup_while_processes_add_notes(
    cli, vault_with_notes: Path, tmp_path: Path, pass_file: Path
) -> None:
    """Real `confvault note add` processes keep writing while the backup is taken."""
    committed: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def add_notes() -> None:
        number = 0
        while not stop.is_set():
            title = f"live-{number}"
            proc = subprocess.run(
                [
                    *CONFVAULT,
                    "--vault",
                    str(vault_with_notes),
                    "--passphrase-file",
                    str(pass_file),
                    "note",
                    "add",
                    "Ann",
                    "--title",
                    title,
                ],
                input=f"written live {number}\n".encode(),
                capture_output=True,
                timeout=60,
                check=False,
            )
            if proc.returncode != 0:
                failures.append(proc.stderr.decode())
            else:
                committed.append(title)
            number += 1

    def wait_for(count: int) -> None:
        while len(committed) < count and not failures:
            stop.wait(0.02)

    writer = threading.Thread(target=add_notes, daemon=True)
    writer.start()
    try:
        wait_for(1)
        before = list(committed)
        result = cli(
            "--vault",
            str(vault_with_notes),
            "backup",
            "create",
            str(tmp_path / "v.tar"),
        )
        wait_for(len(committed) + 2)  # the second of these started after the backup
    finally:
        stop.set()
        writer.join()
    assert failures == []
    assert result.exit_code == 0, result.output

    backup = _keyless(cli, vault_with_notes)
    assert backup("verify", str(tmp_path / "v.tar")).exit_code == 0
    assert (
        backup("restore", str(tmp_path / "v.tar"), str(tmp_path / "restored")).exit_code
        == 0
    )
    vault = _open(tmp_path / "restored", tmp_path / "other-machine")
    titles = {n.title for n in vault.notes("Ann")} - {""}
    live = {t for t in titles if t.startswith("live-")}
    assert set(before) <= live
    assert live == set(
        committed[: len(live)]
    )  # one generation: a prefix of the commits
    assert len(committed) > len(live)  # the writers went on after the backup
    assert vault.verify(deep=True).findings == ()


# --- `backup create|verify` load no key code, and say what the full app says ----------

# What a nightly backup must not load: rich (nothing styled is printed), the
# vault's key-holding core, and the modules of the other commands.
NOT_FOR_BACKUP = sorted(
    {"rich", "confvault.vault.session"}
    | {entry.module for entry in COMMANDS.values()} - {"confvault.cli.backup"}
)
# main() as the console script runs it; it reports on exit which of those it loaded.
FAST = [
    sys.executable,
    "-c",
    "import atexit, sys\n"
    f"atexit.register(lambda: print('loaded:', [m for m in {NOT_FOR_BACKUP!r}"
    " if m in sys.modules], file=sys.stderr))\n"
    "from confvault.cli import main\n"
    "main()\n",
]
FULL = [
    sys.executable,
    "-c",
    "from confvault.cli._app import app\napp(prog_name='confvault')\n",
]


def _both(args: list[str], *, stdin: bytes = b"", env: dict[str, str] | None = None):
    """(exit code, stdout, stderr) of the entry point and of the full app, and
    which of NOT_FOR_BACKUP the entry point loaded; anything either wrote is removed."""
    runs = []
    for argv in (FAST, FULL):
        proc = subprocess.run(
            [*argv, *args],
            input=stdin,
            capture_output=True,
            env={**os.environ, **(env or {})},
            timeout=120,
            check=False,
        )
        head, found, tail = proc.stderr.decode().rpartition("loaded: ")
        runs.append((proc.returncode, proc.stdout, head if found else tail))
        if argv is FAST:
            loaded = tail.strip()
        for path in (Path(a) for a in args if a.startswith("/")):
            if path.name.startswith("new") and path.exists():
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
    assert runs[0] == runs[1]
    return (*runs[0], loaded)


def test_plain_backup_commands_load_no_key_code_and_match_the_app(
    cli, vault_with_notes: Path, tmp_path: Path
) -> None:
    vault = str(vault_with_notes)
    snap, tar = str(tmp_path / "new-snap"), str(tmp_path / "new.tar")
    for args in (
        ["--vault", vault, "backup", "create", snap],
        [f"--vault={vault}", "backup", "create", tar, "--json"],
        ["--vault", vault, "backup", "create", "--json", snap],
    ):
        code, out, err, loaded = _both(args)
        assert (code, loaded) == (0, "[]"), err
        assert out.startswith((b"backed up vault ", b"{"))
    code, out, err, loaded = _both(
        ["backup", "create", tar], env={"CONFVAULT_VAULT": vault}
    )
    assert (code, loaded) == (0, "[]")
    code, out, err, loaded = _both(["--vault", vault, "backup", "create", "-"])
    assert (code, loaded) == (0, "[]")
    assert err.startswith("backed up vault ")  # the summary: stderr...
    assert out[:8] == b"manifest"  # ...the tar: stdout

    data = out
    (tmp_path / "kept.tar").write_bytes(data)
    for args in (
        ["backup", "verify", str(tmp_path / "kept.tar")],
        ["backup", "verify", str(tmp_path / "kept.tar"), "--json"],
    ):
        code, out, err, loaded = _both(args)
        assert (code, loaded) == (0, "[]")
    code, out, _, loaded = _both(["backup", "verify", "-"], stdin=data)
    assert (code, loaded, out.startswith(b"vault ok")) == (0, "[]", True)

    flipped, _ = _flip_object_byte(data)
    code, out, _, _ = _both(["backup", "verify", "-"], stdin=flipped)
    assert code == EXIT_INTEGRITY
    assert b"object-damaged" in out
    code, out, _, _ = _both(["backup", "verify", "-", "--json"], stdin=flipped)
    assert code == EXIT_INTEGRITY


def test_backup_errors_help_and_usage_are_the_apps(
    cli, vault_with_notes: Path, tmp_path: Path
) -> None:
    vault = str(vault_with_notes)
    (tmp_path / "old.tar").write_bytes(b"an older backup")
    cases = [
        (["--vault", vault, "backup", "create", str(tmp_path / "old.tar")], 1),
        (["--vault", str(tmp_path / "none"), "backup", "create", "/tmp/x.tar"], 10),
        (["--vault", vault, "backup", "create", "-", "--json"], 2),
        (["--vault", vault, "backup", "create"], 2),
        (["--vault", vault, "backup", "create", "a", "b"], 2),
        (["--vault", vault, "backup", "create", "--help"], 0),
        (["backup", "verify", "--json", "--help"], 0),
        (["backup", "--help"], 0),
        (["backup", "verify", str(tmp_path / "nothing")], EXIT_INTEGRITY),
        (["--vault", "", "backup", "create", str(tmp_path / "new")], None),
    ]
    for args, expected in cases:
        code, out, err, _ = _both(args)
        assert expected is None or code == expected, (args, out, err)
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_backup_of_a_damaged_vault_exits_13_and_writes_nothing(
    cli, vault_with_notes: Path, tmp_path: Path
) -> None:
    objects = sorted(
        p for p in (vault_with_notes / "objects").rglob("*") if p.is_file()
    )
    victim = objects[len(objects) // 2]
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    for dest in ("new-snap", "new.tar"):
        code, _, err, _ = _both(
            ["--vault", str(vault_with_notes), "backup", "create", str(tmp_path / dest)]
        )
        assert code == EXIT_INTEGRITY
        rel = f"objects/{victim.parent.name}/{victim.name}"
        assert f"confvault: error: {rel} is damaged" in err
        assert "run `confvault verify`" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new")) == []


def test_a_writer_holding_the_lock_exits_11_from_both(
    cli, vault_with_notes: Path, tmp_path: Path
) -> None:
    import fcntl

    fd = os.open(vault_with_notes / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, _, err, _ = _both(
            [
                "--vault",
                str(vault_with_notes),
                "backup",
                "create",
                str(tmp_path / "new"),
            ],
            env={"CONFVAULT_LOCK_TIMEOUT": "0.2"},
        )
    finally:
        os.close(fd)
    assert code == 11
    assert "locked" in err


def test_verify_reads_a_tar_without_unpacking_its_objects(
    cli, vault_with_notes: Path, tmp_path: Path
) -> None:
    """With files capped at 256 KiB, a tar holding a 1 MiB object still verifies:
    objects are hashed as they stream by, never written to $TMPDIR."""
    import hashlib
    import resource

    backup = _keyless(cli, vault_with_notes)
    data = backup("create", "-").stdout_bytes
    big = os.urandom(1 << 20)
    digest = hashlib.sha256(big).hexdigest()
    info = tarfile.TarInfo(f"objects/{digest[:2]}/{digest}")
    info.size = len(big)
    (tmp_path / "big.tar").write_bytes(_with_member(data, info, big))

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))

    proc = subprocess.run(
        [*FAST, "backup", "verify", str(tmp_path / "big.tar"), "--json"],
        capture_output=True,
        preexec_fn=cap,  # a resource limit for the child only
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert [(f["code"], f["subject"]) for f in findings] == [("unreferenced", digest)]
