"""A command run by the server is the command run in-process: the same
stdout, stderr and exit status (errors, --help and --json included), while
the client process imports none of typer, rich, nacl or the app."""

from __future__ import annotations

import re

import pytest

from tests.server.conftest import HEAVY, Served

ID = re.compile(r"\b[0-9a-f]{16}\b")


def _cases(s: Served) -> dict[str, list[str]]:
    return {
        "help": ["--help"],
        "short help": ["-h"],
        "group help": ["note", "--help"],
        "command help": ["note", "add", "--help"],
        "client list": ["client", "list"],
        "client list json": ["client", "list", "--json"],
        "note list": ["note", "list", s.client],
        "note list json": ["note", "list", s.client, "--json"],
        "note show": ["note", "show", s.note],
        "note show json": ["note", "show", s.note, "--json"],
        "usage error": ["nosuch"],
        "bad option": ["note", "list", "--nosuch"],
        "not found": ["note", "show", "0123456789abcdef"],
        "no vault": ["--vault", str(s.root / "missing"), "client", "list"],
        "no args": [],
    }


CASES = list(_cases(Served(root=__import__("pathlib").Path("/x"), env={})))


def _served(done: object) -> bool:
    imported = done.imported  # type: ignore[attr-defined]
    return not any(m == h or m.startswith(h + ".") for m in imported for h in HEAVY)


@pytest.mark.parametrize("case", CASES)
def test_served_output_is_the_in_process_output(served: Served, case: str) -> None:
    args = _cases(served)[case]
    here = served.run(*args, served=False)
    there = served.run(*args)
    assert _served(there), f"not served: {sorted(there.imported)[:20]}"  # type: ignore[attr-defined]
    assert (there.returncode, there.stdout, there.stderr) == (
        here.returncode,
        here.stdout,
        here.stderr,
    )


def test_the_exit_statuses_are_the_apps(served: Served) -> None:
    cases = _cases(served)
    statuses = {
        case: served.run(*cases[case]).returncode
        for case in ("usage error", "not found", "no vault", "client list")
    }
    assert statuses == {
        "usage error": 2,
        "not found": 1,
        "no vault": 10,
        "client list": 0,
    }


def test_status_is_the_in_process_status(served: Served) -> None:
    # each read is an audit entry: the generation and its time move on
    def same(text: str) -> str:
        return re.sub(r"\d", "0", text)

    here = served.run("status", served=False)
    there = served.run("status")
    assert _served(there)
    assert there.returncode == here.returncode == 0
    assert same(there.stdout) == same(here.stdout)
    assert there.stderr == here.stderr == ""


def test_note_add_reads_stdin_through_the_server(served: Served) -> None:
    there = served.run("note", "add", served.client, input="said through the server\n")
    here = served.run(
        "note", "add", served.client, input="said in-process\n", served=False
    )
    assert _served(there)
    assert there.returncode == here.returncode == 0
    assert ID.sub("ID", there.stdout) == ID.sub("ID", here.stdout)
    assert (
        ID.sub("ID", there.stdout)
        == "added progress note ID (signed) for Ann Example\n"
    )
    shown = served.run("note", "show", ID.search(there.stdout).group(0))  # type: ignore[union-attr]
    assert shown.returncode == 0
    assert "said through the server" in shown.stdout


def test_version_is_answered_by_the_client_alone(served: Served) -> None:
    there = served.run("--version")
    here = served.run("--version", served=False)
    assert there.returncode == here.returncode == 0
    assert there.stdout == here.stdout == "confvault 0.1.0\n"
    assert there.stderr == here.stderr == ""
    assert _served(there)


def test_the_working_directory_and_extra_descriptors_are_the_clients(
    served: Served,
) -> None:
    # a relative --vault resolves against the client's directory, and
    # --passphrase-fd reads the client's descriptor 3
    import os
    import subprocess
    import sys

    from tests.server.conftest import CONFVAULT, PASSPHRASE

    env = {
        k: v
        for k, v in served.env.items()
        if k not in ("CONFVAULT_PASSPHRASE_FILE", "CONFVAULT_VAULT")
    }
    read, write = os.pipe()
    os.write(write, PASSPHRASE.encode() + b"\n")
    os.close(write)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                CONFVAULT,
                "--vault",
                "vault",
                "--passphrase-fd",
                str(read),
                "client",
                "list",
                "--json",
            ],
            cwd=served.root,
            env=env,
            capture_output=True,
            text=True,
            pass_fds=(read,),
            timeout=60,
        )
    finally:
        os.close(read)
    assert done.returncode == 0, done.stderr
    assert '"name": "Ann Example"' in done.stdout
    assert "typer" not in done.stderr


def test_the_client_imports_no_more_than_it_needs(served: Served) -> None:
    done = served.run("client", "list")
    assert done.returncode == 0
    imported = set(done.imported)  # type: ignore[attr-defined]
    assert {"confvault.server.client", "confvault.server.protocol"} <= imported
    for heavy in (*HEAVY, "typing", "pathlib", "subprocess"):
        found = {m for m in imported if m == heavy or m.startswith(heavy + ".")}
        assert not found, heavy
    # the command (bin/confvault, not pip's console-script wrapper) and the
    # client module import neither `re` nor `enum`
    assert not imported & {"re", "enum"}
    import subprocess
    import sys

    alone = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "from confvault.server.client import main",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    names = {line.split("|")[-1].strip() for line in alone.stderr.splitlines()}
    assert "confvault.server.client" in names
    assert not names & {"re", "enum", "typing", "socket", "signal", "confvault.errors"}
