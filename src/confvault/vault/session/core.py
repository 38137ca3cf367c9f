"""An open vault: its directory, its keys, its clock and the commit point.

    vault, recovery_key = Vault.init(path, passphrase)
    vault = Vault.open(path, passphrase=passphrase)
    client = vault.add_client("A. Client")
    note = vault.add_note(client.id, b"Session went well.", kind="progress")

Every operation takes the vault lock (shared to read, exclusive to write),
re-reads and verifies the signed manifest, and refuses a vault rolled back
below the generation this machine last saw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from confvault import age
from confvault.errors import (
    IntegrityError,
    NoIdentityMatchError,
    ReadOnlyError,
    VaultNotFoundError,
    WrongPassphraseError,
)
from confvault.vault.model import identity
from confvault.vault.model.clock import Clock, iso, utc_now
from confvault.vault.session import directories, trail
from confvault.vault.store import (
    fs,
    manifest,
    root_index,
    sealing,
    signing,
    transaction,
)
from confvault.vault.store.hardening import harden_process
from confvault.vault.store.objects import ObjectStore
from confvault.vault.store.paths import DEFAULT_LOCK_TIMEOUT, default_state_dir
from confvault.vault.store.seen import SeenStore

ROOT_FORMAT = root_index.ROOT_V1  # the grantee's view keeps the v1 shape
DEFAULT_MAX_KEY_AGE_DAYS = 180


class Session:
    """An open vault, passed to every operation (see ``confvault.vault.ops``)."""

    def __init__(
        self,
        root: Path,
        *,
        owner: identity.OwnerIdentity | None,
        reader: age.X25519Identity | None = None,
        clock: Clock = utc_now,
        state_dir: Path | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        harden_process()  # keys and plaintext may live in this process from now on
        self.root = root
        self.disk = fs.Root(root)
        self.store = ObjectStore(self.disk)
        self.owner = owner
        self.reader = reader
        self.clock = clock
        self.lock_timeout = lock_timeout
        self.seen = SeenStore(state_dir or default_state_dir())
        self.manifest: manifest.Manifest | None = None
        self.root_cache: tuple[str, dict[str, Any]] | None = None
        self.root_buckets = root_index.Buckets()
        self.audit_pending: list[dict[str, Any]] = []
        self.new_vault_id: str | None = None
        # True when this machine had no memory of the vault before this open
        # (trust on first use: the caller tells the user whose key it trusts).
        self.first_use = False
        self.pinned_owner_key = ""  # 32 hex digits, from --owner-key

    def load_manifest(self) -> manifest.Manifest:
        if manifest.MANIFEST_NAME not in self.disk.names(""):
            raise VaultNotFoundError(f"no vault at {self.root}")
        raw = manifest.read_raw(self.disk)
        if self.manifest is not None and raw == self.manifest.raw:
            loaded = self.manifest  # the very bytes this process checked or signed
        else:
            loaded = manifest.parse(self.disk, raw)
        if self.pinned_owner_key and not manifest.descends_from_fingerprint(
            loaded.body, self.pinned_owner_key
        ):
            raise IntegrityError(
                "the manifest is not signed by the owner key you pinned "
                f"(--owner-key): it is signed by {self.owner_key_fingerprint(loaded)}"
            )
        self.seen.check_place(self.root, loaded.body.vault_id)
        seen = self.seen.get(loaded.body.vault_id)
        if seen is None and self.manifest is None:
            self.first_use = True
        if seen is not None:
            generation, signer = seen
            if not manifest.signer_descends(loaded.body, signer):
                raise IntegrityError(
                    "the manifest is signed by a different key than this machine saw before"
                )
            if loaded.generation < generation:
                raise IntegrityError(
                    f"the vault was rolled back: generation {loaded.generation} is older "
                    f"than generation {generation} seen before on this machine"
                )
        if self.manifest is not None and self.manifest.body == loaded.body:
            return self.manifest  # unchanged: keep the shards already loaded
        self.seen.record(loaded.body.vault_id, loaded.generation, loaded.body.signer)
        self.seen.record_place(self.root, loaded.body.vault_id)
        self.manifest = loaded
        return loaded

    def owner_key_fingerprint(self, current: manifest.Manifest | None = None) -> str:
        """The fingerprint of the key that signs this vault's manifests."""
        loaded = current or self.manifest
        if loaded is None:
            raise VaultNotFoundError(f"no manifest loaded for {self.root}")
        return signing.fingerprint(loaded.body.signer)

    @contextlib.contextmanager
    def reading(self) -> Iterator[manifest.Manifest]:
        with fs.locked(self.root, exclusive=False, timeout=self.lock_timeout):
            yield self.load_manifest()

    @contextlib.contextmanager
    def writing(self) -> Iterator[transaction.Transaction]:
        if self.owner is None:
            raise ReadOnlyError("this vault was opened read-only with a grantee key")
        with fs.locked(self.root, exclusive=True, timeout=self.lock_timeout):
            current = self.load_manifest()
            key = transaction.journal_key(self.require_owner().signing_seed)
            _, refused = transaction.recover(self.store, current, key)
            for name in refused:  # reported where the owner will see it
                self.note_audit("journal-refused", file=name)
            txn = self.transaction(current, current.body.vault_id)
            try:
                yield txn
                folded = trail.fold_audit(self, txn)
            except BaseException:
                txn.abort()
                self.audit_pending.clear()
                # Callers change the cached root in place: forget it.
                self.root_cache = None
                raise
            if not txn.empty:
                self.commit(txn, current.body.vault_id)
            trail.after_audit_commit(self, folded)

    def transaction(
        self, current: manifest.Manifest | None, vault_id: str
    ) -> transaction.Transaction:
        key = transaction.journal_key(self.require_owner().signing_seed)
        return transaction.Transaction(self.store, current, key=key, vault_id=vault_id)

    def commit(self, txn: transaction.Transaction, vault_id: str) -> None:
        owner = self.require_owner()
        signer = signing.b64(owner.signer)
        new = txn.commit(
            vault_id=vault_id, signer=signer, sign=owner.sign, time=iso(self.clock())
        )
        self.manifest = new
        self.seen.record(vault_id, new.generation, signer)
        self.seen.record_place(self.root, vault_id)

    def require_owner(self) -> identity.OwnerIdentity:
        if self.owner is None:
            raise ReadOnlyError("this vault was opened read-only with a grantee key")
        return self.owner

    def root_doc(self, current: manifest.Manifest) -> dict[str, Any]:
        if self.owner is None:
            return self.grantee_root(current)
        digest = required_pointer(current, "root")
        if self.root_cache is None or self.root_cache[0] != digest:
            doc, self.root_buckets = root_index.read(
                self.store, self.owner.x25519, digest, current.body.vault_id
            )
            self.root_cache = (digest, doc)
        return self.root_cache[1]

    def grantee_root(self, current: manifest.Manifest) -> dict[str, Any]:
        """A grantee's view: the directory of the clients granted to its key."""
        if self.reader is None:
            raise ReadOnlyError("no key to open the vault with")
        for name, digest in sorted(current.body.pointers.items()):
            if not name.startswith(directories.GRANTEE_POINTER):
                continue
            if self.root_cache is not None and self.root_cache[0] == digest:
                return self.root_cache[1]
            try:
                doc = sealing.open_document(
                    self.store.get(digest), [self.reader], "grantee"
                )
            except NoIdentityMatchError:
                continue
            if doc.get("vault") != current.body.vault_id:
                raise IntegrityError("the grantee directory belongs to another vault")
            root = {
                "format": ROOT_FORMAT,
                "vault": doc["vault"],
                "clients": doc["clients"],
                "grants": [],
                "settings": {},
                "grantee": doc.get("grant"),
                "owner_recipient": doc.get("owner_recipient"),
            }
            self.root_cache = (digest, root)
            return root
        raise WrongPassphraseError(
            "this key has no access to the vault (no grant, or revoked)"
        )

    def identities(self) -> list[age.Identity]:
        if self.owner is not None:
            return [self.owner.x25519]
        if self.reader is not None:
            return [self.reader]
        raise ReadOnlyError("no key to open the vault with")

    def signers(self) -> set[str]:
        """Every owner signing key this vault has had (current and endorsed former)."""
        if self.manifest is None:
            raise VaultNotFoundError("vault not loaded")
        return {self.manifest.body.signer} | self.manifest.body.former_signers

    def write_root(
        self,
        txn: transaction.Transaction,
        doc: dict[str, Any],
        changed: Collection[str] | None = None,
    ) -> None:
        """Seal the new root index (after bringing grantee directories in line).

        ``changed``: the only clients this write changed (see root_index.write).
        """
        directories.sync_grantees(self, txn, doc, changed)
        current = txn.current
        txn.retire(current.pointer("root") if current else None)
        digest, self.root_buckets = root_index.write(
            txn, doc, self.root_buckets, self.require_owner().recipient, changed
        )
        txn.point("root", digest)
        # The next command of this process reads this root: keep it, keyed by
        # its digest (if the commit fails, the manifest names another digest).
        self.root_cache = (digest, doc)

    def note_audit(
        self,
        action: str,
        client: str | None = None,
        note: str | None = None,
        **details: Any,
    ) -> None:
        """Queue an audit entry; it is committed with the current transaction."""
        self.audit_pending.append(
            {"action": action, "client": client, "note": note, "details": details}
        )

    @property
    def vault_id(self) -> str:
        if self.manifest is None:
            raise VaultNotFoundError("vault not loaded")
        return self.manifest.body.vault_id

    def now(self) -> str:
        return iso(self.clock())


def required_pointer(current: manifest.Manifest, name: str) -> str:
    digest = current.pointer(name)
    if digest is None:
        raise IntegrityError(f"the manifest has no {name} entry")
    return digest
