"""Opening the vault through its unlock agent, when one serves it.

``Options.open_vault`` asks here first unless a passphrase source was given
(``--passphrase-file``, ``--passphrase-fd`` or their variables win). An agent
that is absent says nothing; one that cannot be used (dead, stale socket,
another user's, another vault's, another version, too slow) says why in one
line and the command falls back to the passphrase. A job (no terminal: stdin
not one and no /dev/tty) uses the agent only if it was started with
``--allow-jobs``. ``unlocked_vault`` is for shell completion: through a live
agent only, silently, or None.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from confvault.cli import _output
from confvault.errors import AgentError, ConfvaultError, KeysMismatchError

if TYPE_CHECKING:
    from confvault.cli._context import Options
    from confvault.vault import Vault

_FALLBACK = "; asking for the passphrase instead"


def is_job() -> bool:
    """No terminal to ask on: stdin is not one and there is no /dev/tty."""
    if sys.stdin is not None and sys.stdin.isatty():
        return False
    from confvault.cli import _secrets

    if _secrets.client_terminal is not None:  # a worker of the command server
        return not _secrets.client_terminal
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return True
    return False


def _check_job(allow_jobs: bool) -> None:
    if not allow_jobs and is_job():
        raise AgentError(
            "this vault is unlocked, but not for jobs without a terminal "
            "(`confvault unlock --allow-jobs` allows them)"
        )


def open_with_agent(opts: Options, *, quiet: bool = False) -> Vault | None:
    """The vault opened with its agent's keys, or None (with one line unless
    ``quiet``) when there is no usable agent."""
    from confvault.agent import client
    from confvault.vault import Vault
    from confvault.vault.store.paths import default_state_dir

    path = opts.vault_path
    try:
        info, sock = client.connected(path)
        if info is None:
            return None
        keys = client.AgentKeys(info, sock)
        try:
            _check_job(info.allow_jobs)
            vault = Vault.open(
                path,
                keys=keys,
                lock_timeout=opts.lock_timeout,
                state_dir=default_state_dir(),
                owner_key=opts.pinned_owner_key,
            )
        except BaseException:
            keys.close()
            raise
    except (AgentError, KeysMismatchError) as err:
        if not quiet:
            _output.warn(f"{err}{_FALLBACK}")
        return None
    return vault


def unlocked_vault(opts: Options) -> Vault | None:
    """The vault through a live agent only: never prompts, never prints."""
    try:
        return open_with_agent(opts, quiet=True)
    except (ConfvaultError, OSError):
        return None


def end_agent(path: Path, reason: str) -> None:
    """Before a command that changes the owner keys or their seal: end the
    vault's agent (it records its lock while its keys still open the vault)."""
    from confvault.agent import client
    from confvault.errors import AgentError, NotUnlockedError

    try:
        client.lock(path, reason)
    except (NotUnlockedError, AgentError, OSError):
        return
    _output.info(
        "the vault was locked first (its unlock agent's keys are changing); "
        "`confvault unlock` again afterwards"
    )


def state(path: Path, keys: object = None) -> dict[str, object]:
    """``status``'s view: ``{"state": "locked"}``, or unlocked with times left
    (asked on the connection of ``keys`` when they are the agent's)."""
    from confvault.agent import client

    try:
        if isinstance(keys, client.AgentKeys):
            info: client.AgentInfo | None = keys.hello()
        else:
            info = client.probe(path)
    except (AgentError, OSError):
        info = None
    if info is None:
        return {"state": "locked"}
    return {"state": "unlocked", **info.to_json()}


def describe(unlock: dict[str, object]) -> str:
    """``status``'s line: locked, or unlocked and the time left."""
    from confvault.agent import durations

    if unlock.get("state") != "unlocked":
        return "no (locked: commands ask the passphrase)"
    idle, most = unlock.get("idle_left"), unlock.get("max_left")
    if not isinstance(idle, int) or not isinstance(most, int):
        return "yes"
    jobs = ", jobs allowed" if unlock.get("allow_jobs") else ""
    return (
        f"yes: locks after {durations.show(idle)} more without use, in "
        f"{durations.show(most)} at the latest{jobs}"
    )
