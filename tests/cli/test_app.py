"""The root's table of commands (cli/_app.py) says what the modules define, and
a command loads only its own module: `--version`, `--help` and completion of
a command's name load none, `note --help` only `note`'s, `age` no vault."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys

import pytest
import typer
import typer.main

from confvault.cli._app import COMMANDS, app

# The console script, reporting on exit which modules of interest it loaded.
SCRIPT = (
    "import atexit, sys\n"
    "WATCH = {watch!r}\n"
    "atexit.register(lambda: print('loaded:', sorted(m for m in WATCH"
    " if m in sys.modules), file=sys.stderr))\n"
    "sys.argv[0] = 'confvault'\n"
    "from confvault.cli import main\n"
    "main()\n"
)
COMMAND_MODULES = sorted({entry.module for entry in COMMANDS.values()})
WATCH = [*COMMAND_MODULES, "rich", "confvault.vault.session", "confvault.vault.ops"]


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, list[str]]:
    """(exit code, stdout, the WATCH modules loaded) of `confvault ARGS`."""
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(watch=WATCH), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100", **(env or {})},
        timeout=60,
        check=False,
    )
    head, _, tail = proc.stderr.rpartition("loaded: ")
    assert head == "", proc.stderr
    return proc.returncode, proc.stdout, eval(tail)  # noqa: S307 - our own list


def _first_paragraph(command: typer.main._click.Command) -> str:
    return inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]


def test_the_table_says_what_each_module_defines() -> None:
    root = typer.main.get_command(app)
    assert list(root.commands) == list(COMMANDS)  # type: ignore[attr-defined]
    for name, entry in COMMANDS.items():
        command = root.commands[name]  # type: ignore[attr-defined]
        assert command.name == name
        assert _first_paragraph(command) == entry.help, name
        assert (command.hidden, command.deprecated) == (False, False), name
        assert not getattr(command, "rich_help_panel", None), name  # the one panel
        is_group = isinstance(command, typer.core.TyperGroup)
        assert is_group == (entry.group is not None), name
    # No command defined in a module and missing from the table.
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        commands = getattr(module, "commands", None)
        defined = {
            info.name or typer.main.get_command_name(info.callback.__name__)
            for info in (commands.registered_commands if commands else [])
            if info.callback is not None
        }
        listed = {
            name
            for name, entry in COMMANDS.items()
            if entry.module == module_name and entry.group is None
        }
        assert defined == listed, module_name


def test_root_help_is_the_same_whether_or_not_commands_are_loaded() -> None:
    code, lazy, loaded = _run("--help")
    assert (code, loaded) == (0, ["rich"])  # typer's help is rich's; no command
    preload = (
        "import typer.main\n"
        "from confvault.cli._app import app\n"
        "root = typer.main.get_command(app)\n"
        "assert len(dict(root.commands)) == len(root.commands)  # all built\n"
        "root.main(['--help'], prog_name='confvault')\n"
    )
    eager = subprocess.run(
        [sys.executable, "-c", preload],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        timeout=60,
        check=True,
    )
    assert lazy == eager.stdout
    for name in COMMANDS:
        assert f" {name} " in lazy


@pytest.mark.parametrize(
    ("args", "modules"),
    [
        (["--version"], []),
        (["note", "--help"], ["confvault.cli.notes", "rich"]),
        (["backup", "--help"], ["confvault.cli.backup", "rich"]),
        (["identity", "--help"], ["confvault.cli.owner", "rich"]),
        (["init", "--help"], ["confvault.cli.vault", "rich"]),
    ],
)
def test_a_command_loads_only_its_own_module(
    args: list[str], modules: list[str]
) -> None:
    code, _, loaded = _run(*args)
    assert (code, loaded) == (0, modules)


def test_age_loads_no_vault_code_and_no_rich(tmp_path) -> None:
    from confvault import age

    identity = age.X25519Identity.generate()
    (tmp_path / "in").write_bytes(b"hello")
    code, _, loaded = _run(
        "age",
        "encrypt",
        "-r",
        str(identity.recipient),
        "-o",
        str(tmp_path / "out"),
        str(tmp_path / "in"),
    )
    assert (code, loaded) == (0, ["confvault.cli.age"])
    assert age.decrypt((tmp_path / "out").read_bytes(), [identity]) == b"hello"


def test_completing_a_command_name_loads_no_command() -> None:
    env = {
        "_CONFVAULT_COMPLETE": "complete_bash",
        "COMP_WORDS": "confvault ba",
        "COMP_CWORD": "1",
    }
    code, out, loaded = _run(env=env)
    assert (code, out.split(), loaded) == (0, ["backup"], [])
    env["COMP_WORDS"], env["COMP_CWORD"] = "confvault backup ve", "2"
    code, out, loaded = _run(env=env)
    assert (code, out.split(), loaded) == (0, ["verify"], ["confvault.cli.backup"])
