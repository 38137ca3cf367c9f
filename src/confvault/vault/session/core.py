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

from confvault import age
from confvault.errors import (
    IntegrityError,
    NoIdentityMatchError,
    ReadOnlyError,
    RollbackMemoryError,
    VaultNotFoundError,
    VaultReadOnlyError,
    WrongPassphraseError,
)
from confvault.vault.model import identity
from confvault.vault.model.audit import AuditEvent, Stamped
from confvault.vault.model.clock import Clock, iso, utc_now
from confvault.vault.model.directory import GranteeDirectory
from confvault.vault.model.identity import JOURNAL_MAC_LABEL
from confvault.vault.model.policy import DEFAULT_LOCK_TIMEOUT
from confvault.vault.model.root import RootRecord
from confvault.vault.session import directories, spool, trail
from confvault.vault.store import (
    fs,
    manifest,
    root_index,
    sealing,
    signing,
)
from confvault.vault.store.hardening import harden_process
from confvault.vault.store.objects import ObjectStore
from confvault.vault.store.paths import default_state_dir
from confvault.vault.store.seen import SeenStore
from confvault.vault.store.transaction import Transaction, recover

DEFAULT_MAX_KEY_AGE_DAYS = 180


class Session:
    """An open vault, passed to every operation (see ``confvault.vault.ops``)."""

    def __init__(
        self,
        root: Path,
        *,
        owner: identity.OwnerKeys | None,
        reader: age.AnyIdentity | None = None,
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
        # The root as last read or written, keyed by the object it is sealed
        # in (for a grantee, by its directory's object).
        self.root_cache: tuple[str, RootRecord] | None = None
        self.root_buckets = root_index.Buckets()
        self.directory: GranteeDirectory | None = None  # a grantee's, once read
        self.audit_pending: list[AuditEvent] = []
        self.new_vault_id: str | None = None
        # True when this machine had no memory of the vault before this open
        # (trust on first use: the caller tells the user whose key it trusts).
        self.first_use = False
        self.pinned_owner_key = ""  # 32 hex digits, from --owner-key
        # The vault cannot be written here (found once, on open): writes are
        # refused and reads are recorded in this machine's spool (session.spool).
        self.read_only = False
        self.spooling = spool.SpoolState()
        self.audit_stamped: list[Stamped] = []  # spooled reads to fold, as written

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
        seen = self.seen.check_manifest(self.root, loaded.body)
        if seen is None and self.manifest is None:
            self.first_use = True
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
        with fs.locked(self.disk, exclusive=False, timeout=self.lock_timeout):
            yield self.load_manifest()

    @contextlib.contextmanager
    def writing(self) -> Iterator[Transaction]:
        if self.owner is None:
            raise ReadOnlyError("this vault was opened read-only with a grantee key")
        if self.read_only:
            raise VaultReadOnlyError(
                f"the vault at {self.root} is read-only here (read-only media, or "
                "no write permission): this command writes, nothing was changed"
            )
        with fs.locked(self.disk, exclusive=True, timeout=self.lock_timeout):
            current = self.load_manifest()
            key = self.require_owner().mac_key(JOURNAL_MAC_LABEL)
            _, refused = recover(self.store, current, key)
            for name in refused:  # reported where the owner will see it
                self.note_audit("journal-refused", file=name)
            txn = self.transaction(current, current.body.vault_id)
            try:
                yield txn
                spool.take(self, txn)
                folded = trail.fold_audit(self, txn)
                spool.mark(self, txn)
            except BaseException:
                txn.abort()
                self.audit_pending.clear()
                spool.forget(self)
                # The buckets may name objects of this aborted write: read again.
                self.root_cache = None
                raise
            if not txn.empty:
                self.commit(txn, current.body.vault_id)
            trail.after_audit_commit(self, folded)
            spool.after_commit(self)

    def transaction(
        self, current: manifest.Manifest | None, vault_id: str
    ) -> Transaction:
        key = self.require_owner().mac_key(JOURNAL_MAC_LABEL)
        return Transaction(self.store, current, key=key, vault_id=vault_id)

    def commit(self, txn: Transaction, vault_id: str) -> None:
        owner = self.require_owner()
        signer = signing.b64(owner.signer)
        # The rollback memory fails closed: no change it could not remember.
        try:
            self.seen.check_writable()
        except RollbackMemoryError:
            txn.abort()
            self.audit_pending.clear()
            self.root_cache = None  # it may be the root this write did not commit
            raise
        new = txn.commit(
            vault_id=vault_id, signer=signer, sign=owner.sign, time=iso(self.clock())
        )
        self.manifest = new
        self.seen.record(vault_id, new.generation, signer, strict=True)
        self.seen.record_place(self.root, vault_id, strict=True)

    def require_owner(self) -> identity.OwnerKeys:
        if self.owner is None:
            raise ReadOnlyError("this vault was opened read-only with a grantee key")
        return self.owner

    def root_record(self, current: manifest.Manifest | None) -> RootRecord:
        """The root of ``current`` (for a grantee, its directory's view);
        ``current`` is a transaction's, None only before the vault exists."""
        if current is None:
            raise VaultNotFoundError(f"no manifest loaded for {self.root}")
        if self.owner is None:
            return self.grantee_root(current)
        digest = required_pointer(current, "root")
        if self.root_cache is None or self.root_cache[0] != digest:
            root, self.root_buckets = root_index.read(
                self.store, self.owner, digest, current.body.vault_id
            )
            self.root_cache = (digest, root)
        return self.root_cache[1]

    def grantee_root(self, current: manifest.Manifest) -> RootRecord:
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
            self.directory = GranteeDirectory.from_doc(doc)
            self.root_cache = (digest, self.directory.as_root())
            return self.root_cache[1]
        raise WrongPassphraseError(
            "this key has no access to the vault (no grant, or revoked)"
        )

    def identities(self) -> list[age.Identity]:
        if self.owner is not None:
            return [self.owner]
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
        txn: Transaction,
        root: RootRecord,
        changed: Collection[str] | None = None,
    ) -> RootRecord:
        """Seal the new root index (after bringing grantee directories in line);
        return it as written (with its grants' new directory hashes).

        ``changed``: the only clients this write changed (see root_index.write).
        """
        root = directories.sync_grantees(self, txn, root, changed)
        current = txn.current
        txn.retire(current.pointer("root") if current else None)
        digest, self.root_buckets = root_index.write(
            txn, root, self.root_buckets, self.require_owner().recipient, changed
        )
        txn.point("root", digest)
        # The next command of this process reads this root: keep it, keyed by
        # its digest (if the commit fails, the manifest names another digest).
        self.root_cache = (digest, root)
        return root

    def note_audit(
        self,
        action: str,
        client: str | None = None,
        note: str | None = None,
        **details: object,
    ) -> None:
        """Queue an audit entry; it is committed with the current transaction."""
        self.audit_pending.append(AuditEvent.of(action, client, note, details))

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
