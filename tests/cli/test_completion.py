"""Shell completion (issue 15): commands and options always, through the lazy
root; client names and note IDs only through an unlocked vault, never by
asking a passphrase.

Driven as the scripts that ``confvault --show-completion`` prints drive it:
Typer's protocol (``_CONFVAULT_COMPLETE=complete_bash`` with COMP_WORDS and
COMP_CWORD; ``complete_zsh`` and ``complete_fish`` with _TYPER_COMPLETE_ARGS),
through a subprocess of this environment's ``confvault``, and once through a
real bash sourcing the script.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from confvault.cli import _context
from confvault.cli._app import app
from confvault.vault import Vault

from .conftest import PASSPHRASE

CONFVAULT = str(Path(sys.executable).with_name("confvault"))
TOP = ["init", "status", "unlock", "lock", "verify", "attach", "grant", "grants", "revoke", "rotate", "migrate", "passphrase", "export", "clone", "demo", "age", "client", "note", "identity", "audit", "custodian", "backup", "retention", "request", "sync"]  # fmt: skip
ROOT_OPTIONS = ["--vault", "--passphrase-file", "--passphrase-fd", "--identity", "--owner-key", "--version", "--install-completion", "--show-completion", "--help"]  # fmt: skip
NOTE_ADD_OPTIONS = ["--template", "--kind", "--title", "--title-file", "--client-file", "--file", "--draft", "--date", "--insecure-tmp", "--json", "--help"]  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_TYPER")}
    env.pop("_CONFVAULT_COMPLETE", None)
    return {**env, **extra}


def _run(env: dict[str, str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONFVAULT],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def bash(line: str) -> list[str]:
    """What Typer's bash script gets for ``line`` (the last word is the one
    being completed; a trailing space starts a new one)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    done = _run(
        _env(
            _CONFVAULT_COMPLETE="complete_bash", COMP_WORDS=line, COMP_CWORD=str(cword)
        )
    )
    assert (done.returncode, done.stderr) == (0, ""), done
    return done.stdout.rstrip("\n").splitlines()  # as bash's $( ) reads it


def zsh(line: str) -> str:
    done = _run(_env(_CONFVAULT_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS=line))
    assert (done.returncode, done.stderr) == (0, ""), done
    return done.stdout


def fish(line: str, action: str = "get-args") -> subprocess.CompletedProcess[str]:
    return _run(
        _env(
            _CONFVAULT_COMPLETE="complete_fish",
            _TYPER_COMPLETE_ARGS=line,
            _TYPER_COMPLETE_FISH_ACTION=action,
        )
    )


def test_bash_completes_commands_groups_and_options() -> None:
    assert bash("confvault ") == TOP
    assert bash("confvault no") == ["note"]
    assert bash("confvault gr") == ["grant", "grants"]
    assert bash("confvault --") == ROOT_OPTIONS
    assert bash("confvault note ") == [
        "add", "list", "show", "search", "edit", "sign", "amend", "import",
    ]  # fmt: skip
    assert bash("confvault backup ") == ["create", "verify", "restore"]
    assert bash("confvault client ") == [
        "add",
        "list",
        "show",
        "rename",
        "edit",
        "hold",
        "release",
        "shred",
    ]
    assert bash("confvault note add --") == NOTE_ADD_OPTIONS
    assert bash("confvault note add --t") == ["--template", "--title", "--title-file"]
    assert bash("confvault grant --") == [
        "--client", "--client-file", "--all", "--label", "--until",
        "--psychotherapy", "--json", "--help",
    ]  # fmt: skip
    assert bash("confvault --vault /nowhere note s") == ["show", "search", "sign"]


def test_zsh_completes_with_the_help_lines() -> None:
    assert zsh("confvault note s") == (
        '_arguments \'*: :(("show":"Show a note after checking its author..."\n'
        '"search":"Full-text search across notes, with..."\n'
        '"sign":"Sign and lock a draft."))\'\n'
    )
    assert zsh("confvault backup create --") == (
        '_arguments \'*: :(("--json":"print a JSON document instead"\n'
        '"--help":"Show this message and exit."))\'\n'
    )


def test_fish_completes_and_says_when_files_are_meant() -> None:
    done = fish("confvault backup ")
    assert (done.returncode, done.stderr) == (0, "")
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == [
        "create", "verify", "restore",
    ]  # fmt: skip
    assert (
        fish("confvault cli").stdout == "client\tAdd, list, show and rename clients.\n"
    )
    assert fish("confvault note ", "is-args").returncode == 0  # words, not files


def test_a_real_bash_sources_the_script_and_completes(tmp_path: Path) -> None:
    shown = _run(
        _env(_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
        | {"_CONFVAULT_COMPLETE": "source_bash"}
    )
    assert shown.returncode == 0
    script = tmp_path / "confvault.bash"
    script.write_text(shown.stdout)
    env = _env(PATH=f"{Path(CONFVAULT).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        [
            "bash",
            "--norc",
            "-c",
            f'source "{script}"; COMP_WORDS=(confvault note a); COMP_CWORD=2; '
            '_confvault_completion confvault; printf "%s\\n" "${COMPREPLY[@]}"',
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == ["add", "amend"]


def test_show_completion_prints_each_shells_script() -> None:
    for shell, marker in (
        ("bash", "_CONFVAULT_COMPLETE=complete_bash"),
        ("zsh", "_CONFVAULT_COMPLETE=complete_zsh"),
        ("fish", "_CONFVAULT_COMPLETE=complete_fish"),
    ):
        done = _run(_env(_CONFVAULT_COMPLETE=f"source_{shell}"))
        assert done.returncode == 0
        assert marker in done.stdout


@pytest.fixture(scope="module")
def locked_vault(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp_path = tmp_path_factory.mktemp("locked")
    vault, secret = tmp_path / "vault", tmp_path / "pass"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    base = [CONFVAULT, "--vault", str(vault), "--passphrase-file", str(secret)]
    for args in (
        [
            "init",
            "--work-factor",
            "10",
            "--allow-weak-work-factor",
            "--no-recovery-key",
        ],
        ["client", "add", "Ann Example"],
    ):
        done = subprocess.run(
            base + args,
            env=_env(XDG_STATE_HOME=str(tmp_path / "state")),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    return vault, secret


@pytest.mark.parametrize(
    "words",
    [
        "note add ",
        "note add an",
        "note list ",
        "client show ",
        "grant age1x --client ",
        "audit --client ",
        "note show ",
        "note search x --client ",
    ],
)
def test_a_locked_vault_completes_nothing_and_asks_nothing(
    locked_vault: tuple[Path, Path], words: str
) -> None:
    vault, secret = locked_vault
    for line in (
        f"confvault --vault {vault} {words}",
        f"confvault --vault {vault} --passphrase-file {secret} {words}",
    ):
        assert bash(line) == []
        assert zsh(line.rstrip() + (" " if line.endswith(" ") else "")) == "_files\n"


# --- names and note IDs through an unlocked vault ----------------------------
# A real agent: `confvault unlock` in this process's environment, with a
# private runtime directory for its socket.


@pytest.fixture
def unlocked(
    ready: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    runtime = Path(tempfile.mkdtemp(prefix="cv-rt-", dir="/tmp"))  # sun_path: 108
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("CONFVAULT_NO_SERVER", "1")  # unlock starts no server here
    for name in ("Ann Example", "Annabel Stone", "Zoë Ströme", "Bob Marsh"):
        assert ready("client", "add", name).exit_code == 0
    for client, text in (("bob", "one"), ("zoë", "two")):
        assert ready("note", "add", client, "--title", "T", input=text).exit_code == 0
    # --allow-jobs: this process has no terminal (a shell's completion has one)
    done = ready("unlock", "--idle", "5m", "--allow-jobs")
    assert done.exit_code == 0, done.output
    yield {"vault": ready.vault}
    locked = CliRunner().invoke(app, ["--vault", str(ready.vault), "lock"])
    assert locked.exit_code == 0, locked.output


def _complete(shell: str, line: str, **extra: str) -> str:
    env = {"_CONFVAULT_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        words = line.split()
        cword = len(words) if line.endswith(" ") else len(words) - 1
        env |= {"COMP_WORDS": line, "COMP_CWORD": str(cword)}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": line, **extra}
    result = CliRunner().invoke(app, [], env=env, prog_name="confvault")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


def test_client_names_complete_by_a_prefix_of_any_word(
    unlocked: dict[str, Any],
) -> None:
    v = unlocked["vault"]
    assert _complete("bash", f"confvault --vault {v} note add ").splitlines() == [
        "Ann\\ Example", "Annabel\\ Stone", "Bob\\ Marsh", "Zoë\\ Ströme",
    ]  # fmt: skip
    assert _complete("bash", f"confvault --vault {v} note add ANN").splitlines() == [
        "Ann\\ Example", "Annabel\\ Stone",
    ]  # fmt: skip
    assert _complete("bash", f"confvault --vault {v} note list strö").splitlines() == [
        "Zoë\\ Ströme"
    ]
    assert _complete("bash", f"confvault --vault {v} client show mar").splitlines() == [
        "Bob\\ Marsh"
    ]


def test_zsh_and_fish_get_names_unescaped_with_the_id(
    unlocked: dict[str, Any],
) -> None:
    v = unlocked["vault"]
    ids = {c.name: c.id[:8] for c in _context.unlocked_vault(
        _context.Options(vault=v)).clients()}  # fmt: skip
    fished = _complete(
        "fish", f"confvault --vault {v} grant age1x --client bo",
        _TYPER_COMPLETE_FISH_ACTION="get-args",
    )  # fmt: skip
    assert fished == f"Bob Marsh\tclient {ids['Bob Marsh']}\n"
    zshed = _complete("zsh", f"confvault --vault {v} audit --client exa")
    assert zshed == (
        f'_arguments \'*: :(("Ann Example":"client {ids["Ann Example"]}"))\'\n'
    )


def test_note_ids_complete_newest_first(unlocked: dict[str, Any]) -> None:
    v = unlocked["vault"]
    notes = _context.unlocked_vault(_context.Options(vault=v)).notes()
    ids = [n.id for n in reversed(notes)]
    assert len(ids) == 2
    assert _complete("bash", f"confvault --vault {v} note show ").splitlines() == ids
    first = ids[0]
    got = _complete("bash", f"confvault --vault {v} note show {first[:5]}")
    assert got.splitlines() == [i for i in ids if i.startswith(first[:5])]
    assert _complete("bash", f"confvault --vault {v} note show zz") == "\n"


def test_a_failing_hook_offers_nothing_and_says_nothing(
    ready: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(opts: _context.Options) -> Vault | None:
        raise RuntimeError("the agent went away")

    monkeypatch.setattr(_context, "unlocked_vault", broken)
    v = ready.vault
    assert _complete("bash", f"confvault --vault {v} note add ") == "\n"
    assert _complete("bash", f"confvault --vault {v} note show ") == "\n"


def test_the_hook_finds_no_agent_for_a_locked_vault(
    ready: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="cv-rt-", dir="/tmp"))  # sun_path: 108
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert _context.unlocked_vault(_context.Options(vault=ready.vault)) is None
