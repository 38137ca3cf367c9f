"""The command-line interface: the only home of typer, rich, prompts, exit codes.

``main()`` builds only what the invoked command needs: `confvault age …`
(single files, often large and in pipelines) starts without importing the
vault, so its start-up cost stays small next to the work; a plain
`confvault [--vault DIR] backup create|verify X [--json]` (a nightly job)
runs without typer or rich at all (see ``_plain_backup``). Anything else,
including --help, usage errors and every failure, goes through the full app,
so its messages and exit codes are the app's own.
"""

from __future__ import annotations

import sys
from typing import Any

ENV_VAULT = "CONFVAULT_VAULT"  # as cli._context, which imports typer
ENV_LOCK_TIMEOUT = "CONFVAULT_LOCK_TIMEOUT"


def _age_only_app() -> Any:
    import typer

    from confvault.cli import age
    from confvault.cli._errors import EXIT_STATUS, ConfvaultGroup

    app = typer.Typer(
        cls=ConfvaultGroup,
        name="confvault",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        epilog=EXIT_STATUS,
    )
    app.add_typer(age.app, name="age")
    return app


def main() -> None:
    """Console-script entry point."""
    if len(sys.argv) > 1 and sys.argv[1] == "age":
        from confvault.vault.store.hardening import harden_process

        harden_process()  # every `age` command handles keys or plaintext
        _age_only_app()(prog_name="confvault")
        return
    call = _plain_backup_call(sys.argv[1:])
    if call is not None:
        code = _plain_backup(*call)
        if code is not None:
            sys.exit(code)
    from confvault.cli._app import app

    app(prog_name="confvault")


# --- `backup create|verify` without typer -------------------------------------------


def _plain_backup_call(argv: list[str]) -> tuple[str | None, str, str, bool] | None:
    """(vault, command, target, as_json) for exactly the shapes the app accepts as
    `[--vault DIR] backup create|verify TARGET [--json]`; None for anything else."""
    import os

    if "_CONFVAULT_COMPLETE" in os.environ:  # shell completion: the app's job
        return None
    vault = None
    if argv[:1] == ["--vault"] and len(argv) > 1:
        vault, argv = argv[1], argv[2:]
    elif argv[:1] and argv[0].startswith("--vault="):
        vault, argv = argv[0].removeprefix("--vault="), argv[1:]
    if vault is not None and (not vault or vault.startswith("-")):
        return None
    if len(argv) < 3 or argv[0] != "backup" or argv[1] not in ("create", "verify"):
        return None
    rest = [a for a in argv[2:] if a != "--json"]
    if len(rest) != 1 or (rest[0].startswith("-") and rest[0] != "-"):
        return None
    return vault, argv[1], rest[0], len(rest) < len(argv) - 2


def _plain_backup(
    vault: str | None, command: str, target: str, as_json: bool
) -> int | None:
    """Run the command as the app would; None (nothing done) when the app must.

    Output that rich would style or rewrite, and every error, are handed to
    the app's own code (cli.vault.render_report, cli._errors.ConfvaultGroup).
    """
    import os
    from pathlib import Path

    if target == "-" and (
        (command == "create" and (as_json or sys.stdout.isatty()))
        or (command == "verify" and sys.stdin.isatty())
    ):
        return None  # a usage error: the app says it
    try:
        from confvault.vault import backup
        from confvault.vault.store.paths import DEFAULT_LOCK_TIMEOUT, default_vault_path

        try:
            lock_timeout = float(os.environ.get(ENV_LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT))
        except ValueError:
            lock_timeout = DEFAULT_LOCK_TIMEOUT
        if command == "verify":
            if target == "-":
                report = backup.verify(sys.stdin.buffer)
            else:
                report = backup.verify(Path(target), lock_timeout=lock_timeout)
            return _render_report(report, as_json)
        if vault is not None:
            vault_path = Path(vault)
        elif os.environ.get(ENV_VAULT):
            vault_path = Path(os.environ[ENV_VAULT])
        else:
            vault_path = default_vault_path()
        if target == "-":
            result = backup.create(
                vault_path, sys.stdout.buffer, lock_timeout=lock_timeout
            )
            _print(_summary(result), sys.stderr, "info")
        else:
            result = backup.create(vault_path, Path(target), lock_timeout=lock_timeout)
            if as_json:
                _emit_json(result.to_json())
            else:
                _print(_summary(result), sys.stdout, "stdout")
    except Exception as err:  # noqa: BLE001 - the app's own handler reports it
        return _fail_as_the_app(err)
    except KeyboardInterrupt as err:
        return _fail_as_the_app(err)
    return 0


def _summary(result: Any) -> str:
    """cli.backup._summary("backed up", result)."""
    return (
        f"backed up vault {result.vault_id[:12]} generation {result.generation}: "
        f"{result.objects} objects, {result.files} files, {result.bytes} bytes"
        f" -> {result.destination}"
    )


def _plain(text: str) -> bool:
    """True when rich prints ``text`` (markup=False) as it is: nothing it would
    take for an :emoji: code, no control character."""
    import re

    return text.isprintable() and not re.search(r":\S*?:", text)


def _print(text: str, stream: Any, console: str) -> None:
    """What ``_output.<console>.print(text, markup=False)`` writes."""
    if _plain(text):
        stream.write(text + "\n")
        stream.flush()
        return
    from confvault.cli import _output

    if console == "info":
        _output.info(text)
    else:
        _output.stdout.print(text, markup=False)


def _emit_json(document: Any) -> None:
    """_output.emit_json, without importing rich."""
    import json

    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def _render_report(report: Any, as_json: bool) -> int:
    """cli.vault.render_report; its plain cases written here, the rest by it."""
    import os

    if as_json:
        _emit_json(report.to_json())
        return 0 if report.ok else 13  # cli._errors.INTEGRITY
    styled = (
        sys.stdout.isatty()
        or "FORCE_COLOR" in os.environ
        or "TTY_COMPATIBLE" in os.environ
    )
    if report.findings or not report.ok or styled:
        import typer

        from confvault.cli.vault import render_report

        try:
            render_report(report, as_json)
        except typer.Exit as done:
            return done.exit_code
        return 0
    sys.stdout.write(
        f"vault ok: generation {report.generation}, "
        f"{report.objects_checked} objects, 0 warnings\n"
    )
    sys.stdout.flush()
    return 0


def _fail_as_the_app(err: BaseException) -> int:
    """Report ``err`` exactly as the full app would (message, hints, exit code)."""
    import typer

    from confvault.cli._errors import ConfvaultGroup

    app = typer.Typer(
        cls=ConfvaultGroup, pretty_exceptions_enable=False, add_completion=False
    )

    @app.callback()
    def root() -> None:
        pass

    @app.command("raise")
    def raise_it() -> None:
        raise err

    try:
        app(args=["raise"], prog_name="confvault")
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else 1
    return 0


def __getattr__(name: str) -> Any:
    if name == "app":  # the full app, for tests and embedding
        from confvault.cli._app import app

        return app
    raise AttributeError(name)
