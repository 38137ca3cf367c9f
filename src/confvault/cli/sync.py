"""`confvault sync` (init, and the sync itself) and `confvault clone`:
several devices, one vault, over any git remote (docs/SYNC.md)."""

from __future__ import annotations

import contextlib
import sys
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


_PEER_SAID = {
    "arriving": "its files are still arriving; its last complete state is used",
    "none": "nothing new",
    "recorded": "the same state as this device",
    "pushed": "this device already held its state",
    "pulled": "its changes brought in",
    "merged": "its changes merged with this device's",
    "waiting": "both changed: that device merges, this one takes its merge next",
}


def _state_dir() -> Path:
    from confvault.vault.store.paths import default_state_dir

    return default_state_dir()


_NO_FLAGS: dict[str, object] = {"conflicts": [], "duplicates": []}


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
    if hasattr(result, "peers"):
        said = said.replace("the remote's", "the other devices'")
    _output.line(
        f"{said}: generation {result.generation}, commit {result.commit[:12]} "
        f"(device {result.device})"
    )
    if result.key_events:
        _output.line(
            f"merged key events ({', '.join(result.key_events)}) on one device "
            f"with notes added on the other: {result.resealed} note(s) "
            "re-sealed under the current compartment keys"
        )
    if "passphrase-change" in result.key_events:
        _output.line(
            "the passphrase was changed on one device: from now on this vault "
            "opens with the new passphrase"
        )
    if "identity-rotate" in result.key_events:
        _output.line(
            "the owner's key was replaced on one device (identity rotate): the "
            "merged vault is signed by the new key and opens with the same "
            "passphrase"
        )
    for label in result.revoked:
        _output.line(
            f"the grant {label} stays revoked: the notes the other device wrote "
            "are re-sealed under keys its grantee never held"
        )
    for label in result.dropped_grants:
        _output.line(
            f"the grant {label}, made on the device that did not revoke, was "
            "dropped (the revocation wins) and the client keys it reached there "
            "replaced: grant it again if still wanted"
        )
    for client, count in sorted((result.left_out or {}).items()):
        _output.warn(
            f"{count} note(s) for client {client[:8]} (shredded on one device) "
            "were left out of the merge: they stay only in the other device's "
            "history (docs/SYNC.md)"
        )
    for peer in getattr(result, "peers", ()):
        _output.line(f"device {peer['device']}: {_PEER_SAID[str(peer['state'])]}")
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
def sync(
    ctx: typer.Context,
    as_json: JSON = False,
    accept_former: Annotated[
        bool,
        typer.Option(
            "--accept-former-key",
            help="merge another device's changes signed by the owner key this "
            "device replaced (not when it was replaced because it leaked)",
        ),
    ] = False,
    other_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--other-passphrase-file",
            metavar="FILE",
            help="the passphrase set on the other device, read only when a merge "
            "needs it (its owner key and passphrase replaced by `passphrase "
            "--rekey`)",
        ),
    ] = None,
) -> None:
    """Fetch, check and bring in the remote's changes, or push this device's."""
    if ctx.invoked_subcommand is not None:
        return
    from confvault.errors import NoIdentityMatchError
    from confvault.sync import folder, replica
    from confvault.sync.dropped import ShreddedNotesError
    from confvault.sync.owners import OtherPassphraseNeededError, OwnerKeyNeededError

    vault = options(ctx).open_vault(write=True)
    s = vault.session
    with s.reading() as current:
        vault_id = current.body.vault_id
    by_folder = folder.load(_state_dir(), vault_id) is not None

    passphrase: list[bytes] = []
    other: list[bytes] = []

    def run(leave_out: bool) -> replica.SyncResult:
        if by_folder:
            return folder.sync(s, _state_dir(), leave_out=leave_out)
        try:
            return replica.sync(
                s,
                _state_dir(),
                leave_out=leave_out,
                passphrase=next(iter(passphrase), None),
                other_passphrase=next(iter(other), None),
                accept_former=accept_former,
            )
        except OwnerKeyNeededError:
            # The owner's key was replaced on the other device: its key file
            # opens with the passphrase (the source given, or asked on a
            # terminal; a script without a source: exit 2, as elsewhere).
            if passphrase:
                raise
            passphrase.append(options(ctx).passphrase())
            return run(leave_out)
        except OtherPassphraseNeededError:
            # A `passphrase --rekey` there: its key file opens only with the
            # passphrase that device set (a file given, or asked on a terminal).
            if other or (other_passphrase_file is None and not sys.stdin.isatty()):
                raise
            from confvault.cli import _secrets

            other.append(
                _secrets.obtain(
                    file=other_passphrase_file,
                    prompt="Passphrase of the other device: ",
                    use_env=False,
                )
            )
            return run(leave_out)

    # Notes added on one device for a client shredded on the other are never
    # merged silently: a terminal asks (default no: nothing changes); a
    # script (--json, or no terminal) leaves them out and reports it.
    asks = not as_json and sys.stdin.isatty() and sys.stderr.isatty()
    try:
        result = run(leave_out=not asks)
    except ShreddedNotesError as err:
        _output.warn(str(err))
        if not typer.confirm(
            "merge without those notes (they are not brought back; see "
            "docs/SYNC.md for where they stay)?",
            default=False,
            err=True,
        ):
            raise
        result = run(leave_out=True)
    flags: dict[str, object] = {"conflicts": [], "duplicates": []}
    # A key merge makes no conflict or duplicate. After a sync that brought
    # in an identity rotation, this session's owner key is no longer the
    # vault's: `status` (a session opened anew) shows the flags.
    if result.action in ("merged", "pulled") and not result.key_events:
        with contextlib.suppress(NoIdentityMatchError):
            flags = dict(vault.merge_flags())
    _report(result, as_json, flags)


@app.command("init", epilog=SYNC_EXIT)
def init(
    ctx: typer.Context,
    remote: Annotated[
        str | None,
        typer.Argument(
            metavar="REMOTE", help="a git URL, or a path (or folder:DIR, as --folder)"
        ),
    ] = None,
    folder_dir: Annotated[
        Path | None,
        typer.Option(
            "--folder",
            metavar="DIR",
            help="sync through a file-sync folder (Syncthing, Dropbox) instead",
        ),
    ] = None,
    device: _DEVICE = None,
    as_json: JSON = False,
) -> None:
    """Connect this vault to a git remote, or to a file-sync folder, then sync."""
    from confvault.sync import folder, replica, state

    if remote is not None and remote.startswith(folder.PREFIX) and folder_dir is None:
        folder_dir = Path(remote[len(folder.PREFIX) :])
        remote = None
    if (remote is None) == (folder_dir is None):
        raise typer.BadParameter("give a REMOTE or --folder DIR (one of them)")
    name = device if device is not None else state.default_device_name()
    state.check_device_name(name)
    vault = options(ctx).open_vault(write=True)
    if folder_dir is not None:
        _report(
            folder.connect(vault.session, folder_dir, name, _state_dir()),
            as_json,
            _NO_FLAGS,
        )
        return
    _report(
        replica.connect(vault.session, str(remote), name, _state_dir()),
        as_json,
        _NO_FLAGS,
    )


@app.command("compact", epilog=SYNC_EXIT)
def compact(ctx: typer.Context, as_json: JSON = False) -> None:
    """Sync, then replace the remote's history with the current state (old
    files of shredded clients and revoked grants leave the remote)."""
    from confvault.sync import compact as compaction

    vault = options(ctx).open_vault(write=True)
    result = compaction.compact(vault.session, _state_dir())
    if as_json:
        _output.emit_json(dict(result.__dict__))
        return
    _output.line(
        f"replaced the remote's history ({result.commits_dropped} commits) with "
        f"one commit of generation {result.generation}: {result.commit[:12]} "
        f"(device {result.device})"
    )
    _output.info(
        "the other devices follow at their next `confvault sync`; the remote "
        "frees the old objects when it collects garbage (docs/SYNC.md)"
    )


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
