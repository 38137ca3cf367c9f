"""`migrate --pq`: a classic vault converted in place to post-quantum keys."""

from __future__ import annotations

from typing import Annotated

import typer

from confvault.cli import _output, _report
from confvault.cli._context import options
from confvault.cli._errors import (
    EXIT_STATUS,
    exit_for,
)
from confvault.cli._options import JSON

commands = typer.Typer()

HELP = "Convert a classic vault to post-quantum keys in place (resumable)."


@commands.command(epilog=EXIT_STATUS, help=HELP)
def migrate(
    ctx: typer.Context,
    pq: Annotated[
        bool,
        typer.Option(
            "--pq",
            help="to post-quantum (ML-KEM-768 + X25519) keys: the only target",
        ),
    ] = False,
    as_json: JSON = False,
) -> None:
    """Convert a classic vault to post-quantum keys in place (resumable).

    New post-quantum owner keys and recovery key (shown once), every client
    key rotated and every note re-sealed; grants to classic keys are dropped
    (each grantee must send an age1pq1... key to be granted again). A run cut
    short is finished by running it again. Exit 3: nothing to do; 4: some
    clients failed (run it again).
    """
    if not pq:
        raise typer.BadParameter("say which keys to migrate to: --pq")
    opts = options(ctx)
    from confvault.cli import _readonly
    from confvault.vault import Vault
    from confvault.vault.store.paths import check_vault_dir, default_state_dir

    check_vault_dir(opts.vault_path)  # before asking a passphrase
    _readonly.refuse_write(opts.vault_path)
    secret = opts.passphrase()  # asked once: it opens and re-seals the owner key
    vault = Vault.open(
        opts.vault_path,
        passphrase=secret,
        state_dir=default_state_dir(),
        lock_timeout=opts.lock_timeout,
        owner_key=opts.pinned_owner_key,
    )

    def switched(recovery: str | None) -> None:
        if recovery is not None:
            _output.info(
                "new post-quantum recovery key (the old one no longer works; "
                f"store it offline, shown once): {recovery}"
            )

    with _output.progress("re-sealing to post-quantum keys") as progress:
        report = vault.migrate_pq(secret, progress=progress, on_switched=switched)
    if as_json:
        _output.emit_json(report.to_json())
    else:
        if not report.switched:
            _output.line("the vault already had post-quantum keys")
        notes = sum(max(r.notes, 0) for r in report.rotation.rotated)
        _output.line(
            f"post-quantum keys: {len(report.rotation.rotated)} client keys "
            f"rotated, {notes} notes re-sealed"
        )
        for failure in report.rotation.failed:
            _output.error(f"not done: {failure}")
        _report.damaged_notes(report.rotation.rotated)
    for label in report.dropped_grants:
        _output.warn(f"grant {label} dropped: its key is classic")
    if report.dropped_grants:
        _output.warn(report.REGRANT)
    if report.classic_objects:
        _output.warn(
            _report.classic_line(report.classic_objects, report.classic_objects)
        )
    exit_for(report.outcome)
