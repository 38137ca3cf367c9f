"""Top-level vault commands: init, status, verify."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from confvault.cli import _output, _readonly, _unlocked
from confvault.cli._context import Options, options
from confvault.cli._errors import EXIT_STATUS
from confvault.cli._options import ALLOW_WEAK_WORK_FACTOR, JSON
from confvault.cli._report import classic_line, render_report
from confvault.errors import ConfvaultError, IntegrityError, WeakPassphraseError
from confvault.vault.model import policy

if TYPE_CHECKING:
    from confvault.vault.model.custody import CustodyStatus
    from confvault.vault.model.results import VaultStatus, VerifyReport
    from confvault.vault.ops.requests import RecordsStatus

commands = typer.Typer()


@commands.command(epilog=EXIT_STATUS)
def init(
    ctx: typer.Context,
    work_factor: Annotated[
        int,
        typer.Option(
            "--work-factor",
            help=f"scrypt cost, log2(N) (default {policy.DEFAULT_WORK_FACTOR}, "
            f"floor {policy.MIN_WORK_FACTOR})",
        ),
    ] = policy.DEFAULT_WORK_FACTOR,
    allow_weak_work_factor: ALLOW_WEAK_WORK_FACTOR = False,
    recovery_key_file: Annotated[
        Path | None,
        typer.Option(
            "--recovery-key-file",
            help="write the recovery key to this new file (0600) instead of showing it",
        ),
    ] = None,
    no_recovery_key: Annotated[
        bool,
        typer.Option(
            "--no-recovery-key",
            help="create no recovery key: a forgotten passphrase then loses every record",
        ),
    ] = False,
    classic: Annotated[
        bool,
        typer.Option(
            "--classic",
            help="X25519 keys instead of post-quantum ones, for a stock age "
            "before 1.3 (Debian's 1.1.1) to open the files",
        ),
    ] = False,
    as_json: JSON = False,
) -> None:
    """Create a vault: owner keys sealed with your passphrase, and a recovery key.

    Every key is post-quantum (ML-KEM-768 + X25519, age1pq1...) unless
    --classic; `confvault migrate --pq` converts a classic vault later."""
    opts = options(ctx)
    path = opts.vault_path
    policy.check_work_factor(work_factor, allow_weak=allow_weak_work_factor)
    if recovery_key_file is not None and (
        recovery_key_file.exists() or recovery_key_file.is_symlink()
    ):
        raise ConfvaultError(f"{recovery_key_file} already exists; not overwriting it")
    passphrase = opts.passphrase(confirm=True, prompt="New vault passphrase: ")
    weakness = policy.check_passphrase_strength(passphrase)
    if weakness:
        raise WeakPassphraseError(f"passphrase too weak: {weakness}")
    if policy.is_weak_work_factor(work_factor):
        _output.warn(
            f"scrypt work factor {work_factor} is below the floor "
            f"{policy.MIN_WORK_FACTOR}: for tests only"
        )
    from confvault.vault import Vault
    from confvault.vault.store.paths import default_state_dir

    vault, recovery = Vault.init(
        path,
        passphrase,
        work_factor=work_factor,
        recovery_key=not no_recovery_key,
        state_dir=default_state_dir(),
        min_work_factor=min(work_factor, policy.MIN_WORK_FACTOR),
        postquantum=not classic,
    )
    kind = "classic" if classic else "postquantum"
    if recovery is not None and recovery_key_file is not None:
        fd = os.open(recovery_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(
                f"# confvault recovery key for vault {vault.vault_id}\n{recovery}\n"
            )
    if as_json:
        _output.emit_json(
            {
                "vault": str(path),
                "vault_id": vault.vault_id,
                "work_factor": work_factor,
                "keys": kind,
                "recovery_key": "file"
                if recovery_key_file
                else ("shown" if recovery else "none"),
            }
        )
        if recovery and recovery_key_file is None:
            _output.info(f"recovery key (store it offline; shown once): {recovery}")
        return
    _output.line(f"created vault {vault.vault_id[:12]} at {path} ({kind} keys)")
    if recovery is None:
        _output.warn(
            "no recovery key: if you forget the passphrase, every record is lost"
        )
    elif recovery_key_file is not None:
        _output.line(
            f"recovery key written to {recovery_key_file} (0600): move it offline"
        )
    else:
        _output.stdout().print(
            "\n[bold]Recovery key[/bold] — write it down or print it, and keep it offline."
            "\nIt opens the vault if you forget the passphrase. It is shown only this once:\n"
        )
        _output.stdout().print(f"    {recovery}\n", markup=False)


@commands.command(epilog=EXIT_STATUS)
def status(ctx: typer.Context, as_json: JSON = False) -> None:
    """A dashboard: clients, notes, drafts, keys, grants, last verify."""
    opts = options(ctx)
    vault = opts.open_vault()
    info: VaultStatus = vault.status()  # typed here: the facade says Any
    records = vault.records_status()  # issue 18: retention and requests
    unlock = _unlocked.state(opts.vault_path, vault.owner)
    custody = vault.custody_status() if vault.owner is not None else None
    synced = _sync_status(info.vault_id, info.generation)  # issue 16
    flags = vault.merge_flags() if vault.owner is not None else {}
    if as_json:
        doc = info.to_json() | {"unlock": unlock, "sync": synced} | records.to_json()
        doc |= {"merge": dict(flags)}
        if custody is not None:
            doc["custodians"] = custody.to_json()
        _output.emit_json(_readonly.document(vault, doc))
        return
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2))
    rows = [
        ("vault", f"{info.path} ({info.vault_id[:12]})"),
        ("generation", f"{info.generation} (last change {info.last_change})"),
        ("clients", str(info.clients)),
        (
            "notes",
            f"{info.notes} signed, {info.drafts} drafts, {info.psychotherapy_notes} "
            f"psychotherapy, {info.attachments} attachments",
        ),
        ("objects", str(info.objects)),
        (
            "client keys",
            f"oldest {info.oldest_key or '-'}, newest {info.newest_key or '-'}",
        ),
        ("grants", str(info.grants)),
        ("keys", info.key_kind),
        ("recovery key", "yes" if info.recovery_key else "none"),
        ("owner key", info.owner_key),
        ("last verify", info.last_verify or "never on this machine"),
        ("unlocked", _unlocked.describe(unlock)),
        *_records_rows(records),
        *_sync_rows(synced),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/bold]", value)
    _output.stdout().print(table)
    if info.classic_objects:
        _output.info(classic_line(info.classic_objects, info.objects))
    if custody is not None:
        _custody_lines(custody)
    from confvault.cli.sync import merge_warnings

    merge_warnings(dict(flags))
    if info.pending_rotations:
        _output.error(
            "keys still to be rotated (writes to them are refused): "
            + ", ".join(info.pending_rotations)
            + "; run `confvault rotate`"
        )


def _custody_lines(custody: CustodyStatus) -> None:
    """Custodians (issue 18): the latest split, and a running notice."""
    split = (
        f"any {custody.threshold} of them since {custody.split[:10]}"
        if custody.split
        else "no split yet"
    )
    _output.line(f"custodians: {custody.custodians}, {split}")
    if custody.split and not custody.split_current:
        _output.warn("the custodians changed since the latest split: split again")
    if custody.notice:
        _output.warn(
            f"custodians started a notice at {custody.notice}: they get access at "
            f"{custody.access_from}; `confvault custodian cancel` stops it"
        )


def _records_rows(records: RecordsStatus) -> list[tuple[str, str]]:
    """Issue 18's lines: clients due under retention, records requests."""
    due = len(records.retention_due)
    held = f", {records.held} under legal hold" if records.held else ""
    hint = " (`confvault retention`)" if due else ""
    overdue = len(records.requests_overdue)
    late = f", [bold red]{overdue} overdue[/bold red]" if overdue else ""
    return [
        ("retention", f"{due} clients due{held}{hint}"),
        ("requests", f"{records.requests_open} open{late}"),
    ]


def _sync_status(vault_id: str, generation: int) -> dict[str, object] | None:
    """Sync over git (issue 16): this device's last sync, or None."""
    from confvault.sync.state import sync_status
    from confvault.vault.store.paths import default_state_dir

    return sync_status(default_state_dir(), vault_id, generation)


def _sync_rows(synced: dict[str, object] | None) -> list[tuple[str, str]]:
    if synced is None:
        return [("last sync", "not synced (`confvault sync init REMOTE`)")]
    last = (
        f"{synced['last_sync']} by {synced['last_sync_device']}"
        if synced["last_sync"]
        else "never"
    )
    pending = "yes: run `confvault sync`" if synced["unpushed"] else "none"
    return [
        ("last sync", f"{last} (this device: {synced['device']})"),
        ("not pushed", pending),
    ]


@commands.command(epilog=EXIT_STATUS)
def verify(
    ctx: typer.Context,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="also decrypt every note and check its signature (needs the passphrase)",
        ),
    ] = False,
    as_json: JSON = False,
) -> None:
    """Check the whole vault; without --deep no passphrase is needed."""
    opts = options(ctx)
    read_only: dict[str, object] = {}
    if deep:
        try:
            vault = opts.open_vault()
            report: VerifyReport = vault.verify(deep=True)
            read_only = _readonly.document(vault, {})
        except IntegrityError as err:
            # The keys themselves are damaged: still a report, not a bare error,
            # so that a script reading --json learns what else is wrong.
            keyless = _keyless_report(opts)
            from confvault.vault.model.results import Finding

            unlock = Finding(
                "error", "unlock", "owner", f"the vault does not open: {err}"
            )
            report = replace(keyless, deep=True, findings=(*keyless.findings, unlock))
    else:
        report = _keyless_report(opts)
    render_report(report, as_json, read_only)


def _keyless_report(opts: Options) -> VerifyReport:
    from confvault.vault.check.keyless import verify_vault
    from confvault.vault.store.paths import check_vault_dir, default_state_dir
    from confvault.vault.store.seen import SeenStore

    path = opts.vault_path
    try:
        check_vault_dir(path)
    except ConfvaultError as err:
        if not path.is_dir():
            raise
        _output.warn(str(err))
    return verify_vault(
        path, seen=SeenStore(default_state_dir()), lock_timeout=opts.lock_timeout
    )
