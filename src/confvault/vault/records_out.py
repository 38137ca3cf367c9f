"""Records leaving the vault: a client's whole record for a records request,
and crypto-shredding a client at the end of the retention period."""

from __future__ import annotations

import io
import os
import re
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from confvault import age
from confvault.errors import VaultExistsError
from confvault.vault import _note_format as fmt
from confvault.vault import fs
from confvault.vault.clients import Compartment
from confvault.vault.results import ExportResult, ShredResult

Writer = Callable[[BinaryIO], object]
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

SHRED_LIMITS = (
    "shredding destroys the client's keys and every sealed file of theirs in this "
    "vault; backups and copies made before now still hold them, sealed to keys that "
    "the owner's passphrase or recovery key of that backup can still open: delete or "
    "expire those backups too, as your retention policy requires"
)


def safe_name(text: str, limit: int = 80) -> str:
    """A file name made only of portable characters."""
    return _SAFE.sub("_", text).strip("._")[:limit] or "file"


class ExportSink(Protocol):
    def add(self, path: str, data: bytes) -> None: ...
    def add_stream(self, path: str, size: int, write: Writer) -> None: ...


class DirectorySink:
    """Plain files in a new private directory (0700 directories, 0600 files)."""

    def __init__(self, root: Path) -> None:
        if root.is_symlink() or (root.exists() and any(root.iterdir())):
            raise VaultExistsError(
                f"{root} exists and is not empty; choose a new directory"
            )
        try:
            root.mkdir(mode=fs.DIR_MODE, parents=True, exist_ok=True)
        except OSError as err:
            raise fs.storage_error(err, f"create {root}") from err
        root.chmod(fs.DIR_MODE)
        self.root = root

    def _open(self, path: str) -> BinaryIO:
        target = self.root / path
        try:
            target.parent.mkdir(mode=fs.DIR_MODE, parents=True, exist_ok=True)
            fd = os.open(
                target,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                fs.FILE_MODE,
            )
        except OSError as err:
            raise fs.storage_error(err, f"write {target}") from err
        return os.fdopen(fd, "wb")

    def add(self, path: str, data: bytes) -> None:
        with self._open(path) as f:
            f.write(data)

    def add_stream(self, path: str, size: int, write: Writer) -> None:
        with self._open(path) as f:
            write(f)


class TarSink:
    """A tar stream (inside an age file, for one recipient)."""

    def __init__(self, stream: Any) -> None:
        self.tar = tarfile.open(fileobj=stream, mode="w|")  # noqa: SIM115

    def _info(self, path: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(f"record/{path}")
        info.size, info.mode, info.uname, info.gname = size, 0o600, "", ""
        return info

    def add(self, path: str, data: bytes) -> None:
        self.tar.addfile(self._info(path, len(data)), io.BytesIO(data))

    def add_stream(self, path: str, size: int, write: Writer) -> None:
        """Stream ``write``'s output into the tar through a pipe (bounded memory)."""
        read_fd, write_fd = os.pipe()
        errors: list[BaseException] = []

        def produce() -> None:
            with os.fdopen(write_fd, "wb") as sink:
                try:
                    write(sink)
                except BaseException as err:  # noqa: BLE001 - re-raised below
                    errors.append(err)

        worker = threading.Thread(target=produce, daemon=True)
        worker.start()
        try:
            with os.fdopen(read_fd, "rb") as source:
                self.tar.addfile(self._info(path, size), source)
        except (OSError, tarfile.TarError) as err:
            worker.join()
            raise (errors[0] if errors else err) from err
        worker.join()
        if errors:
            raise errors[0]

    def close(self) -> None:
        self.tar.close()


def _front_matter(meta: fmt.NoteMeta, signature: str, name: str) -> str:
    lines = [
        "---",
        f"note: {meta.id}",
        f"client: {name} ({meta.client})",
        f"kind: {meta.kind}",
        f"title: {meta.title}",
        f"date: {meta.date}",
        f"written: {meta.created}",
        f"status: {meta.status}",
        f"signature: {signature}",
    ]
    if meta.signed_at:
        lines.append(f"signed: {meta.signed_at}")
    if meta.addendum_of:
        lines.append(f"addendum to: {meta.addendum_of}")
    if meta.filename:
        lines.append(f"file: {meta.filename} ({meta.body_size} bytes)")
    lines += [f"sha256: {meta.body_sha256}", "---", ""]
    return "\n".join(lines)


class RecordsMixin:
    """export_client and shred_client of ``Vault``."""

    store: Any
    _reading: Any
    _writing: Any
    _root_doc: Any
    _write_root: Any
    _resolve_client: Any
    _open_compartment: Any
    _compartments: Any
    _read: Any
    _signers: Any
    _note_audit: Any
    _audit_read: Any
    now: Any

    def export_client(
        self, client: str, sink: ExportSink, *, psychotherapy: bool = False
    ) -> ExportResult:
        """Write a client's whole record (notes as Markdown, files, an index) to ``sink``."""
        rows = []
        notes = attachments = 0
        with self._reading() as current:
            root = self._root_doc(current)
            cid = self._resolve_client(root, client)
            name = root["clients"][cid]["name"]
            comps: list[Compartment] = self._compartments(root, [cid], psychotherapy)
            profile = comps[0].index.get("profile", {}) if comps else {}
            for comp in comps:
                for entry in sorted(comp.notes, key=lambda e: (e["date"], e["id"])):
                    meta = fmt.meta_of_entry(entry)
                    status = fmt.signature_status(meta, self._signers())
                    stem = f"{meta.date[:10]}_{meta.id}"
                    if meta.kind == "attachment":
                        file_name = f"attachments/{meta.id}_{safe_name(meta.filename or 'file')}"
                        sink.add_stream(
                            file_name,
                            meta.body_size,
                            lambda dst, note=entry["id"]: self._stream_attachment(
                                note, dst
                            ),
                        )
                        sink.add(
                            f"notes/{stem}.md",
                            _front_matter(meta, status, name).encode(),
                        )
                        attachments += 1
                    else:
                        _, body = self._read(comp, entry)
                        sink.add(
                            f"notes/{stem}.md",
                            _front_matter(meta, status, name).encode() + body,
                        )
                        file_name = f"notes/{stem}.md"
                        notes += 1
                    rows.append(
                        f"| {meta.date[:10]} | {meta.kind} | {meta.title} | {meta.status} "
                        f"| {status} | {file_name} |"
                    )
            index = [
                f"# Record of {name}",
                "",
                f"Client ID: {cid}",
                f"Exported: {self.now()}",
                "",
            ]
            index += [
                f"- {k}: {v}" for k, v in sorted(profile.get("fields", {}).items())
            ]
            if not psychotherapy:
                index += [
                    "",
                    "Psychotherapy notes are not included (export with --psychotherapy).",
                ]
            index += [
                "",
                "| date | kind | title | status | signature | file |",
                "|---|---|---|---|---|---|",
                *rows,
                "",
            ]
            sink.add("index.md", "\n".join(index).encode())
        self._audit_read(
            "export",
            cid,
            None,
            notes=notes,
            attachments=attachments,
            psychotherapy=psychotherapy,
        )
        return ExportResult(
            client=cid,
            client_name=name,
            notes=notes,
            attachments=attachments,
            psychotherapy=psychotherapy,
        )

    def shred_client(self, client: str) -> ShredResult:
        """Destroy a client's keys and every sealed file of theirs (crypto-shredding)."""
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            cid = self._resolve_client(root, client)
            destroyed = 0
            notes = 0
            for name, entry in root["clients"][cid]["compartments"].items():
                comp = self._open_compartment(root, cid, name)
                for note in comp.notes if comp else []:
                    txn.retire(note["object"])
                    destroyed += 1
                    notes += 1
                txn.retire(entry["index"])
                txn.retire(entry["key"])
                destroyed += 2
            del root["clients"][cid]
            for grant in root.get("grants", []):
                grant["clients"] = [c for c in grant.get("clients", []) if c != cid]
            root["pending_rotation"] = [
                p for p in root.get("pending_rotation", []) if p[0] != cid
            ]
            self._note_audit("client-shred", cid, None, notes=notes)
            self._write_root(txn, root)
        return ShredResult(
            client=cid, notes=notes, files_destroyed=destroyed, limits=SHRED_LIMITS
        )


def seal_export(
    vault: Any,
    client: str,
    recipient: age.X25519Recipient,
    out: BinaryIO,
    *,
    psychotherapy: bool = False,
) -> ExportResult:
    """The export as one age file (a tar inside) that ``recipient`` opens with stock age."""
    with age.EncryptWriter(out, [recipient]) as writer:
        sink = TarSink(writer)
        result: ExportResult = vault.export_client(
            client, sink, psychotherapy=psychotherapy
        )
        sink.close()
    return result
