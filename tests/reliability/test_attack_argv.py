"""Issue 13, finding 6: what another local user sees in `ps`.

A process's arguments are world-readable (/proc/PID/cmdline). The attacker
here is a second local user who polls the cmdline of every confvault process
and of its children (the editor). Each test runs the real `confvault` of this
venv as a subprocess, feeding a client name, a note title, profile fields or
a search term through a file, a FIFO, stdin or a prompt on a terminal, while
a watcher reads the cmdline of the process and its descendants for as long as
they live, and asserts:

- the value never appears in any cmdline seen (and at least one was seen);
- the command did what its argv form does (same note listed, same search
  hits, the same client profile);
- bad input (empty file, missing file, two lines where one is expected, two
  options reading stdin, a value given twice, no terminal to ask on) is a
  usage error, exit 2, naming the option, without echoing the file, and the
  vault and this machine's state are unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from confvault import age
from confvault.cli._editor import private_ram_dir

CONFVAULT = str(Path(sys.executable).parent / "confvault")
PASSPHRASE = b"correct horse battery staple"
NAME = "Zelda Quixote-Argvtest"
OTHER = "Bob Other"
TITLE = "Session on Yggdrasil dreams"
WORD = "xylophonically"
FIELDS = ["dob=1911-02-03", "diagnosis=F43.1 argvtest"]
USAGE = 2
PS_NOTE = "visible to other local users in `ps`"


# --- the watcher: what `ps` shows ----------------------------------------------------


def _children(pids: set[int]) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid in pids:
            found.add(int(entry.name))
    return found


class Watcher(threading.Thread):
    """Polls /proc/PID/cmdline of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.seen: set[str] = set()
        self.sighted = threading.Event()
        self._stop_now = threading.Event()

    def run(self) -> None:
        tree = {self.pid}
        while not self._stop_now.is_set():
            tree |= _children(tree)
            for pid in list(tree):
                with contextlib.suppress(OSError):
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if raw:
                        self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
                        self.sighted.set()
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop_now.set()
        self.join(5)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    cmdlines: set[str] = field(default_factory=set)

    @property
    def message(self) -> str:
        """stderr without the usage box's frame and line breaks."""
        return " ".join(re.sub(r"[│╭╮╰╯─]", " ", self.stderr).split())

    def json(self) -> Any:
        return json.loads(self.stdout)

    def assert_hidden(self, *values: str) -> None:
        assert self.cmdlines, "the watcher never saw the process"
        assert any("confvault" in c for c in self.cmdlines)
        for value in values:
            for cmdline in self.cmdlines:
                assert value not in cmdline, f"{value!r} is in `ps`: {cmdline}"


class Vault:
    """A real vault in a temporary directory, driven through subprocesses."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "vault"
        self.state = tmp / "xdg-state"
        secret = tmp / "pass"
        secret.write_bytes(PASSPHRASE + b"\n")
        secret.chmod(0o600)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CONFVAULT_") and k not in ("EDITOR", "VISUAL")
        } | {
            "XDG_STATE_HOME": str(self.state),
            "XDG_DATA_HOME": str(tmp / "xdg-data"),
            "XDG_CONFIG_HOME": str(tmp / "xdg-config"),
            "CONFVAULT_LOCK_TIMEOUT": "30",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        self.base = [
            CONFVAULT,
            "--vault",
            str(self.root),
            "--passphrase-file",
            str(secret),
        ]

    def file(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path

    def fifo(self, name: str) -> Path:
        path = self.tmp / name
        os.mkfifo(path, 0o600)
        return path

    def run(
        self,
        *args: str,
        stdin: bytes | None = None,
        fifos: dict[Path, bytes] | None = None,
        typed: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Run:
        """Run one command under the watcher.

        ``fifos``: written only once the watcher has seen the process (which
        blocks opening them meanwhile). ``typed``: lines typed on a terminal
        that is the command's stdin.
        """
        master = slave = None
        if typed is not None:
            master, slave = os.openpty()
            stdin_arg: Any = slave
        else:
            stdin_arg = subprocess.DEVNULL if stdin is None else subprocess.PIPE
        proc = subprocess.Popen(
            [*self.base, *args],
            stdin=stdin_arg,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env | (env or {}),
        )
        watcher = Watcher(proc.pid)
        watcher.start()
        feeders = []
        try:
            assert watcher.sighted.wait(10), "the watcher never saw the process"
            for path, data in (fifos or {}).items():
                feeder = threading.Thread(target=path.write_bytes, args=(data,))
                feeder.start()
                feeders.append(feeder)
            if master is not None:
                os.write(master, "".join(f"{line}\n" for line in typed or []).encode())
            out, err = proc.communicate(stdin, timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            watcher.stop()
            for feeder in feeders:
                feeder.join(5)
            for fd in (master, slave):
                if fd is not None:
                    os.close(fd)
        return Run(proc.returncode, out.decode(), err.decode(), watcher.seen)

    def ok(self, *args: str, **kwargs: Any) -> Run:
        result = self.run(*args, **kwargs)
        assert result.code == 0, result.stderr
        return result

    def snapshot(self) -> dict[str, tuple[int, str]]:
        """Every file of the vault and of this machine's state: mode and digest."""
        files = {}
        for base in (self.root, self.state):
            for path in sorted(base.rglob("*")):
                info = path.lstat()
                digest = (
                    hashlib.sha256(path.read_bytes()).hexdigest()
                    if path.is_file()
                    else ""
                )
                files[str(path)] = (info.st_mode, digest)
        return files


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    v = Vault(tmp_path)
    v.ok(
        "init",
        "--classic",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--no-recovery-key",
    )
    return v


def _seed(vault: Vault) -> Vault:
    vault.ok("client", "add", "--name-file", str(vault.file("seed-name", NAME)))
    vault.ok("client", "add", OTHER)
    vault.ok(
        "note",
        "add",
        "--client-file",
        str(vault.file("seed-client", NAME)),
        stdin=f"Reported sleeping {WORD} badly.\n".encode(),
    )
    vault.ok("note", "add", OTHER, stdin=f"{WORD} as well, for {OTHER}.\n".encode())
    return vault


@pytest.fixture
def seeded(vault: Vault) -> Vault:
    """Two clients, a note each; only the second one's name is given in argv."""
    return _seed(vault)


@pytest.fixture(scope="module")
def untouched(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    """One seeded vault for the tests that must leave it as it is."""
    vault = Vault(tmp_path_factory.mktemp("untouched"))
    vault.ok(
        "init",
        "--classic",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--no-recovery-key",
    )
    return _seed(vault)


def _editor(vault: Vault, body: str) -> tuple[str, Path]:
    """An $EDITOR that records its parent's cmdline (confvault's) and writes ``body``."""
    capture = vault.tmp / "editor-saw"
    script = vault.tmp / "editor.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"cat /proc/$PPID/cmdline > '{capture}'\n"
        f"printf '%s\\n' '{body}' > \"$1\"\n"
    )
    script.chmod(0o700)
    return str(script), capture


def test_the_watcher_sees_what_argv_shows(seeded: Vault) -> None:
    """The control: the argv form does leak, and the watcher catches it."""
    shown = seeded.ok("client", "show", NAME)
    assert any(NAME in cmdline for cmdline in shown.cmdlines)
    with pytest.raises(AssertionError, match="is in `ps`"):
        shown.assert_hidden(NAME)


# --- values kept out of argv, and the same result as the argv form ----------------


def test_client_add_from_a_fifo_and_a_field_file(vault: Vault) -> None:
    name = vault.fifo("name")
    fields = vault.file("fields", "\n".join(FIELDS) + "\n\n")
    added = vault.run(
        "client",
        "add",
        "--name-file",
        str(name),
        "--field-file",
        str(fields),
        "--json",
        fifos={name: f"{NAME}\n".encode()},
    )
    assert added.code == 0, added.stderr
    added.assert_hidden(NAME, *FIELDS, "F43.1")
    # The same profile as the argv form gives.
    vault.ok("client", "add", OTHER, *[f"--field={f}" for f in FIELDS])
    by_file = vault.ok("client", "show", added.json()["id"], "--json").json()
    by_argv = vault.ok("client", "show", OTHER, "--json").json()
    assert by_file["name"] == NAME
    assert by_file["fields"] == by_argv["fields"] == dict(f.split("=") for f in FIELDS)


def test_client_add_and_show_by_prompt_on_a_terminal(vault: Vault) -> None:
    added = vault.run("client", "add", "--json", typed=[NAME])
    assert added.code == 0, added.stderr
    added.assert_hidden(NAME)
    assert "Client name: " in added.stderr  # asked on stderr ...
    info = added.json()  # ... so stdout stays one JSON document
    assert info["name"] == NAME
    shown = vault.run("client", "show", "--json", typed=["", NAME])  # blank: re-asked
    assert shown.code == 0, shown.stderr
    shown.assert_hidden(NAME)
    assert shown.stderr.count("Client: ") == 2
    assert shown.json() == vault.ok("client", "show", NAME, "--json").json()


def test_note_add_with_client_and_title_files_and_the_text_on_stdin(
    seeded: Vault,
) -> None:
    client = seeded.file("client", NAME + "\r\n")  # CRLF as an editor may leave it
    title = seeded.file("title", TITLE + "\n")
    added = seeded.run(
        "note",
        "add",
        "--client-file",
        str(client),
        "--title-file",
        str(title),
        "--json",
        stdin=b"Second session.\n",
    )
    assert added.code == 0, added.stderr
    added.assert_hidden(NAME, TITLE, "Yggdrasil")
    note = added.json()
    assert (note["client_name"], note["title"]) == (NAME, TITLE)
    listed = seeded.run("note", "list", "--client-file", str(client), "--json")
    assert listed.code == 0, listed.stderr
    listed.assert_hidden(NAME)
    same = seeded.ok("note", "list", NAME, "--json").json()
    assert listed.json() == same
    assert note["id"] in [n["id"] for n in same]
    assert {n["client_name"] for n in same} == {NAME}


def test_note_add_by_prompt_and_editor_never_shows_the_name(seeded: Vault) -> None:
    editor, capture = _editor(seeded, "Written in the editor.")
    title = seeded.fifo("title")
    extra = [] if private_ram_dir() else ["--insecure-tmp"]
    added = seeded.run(
        "note",
        "add",
        "--title-file",
        str(title),
        "--json",
        *extra,
        typed=[NAME],
        fifos={title: TITLE.encode()},
        env={"EDITOR": editor},
    )
    assert added.code == 0, added.stderr
    added.assert_hidden(NAME, TITLE)
    seen_by_editor = capture.read_bytes().replace(b"\0", b" ").decode()
    assert "confvault" in seen_by_editor  # the editor did read its parent's cmdline
    assert NAME not in seen_by_editor
    assert TITLE not in seen_by_editor
    shown = seeded.ok("note", "show", added.json()["id"], "--json").json()
    assert shown["title"] == TITLE
    assert shown["body"].strip() == "Written in the editor."


def test_search_from_a_query_file_stdin_and_the_prompt(seeded: Vault) -> None:
    by_argv = seeded.ok("note", "search", WORD, "--json").json()
    assert len(by_argv) == 2  # both clients' notes
    query = seeded.file("query", WORD + "\n")
    from_file = seeded.run("note", "search", "--query-file", str(query), "--json")
    from_stdin = seeded.run(
        "note", "search", "--query-file", "-", "--json", stdin=WORD.encode()
    )
    from_prompt = seeded.run("note", "search", "--json", typed=[WORD])
    for run in (from_file, from_stdin, from_prompt):
        assert run.code == 0, run.stderr
        run.assert_hidden(WORD)
        assert run.json() == by_argv
    # One client's hits, the client from stdin and the query from a file.
    only = seeded.run(
        "note",
        "search",
        "--query-file",
        str(query),
        "--client-file",
        "-",
        "--json",
        stdin=f"{NAME}\n".encode(),
    )
    assert only.code == 0, only.stderr
    only.assert_hidden(WORD, NAME)
    assert (
        only.json()
        == seeded.ok("note", "search", WORD, "--client", NAME, "--json").json()
    )
    assert [h["note"]["client_name"] for h in only.json()] == [NAME]


def test_rename_edit_amend_and_attach_from_files(seeded: Vault) -> None:
    client = seeded.file("client", NAME)
    new_name = seeded.file("new-name", "Zelda Renamed-Argvtest\n")
    renamed = seeded.run(
        "client",
        "rename",
        "--client-file",
        str(client),
        "--new-name-file",
        str(new_name),
        "--json",
    )
    assert renamed.code == 0, renamed.stderr
    renamed.assert_hidden(NAME, "Zelda Renamed-Argvtest")
    assert renamed.json()["name"] == "Zelda Renamed-Argvtest"
    client.write_text("Zelda Renamed-Argvtest\n")
    title = seeded.file("title", TITLE)
    draft = seeded.run(
        "note",
        "add",
        "--client-file",
        str(client),
        "--draft",
        "--json",
        stdin=b"draft text\n",
    )
    assert draft.code == 0, draft.stderr
    draft_id = draft.json()["id"]
    edited = seeded.run(
        "note",
        "edit",
        draft_id,
        "--title-file",
        str(title),
        "--json",
        stdin=b"draft text, revised\n",
    )
    assert edited.code == 0, edited.stderr
    edited.assert_hidden(TITLE)
    assert edited.json()["title"] == TITLE
    signed = seeded.ok("note", "sign", draft_id, "--json").json()
    amended = seeded.run(
        "note",
        "amend",
        signed["id"],
        "--title-file",
        str(title),
        "--json",
        stdin=b"a correction\n",
    )
    assert amended.code == 0, amended.stderr
    amended.assert_hidden(TITLE)
    assert amended.json()["title"] == TITLE
    paper = seeded.tmp / "consent.pdf"
    paper.write_bytes(b"%PDF-1.4 consent\n")
    attached = seeded.run(
        "attach",
        "--client-file",
        str(client),
        str(paper),
        "--title-file",
        str(title),
        "--json",
    )
    assert attached.code == 0, attached.stderr
    attached.assert_hidden("Zelda", TITLE)
    info = attached.json()
    assert (info["client_name"], info["title"], info["kind"]) == (
        "Zelda Renamed-Argvtest",
        TITLE,
        "attachment",
    )


def test_import_with_a_client_file(seeded: Vault) -> None:
    page = seeded.file(
        "old-note.md", "---\ntitle: imported\ndate: 2024-01-02\n---\ntext\n"
    )
    imported = seeded.run(
        "note",
        "import",
        "--client-file",
        str(seeded.file("client", NAME)),
        str(page),
        "--json",
    )
    assert imported.code == 0, imported.stderr
    imported.assert_hidden(NAME)
    assert [(n["client_name"], n["title"]) for n in imported.json()] == [
        (NAME, "imported")
    ]


def test_grant_and_revoke_with_a_client_file(seeded: Vault) -> None:
    recipient = str(age.X25519Identity.generate().recipient)
    clients = seeded.file("clients", f"{NAME}\n{OTHER}\n")
    granted = seeded.run(
        "grant", recipient, "--client-file", str(clients), "--label", "locum", "--json"
    )
    assert granted.code == 0, granted.stderr
    granted.assert_hidden(NAME, OTHER)
    (grant,) = seeded.ok("grants", "--json").json()
    assert sorted(grant["clients"]) == sorted([NAME, OTHER])
    one = seeded.file("one", NAME + "\n")
    revoked = seeded.run("revoke", "locum", "--client-file", str(one), "--json")
    assert revoked.code == 0, revoked.stderr
    revoked.assert_hidden(NAME)
    (grant,) = seeded.ok("grants", "--json").json()
    assert grant["clients"] == [OTHER]
    rotated = seeded.run("rotate", "--client-file", str(one), "--json")
    assert rotated.code == 0, rotated.stderr
    rotated.assert_hidden(NAME)
    assert rotated.json()["outcome"] == "done"


def test_export_and_audit_with_a_client_file(seeded: Vault) -> None:
    client = seeded.file("client", NAME + "\n")
    out = seeded.tmp / "request"
    exported = seeded.run(
        "export", "--client-file", str(client), "--out", str(out), "--json"
    )
    assert exported.code == 0, exported.stderr
    exported.assert_hidden(NAME)
    info = exported.json()
    assert (info["client_name"], info["notes"], info["output"]) == (NAME, 1, str(out))
    assert WORD in "".join(p.read_text() for p in out.rglob("*.md"))
    # The same record as the argv form exports, sealed, the client from stdin.
    by_argv = seeded.ok("export", NAME, "--out", str(seeded.tmp / "same"), "--json")
    recipient = str(age.X25519Identity.generate().recipient)
    sealed = seeded.tmp / "request.age"
    piped = seeded.run(
        "export",
        "--client-file",
        "-",
        "--to",
        recipient,
        "-o",
        str(sealed),
        "--json",
        stdin=f"{NAME}\n".encode(),
    )
    assert piped.code == 0, piped.stderr
    piped.assert_hidden(NAME)
    for run in (by_argv, piped):
        assert {k: v for k, v in run.json().items() if k != "output"} == {
            k: v for k, v in info.items() if k != "output"
        }
    assert sealed.stat().st_size > 0
    # audit --client-file: this client's entries, as audit --client gives them.
    by_name = seeded.ok("audit", "--client", NAME, "--json").json()
    audited = seeded.run("audit", "--client-file", str(client), "--json")
    assert audited.code == 0, audited.stderr
    audited.assert_hidden(NAME)
    entries = audited.json()
    assert entries[: len(by_name)] == by_name
    assert {e["client_name"] for e in entries} == {NAME}
    assert [e["action"] for e in entries].count("export") >= 3


def test_shred_with_a_client_file_and_by_prompt(seeded: Vault) -> None:
    client = seeded.file("client", NAME + "\n")
    # By the prompt on a terminal: the client asked for, then the typed
    # confirmation; a wrong confirmation shreds nothing.
    wrong = seeded.run("client", "shred", typed=[NAME, "someone else"])
    assert wrong.code == 1, wrong.stderr
    wrong.assert_hidden(NAME)
    assert "Client: " in wrong.stderr
    assert "nothing was shredded" in wrong.message
    names = [c["name"] for c in seeded.ok("client", "list", "--json").json()]
    assert sorted(names) == sorted([NAME, OTHER])
    # Without a terminal the confirmation is still needed (or --yes).
    refused = seeded.run("client", "shred", "--client-file", str(client))
    assert refused.code == 1, refused.stderr
    assert "typed confirmation" in refused.message
    shredded = seeded.run(
        "client", "shred", "--client-file", str(client), "--yes", "--json"
    )
    assert shredded.code == 0, shredded.stderr
    shredded.assert_hidden(NAME)
    assert shredded.json()["notes"] == 1
    assert [c["name"] for c in seeded.ok("client", "list", "--json").json()] == [OTHER]
    # The other client, by the prompt and confirmed on the terminal.
    other = seeded.run("client", "shred", typed=[OTHER, OTHER])
    assert other.code == 0, other.stderr
    other.assert_hidden(OTHER)
    assert seeded.ok("client", "list", "--json").json() == []


# --- bad input: a usage error, and nothing changed -------------------------------

TWO = f"{NAME}\n{OTHER}\n"
BAD: list[tuple[str, list[str], dict[str, str | None], bytes | None, str]] = [
    # (id, argv with {f} for the file, file content or None=missing, stdin, message)
    (
        "add-empty",
        ["client", "add", "--name-file", "{f}"],
        {"f": ""},
        None,
        "--name-file': file {f} is empty",
    ),
    (
        "add-blank",
        ["client", "add", "--name-file", "{f}"],
        {"f": " \n"},
        None,
        "is empty",
    ),
    (
        "add-missing",
        ["client", "add", "--name-file", "{f}"],
        {"f": None},
        None,
        "--name-file': cannot read {f}: No such file or directory",
    ),
    (
        "add-two-lines",
        ["client", "add", "--name-file", "{f}"],
        {"f": TWO},
        None,
        "--name-file': file {f} holds more than one line",
    ),
    (
        "fields-empty",
        ["client", "add", "X Y", "--field-file", "{f}"],
        {"f": "\n\n"},
        None,
        "--field-file': file {f} is empty",
    ),
    (
        "note-two-lines",
        ["note", "add", "--client-file", "{f}"],
        {"f": TWO},
        b"text\n",
        "holds more than one line",
    ),
    (
        "note-stdin-is-text",
        ["note", "add", "--client-file", "-"],
        {},
        TWO.encode(),
        "--client-file': stdin holds the note's text here",
    ),
    (
        "note-both",
        ["note", "add", OTHER, "--client-file", "{f}"],
        {"f": NAME},
        b"text\n",
        "give CLIENT or --client-file, not both",
    ),
    (
        "note-no-terminal",
        ["note", "add"],
        {},
        b"text\n",
        "'CLIENT': not given, and stdin is not a terminal to ask on",
    ),
    (
        "title-two-lines",
        ["note", "add", OTHER, "--title-file", "{f}"],
        {"f": TWO},
        b"text\n",
        "--title-file': file {f} holds more than one line",
    ),
    (
        "stdin-twice",
        ["note", "add", "--file", "{g}", "--client-file", "-", "--title-file", "-"],
        {"g": "text\n"},
        NAME.encode(),
        "stdin was already read for --client-file",
    ),
    (
        "search-empty",
        ["note", "search", "--query-file", "{f}"],
        {"f": "\n"},
        None,
        "--query-file': file {f} is empty",
    ),
    ("search-no-terminal", ["note", "search"], {}, None, "'QUERY': not given"),
    (
        "grant-empty",
        ["grant", "{r}", "--client-file", "{f}"],
        {"f": ""},
        None,
        "--client-file': file {f} is empty",
    ),
    (
        "rename-missing",
        ["client", "rename", OTHER, "--new-name-file", "{f}"],
        {"f": None},
        None,
        "cannot read",
    ),
    (
        "export-empty",
        ["export", "--client-file", "{f}", "--out", "{g}"],
        {"f": "", "g": None},
        None,
        "--client-file': file {f} is empty",
    ),
    (
        "export-both",
        ["export", OTHER, "--client-file", "{f}", "--out", "{g}"],
        {"f": NAME, "g": None},
        None,
        "give CLIENT or --client-file, not both",
    ),
    (
        "export-no-terminal",
        ["export", "--out", "{g}"],
        {"g": None},
        None,
        "'CLIENT': not given, and stdin is not a terminal to ask on",
    ),
    (
        "shred-missing",
        ["client", "shred", "--client-file", "{f}", "--yes"],
        {"f": None},
        None,
        "--client-file': cannot read {f}: No such file or directory",
    ),
    (
        "shred-two-lines",
        ["client", "shred", "--client-file", "{f}", "--yes"],
        {"f": TWO},
        None,
        "--client-file': file {f} holds more than one line",
    ),
    (
        "shred-no-terminal",
        ["client", "shred", "--yes"],
        {},
        None,
        "'CLIENT': not given, and stdin is not a terminal to ask on",
    ),
    (
        "audit-empty",
        ["audit", "--client-file", "{f}"],
        {"f": "\n"},
        None,
        "--client-file': file {f} is empty",
    ),
    (
        "audit-both",
        ["audit", "--client", OTHER, "--client-file", "{f}"],
        {"f": NAME},
        None,
        "give --client or --client-file, not both",
    ),
    (
        "not-utf8",
        ["client", "show", "--client-file", "{f}"],
        {"f": "\udcff"},
        None,
        "is not UTF-8 text",
    ),
]


@pytest.mark.parametrize(
    ("argv", "files", "stdin", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD],
)
def test_bad_input_is_a_usage_error_and_changes_nothing(
    untouched: Vault,
    tmp_path: Path,
    argv: list[str],
    files: dict[str, str | None],
    stdin: bytes | None,
    message: str,
) -> None:
    names = {"r": str(age.X25519Identity.generate().recipient)}
    for key, content in files.items():
        path = tmp_path / f"bad-{key}"
        names[key] = str(path)
        if content is not None:
            path.write_bytes(content.encode("utf-8", "surrogateescape"))
    before = untouched.snapshot()
    result = untouched.run(*[a.format(**names) for a in argv], stdin=stdin)
    assert result.code == USAGE, result.stderr
    assert message.format(**names) in result.message
    assert "Traceback" not in result.stderr
    assert NAME not in result.stderr  # the file's content is never echoed
    assert result.stdout == ""
    assert untouched.snapshot() == before


# --- every option carrying such a value says so in --help ---------------------------

FILE_OPTION = {
    "client": "client_file",
    "name": "name_file",
    "new_name": "new_name_file",
    "title": "title_file",
    "field": "field_file",
    "query": "query_file",
}


def _commands() -> Iterator[tuple[str, Any]]:
    import typer.main

    from confvault.cli._app import app

    def walk(prefix: str, command: Any) -> Iterator[tuple[str, Any]]:
        yield prefix, command  # a group too: `audit [--client C]` is one
        subcommands: dict[str, Any] = getattr(command, "commands", {})
        for name, sub in subcommands.items():
            if not sub.hidden:
                yield from walk(f"{prefix} {name}".strip(), sub)

    yield from walk("", typer.main.get_command(app))


def _sensitive() -> list[Any]:
    cases = []
    for path, command in _commands():
        for param in command.params:
            if param.name in FILE_OPTION:
                case_id = f"{path}:{param.name}"
                cases.append(pytest.param(command, param, id=case_id))
    return cases


@pytest.mark.parametrize(("command", "param"), _sensitive())
def test_help_says_visible_in_ps_and_there_is_another_way(
    command: Any, param: Any
) -> None:
    assert PS_NOTE in (param.help or "")
    others = {p.name: p for p in command.params}
    assert FILE_OPTION[param.name] in others
    assert "not in `ps`" in (others[FILE_OPTION[param.name]].help or "")


def test_every_command_taking_such_a_value_was_found() -> None:
    found = {case.id for case in _sensitive()}
    assert {
        "client add:name",
        "client add:field",
        "client show:client",
        "client rename:client",
        "client rename:new_name",
        "note add:client",
        "note add:title",
        "note list:client",
        "note search:query",
        "note search:client",
        "note edit:title",
        "note amend:title",
        "note import:client",
        "attach:client",
        "attach:title",
        "grant:client",
        "revoke:client",
        "rotate:client",
        "export:client",
        "client shred:client",
        "audit:client",
    } <= found
