"""`confvault custodian`: the colleagues who together may open the vault when
the owner cannot (issue 18, docs/CONTINUITY.md): add, list, remove, split,
open, cancel."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from confvault.cli import _argv, _output
from confvault.cli._context import options
from confvault.cli._errors import EXIT_STATUS, NOTHING_TO_DO
from confvault.cli._options import JSON, PSYCHOTHERAPY
from confvault.errors import ConfvaultError, UnsafeInputError

if TYPE_CHECKING:
    from confvault.vault import Vault
    from confvault.vault.model.custody import CustodianInfo, SealedShare

app = typer.Typer(
    help="Colleagues who together may open the vault when you cannot.",
    no_args_is_help=True,
    epilog=EXIT_STATUS,
)
_AGE_HEADER = b"age-encryption.org/v1"


def _show(info: CustodianInfo, verb: str, as_json: bool) -> None:
    if as_json:
        _output.emit_json(info.to_json())
        return
    _output.line(f"{verb} custodian {info.name} ({info.recipient[:20]}…)")


@app.command("add", epilog=EXIT_STATUS)
def add(
    ctx: typer.Context,
    custodian: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="a short label of the colleague: letters, digits, . _ - (names "
            "their share file; not client data, so an argument is fine)",
        ),
    ],
    recipient: Annotated[
        str, typer.Argument(help="their age1… key (age1pq1… in a post-quantum vault)")
    ],
    as_json: JSON = False,
) -> None:
    """Add a custodian; they get a share at the next `custodian split`."""
    vault = options(ctx).open_vault(write=True)
    _show(vault.add_custodian(custodian, _argv.recipient(recipient)), "added", as_json)
    if not as_json:
        _output.info("run `confvault custodian split --threshold K` to give shares")


@app.command("list", epilog=EXIT_STATUS)
def list_(ctx: typer.Context, as_json: JSON = False) -> None:
    """The custodians, and whether the latest split gave each a share."""
    infos = options(ctx).open_vault().custodians()
    if as_json:
        _output.emit_json([i.to_json() for i in infos])
        return
    if not infos:
        _output.info("no custodians (`confvault custodian add NAME RECIPIENT`)")
        return
    for i in infos:
        share = "share of the latest split" if i.has_share else "no share yet"
        _output.line(f"{i.name}  {i.recipient[:24]}…  added {i.added[:10]}  {share}")


@app.command("remove", epilog=EXIT_STATUS)
def remove(
    ctx: typer.Context,
    custodian: Annotated[str, typer.Argument(metavar="NAME", help="the label given")],
    as_json: JSON = False,
) -> None:
    """Remove a custodian; their share counts until the next split."""
    vault = options(ctx).open_vault(write=True)
    _show(vault.remove_custodian(custodian), "removed", as_json)
    if not as_json:
        _output.warn(
            "their share still counts: run `confvault custodian split` now to "
            "make every old share useless"
        )


@app.command("split", epilog=EXIT_STATUS)
def split(
    ctx: typer.Context,
    threshold: Annotated[
        int, typer.Option("--threshold", "-k", help="how many shares open the vault")
    ],
    notice: Annotated[
        str | None,
        typer.Option("--notice", help="a waiting period before access, e.g. 7d"),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="where to write share-NAME.age files")
    ] = Path(),
    as_json: JSON = False,
) -> None:
    """A new executor key, split K of N among the custodians (old shares die)."""
    from confvault.vault.model.clock import parse_duration

    period = parse_duration(notice) if notice else None
    if not out.is_dir():
        raise UnsafeInputError(f"{out} is not a directory")
    vault = options(ctx).open_vault(write=True, agent=False)
    report = vault.split_custody(threshold, lambda f: _write_shares(out, f), period)
    if as_json:
        _output.emit_json(report.to_json() | {"out": str(out)})
        return
    _output.line(
        f"split among {len(report.shares)} custodians: any {report.threshold} "
        f"open the vault; files in {out}"
    )
    for name in report.shares:
        _output.line(f"  share-{name}.age  for {name}")
    _output.info(
        "give each custodian their file and docs/CONTINUITY.md; shares of earlier "
        "splits open nothing from now on (backups taken before still hold the old copy)"
    )


def _write_shares(out: Path, files: list[SealedShare]) -> None:
    """Every share file, or none (the split is committed only after this)."""
    from confvault.cli._files import new_private_file

    for f in files:
        if (out / f.file_name).exists() or (out / f.file_name).is_symlink():
            raise ConfvaultError(f"{out / f.file_name} exists; not overwriting it")
    written: list[Path] = []
    try:
        for f in files:
            with new_private_file(out / f.file_name) as handle:
                handle.write(f.sealed)
                handle.flush()
                os.fsync(handle.fileno())
            written.append(out / f.file_name)
        # Durable before the commit: a vault whose split survives a power
        # cut while its share files do not would open with no share.
        directory = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _read_shares(shares: list[str]) -> list[str]:
    """Each SHARE a file of words, or ``-``: every non-empty line of stdin."""
    words: list[str] = []
    for given in shares:
        if given == "-":
            data = sys.stdin.buffer.read()
            lines = data.decode("utf-8", "replace").splitlines()
            words += [line for line in lines if line.strip()]
            continue
        try:
            data = Path(given).read_bytes()
        except OSError as err:
            raise UnsafeInputError(f"cannot read {given}: {err.strerror}") from err
        if data.startswith(_AGE_HEADER):
            raise UnsafeInputError(
                f"{given} is still sealed: its custodian opens it first "
                "(`age -d -i THEIR_KEY share-NAME.age > words.txt`)"
            )
        words.append(data.decode("utf-8", "replace"))
    return words


@app.command("open", epilog=EXIT_STATUS)
def open_(
    ctx: typer.Context,
    shares: Annotated[
        list[str],
        typer.Argument(help="files holding a share's words each, or - (stdin)"),
    ],
    export: Annotated[
        Path | None,
        typer.Option("--export", help="a new directory: every client's record"),
    ] = None,
    list_clients: Annotated[
        bool, typer.Option("--list", help="list the clients")
    ] = False,
    psychotherapy: PSYCHOTHERAPY = False,
    as_json: JSON = False,
) -> None:
    """Custodians: open the vault with K shares (audited; read only)."""
    from confvault.vault import Vault
    from confvault.vault.store.paths import check_vault_dir, default_state_dir

    if export is not None and (export.exists() or export.is_symlink()):
        raise UnsafeInputError(f"{export} exists; give a new directory")
    opts = options(ctx)
    check_vault_dir(opts.vault_path)
    vault, opening = Vault.open_by_custodians(
        opts.vault_path,
        _read_shares(shares),
        state_dir=default_state_dir(),
        lock_timeout=opts.lock_timeout,
    )
    doc: dict[str, object] = dict(opening.to_json())
    if not as_json:
        _output.line(
            f"opened by the shares of {', '.join(opening.shares)} at "
            f"{opening.opened} (recorded in the audit trail)"
        )
    if list_clients:
        clients = vault.clients()
        doc["clients"] = [
            {"id": c.id, "name": c.name, "notes": c.notes} for c in clients
        ]
        if not as_json:
            for c in clients:
                _output.line(f"{c.id}  {_output.safe(c.name)}  {c.notes} notes")
    if export is not None:
        exported = _export_all(vault, export, psychotherapy)
        doc["exported"] = exported
        if not as_json:
            _output.line(f"exported {len(exported)} clients to {export}")
            _output.warn(
                f"{export} holds plaintext clinical records: keep it private, "
                "delete it once handed over"
            )
    if as_json:
        _output.emit_json(doc)


def _export_all(vault: Vault, out: Path, psychotherapy: bool) -> list[str]:
    """Every client's record, each in its own directory under ``out``."""
    from confvault.vault.ops.export_sinks import DirectorySink, safe_name

    out.mkdir(mode=0o700)
    done = []
    for client in vault.clients():
        folder = out / f"{safe_name(client.name, 60)}-{client.id[:8]}"
        vault.export_client(
            client.id, DirectorySink(folder), psychotherapy=psychotherapy
        )
        done.append(folder.name)
    return done


@app.command("cancel", epilog=EXIT_STATUS)
def cancel(ctx: typer.Context, as_json: JSON = False) -> None:
    """Owner: cancel the custodians' running notice (exit 3: none running)."""
    notice = options(ctx).open_vault(write=True).cancel_custodian_notice()
    if as_json:
        _output.emit_json(notice.to_doc() if notice else None)
    elif notice is not None:
        _output.line(
            f"cancelled the notice {', '.join(notice.shares)} started at "
            f"{notice.started}"
        )
        _output.info(
            "they can start a new one with their shares: if you did not expect "
            "it, run `confvault custodian split` to make those shares useless"
        )
    else:
        _output.info("no custodian notice is running")
    if notice is None:
        raise typer.Exit(NOTHING_TO_DO)
