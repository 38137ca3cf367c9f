"""Access commands: grant, grants, revoke, rotate, passphrase, identity rotate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from confvault import age
from confvault.cli import _argv, _output, _secrets
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS, FAILURE, NOTHING_TO_DO, PARTLY_DONE
from confvault.errors import KeyFormatError
from confvault.vault import Vault
from confvault.vault.model import policy
from confvault.vault.model.results import RekeyReport, RevokeReport, RotateReport

JSON = Annotated[bool, typer.Option("--json", help="print a JSON document instead")]
CLIENTS = Annotated[
    list[str] | None,
    typer.Option(
        "--client",
        help="a client name or ID prefix (repeatable); a name is "
        + _argv.in_ps("the ID or --client-file"),
    ),
]
identity_app = typer.Typer(
    help="The owner's keys.", no_args_is_help=True, epilog=EXIT_STATUS
)


def _recipient_arg(text: str) -> str:
    """An age1… key, or a file holding one (or an identity, whose public key is used)."""
    if text.startswith("age1"):
        return str(age.parse_recipient(text))
    path = Path(text)
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise KeyFormatError(
            f"{text[:60]} is neither an age1… key nor a readable key file"
        ) from err
    if "AGE-SECRET-KEY-1" in content:
        return str(age.parse_identities(content)[0].recipient)
    return str(age.parse_recipients(content)[0])


@contextmanager
def _progress(label: str) -> Iterator[Any]:
    with Progress(
        console=_output.stderr, transient=True, disable=not _output.stderr.is_terminal
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def grant(
    ctx: typer.Context,
    recipient: Annotated[
        str, typer.Argument(help="an age1… key, or a file holding one")
    ],
    client: CLIENTS = None,
    client_file: _argv.CLIENT_FILES = None,
    all_clients: Annotated[
        bool, typer.Option("--all", help="every client, also those added later")
    ] = False,
    label: Annotated[
        str | None, typer.Option("--label", help="who this is, e.g. 'supervisor'")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="last day of access (YYYY-MM-DD)")
    ] = None,
    psychotherapy: Annotated[
        bool, typer.Option("--psychotherapy", help="also psychotherapy notes")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Give a colleague's age key read access to clients (instant at any size)."""
    client = _argv.values(ctx, client, client_file, option="--client-file")
    vault = options(ctx).open_vault(write=True)
    info = vault.grant(
        _recipient_arg(recipient),
        clients=client,
        all_clients=all_clients,
        label=label,
        until=until,
        psychotherapy=psychotherapy,
    )
    owner_key = vault.owner_key_fingerprint()
    if as_json:
        _output.emit_json({**info.to_json(), "owner_key": owner_key})
        return
    scope = "all clients" if info.all_clients else ", ".join(info.clients)
    _output.stdout.print(
        f"granted {escape(info.label)} read access to {escape(scope)}"
        + (f" until {info.until[:10]}" if info.until else "")
    )
    _output.info(
        "they read with `confvault --vault DIR --identity THEIR_KEY_FILE "
        f"--owner-key '{owner_key}' note list`; give them this owner key "
        "fingerprint yourself, not through the vault's sync folder"
    )


def grants(ctx: typer.Context, as_json: JSON = False) -> None:
    """Who has access to what, since when, until when."""
    infos = options(ctx).open_vault().grants()
    if as_json:
        _output.emit_json([g.to_json() for g in infos])
        return
    if not infos:
        _output.info("no grants: only you can open this vault")
        return
    table = Table("label", "recipient", "clients", "psychotherapy", "since", "until")
    for g in infos:
        scope = "all" if g.all_clients else ", ".join(g.clients)
        table.add_row(
            escape(g.label),
            g.recipient[:20] + "…",
            escape(scope),
            "yes" if g.psychotherapy else "no",
            g.since[:10],
            (g.until or "-")[:10],
        )
    _output.stdout.print(table)


def _exit_for(outcome: str) -> None:
    if outcome == "partly-done":
        raise typer.Exit(PARTLY_DONE)
    if outcome == "failed":
        raise typer.Exit(FAILURE)
    if outcome == "nothing-to-do":
        raise typer.Exit(NOTHING_TO_DO)


def _print_rotation(report: RotateReport | RevokeReport) -> None:
    notes = sum(max(r.notes, 0) for r in report.rotated)
    _output.stdout.print(
        f"rotated {len(report.rotated)} client keys, re-sealed {notes} notes"
    )
    for failure in report.failed:
        _output.error(f"not rotated: {failure}")


def revoke(
    ctx: typer.Context,
    who: Annotated[
        str, typer.Argument(metavar="RECIPIENT|LABEL", help="the grant to remove")
    ],
    client: CLIENTS = None,
    client_file: _argv.CLIENT_FILES = None,
    as_json: JSON = False,
) -> None:
    """Remove a grant and rotate every affected client key in the same run."""
    client = _argv.values(ctx, client, client_file, option="--client-file")
    vault = options(ctx).open_vault(write=True)
    with _progress("rotating keys") as progress:
        report = vault.revoke(who, clients=client, progress=progress)
    if as_json:
        _output.emit_json(report.to_json())
    else:
        what = "removed" if report.grant_removed else "narrowed"
        _output.stdout.print(f"grant for {escape(report.label)} {what}")
        table = Table(
            "client", "could read", "notes", "first note", "last note", "from", "to"
        )
        for e in report.exposure:
            table.add_row(
                escape(e.client_name),
                ", ".join(e.compartments),
                str(e.notes),
                (e.first_note or "-")[:10],
                (e.last_note or "-")[:10],
                e.since[:10],
                e.until[:10],
            )
        _output.stdout.print(
            "[bold]exposure[/bold]: what the grantee could have read and copied"
        )
        _output.stdout.print(table)
        _print_rotation(report)
        _output.warn(report.CANNOT_UNDO)
    if report.failed:
        raise typer.Exit(PARTLY_DONE)


def rotate(
    ctx: typer.Context,
    client: CLIENTS = None,
    client_file: _argv.CLIENT_FILES = None,
    all_clients: Annotated[bool, typer.Option("--all", help="every client")] = False,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="keys older than e.g. 90d, 12w, 6m, 1y"),
    ] = None,
    expired: Annotated[
        bool, typer.Option("--expired", help="revoke grants past their --until date")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would be done; change nothing")
    ] = False,
    as_json: JSON = False,
) -> None:
    """New client keys, notes re-sealed. No selector: the nightly job."""
    client = _argv.values(ctx, client, client_file, option="--client-file")
    vault = options(ctx).open_vault(write=True)
    with _progress("rotating keys") as progress:
        report = vault.rotate(
            clients=client,
            all_clients=all_clients,
            older_than=older_than,
            expired=expired,
            dry_run=dry_run,
            progress=progress,
        )
    if as_json:
        _output.emit_json(report.to_json())
    elif report.dry_run:
        _output.stdout.print(
            f"would revoke {len(report.revoked_grants)} expired grants and rotate "
            f"{len(report.rotated)} client keys (dry run: nothing changed)"
        )
    else:
        for label in report.revoked_grants:
            _output.stdout.print(f"revoked expired grant {escape(label)}")
        _print_rotation(report)
    _exit_for(report.outcome)


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
        _output.stdout.print(
            ("passphrase changed; " if report.passphrase_changed else "")
            + f"new owner keys; {len(report.rotated)} client keys rotated, "
            f"{sum(max(r.notes, 0) for r in report.rotated)} notes re-sealed"
        )
        _output.info(report.protects)
    for failure in report.failed:
        _output.error(f"not rotated: {failure}")
    if not report.owner.recovery_key_kept:
        _output.warn("this vault has no recovery key")
    _output.warn(report.DOES_NOT_PROTECT)
    if report.failed:
        _output.warn(report.UNFINISHED)
        raise typer.Exit(PARTLY_DONE)


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
    allow_weak_work_factor: Annotated[
        bool,
        typer.Option(
            "--allow-weak-work-factor",
            help="allow a work factor below the floor (tests and benchmarks only)",
        ),
    ] = False,
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
        from confvault.vault.store.paths import default_state_dir

        vault = Vault.open(
            opts.vault_path,
            recovery_key=key,
            state_dir=default_state_dir(),
            lock_timeout=opts.lock_timeout,
        )
    else:
        vault = opts.open_vault(write=True)
    new = _secrets.obtain(
        file=new_passphrase_file, confirm=True, prompt="New passphrase: ", use_env=False
    )
    if rekey:
        with _progress("re-keying the vault") as progress:
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
        _output.stdout.print(
            "passphrase changed (only the owner key file was rewritten)"
        )
    _output.warn(f"{changed.PROTECTS}, but {changed.DOES_NOT_PROTECT}")


@identity_app.command("rotate", epilog=EXIT_STATUS)
def identity_rotate(
    ctx: typer.Context,
    rekey: Annotated[bool, typer.Option("--rekey", help=IDENTITY_REKEY_HELP)] = False,
    as_json: JSON = False,
) -> None:
    """New owner keys; client keys re-wrapped to them (--rekey: rotated too)."""
    opts = options(ctx)
    secret = opts.passphrase()
    from confvault.vault.store.paths import check_vault_dir, default_state_dir

    check_vault_dir(opts.vault_path)
    vault = Vault.open(
        opts.vault_path,
        passphrase=secret,
        state_dir=default_state_dir(),
        lock_timeout=opts.lock_timeout,
    )
    if rekey:
        with _progress("re-keying the vault") as progress:
            report = vault.rekey(secret, passphrase_changed=False, progress=progress)
        _report_rekey(report, as_json)
        return
    with _progress("re-sealing client keys") as progress:
        result = vault.rotate_identity(secret, progress=progress)
    if as_json:
        _output.emit_json(result)
    else:
        _output.stdout.print(
            f"new owner keys; {result['client_keys_rewrapped']} client keys re-sealed"
        )
        if result["recovery_key_kept"]:
            _output.stdout.print("your recovery key still works")
    if not result["recovery_key_kept"]:
        _output.warn("this vault has no recovery key")
    _output.warn(f"{result['protects']}, but {result['does_not_protect']}")


__all__ = [
    "grant",
    "grants",
    "identity_app",
    "passphrase",
    "revoke",
    "rotate",
]
