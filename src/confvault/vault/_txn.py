"""One write transaction: new objects, then one manifest swap, then cleanup.

Crash safety: objects are written (temp + rename) and made durable before the
manifest is replaced atomically; a journal in tmp/ lists what the transaction
added and retires, so the next writer removes the leftovers of a transaction
that was interrupted, whichever side of the manifest swap it died on.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from confvault import age
from confvault.vault import fs, manifest, records
from confvault.vault.objects import ObjectStore

JOURNAL_SUFFIX = fs.JOURNAL_SUFFIX


class Transaction:
    """Collects a transaction's changes; ``commit`` makes them all or nothing."""

    def __init__(
        self, root: Path, store: ObjectStore, current: manifest.Manifest | None
    ) -> None:
        self.root = root
        self.store = store
        self.current = current
        self.changes = manifest.Changes()
        self._pending: dict[str, fs.TempFile] = {}

    def put(self, data: bytes) -> str:
        """Store a sealed object; return its name."""
        digest, temp = self.store.put(data)
        self._added(digest, temp)
        return digest

    def put_stream(self, write: Callable[[Any], None]) -> str:
        """Store a sealed object written by ``write(sink)`` (streamed)."""
        digest, temp = self.store.put_stream(write)
        self._added(digest, temp)
        return digest

    def _added(self, digest: str, temp: fs.TempFile) -> None:
        self.changes.removed.discard(digest)
        if digest not in self._pending and (
            self.current is None or not self.current.contains(digest)
        ):
            self.changes.added.add(digest)
            self._pending[digest] = temp
        else:
            temp.discard()

    def pending_bytes(self, digest: str) -> bytes | None:
        """The content of an object written in this transaction (for self-checks)."""
        temp = self._pending.get(digest)
        return fs.read_bytes(temp.path) if temp is not None else None

    def abort(self) -> None:
        """Drop everything written so far; nothing was committed."""
        for temp in self._pending.values():
            temp.discard()
        self._pending.clear()

    def put_document(
        self, doc: dict[str, Any], recipients: Sequence[age.Recipient]
    ) -> str:
        """Seal and store a JSON document."""
        return self.put(records.seal_document(doc, recipients))

    def retire(self, digest: str | None) -> None:
        """An object the new state no longer references."""
        if digest is None:
            return
        if digest in self.changes.added:
            # Written and superseded within this transaction: never goes live.
            self.changes.added.discard(digest)
            self._pending.pop(digest).discard()
            return
        self.changes.removed.add(digest)

    def point(self, name: str, digest: str | None) -> None:
        """Set (or with None, drop) a manifest pointer."""
        self.changes.pointers[name] = digest

    @property
    def empty(self) -> bool:
        return not (self.changes.added or self.changes.removed or self.changes.pointers)

    def commit(
        self,
        *,
        vault_id: str,
        signer: str,
        sign: Callable[[bytes], bytes],
        time: str,
    ) -> manifest.Manifest:
        """Durable objects, then the signed manifest, then garbage removal."""
        body, shard_files, known = manifest.next_body(
            self.current, self.changes, vault_id=vault_id, signer=signer, time=time
        )
        shards_dir = self.root / manifest.SHARDS_DIR
        old_shards = set(self.current.body.shards.values()) if self.current else set()
        garbage_shards = old_shards - set(body.shards.values())
        journal = self._write_journal(garbage_shards | set(shard_files))
        paths: list[Path | str] = []
        made: set[str] = set()
        for temp in self._pending.values():
            parent = str(temp.target).rpartition("/")[0]
            if parent not in made:
                fs.ensure_dir(Path(parent))
                made.add(parent)
            temp.move()
            paths.append(temp.target)
        for name, data in shard_files.items():
            target = shards_dir / name
            temp = fs.TempFile(self.root, target)
            temp.write(data)
            temp.finish(fsync=False)
            paths.append(target)
        fs.make_durable(self.root, paths)
        signature = sign(manifest.canonical(body.to_json()))
        raw = manifest.encode(body, signature)
        fs.atomic_write(self.root, self.root / manifest.MANIFEST_NAME, raw)
        new = manifest.Manifest(self.root, body, known, raw)
        collect(self.root, self.store, journal, new)
        return new

    def _write_journal(self, shards: set[str]) -> Path:
        """Written first: names everything this transaction may leave behind."""
        doc = {
            "added": sorted(self.changes.added),
            "retired": sorted(self.changes.removed),
            "shards": sorted(shards),
        }
        path = (
            self.root
            / fs.TMP_DIR
            / f"txn-{os.getpid()}-{os.urandom(4).hex()}{JOURNAL_SUFFIX}"
        )
        temp = fs.TempFile(self.root, path)
        temp.write(json.dumps(doc).encode())
        temp.finish(fsync=False)
        return path


def collect(
    root: Path, store: ObjectStore, journal: Path, live: manifest.Manifest
) -> None:
    """Remove what a (finished or interrupted) transaction left unreferenced."""
    try:
        doc = json.loads(fs.read_bytes(journal))
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            journal.unlink()
        return
    for digest in [*doc.get("added", []), *doc.get("retired", [])]:
        if isinstance(digest, str) and len(digest) == 64 and not live.contains(digest):
            store.remove(digest)
    live_shards = set(live.body.shards.values())
    for name in doc.get("shards", []):
        if isinstance(name, str) and len(name) == 64 and name not in live_shards:
            fs.remove(root / manifest.SHARDS_DIR / name)
    fs.remove(journal)


def recover(root: Path, store: ObjectStore, live: manifest.Manifest) -> int:
    """Finish the cleanup of interrupted transactions (writer lock held)."""
    tmp_dir = root / fs.TMP_DIR
    journals = sorted(tmp_dir.glob(f"*{JOURNAL_SUFFIX}")) if tmp_dir.is_dir() else []
    for journal in journals:
        collect(root, store, journal, live)
    return len(journals) + fs.clean_tmp(root)
