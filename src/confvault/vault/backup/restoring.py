"""Restoring backups: what ``backup.restore`` does.

A backup directory is copied, a tar unpacked (members are never extracted
by ``tarfile`` itself: only what ``members.classify`` accepts is written,
0600 in 0700 directories), into a new directory, which must then verify
as a vault; and the restored generation is compared with what this machine
saw of the vault before. Imported only when a backup is restored.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import BinaryIO

from confvault.errors import IntegrityError, VaultNotFoundError
from confvault.vault.backup import members
from confvault.vault.backup.check import merged, shared_lock_if_vault
from confvault.vault.backup.dirsink import DirSink
from confvault.vault.backup.sinks import STREAM_LABEL
from confvault.vault.check.keyless import verify_keyless
from confvault.vault.model.results import Finding, VerifyReport
from confvault.vault.store import layout, manifest, survey
from confvault.vault.store.paths import default_state_dir
from confvault.vault.store.seen import SeenStore


def source_path(src: Path | str) -> Path:
    """The backup the user named (a directory, a tar file or a pipe)."""
    path = Path(src)
    if path.is_dir() and path.is_symlink():
        path = path.resolve()  # the user named it; what it names is checked
    if not path.exists():
        raise VaultNotFoundError(f"no backup at {path}")
    return path


def restore_into(
    source: Path | BinaryIO, sink: DirSink, lock_timeout: float
) -> tuple[VerifyReport, manifest.Manifest]:
    """Copy or unpack ``source`` into ``sink`` and verify it; raise if it fails."""
    if isinstance(source, Path) and source.is_dir():
        with shared_lock_if_vault(source, lock_timeout):
            found = survey.of_path(source)
            if found is None:
                raise VaultNotFoundError(f"no backup at {source}")
            findings = members.copy_tree(found, sink)
    elif isinstance(source, Path):
        with members.open_tar_file(source) as stream:
            findings = _extract_tar(stream, sink, str(source))
    else:
        findings = _extract_tar(source, sink, STREAM_LABEL)
    for sub in (layout.OBJECTS, layout.SHARDS, layout.TMP):
        sink.add_dir(sub)
    report, current = verify_keyless(sink.root, seen=None)
    report = merged(report, findings, str(sink.root))
    if current is None or not report.ok:
        problems = sum(f.severity == "error" for f in report.findings)
        raise IntegrityError(
            f"the backup does not verify ({problems} problem{'s' * (problems != 1)}); "
            "nothing was restored",
            list(report.findings),
        )
    return report, current


def _extract_tar(stream: BinaryIO, sink: DirSink, label: str) -> list[Finding]:
    """Write the tar's vault members into ``sink``; findings for everything else."""
    return members.read_tar(
        stream,
        lambda rel, read, _: sink.add_file(rel, read, None)[1],
        label,
        sink.add_dir,
    )


def check_memory(
    report: VerifyReport,
    body: manifest.ManifestBody,
    state_dir: Path | None,
    accept_rollback: bool,
) -> VerifyReport:
    """Compare the restored generation with what this machine saw before."""
    seen = SeenStore(state_dir or default_state_dir())
    known = seen.get(body.vault_id)
    if known is None:
        return report
    older = body.generation < known[0]
    if not older and manifest.signer_descends(body, known[1]):
        return report
    what = (
        f"generation {known[0]}" if older else "a manifest signed by a later owner key"
    )
    if accept_rollback:
        seen.forget(body.vault_id)
        seen.record(body.vault_id, body.generation, body.signer)
        finding = Finding(
            "warning",
            "rollback-accepted",
            manifest.MANIFEST_NAME,
            f"this machine had seen {what} of this vault; it now accepts "
            f"generation {body.generation} and refuses anything older",
        )
    else:
        finding = Finding(
            "warning",
            "rollback",
            manifest.MANIFEST_NAME,
            f"this machine has seen {what} of this vault; opening restored "
            f"generation {body.generation} is refused as a rollback until it is "
            "accepted (restore again with --accept-rollback)",
        )
    return dataclasses.replace(report, findings=(*report.findings, finding))
