"""The owner's keys: `passphrase` (change it, or re-key the vault) and
`identity rotate` (new owner keys)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from confvault import age
from confvault.cli import _output, _report, _secrets
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS, PARTLY_DONE
from confvault.cli._options import ALLOW_WEAK_WORK_FACTOR, JSON
from confvault.cli._unlocked import end_agent
from confvault.vault.model import policy

if TYPE_CHECKING:
    from confvault.vault.model.results import RekeyReport

commands = typer.Typer()  # `passphrase`, at the top level
identity = typer.Typer(
    help="The owner's keys.", no_args_is_help=True, epilog=EXIT_STATUS
)

REKEY_HELP = (
    "also new owner keys, every client key rotated and every note re-sealed, so a "
    "copy of the vault taken before opens nothing in it: use it when the passphrase "
    "may have leaked"
)
IDENTITY_REKEY_HELP = (
    "also rotate every client key and re-seal every note, so the keys of a copy of "
    "the vault taken before open nothing in it: use it when a key may have leaked "
    "(if the passphrase may have, use `passphrase --rekey`)"
)


def _report_rekey(report: RekeyReport, as_json: bool) -> None:
    """Print what a re-key did and did not protect; exit 4 when clients remain."""
    if as_json:
        _output.emit_json(report.to_json())
    else:
        _output.line(
            ("passphrase changed; " if report.passphrase_changed else "")
            + f"new owner keys; {len(report.rotated)} client keys rotated, "
            f"{sum(max(r.notes, 0) for r in report.rotated)} notes re-sealed"
        )
        _output.info(report.protects)
    for failure in report.failed:
        _output.error(f"not rotated: {failure}")
    _report.damaged_notes(report.rotated)
    if not report.owner.recovery_key_kept:
        _output.warn("this vault has no recovery key")
    _output.warn(report.DOES_NOT_PROTECT)
    if report.failed:
        _output.warn(report.UNFINISHED)
        raise typer.Exit(PARTLY_DONE)


@commands.command(epilog=EXIT_STATUS)
def passphrase(
    ctx: typer.Context,
    new_passphrase_file: Annotated[
        Path | None,
        typer.Option("--new-passphrase-file", help="read the new passphrase from FILE"),
    ] = None,
    recovery_key_file: Annotated[
        Path | None,
        typer.Option(
            "--recovery-key-file",
            help="open with the recovery key instead of the old passphrase",
        ),
    ] = None,
    work_factor: Annotated[
        int | None,
        typer.Option(
            "--work-factor",
            help=f"new scrypt cost, log2(N): {policy.MIN_WORK_FACTOR}-"
            f"{policy.MAX_WORK_FACTOR}, as for init (default: unchanged)",
        ),
    ] = None,
    allow_weak_work_factor: ALLOW_WEAK_WORK_FACTOR = False,
    rekey: Annotated[bool, typer.Option("--rekey", help=REKEY_HELP)] = False,
    as_json: JSON = False,
) -> None:
    """Change the passphrase (old one, or the recovery key, required).

    Without --rekey only the owner key file is rewritten: a copy of the vault
    taken before still opens with the old passphrase, and its keys open what is
    written afterwards.
    """
    if work_factor is not None:  # before any prompt: nothing asked, nothing changed
        policy.check_work_factor(work_factor, allow_weak=allow_weak_work_factor)
    opts = options(ctx)
    if recovery_key_file is not None:
        text = recovery_key_file.read_text(encoding="utf-8")
        key = age.parse_identities(text)[0].encode()
        from confvault.vault import Vault
        from confvault.vault.store.paths import default_state_dir

        vault = Vault.open(
            opts.vault_path,
            recovery_key=key,
            state_dir=default_state_dir(),
            lock_timeout=opts.lock_timeout,
        )
        _output.key_source = "recovery-key"
    else:
        vault = opts.open_vault(write=True, agent=False)
    new = _secrets.obtain(
        file=new_passphrase_file, confirm=True, prompt="New passphrase: ", use_env=False
    )
    # before the change: the agent records its lock while its keys still open
    # the vault (a re-key changes them), and never serves the old ones after
    end_agent(opts.vault_path, "passphrase-change")
    if rekey:
        with _output.progress("re-keying the vault") as progress:
            report = vault.rekey(
                new,
                work_factor=work_factor,
                allow_weak_work_factor=allow_weak_work_factor,
                progress=progress,
            )
        _report_rekey(report, as_json)
        return
    changed = vault.change_passphrase(
        new, work_factor=work_factor, allow_weak_work_factor=allow_weak_work_factor
    )
    if as_json:
        _output.emit_json(changed.to_json())
    else:
        _output.line("passphrase changed (only the owner key file was rewritten)")
    _output.warn(f"{changed.PROTECTS}, but {changed.DOES_NOT_PROTECT}")


@identity.command("rotate", epilog=EXIT_STATUS)
def identity_rotate(
    ctx: typer.Context,
    rekey: Annotated[bool, typer.Option("--rekey", help=IDENTITY_REKEY_HELP)] = False,
    as_json: JSON = False,
) -> None:
    """New owner keys; client keys re-wrapped to them (--rekey: rotated too)."""
    opts = options(ctx)
    secret = opts.passphrase()
    from confvault.vault import Vault
    from confvault.vault.store.paths import check_vault_dir, default_state_dir

    check_vault_dir(opts.vault_path)
    vault = Vault.open(
        opts.vault_path,
        passphrase=secret,
        state_dir=default_state_dir(),
        lock_timeout=opts.lock_timeout,
    )
    _output.key_source = "passphrase"
    end_agent(opts.vault_path, "identity-rotate")  # before: see `passphrase`
    if rekey:
        with _output.progress("re-keying the vault") as progress:
            report = vault.rekey(secret, passphrase_changed=False, progress=progress)
        _report_rekey(report, as_json)
        return
    with _output.progress("re-sealing client keys") as progress:
        result = vault.rotate_identity(secret, progress=progress)
    # the facade gives the report as its JSON document (as it always has)
    rewrapped, recovery_key_kept = (
        result["client_keys_rewrapped"],
        result["recovery_key_kept"],
    )
    protects, does_not = result["protects"], result["does_not_protect"]
    if as_json:
        _output.emit_json(result)
    else:
        _output.line(f"new owner keys; {rewrapped} client keys re-sealed")
        if recovery_key_kept:
            _output.line("your recovery key still works")
    if not recovery_key_kept:
        _output.warn("this vault has no recovery key")
    _output.warn(f"{protects}, but {does_not}")
