"""One write transaction: new objects, then one manifest swap, then cleanup.

Crash safety: objects are written (temp + rename) and made durable before the
manifest is replaced atomically; a journal in tmp/ lists what the transaction
added and retires, so the next writer removes the leftovers of a transaction
that was interrupted, whichever side of the manifest swap it died on. The
journal is durable before anything it names moves in, and is removed only
once what it removed is durably gone.

A journal is hostile until checked: it carries an HMAC keyed from the owner's
signing key (only the owner's process holds it) over its name, the vault ID
and its lists, and every name in it must match the object or shard grammar.
A journal that fails either check is never obeyed: it is removed (by its own
checked name, in tmp/) and reported to the caller, which audits it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping, Sequence

from confvault import age
from confvault.errors import UnsafeInputError
from confvault.vault.store import fs, layout, manifest, sealing
from confvault.vault.store.objects import ObjectStore, Sink

JOURNAL_SUFFIX = fs.JOURNAL_SUFFIX
_JOURNAL_KEY_LABEL = b"confvault/journal-mac/v1"  # identity.JOURNAL_MAC_LABEL


def journal_key(signing_seed: bytes) -> bytes:
    """The journals' MAC key, derived from the owner's signing key."""
    return owner_mac_key(signing_seed, _JOURNAL_KEY_LABEL)


def owner_mac_key(signing_seed: bytes, label: bytes) -> bytes:
    """A MAC key only the owner's process can derive (from its signing key),
    one per ``label``: the journals', and the read spool's (``session.spool``)."""
    return hmac.new(signing_seed, label, hashlib.sha256).digest()


def owner_mac(
    key: bytes, name: str, vault_id: str, content: Mapping[str, object]
) -> str:
    """The MAC of a file the owner's process wrote outside the manifest: over
    its name, the vault ID and its content (a journal's lists, a spool entry)."""
    message = json.dumps([name, vault_id, content], sort_keys=True).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class Transaction:
    """Collects a transaction's changes; ``commit`` makes them all or nothing."""

    def __init__(
        self,
        store: ObjectStore,
        current: manifest.Manifest | None,
        *,
        key: bytes,
        vault_id: str,
    ) -> None:
        self.disk = store.disk
        self.store = store
        self.current = current
        self.key = key
        self.vault_id = vault_id
        self.changes = manifest.Changes()
        self._pending: dict[str, fs.TempFile] = {}

    def put(self, data: bytes) -> str:
        """Store a sealed object; return its name."""
        digest, temp = self.store.put(data)
        self._added(digest, temp)
        return digest

    def put_stream(self, write: Callable[[Sink], None]) -> str:
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
        return temp.read() if temp is not None else None

    def abort(self) -> None:
        """Drop everything written so far; nothing was committed."""
        for temp in self._pending.values():
            temp.discard()
        self._pending.clear()

    def put_document(
        self, doc: Mapping[str, object], recipients: Sequence[age.Recipient]
    ) -> str:
        """Seal and store a JSON document."""
        return self.put(sealing.seal_document(doc, recipients))

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
        journal = self._objects_in(body, shard_files)
        signature = sign(manifest.canonical(body.to_json()))
        raw = manifest.encode(body, signature)
        fs.atomic_write(self.disk, "", manifest.MANIFEST_NAME, raw)
        new = manifest.Manifest(self.disk, body, known, raw)
        collect(self.store, journal, new, self.key, vault_id)
        return new

    def commit_foreign(
        self, new: manifest.Manifest, shard_files: Mapping[str, bytes]
    ) -> manifest.Manifest:
        """Commit a manifest signed elsewhere, as it is (sync's apply step).

        The caller has verified ``new`` (signature, signer, rollback memory,
        every object it names) and ``put`` each object it adds and
        ``retire``d each it drops; ``shard_files`` holds its shard files by
        name. The same protocol as ``commit``: journal, durable objects and
        shards, the manifest swapped atomically, then the garbage removed.
        """
        if self.current is None or new.body.vault_id != self.vault_id:
            raise UnsafeInputError("a foreign manifest only replaces its own vault's")
        old = set(self.current.body.shards.values())
        wanted = {n: shard_files[n] for n in set(new.body.shards.values()) - old}
        journal = self._objects_in(new.body, wanted)
        fs.atomic_write(self.disk, "", manifest.MANIFEST_NAME, new.raw)
        live = manifest.Manifest(self.disk, new.body, raw=new.raw)
        collect(self.store, journal, live, self.key, self.vault_id)
        return live

    def _objects_in(
        self, body: manifest.ManifestBody, shard_files: Mapping[str, bytes]
    ) -> str:
        """The journal, then this transaction's objects and the new shard
        files moved in and made durable; returns the journal's name."""
        old_shards = set(self.current.body.shards.values()) if self.current else set()
        garbage_shards = old_shards - set(body.shards.values())
        journal = self._write_journal(garbage_shards | set(shard_files))
        moved: list[tuple[str, str]] = []
        for temp in self._pending.values():
            temp.move()
            moved.append((temp.rel, temp.name))
        for name, data in shard_files.items():
            temp = fs.TempFile(self.disk, manifest.SHARDS_DIR, name)
            temp.write(data)
            temp.finish(fsync=False)
            moved.append((manifest.SHARDS_DIR, name))
        fs.make_durable(self.disk, moved)
        return journal

    def _write_journal(self, shards: set[str]) -> str:
        """Written first: names everything this transaction may leave behind.

        Durable (file and tmp/ synced) before the first object moves in: after
        a power cut an object without its journal would stay forever, and a
        journal whose name survived but not its bytes would be refused as
        planted (a false alarm in the audit trail).
        """
        name = f"txn-{os.getpid()}-{os.urandom(4).hex()}{JOURNAL_SUFFIX}"
        lists = {
            "added": sorted(self.changes.added),
            "retired": sorted(self.changes.removed),
            "shards": sorted(shards),
        }
        doc = dict(lists, mac=owner_mac(self.key, name, self.vault_id, lists))
        fs.atomic_write(self.disk, fs.TMP_DIR, name, json.dumps(doc).encode())
        return name


def _checked_lists(
    data: bytes, name: str, key: bytes, vault_id: str
) -> dict[str, list[str]] | None:
    """The journal's lists if it is ours and well formed; None otherwise."""
    try:
        doc = json.loads(data)
        lists = {k: doc[k] for k in ("added", "retired", "shards")}
        mac = doc["mac"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(mac, str) or not hmac.compare_digest(
        mac, owner_mac(key, name, vault_id, lists)
    ):
        return None
    for names in lists.values():
        if not isinstance(names, list) or not all(
            isinstance(n, str) and layout.HASH.fullmatch(n) for n in names
        ):
            return None
    return lists


def collect(
    store: ObjectStore,
    journal: str,
    live: manifest.Manifest,
    key: bytes,
    vault_id: str,
) -> bool:
    """Remove what a (finished or interrupted) transaction left unreferenced.

    False when the journal was not ours (planted or altered): it is removed
    without acting on anything it says.
    """
    disk = store.disk
    try:
        data = disk.read(fs.TMP_DIR, journal)
    except FileNotFoundError:
        return True
    lists = _checked_lists(data, journal, key, vault_id)
    emptied: set[str] = set()  # directories something was removed from
    if lists is not None:
        for digest in [*lists["added"], *lists["retired"]]:
            if not live.contains(digest):
                store.remove(digest)
                emptied.add(layout.bucket_of(digest))
        live_shards = set(live.body.shards.values())
        for name in lists["shards"]:
            if name not in live_shards:
                disk.remove(manifest.SHARDS_DIR, name)
                emptied.add(manifest.SHARDS_DIR)
    # Only the journal says these were garbage: it goes once they are durably
    # gone (a file system that does not keep metadata in order can bring
    # removed files back after a power cut).
    fs.sync_dirs(disk, emptied)
    disk.remove(fs.TMP_DIR, journal)
    return lists is not None


def recover(
    store: ObjectStore, live: manifest.Manifest, key: bytes
) -> tuple[int, list[str]]:
    """Finish the cleanup of interrupted transactions (writer lock held).

    Returns how many leftovers were cleaned, and the names of journals that
    were refused (not authenticated by this vault's owner key).
    """
    refused = []
    journals = [n for n in store.disk.names(fs.TMP_DIR) if layout.JOURNAL.fullmatch(n)]
    for journal in journals:
        try:
            ours = collect(store, journal, live, key, live.body.vault_id)
        except UnsafeInputError:
            # A FIFO, a link or a shared file under a journal's name: unlink
            # the name itself (never what a link points to).
            ours = False
            with contextlib.suppress(OSError):
                store.disk.remove(fs.TMP_DIR, journal)
        if not ours:
            refused.append(journal)
    swept = sweep(store, live) if refused else 0
    return len(journals) + swept + fs.clean_tmp(store.disk), refused


def sweep(store: ObjectStore, live: manifest.Manifest) -> int:
    """Remove every object and shard the live manifest does not name.

    What a refused journal would have cleaned (a journal of an earlier owner
    key, after an identity rotation died just after its commit), found
    without trusting it: the writer lock is held, so nothing unreferenced is
    on its way in. Only names of the object and shard grammar are touched.
    """
    removed = 0
    for digest in store.scan():
        if not live.contains(digest):
            store.remove(digest)
            removed += 1
    live_shards = set(live.body.shards.values())
    for name in store.disk.names(manifest.SHARDS_DIR):
        if layout.HASH.fullmatch(name) and name not in live_shards:
            store.disk.remove(manifest.SHARDS_DIR, name)
            removed += 1
    return removed
