"""Creating a vault and opening one: the two ways to get a ``Session``."""

from __future__ import annotations

import secrets
from pathlib import Path

from confvault import age
from confvault.errors import (
    IntegrityError,
    KeyFormatError,
    KeysMismatchError,
    SharesError,
    UnsafeInputError,
    VaultExistsError,
)
from confvault.vault.model import identity, keykind, policy
from confvault.vault.model.clock import Clock, iso, utc_now
from confvault.vault.model.policy import DEFAULT_LOCK_TIMEOUT
from confvault.vault.model.root import RootRecord, Settings
from confvault.vault.session import spool, trail
from confvault.vault.session.core import (
    DEFAULT_MAX_KEY_AGE_DAYS,
    Session,
    required_pointer,
)
from confvault.vault.store import fs, layout, manifest, root_index, signing
from confvault.vault.store.objects import OBJECTS_DIR
from confvault.vault.store.paths import check_vault_dir
from confvault.vault.store.spool import vault_writable

# The owner key copy sealed to the custodians' executor key (ops/custody).
EXECUTOR_POINTER = "executor"


def create(
    path: Path,
    passphrase: bytes,
    *,
    work_factor: int = policy.DEFAULT_WORK_FACTOR,
    recovery_key: bool = True,
    clock: Clock = utc_now,
    state_dir: Path | None = None,
    min_work_factor: int = policy.MIN_WORK_FACTOR,
    postquantum: bool = True,
) -> tuple[Session, str | None]:
    """Create a vault at ``path``; return it and the recovery key (shown once).

    ``min_work_factor`` exists so tests and benchmarks can use a cheap
    scrypt cost; the product's floor is ``policy.MIN_WORK_FACTOR``.
    ``postquantum=False`` makes a classic (X25519) vault (model/keykind).
    """
    key_kind = keykind.POSTQUANTUM if postquantum else keykind.CLASSIC
    if not min_work_factor <= work_factor <= policy.MAX_WORK_FACTOR:
        raise ValueError(
            f"work factor must be between {min_work_factor} and {policy.MAX_WORK_FACTOR}"
        )
    _prepare_empty_dir(path)
    fs.ensure_dirs(path)
    owner = identity.OwnerIdentity.generate(key_kind)
    vault = Session(path, owner=owner, clock=clock, state_dir=state_dir)
    vault_id = secrets.token_hex(16)
    recovery = keykind.new_identity(key_kind) if recovery_key else None
    with fs.locked(path, exclusive=True, timeout=vault.lock_timeout):
        txn = vault.transaction(None, vault_id)
        txn.point(
            "owner",
            txn.put(owner.seal_with_passphrase(vault_id, passphrase, work_factor)),
        )
        if recovery is not None:
            txn.point("recovery", txn.put(owner.seal_to(vault_id, recovery.recipient)))
        settings = Settings(
            work_factor=work_factor,
            created=iso(clock()),
            max_key_age_days=DEFAULT_MAX_KEY_AGE_DAYS,
            # public: lets `identity rotate` keep the recovery key working
            recovery_recipient=str(recovery.recipient) if recovery else None,
            keys=key_kind,
        )
        root = RootRecord(vault_id, {}, grants=(), settings=settings)
        digest, _ = root_index.write(txn, root, root_index.Buckets(), owner.recipient)
        txn.point("root", digest)
        vault.new_vault_id = vault_id
        vault.note_audit("vault-init")
        trail.fold_audit(vault, txn)
        vault.commit(txn, vault_id)
    return vault, (recovery.encode() if recovery else None)


def open_session(
    path: Path,
    *,
    passphrase: bytes | None = None,
    recovery_key: str | None = None,
    reader: age.AnyIdentity | None = None,
    clock: Clock = utc_now,
    state_dir: Path | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    owner_key: str | None = None,
    keys: identity.OwnerKeys | None = None,
    executor: list[age.AnyIdentity] | None = None,
) -> Session:
    """Open with the passphrase, the recovery key, the owner's keys held
    elsewhere (``keys``: an unlock agent's), the executor key the custodians'
    shares make (``executor``: ops/custody), or (read-only) a grantee key.

    ``owner_key`` pins the owner's signing key by its fingerprint (as
    ``owner_key_fingerprint`` shows it, given with a grant): a manifest
    signed by any key that does not descend from it is refused.
    """
    check_vault_dir(path)
    vault = Session(
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
    vault.read_only = not vault_writable(path)
    with vault.reading() as current:
        if keys is not None:
            vault.owner = keys
        elif passphrase is not None:
            sealed = vault.store.get(required_pointer(current, "owner"))
            vault.owner = identity.unseal_with_passphrase(sealed, passphrase)
        elif recovery_key is not None:
            sealed = vault.store.get(required_pointer(current, "recovery"))
            vault.owner = identity.unseal_with_identity(
                sealed, age.parse_identity(recovery_key)
            )
        elif executor is not None:
            if current.pointer(EXECUTOR_POINTER) is None:
                raise SharesError(
                    "this vault holds no custodian split (none was made, or "
                    "`migrate --pq` dropped it): no shares open it"
                )
            sealed = vault.store.get(required_pointer(current, EXECUTOR_POINTER))
            vault.owner = identity.unseal_with_identities(sealed, executor)
        elif reader is None:
            raise ValueError(
                "open needs a passphrase, a recovery key or a reader identity"
            )
        else:
            vault.grantee_root(current)  # fails now if the key has no grant
        if (
            vault.owner is not None
            and signing.b64(vault.owner.signer) != current.body.signer
        ):
            if keys is not None:
                raise KeysMismatchError(
                    "those keys are not this vault's owner keys (another vault's, "
                    "or from before an identity rotation)"
                )
            raise IntegrityError("the manifest is not signed by this vault's owner key")
    spool.fold_on_open(vault)
    return vault


def _prepare_empty_dir(path: Path) -> None:
    if path.is_symlink():
        raise UnsafeInputError(f"{path} is a symlink; give the real directory")
    if path.exists():
        if not path.is_dir():
            raise VaultExistsError(f"{path} exists and is not a directory")
        if any(path.iterdir()) and not _clear_interrupted_init(path):
            raise VaultExistsError(
                f"{path} is not empty; a vault needs an empty directory"
            )
        path.chmod(fs.DIR_MODE)
        return
    top = path  # the first directory created: its parent gets the new entry
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=fs.DIR_MODE)
        path.mkdir(mode=fs.DIR_MODE)
    except OSError as err:
        raise fs.storage_error(err, f"create {path}") from err
    # Each new directory's entry durable in its parent: otherwise a power cut
    # after init reported success could take the whole vault with it.
    here = path
    while True:
        fs.fsync_dir(here.parent)
        if here == top:
            break
        here = here.parent


_SKELETON = frozenset({fs.LOCK_NAME, OBJECTS_DIR, manifest.SHARDS_DIR, fs.TMP_DIR})


def _clear_interrupted_init(path: Path) -> bool:
    """Remove the files an init cut short left in ``path`` (no manifest yet:
    no vault), its lock too, keeping its directories, so that init can start
    again.

    False, with nothing removed, when anything else is there: a name outside
    the skeleton, a file outside the format's grammar, a link, a directory
    not of ours.
    """
    if {entry.name for entry in path.iterdir()} - _SKELETON:
        return False
    try:
        disk = fs.Root(path)
        try:
            rels = [manifest.SHARDS_DIR, fs.TMP_DIR]
            rels += [f"{OBJECTS_DIR}/{bucket}" for bucket in disk.names(OBJECTS_DIR)]
            files = [(rel, name) for rel in rels for name in disk.names(rel)]
            files += [("", name) for name in disk.names("") if name == fs.LOCK_NAME]
            if not all(layout.is_file(rel, name) for rel, name in files):
                return False
            for rel, name in files:
                disk.remove(rel, name)
        finally:
            disk.close()
    except UnsafeInputError:
        return False
    return True
