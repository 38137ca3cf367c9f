"""``Vault``: the facade the CLI calls. No terminal, no prints, no exits.

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
import datetime as dt
import secrets
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from confvault import age
from confvault.errors import (
    IntegrityError,
    KeyFormatError,
    NoIdentityMatchError,
    ReadOnlyError,
    UnsafeInputError,
    VaultExistsError,
    VaultNotFoundError,
    WrongPassphraseError,
)
from confvault.vault.model import identity
from confvault.vault.store import (
    fs,
    manifest,
    root_index,
    sealing,
    signing,
    transaction,
)
from confvault.vault.store.hardening import harden_process
from confvault.vault.store.objects import OBJECTS_DIR, ObjectStore
from confvault.vault.store.paths import (
    DEFAULT_LOCK_TIMEOUT,
    check_vault_dir,
    default_state_dir,
)
from confvault.vault.store.seen import SeenStore

Clock = Callable[[], dt.datetime]
ROOT_FORMAT = root_index.ROOT_V1  # the grantee's view keeps the v1 shape
GRANTEE_POINTER = "grantee:"
DEFAULT_MAX_KEY_AGE_DAYS = 180


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return (
        moment.astimezone(dt.UTC)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z")
    )


class VaultCore:
    """Opening, locking, the manifest and the root index; see ``Vault``."""

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
        self._root_cache: tuple[str, dict[str, Any]] | None = None
        self._root_buckets = root_index.Buckets()
        self._audit_pending: list[dict[str, Any]] = []
        self._new_vault_id: str | None = None
        # True when this machine had no memory of the vault before this open
        # (trust on first use: the caller tells the user whose key it trusts).
        self.first_use = False
        self.pinned_owner_key = ""  # 32 hex digits, from --owner-key

    # --- creation and opening -------------------------------------------------

    @classmethod
    def init(
        cls,
        path: Path,
        passphrase: bytes,
        *,
        work_factor: int = identity.DEFAULT_WORK_FACTOR,
        recovery_key: bool = True,
        clock: Clock = utc_now,
        state_dir: Path | None = None,
        min_work_factor: int = identity.MIN_WORK_FACTOR,
    ) -> tuple[Any, str | None]:
        """Create a vault at ``path``; return it and the recovery key (shown once).

        ``min_work_factor`` exists so tests and benchmarks can use a cheap
        scrypt cost; the product's floor is ``identity.MIN_WORK_FACTOR``.
        """
        if not min_work_factor <= work_factor <= identity.MAX_WORK_FACTOR:
            raise ValueError(
                f"work factor must be between {min_work_factor} and {identity.MAX_WORK_FACTOR}"
            )
        _prepare_empty_dir(path)
        for sub in (OBJECTS_DIR, manifest.SHARDS_DIR, fs.TMP_DIR):
            fs.ensure_dir(path / sub)
        owner = identity.OwnerIdentity.generate()
        vault = cls(path, owner=owner, clock=clock, state_dir=state_dir)
        vault_id = secrets.token_hex(16)
        recovery: age.X25519Identity | None = (
            age.X25519Identity.generate() if recovery_key else None
        )
        with fs.locked(path, exclusive=True, timeout=vault.lock_timeout):
            txn = vault._transaction(None, vault_id)
            txn.point(
                "owner",
                txn.put(owner.seal_with_passphrase(vault_id, passphrase, work_factor)),
            )
            if recovery is not None:
                txn.point(
                    "recovery", txn.put(owner.seal_to(vault_id, recovery.recipient))
                )
            root_doc = {
                "vault": vault_id,
                "clients": {},
                "grants": [],
                "settings": {
                    "work_factor": work_factor,
                    "created": iso(clock()),
                    "max_key_age_days": DEFAULT_MAX_KEY_AGE_DAYS,
                    # public: lets `identity rotate` keep the recovery key working
                    "recovery_recipient": str(recovery.recipient) if recovery else None,
                },
            }
            digest, _ = root_index.write(
                txn, root_doc, root_index.Buckets(), owner.recipient
            )
            txn.point("root", digest)
            vault._new_vault_id = vault_id
            vault._note_audit("vault-init")
            vault._fold_audit(txn)
            vault._commit(txn, vault_id)
        return vault, (recovery.encode() if recovery else None)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        passphrase: bytes | None = None,
        recovery_key: str | None = None,
        reader: age.X25519Identity | None = None,
        clock: Clock = utc_now,
        state_dir: Path | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        owner_key: str | None = None,
    ) -> Any:
        """Open with the passphrase, the recovery key, or (read-only) a grantee key.

        ``owner_key`` pins the owner's signing key by its fingerprint (as
        ``owner_key_fingerprint`` shows it, given with a grant): a manifest
        signed by any key that does not descend from it is refused.
        """
        check_vault_dir(path)
        vault = cls(
            path,
            owner=None,
            reader=reader,
            clock=clock,
            state_dir=state_dir,
            lock_timeout=lock_timeout,
        )
        if owner_key is not None:
            vault.pinned_owner_key = signing.normal_fingerprint(owner_key)
            if not vault.pinned_owner_key:
                raise KeyFormatError(
                    "an owner key fingerprint is 32 hex digits (as `confvault "
                    "status` shows it)"
                )
        with vault._reading() as current:
            if passphrase is not None:
                sealed = vault.store.get(_required_pointer(current, "owner"))
                vault.owner = identity.unseal_with_passphrase(sealed, passphrase)
            elif recovery_key is not None:
                sealed = vault.store.get(_required_pointer(current, "recovery"))
                vault.owner = identity.unseal_with_identity(
                    sealed, age.parse_identity(recovery_key)
                )
            elif reader is None:
                raise ValueError(
                    "open needs a passphrase, a recovery key or a reader identity"
                )
            else:
                vault._grantee_root(current)  # fails now if the key has no grant
            if (
                vault.owner is not None
                and signing.b64(vault.owner.signer) != current.body.signer
            ):
                raise IntegrityError(
                    "the manifest is not signed by this vault's owner key"
                )
        return vault

    # --- locking, manifest, transactions ----------------------------------------

    def _load_manifest(self) -> manifest.Manifest:
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
    def _reading(self) -> Iterator[manifest.Manifest]:
        with fs.locked(self.root, exclusive=False, timeout=self.lock_timeout):
            yield self._load_manifest()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[transaction.Transaction]:
        if self.owner is None:
            raise ReadOnlyError("this vault was opened read-only with a grantee key")
        with fs.locked(self.root, exclusive=True, timeout=self.lock_timeout):
            current = self._load_manifest()
            key = transaction.journal_key(self._owner().signing_seed)
            _, refused = transaction.recover(self.store, current, key)
            for name in refused:  # reported where the owner will see it
                self._note_audit("journal-refused", file=name)
            txn = self._transaction(current, current.body.vault_id)
            try:
                yield txn
                folded = self._fold_audit(txn)
            except BaseException:
                txn.abort()
                self._audit_pending.clear()
                # Callers change the cached root in place: forget it.
                self._root_cache = None
                raise
            if not txn.empty:
                self._commit(txn, current.body.vault_id)
            self._after_audit_commit(folded)

    def _transaction(
        self, current: manifest.Manifest | None, vault_id: str
    ) -> transaction.Transaction:
        key = transaction.journal_key(self._owner().signing_seed)
        return transaction.Transaction(self.store, current, key=key, vault_id=vault_id)

    def _commit(self, txn: transaction.Transaction, vault_id: str) -> None:
        owner = self._owner()
        signer = signing.b64(owner.signer)
        new = txn.commit(
            vault_id=vault_id, signer=signer, sign=owner.sign, time=iso(self.clock())
        )
        self.manifest = new
        self.seen.record(vault_id, new.generation, signer)
        self.seen.record_place(self.root, vault_id)

    def _owner(self) -> identity.OwnerIdentity:
        if self.owner is None:
            raise ReadOnlyError("this vault was opened read-only with a grantee key")
        return self.owner

    # --- the root index ---------------------------------------------------------------

    def _root_doc(self, current: manifest.Manifest) -> dict[str, Any]:
        if self.owner is None:
            return self._grantee_root(current)
        digest = _required_pointer(current, "root")
        if self._root_cache is None or self._root_cache[0] != digest:
            doc, self._root_buckets = root_index.read(
                self.store, self.owner.x25519, digest, current.body.vault_id
            )
            self._root_cache = (digest, doc)
        return self._root_cache[1]

    def _grantee_root(self, current: manifest.Manifest) -> dict[str, Any]:
        """A grantee's view: the directory of the clients granted to its key."""
        if self.reader is None:
            raise ReadOnlyError("no key to open the vault with")
        for name, digest in sorted(current.body.pointers.items()):
            if not name.startswith(GRANTEE_POINTER):
                continue
            if self._root_cache is not None and self._root_cache[0] == digest:
                return self._root_cache[1]
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
            self._root_cache = (digest, root)
            return root
        raise WrongPassphraseError(
            "this key has no access to the vault (no grant, or revoked)"
        )

    def _identities(self) -> list[age.Identity]:
        if self.owner is not None:
            return [self.owner.x25519]
        if self.reader is not None:
            return [self.reader]
        raise ReadOnlyError("no key to open the vault with")

    def _signers(self) -> set[str]:
        """Every owner signing key this vault has had (current and endorsed former)."""
        if self.manifest is None:
            raise VaultNotFoundError("vault not loaded")
        return {self.manifest.body.signer} | self.manifest.body.former_signers

    def _write_root(
        self,
        txn: transaction.Transaction,
        doc: dict[str, Any],
        changed: Collection[str] | None = None,
    ) -> None:
        """Seal the new root index (after bringing grantee directories in line).

        ``changed``: the only clients this write changed (see root_index.write).
        """
        self._sync_grantees(txn, doc, changed)
        current = txn.current
        txn.retire(current.pointer("root") if current else None)
        digest, self._root_buckets = root_index.write(
            txn, doc, self._root_buckets, self._owner().recipient, changed
        )
        txn.point("root", digest)
        # The next command of this process reads this root: keep it, keyed by
        # its digest (if the commit fails, the manifest names another digest).
        self._root_cache = (digest, doc)

    def _sync_grantees(
        self,
        txn: transaction.Transaction,
        root: dict[str, Any],
        changed: Collection[str] | None = None,
    ) -> None:
        """Overridden by the access mixin; a vault without it has no grants."""

    def _note_audit(
        self,
        action: str,
        client: str | None = None,
        note: str | None = None,
        **details: Any,
    ) -> None:
        """Queue an audit entry; it is committed with the current transaction."""
        self._audit_pending.append(
            {"action": action, "client": client, "note": note, "details": details}
        )

    def _fold_audit(self, txn: transaction.Transaction) -> list[Path]:
        """Overridden by the audit mixin: append queued entries to the chain."""
        return []

    def _after_audit_commit(self, folded: list[Path]) -> None:
        """Overridden by the audit mixin: remove inbox files now in the chain."""

    def status(self) -> Any:
        """Counts, key ages, grants and the last verify, for the dashboard."""
        from confvault.vault.model.results import VaultStatus

        with self._reading() as current:
            root = self._root_doc(current)
            comps = [
                (name, entry)
                for c in root["clients"].values()
                for name, entry in c["compartments"].items()
            ]
            keys = sorted(entry["key_created"] for _, entry in comps)
            last = self.seen.last_verify(current.body.vault_id)
            return VaultStatus(
                path=str(self.root),
                vault_id=current.body.vault_id,
                generation=current.generation,
                clients=len(root["clients"]),
                notes=sum(e.get("notes", 0) for _, e in comps),
                drafts=sum(e.get("drafts", 0) for _, e in comps),
                psychotherapy_notes=sum(
                    e.get("notes", 0) for n, e in comps if n == "psychotherapy"
                ),
                attachments=sum(e.get("attachments", 0) for _, e in comps),
                objects=current.body.objects,
                last_change=current.body.time,
                last_verify=(
                    f"{last[0]} ({'ok' if last[1] else 'PROBLEMS FOUND'})"
                    if last
                    else None
                ),
                oldest_key=keys[0] if keys else None,
                newest_key=keys[-1] if keys else None,
                grants=len(root.get("grants", [])),
                work_factor=root.get("settings", {}).get("work_factor"),
                recovery_key=current.pointer("recovery") is not None,
                owner_key=self.owner_key_fingerprint(current),
            )

    # --- verification -----------------------------------------------------------------

    def verify(self, *, deep: bool = False, progress: Any = None) -> Any:
        """Keyless checks, and with ``deep`` every note decrypted and its signature checked."""
        from confvault.vault.check import keyless as checks

        with fs.locked(self.root, exclusive=False, timeout=self.lock_timeout):
            report, current = checks.verify_keyless(
                self.root, seen=self.seen, progress=progress
            )
            if deep and current is not None and self.owner is not None:
                self.manifest = current
                report = checks.verify_deep(self, report, current, progress)
            # Under the lock: a writer committing in between would otherwise have
            # its generation overwritten by this read-modify-write of the memory.
            self.seen.record_verify(
                report.vault_id or self.vault_id, self.now(), report.ok
            )
        if deep and report.ok:
            self._audit_read("verify-deep", notes=report.notes_checked)
        return report

    def _audit_read(
        self,
        action: str,
        client: str | None = None,
        note: str | None = None,
        **details: Any,
    ) -> None:
        """Overridden by the audit mixin."""

    @property
    def vault_id(self) -> str:
        if self.manifest is None:
            raise VaultNotFoundError("vault not loaded")
        return self.manifest.body.vault_id

    def now(self) -> str:
        return iso(self.clock())


def _required_pointer(current: manifest.Manifest, name: str) -> str:
    digest = current.pointer(name)
    if digest is None:
        raise IntegrityError(f"the manifest has no {name} entry")
    return digest


def _prepare_empty_dir(path: Path) -> None:
    if path.is_symlink():
        raise UnsafeInputError(f"{path} is a symlink; give the real directory")
    if path.exists():
        if not path.is_dir():
            raise VaultExistsError(f"{path} exists and is not a directory")
        if any(path.iterdir()):
            raise VaultExistsError(
                f"{path} is not empty; a vault needs an empty directory"
            )
        path.chmod(fs.DIR_MODE)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=fs.DIR_MODE)
        path.mkdir(mode=fs.DIR_MODE)
    except OSError as err:
        raise fs.storage_error(err, f"create {path}") from err
