"""`confvault sync` (init, and the sync itself) and `confvault clone`:
several devices, one vault, over any git remote (docs/SYNC.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from confvault.cli import _output
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS
from confvault.cli._options import JSON

SYNC_EXIT = (
    EXIT_STATUS
    + "\nsync: 13 the remote failed a check (rolled back, dropped objects, not "
    "signed by the owner, forked): nothing changed; 16 both sides changed in a "
    "way this version cannot merge yet: nothing changed."
)

app = typer.Typer(
    help="Sync the vault with a git remote: fetch, check, apply, push.",
    invoke_without_command=True,
    epilog=SYNC_EXIT,
)
commands = typer.Typer()

_DEVICE = Annotated[
    str | None,
    typer.Option(
        "--device", metavar="NAME", help="this device's name (default: the host name)"
    ),
]


def _state_dir() -> Path:
    from confvault.vault.store.paths import default_state_dir

    return default_state_dir()


def _report(result: object, as_json: bool, flags: dict[str, object]) -> None:
    from confvault.sync.replica import SyncResult

    if not isinstance(result, SyncResult):
        raise TypeError(type(result).__name__)
    if as_json:
        _output.emit_json(dict(result.__dict__) | flags)
        return
    said = {
        "none": "nothing to sync",
        "pushed": "pushed this device's changes",
        "pulled": f"brought in the remote's changes ({result.objects_in} objects "
        f"in, {result.objects_out} retired)",
        "recorded": "this device and the remote already agree",
        "merged": "merged the remote's changes with this device's, and pushed",
    }[result.action]
    _output.line(
        f"{said}: generation {result.generation}, commit {result.commit[:12]} "
        f"(device {result.device})"
    )
    if result.refused_journals:
        _output.warn(f"{result.refused_journals} journal(s) not ours were removed")
    merge_warnings(flags)


def merge_warnings(flags: dict[str, object]) -> None:
    """What a merge left to look at (also shown by `status`)."""
    conflicts = flags.get("conflicts") or []
    duplicates = flags.get("duplicates") or []
    if isinstance(conflicts, list) and conflicts:
        _output.warn(
            f"{len(conflicts)} conflict draft(s): a draft was changed on two "
            "devices; the other version is kept as a draft titled '... "
            f"(conflict copy)': {', '.join(str(c) for c in conflicts)}"
        )
    if isinstance(duplicates, list) and duplicates:
        groups = "; ".join(", ".join(str(c)[:8] for c in g) for g in duplicates)
        _output.warn(f"possible duplicate clients (the same name): {groups}")


@app.callback(invoke_without_command=True)
def sync(ctx: typer.Context, as_json: JSON = False) -> None:
    """Fetch, check and bring in the remote's changes, or push this device's."""
    if ctx.invoked_subcommand is not None:
        return
    from confvault.sync import replica

    vault = options(ctx).open_vault(write=True)
    result = replica.sync(vault.session, _state_dir())
    flags: dict[str, object] = {"conflicts": [], "duplicates": []}
    if result.action in ("merged", "pulled"):
        flags = dict(vault.merge_flags())
    _report(result, as_json, flags)


@app.command("init", epilog=SYNC_EXIT)
def init(
    ctx: typer.Context,
    remote: Annotated[
        str, typer.Argument(metavar="REMOTE", help="a git URL, or a path")
    ],
    device: _DEVICE = None,
    as_json: JSON = False,
) -> None:
    """Connect this vault to a git remote, then sync (a first push)."""
    from confvault.sync import replica, state

    name = device if device is not None else state.default_device_name()
    state.check_device_name(name)
    vault = options(ctx).open_vault(write=True)
    result = replica.connect(vault.session, remote, name, _state_dir())
    _report(result, as_json, {"conflicts": [], "duplicates": []})


@commands.command(epilog=SYNC_EXIT)
def clone(
    ctx: typer.Context,
    remote: Annotated[
        str, typer.Argument(metavar="REMOTE", help="a git URL, or a path")
    ],
    vault_path: Annotated[
        Path | None,
        typer.Option("--vault", help="where to make the vault (a new directory)"),
    ] = None,
    device: _DEVICE = None,
    as_json: JSON = False,
) -> None:
    """Set up this device's copy of a vault from a git remote, then open it."""
    from confvault.sync import state
    from confvault.sync.clone import clone as make_clone

    opts = options(ctx)
    if vault_path is not None:
        opts.vault = vault_path
    name = device if device is not None else state.default_device_name()
    result = make_clone(
        remote,
        opts.vault_path,
        state_dir=_state_dir(),
        device_name=name,
        owner_key=opts.pinned_owner_key,
    )
    opts.open_vault()  # the passphrase (or an unlock session) opens it
    if as_json:
        _output.emit_json(dict(result.__dict__) | {"vault": str(opts.vault_path)})
        return
    _output.line(
        f"cloned vault {result.vault_id[:12]} generation {result.generation} "
        f"({result.objects} objects) into {opts.vault_path} as device {result.device}"
    )
    _output.info(f"owner key {result.owner_key}: check it with the owner")
