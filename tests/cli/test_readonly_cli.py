"""The CLI on a vault that cannot be written: every read works and says so
(one stderr line, ``read_only`` in --json), a write exits 14, the vault is
left as it was, and the next writable open adds the reads to the trail.

Two real kinds of read-only: a read-only bind mount (root), and a
``chmod -R a-w`` copy opened by a process that the file modes bind: as root,
chmod alone does not stop writes, so ``setpriv`` drops the capabilities that
override file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER) from
the command's bounding set. That keeps the test independent of where the
checkout lives (another uid could not read a checkout under /root). Both
need root; elsewhere they skip, saying why. CI runs as root and must run them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import PASSPHRASE
from tests.conftest import _unavailable, require_binary
from tests.vault.test_readonly import listing, read_only_mount  # noqa: F401

LINE = (
    "confvault: warning: the vault is read-only here: this read is recorded on "
    "this machine and added to its audit trail when the vault is next opened writable"
)
ROOT_ONLY = "dropping root's capabilities for one command needs root (setpriv)"
BOUND_BY_MODES = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _prepared(ready: Callable[..., Any]) -> str:
    assert ready("client", "add", "Ann").exit_code == 0
    added = ready("note", "add", "Ann", "--file", "-", "--json", input="Went well.\n")
    return str(_json(added)["id"])


def test_reads_on_a_read_only_mount(
    ready: Callable[..., Any],
    cli: Callable[..., Any],
    pass_file: Path,
    read_only_mount: Callable[[Path], Path],  # noqa: F811
    tmp_path: Path,
    identity_file: Path,
) -> None:
    note = _prepared(ready)
    assert ready("grant", str(identity_file), "--client", "Ann").exit_code == 0
    vault = ready.vault  # type: ignore[attr-defined]
    ro = read_only_mount(vault)
    before = listing(vault)

    def on_ro(*args: str) -> Any:
        return cli("--vault", str(ro), "--passphrase-file", str(pass_file), *args)

    shown = on_ro("note", "show", note, "--json")
    assert _json(shown)["body"] == "Went well.\n"
    assert _json(shown)["read_only"] == {"spooled": 1}
    assert shown.stderr.splitlines() == [LINE]
    listed = _json(on_ro("note", "list", "Ann", "--json"))
    assert [(n["id"], n["read_only"]) for n in listed] == [(note, {"spooled": 1})]
    assert _json(on_ro("note", "search", "went", "--json"))[0]["read_only"]
    assert _json(on_ro("client", "list", "--json"))[0]["name"] == "Ann"
    assert "note-add" in [e["action"] for e in _json(on_ro("audit", "--json"))]
    exported = on_ro("export", "Ann", "--out", str(tmp_path / "out"), "--json")
    assert _json(exported)["read_only"] == {"spooled": 1}
    assert _json(on_ro("status", "--json"))["read_only"] == {"spooled": 0}
    deep = on_ro("verify", "--deep", "--json")
    assert (_json(deep)["ok"], _json(deep)["read_only"]) == (True, {"spooled": 1})
    assert on_ro("verify").exit_code == 0  # keyless: no passphrase, no record
    grantee = cli(
        "--vault",
        str(ro),
        "--identity",
        str(identity_file),
        "note",
        "show",
        note,
        "--json",
    )
    assert (_json(grantee)["body"], _json(grantee)["read_only"]) == (
        "Went well.\n",
        {"spooled": 1},
    )
    assert grantee.stderr.splitlines() == [LINE]
    refused = on_ro("client", "add", "Bob")
    assert refused.exit_code == 14
    assert refused.stderr.splitlines()[0] == (
        f"confvault: error: the vault at {ro} is read-only here (read-only media, "
        "or no write permission): this command writes, nothing was changed"
    )
    no_editor = cli("--vault", str(ro), "note", "add", "Ann", "--file", "-")
    assert no_editor.exit_code == 14  # before the text, before the passphrase
    assert "is read-only here" in no_editor.stderr
    assert listing(vault) == before

    audit = ready("audit", "--json")  # writable again: the reads are folded
    actions = [(e["action"], e["actor"][:5]) for e in _json(audit)]
    assert actions[-8:] == [  # this audit-show is added after it is read
        ("note-show", "grant"),  # the grantee's, through the audit inbox
        *(
            (action, "owner")
            for action in [
                "note-show",
                "note-list",
                "note-search",
                "client-list",
                "audit-show",
                "export",
                "verify-deep",
            ]
        ),
    ]
    assert audit.stderr == ""


@pytest.fixture
def bound_home() -> Iterator[Path]:
    """A directory for the copy and the home of the mode-bound commands,
    removed afterwards."""
    if os.geteuid() != 0:
        _unavailable(ROOT_ONLY)  # skips here; under CI (root) it fails
    require_binary("setpriv")
    base = Path(tempfile.mkdtemp(prefix="confvault-ro-"))
    try:
        yield base
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base)


def test_a_write_protected_copy_read_by_its_owner_user(
    ready: Callable[..., Any], bound_home: Path
) -> None:
    note = _prepared(ready)
    copy = bound_home / "vault"
    shutil.copytree(ready.vault, copy, symlinks=True)  # type: ignore[attr-defined]
    home = bound_home / "home"
    home.mkdir(mode=0o700)
    pass_file = home / "pass.txt"
    pass_file.write_text(PASSPHRASE + "\n")
    pass_file.chmod(0o600)
    subprocess.run(["chmod", "-R", "a-w", str(copy)], check=True)
    before = listing(copy)

    def bound(*args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / "state"),
        }
        if args[0] == "--raw":
            command = list(args[1:])
        else:
            command = [sys.executable, "-m", "confvault", "--vault", str(copy)]
            command += ["--passphrase-file", str(pass_file), *args]
        return subprocess.run(
            [*BOUND_BY_MODES, "--", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    # The premise: the mode bits now bind this command as they bind any user.
    probe = bound("--raw", "touch", str(copy / "probe"))
    assert probe.returncode != 0, "setpriv did not drop the capability to write"
    assert "Permission denied" in probe.stderr, probe.stderr

    shown = bound("note", "show", note, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["read_only"] == {"spooled": 1}
    assert shown.stderr.splitlines() == [LINE]
    listed = bound("note", "list", "--json")
    assert [n["id"] for n in json.loads(listed.stdout)] == [note]
    refused = bound("client", "add", "Bob")
    assert refused.returncode == 14, refused.stderr
    assert "is read-only here" in refused.stderr
    assert listing(copy) == before  # nothing in the copy changed
    spool = home / "state" / "confvault" / "spool"
    (vault_dir,) = spool.iterdir()
    entries = sorted(vault_dir.iterdir())
    assert len(entries) == 2
    assert {(p.stat().st_mode & 0o777, p.stat().st_uid) for p in entries} == {
        (0o600, os.getuid())
    }
    assert vault_dir.stat().st_mode & 0o777 == 0o700
    tampered = entries[1]
    data = bytearray(tampered.read_bytes())
    data[-5] ^= 1
    tampered.write_bytes(bytes(data))

    subprocess.run(["chmod", "-R", "u+w", str(copy)], check=True)  # writable again
    audit = bound("audit", "--json")
    assert audit.returncode == 0, audit.stderr
    assert audit.stderr.splitlines() == [
        "confvault: warning: 1 spooled read(s) of this machine failed their check "
        "and were not added to the audit trail (kept as *.refused; `confvault audit "
        "--action spool-refused` names them)"
    ]
    trail = json.loads(audit.stdout)
    assert [e["action"] for e in trail][-2:] == ["note-show", "spool-refused"]
    assert trail[-2]["note"] == note
    assert trail[-1]["details"] == {"file": tampered.name}
    assert [p.name for p in vault_dir.iterdir()] == [
        tampered.name.replace(".age", ".refused")
    ]
