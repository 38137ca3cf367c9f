"""Unlock sessions: `unlock` starts the vault's agent, `lock` ends it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from confvault.cli import _output
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS
from confvault.cli._options import JSON

if TYPE_CHECKING:
    from confvault.agent.client import AgentInfo

commands = typer.Typer()

_IDLE_HELP = "lock after this long without use: 90s, 15m, 8h (default 15m, at most 24h)"
_MAX_HELP = "lock after this long in any case (default 8h, at most 7d)"
_JOBS_HELP = "let jobs without a terminal (cron, scripts) use the unlocked vault too"


@commands.command(epilog=EXIT_STATUS)
def unlock(
    ctx: typer.Context,
    idle: Annotated[str | None, typer.Option("--idle", help=_IDLE_HELP)] = None,
    maximum: Annotated[str | None, typer.Option("--max", help=_MAX_HELP)] = None,
    allow_jobs: Annotated[bool, typer.Option("--allow-jobs", help=_JOBS_HELP)] = False,
    remember: Annotated[
        bool, typer.Option("--remember", help="make these times the vault's defaults")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Ask the passphrase once; this user's commands then need none until `lock`.

    An agent process holds the owner keys (they never leave it) and locks by
    itself after --idle without use, after --max in any case, and when the
    vault disappears. Unlocking and locking are recorded in the audit trail.
    """
    from confvault.agent import client, durations
    from confvault.errors import AgentError, AlreadyUnlockedError
    from confvault.vault.model.identity import OwnerIdentity
    from confvault.vault.store.paths import check_vault_dir

    given = durations.options(idle, maximum)  # checked before any prompt
    opts = options(ctx)
    path = opts.vault_path
    check_vault_dir(path)
    try:
        live = client.probe(path)
    except AgentError:
        live = None  # a dead or foreign agent's socket: the new agent replaces it
    if live is not None:
        raise AlreadyUnlockedError(f"this vault is unlocked already ({_left(live)})")
    vault = opts.open_vault(write=True, agent=False)
    owner = vault.owner
    if not isinstance(owner, OwnerIdentity):  # opened with a passphrase: never
        raise AgentError("the vault did not open with the owner keys themselves")
    idle_s, max_s = durations.lifetimes(given, vault.unlock_defaults())
    info = client.start(
        path, owner, vault.vault_id, idle=idle_s, maximum=max_s, allow_jobs=allow_jobs
    )
    try:
        vault.record_unlock(
            "unlock",
            {"idle": idle_s, "max": max_s, "allow_jobs": allow_jobs},
            (idle_s, max_s) if remember else None,
        )
    except BaseException:
        client.lock(path, "command")  # no unlock that the trail does not show
        raise
    _command_server("start")
    if as_json:
        _output.emit_json({"unlocked": True, **info.to_json()})
        return
    ends = time.strftime("%H:%M", time.localtime(time.time() + max_s))
    jobs = "; jobs without a terminal may use it" if allow_jobs else ""
    _output.line(
        f"unlocked: locks after {durations.show(idle_s)} without use, at "
        f"{ends} at the latest ({durations.show(max_s)}){jobs}"
    )


@commands.command(epilog=EXIT_STATUS)
def lock(
    ctx: typer.Context,
    every: Annotated[
        bool, typer.Option("--all", help="lock every vault this user has unlocked")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Lock the vault now: its agent forgets the keys (exit 3: it was not unlocked)."""
    from confvault.agent import client
    from confvault.errors import NotUnlockedError

    if every:
        ended = client.lock_all()
        if as_json:
            _output.emit_json({"locked": len(ended)})
        elif ended:
            _output.line(f"locked {len(ended)} vault(s)")
        _command_server("stop")
        if not ended:
            raise NotUnlockedError("no vault of yours is unlocked")
        _unrecorded(sum(1 for _, recorded in ended if not recorded))
        return
    recorded = client.lock(options(ctx).vault_path)
    if as_json:
        _output.emit_json({"locked": 1, "recorded": recorded})
    else:
        _output.line("locked")
    _unrecorded(0 if recorded else 1)


def _command_server(verb: str) -> None:
    """Start (without waiting) or stop this user's command server (docs/CLI.md,
    "The command server"): a fresh interpreter that never reads a key.
    ``CONFVAULT_NO_SERVER`` set: no server is started."""
    import os
    import subprocess
    import sys

    if verb == "start" and os.environ.get("CONFVAULT_NO_SERVER"):
        return
    command = [sys.executable, "-m", "confvault.server", verb]
    quiet = subprocess.DEVNULL
    if verb == "start":  # it imports everything: the unlock does not wait
        subprocess.Popen(  # noqa: S603 - this interpreter, our own module
            command, stdin=quiet, stdout=quiet, stderr=quiet, start_new_session=True
        )
    else:
        subprocess.run(  # noqa: S603
            command, stdin=quiet, stdout=quiet, stderr=quiet, check=False, timeout=10
        )


def _unrecorded(count: int) -> None:
    if count:
        _output.warn(
            f"{count} lock(s) could not be added to the audit trail (the vault "
            "was gone, busy or not writable); the agent ended all the same"
        )


def _left(info: AgentInfo) -> str:
    from confvault.agent import durations

    return (
        f"{durations.show(info.idle_left)} left without use, "
        f"{durations.show(info.max_left)} at most"
    )
