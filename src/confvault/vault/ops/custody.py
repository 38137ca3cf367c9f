"""Custodians (issue 18): colleagues who together may open the vault when the
owner cannot (docs/CONTINUITY.md).

``split`` makes a fresh executor key E of the vault's kind, stores the owner
key sealed to E (the manifest's ``executor`` pointer, kept beside the
recovery copy and re-sealed with it: ``reseal_executor``), splits E's 32
secret bytes into SLIP-39 shares (ops/_shares) and seals each custodian's
words to their age key. Any K shares give E back (``combine``), E opens the
owner key copy, and the session that makes reads as the owner
(``record_open`` first records the opening, or the notice it must wait for).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from confvault import age
from confvault.errors import (
    IntegrityError,
    NotFoundError,
    NoticePendingError,
    ReadOnlyError,
    SharesError,
    UnsafeInputError,
    VaultExistsError,
    WrongPassphraseError,
)
from confvault.vault.model import keykind
from confvault.vault.model.clock import Clock, iso, utc_now
from confvault.vault.model.custody import (
    Custodian,
    CustodianInfo,
    CustodianOpening,
    Custody,
    CustodyStatus,
    Notice,
    SealedShare,
    Split,
    SplitReport,
    custodian_name,
    share_fingerprint,
)
from confvault.vault.model.identity import OwnerIdentity
from confvault.vault.model.policy import DEFAULT_LOCK_TIMEOUT
from confvault.vault.model.root import RootRecord
from confvault.vault.ops import _shares
from confvault.vault.session import opening, trail
from confvault.vault.session.opening import EXECUTOR_POINTER

if TYPE_CHECKING:
    from confvault.vault.session.core import Session
    from confvault.vault.store.manifest import Manifest
    from confvault.vault.store.transaction import Transaction

Deliver = Callable[[list[SealedShare]], None]


def _custody(root: RootRecord) -> Custody:
    return root.custody or Custody()


def _info(custody: Custody, member: Custodian) -> CustodianInfo:
    shares = custody.split.shares if custody.split else {}
    return CustodianInfo(
        name=member.name,
        recipient=member.recipient,
        added=member.added,
        has_share=member.name in shares,
    )


def add(s: Session, name: str, recipient: str) -> CustodianInfo:
    """Record a custodian: ``name`` (it names their share file) and their
    age key, of the vault's kind. They get a share at the next ``split``."""
    name = custodian_name(name)
    key = age.parse_recipient(recipient)
    with s.writing() as txn:
        root = s.root_record(txn.current)
        keykind.check_grantee(root.key_kind, key)
        custody = _custody(root)
        if custody.member(name) is not None:
            raise VaultExistsError(f"there is already a custodian named {name}")
        if any(m.recipient == str(key) for m in custody.members):
            raise VaultExistsError("that key is already a custodian's")
        if str(key) == str(s.require_owner().recipient):
            raise UnsafeInputError("that is the owner's own key")
        member = Custodian(name=name, recipient=str(key), added=s.now())
        custody = custody.with_members((*custody.members, member))
        s.note_audit("custodian-add", None, None, custodian=name)
        s.write_root(txn, root.with_custody(custody))
    return _info(custody, member)


def custodians(s: Session) -> list[CustodianInfo]:
    """Every custodian, and whether the latest split gave them a share."""
    with s.reading() as current:
        custody = _custody(s.root_record(current))
    return [_info(custody, m) for m in custody.members]


def remove(s: Session, name: str) -> CustodianInfo:
    """Remove a custodian. Their share of the latest split still counts
    until the next ``split``, which the caller should run."""
    with s.writing() as txn:
        root = s.root_record(txn.current)
        custody = _custody(root)
        member = custody.member(name)
        if member is None:
            raise NotFoundError("no custodian of that name (`custodian list`)")
        custody = custody.with_members(
            tuple(m for m in custody.members if m is not member)
        )
        s.note_audit("custodian-remove", None, None, custodian=member.name)
        s.write_root(txn, root.with_custody(custody))
    return _info(custody, member)


def split(
    s: Session, threshold: int, notice: dt.timedelta | None, deliver: Deliver
) -> SplitReport:
    """A new executor key, the owner key sealed to it, and its shares: one to
    each custodian, sealed to their key, any ``threshold`` of them enough.

    One commit, made only once ``deliver`` has taken every share file: if
    it fails, nothing changed. The executor copy it replaces is retired, so
    every share of an earlier split opens nothing in the vault from now on
    (backups taken before still hold the old copy).
    """
    if notice is not None and notice <= dt.timedelta(0):
        notice = None
    with s.writing() as txn:
        current = txn.current
        root = s.root_record(current)
        custody = _custody(root)
        members = custody.members
        kind = root.key_kind
        if not members:
            raise NotFoundError("no custodians: `custodian add NAME RECIPIENT` first")
        for m in members:
            if keykind.of_recipient(age.parse_recipient(m.recipient)) != kind:
                raise UnsafeInputError(
                    f"custodian {m.name}'s key is not of this vault's kind "
                    f"({keykind.describe(kind)}): remove and add them again"
                )
        executor = keykind.new_identity(kind)
        words = _shares.split(_shares.secret_of(executor), threshold, len(members))
        files = [
            SealedShare(
                custodian=m.name,
                file_name=f"share-{m.name}.age",
                sealed=age.encrypt(
                    (w + "\n").encode(), [age.parse_recipient(m.recipient)]
                ),
            )
            for m, w in zip(members, words, strict=True)
        ]
        owner = _local_owner(s)
        if current is not None:
            txn.retire(current.pointer(EXECUTOR_POINTER))
        txn.point(
            EXECUTOR_POINTER, txn.put(owner.seal_to(root.vault, executor.recipient))
        )
        record = Split(
            created=s.now(),
            threshold=threshold,
            executor=str(executor.recipient),
            shares={
                m.name: share_fingerprint(w)
                for m, w in zip(members, words, strict=True)
            },
            notice=int(notice.total_seconds()) if notice else None,
        )
        custody = replace(custody, split=record, notice=None)
        s.note_audit(
            "custodian-split",
            None,
            None,
            threshold=threshold,
            custodians=[m.name for m in members],
            notice=record.notice or 0,
        )
        s.write_root(txn, root.with_custody(custody))
        deliver(files)
    return SplitReport(
        threshold=threshold,
        shares=tuple(m.name for m in members),
        executor=record.executor,
        notice=record.notice,
        created=record.created,
    )


def _local_owner(s: Session) -> OwnerIdentity:
    """The owner identity itself (its text is sealed to the executor key)."""
    owner = s.require_owner()
    if not isinstance(owner, OwnerIdentity):
        raise ReadOnlyError(
            "a split seals the owner keys themselves, not an unlock agent's: "
            "run it with the passphrase (`confvault lock` first, or --passphrase-file)"
        )
    return owner


def combine(shares: list[str]) -> tuple[list[age.AnyIdentity], list[str]]:
    """The executor key the shares make (as keys of either kind), and the
    shares' fingerprints (to name whose they were, once the root is open)."""
    secret = _shares.combine(shares)
    return _shares.keys_from(secret), [share_fingerprint(w) for w in shares]


STALE_SHARES = (
    "these shares combine, but not to this vault's current executor key: they "
    "are of an earlier split (or of another vault), and open nothing now"
)


def record_open(s: Session, fingerprints: list[str]) -> CustodianOpening:
    """Record the custodians' opening in the audit trail (on a vault that
    cannot be written here, in this machine's spool, like any owner read),
    or, when the split asks for a notice, start it: refused until it has
    run (NoticePendingError); a notice needs a writable vault."""
    with s.reading() as current:
        split_ = _custody(s.root_record(current)).split
    if split_ is None:
        raise IntegrityError("the vault has an executor copy but no split record")
    holders = split_.holders(fingerprints)
    started = _notice(s, holders) if split_.notice else None
    trail.audit_read(
        s, "custodian-open", None, None, custodians=holders, notice=started or ""
    )
    return CustodianOpening(
        shares=tuple(holders), opened=s.now(), notice_started=started
    )


def _notice(s: Session, holders: list[str]) -> str:
    """When the running notice started (this one starts it if none runs);
    NoticePendingError until it has ended."""
    pending: str | None = None
    with s.writing() as txn:
        root = s.root_record(txn.current)
        custody = _custody(root)
        period = custody.split.notice if custody.split else None
        notice = custody.notice
        if notice is None:
            notice = Notice(started=s.now(), shares=tuple(holders))
            s.note_audit(
                "custodian-notice", None, None, custodians=holders, seconds=period
            )
            s.write_root(txn, root.with_custody(replace(custody, notice=notice)))
        until = _notice_end(notice, period or 0)
        if s.clock() < until:
            pending = iso(until)
    if pending is not None:
        raise NoticePendingError(
            f"the owner asked for a notice period: access opens at {pending} unless "
            "the owner cancels it (`confvault status` shows it to them)",
            pending,
        )
    return notice.started


def _notice_end(notice: Notice, seconds: int) -> dt.datetime:
    start = dt.datetime.fromisoformat(notice.started.replace("Z", "+00:00"))
    return start + dt.timedelta(seconds=seconds)


def cancel(s: Session) -> Notice | None:
    """The owner's answer to a notice: cancel it (None if none was running)."""
    with s.writing() as txn:
        root = s.root_record(txn.current)
        custody = _custody(root)
        if custody.notice is None:
            return None
        s.note_audit(
            "custodian-cancel",
            None,
            None,
            custodians=list(custody.notice.shares),
            started=custody.notice.started,
        )
        s.write_root(txn, root.with_custody(replace(custody, notice=None)))
        return custody.notice


def custody_status(s: Session) -> CustodyStatus | None:
    """What ``status`` says of the custodians (None: the vault never had one)."""
    with s.reading() as current:
        custody = s.root_record(current).custody
    if custody is None:
        return None
    split_ = custody.split
    notice = custody.notice
    end = None
    if notice is not None and split_ is not None and split_.notice:
        end = iso(_notice_end(notice, split_.notice))
    return CustodyStatus(
        custodians=len(custody.members),
        threshold=split_.threshold if split_ else None,
        split=split_.created if split_ else None,
        split_current=custody.split_is_current(),
        notice=notice.started if notice else None,
        access_from=end,
    )


def reseal_executor(
    s: Session,
    txn: Transaction,
    current: Manifest,
    root: RootRecord,
    new: OwnerIdentity,
) -> RootRecord:
    """Where the owner key changes (``swap_owner``), the executor copy is
    sealed again to the same executor key, so the custodians' shares keep
    working. A change of the vault's kind drops the split instead (a copy
    of post-quantum keys sealed to a classic key would be only as strong as
    X25519): the owner splits again."""
    digest = current.pointer(EXECUTOR_POINTER)
    split_ = root.custody.split if root.custody else None
    if digest is None or split_ is None or root.custody is None:
        return root
    txn.retire(digest)
    executor = age.parse_recipient(split_.executor)
    if keykind.of_recipient(executor) != root.key_kind:
        txn.point(EXECUTOR_POINTER, None)
        s.note_audit("custodian-split-dropped", None, None, reason="key kind changed")
        return root.with_custody(replace(root.custody, split=None, notice=None))
    txn.point(EXECUTOR_POINTER, txn.put(new.seal_to(root.vault, executor)))
    return root


def open_with_shares(
    path: Path,
    shares: list[str],
    *,
    clock: Clock = utc_now,
    state_dir: Path | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> tuple[Session, CustodianOpening]:
    """Combine the custodians' shares, open the vault with the executor copy
    and record the opening (or start the notice: NoticePendingError)."""
    keys, fingerprints = combine(shares)
    try:
        s = opening.open_session(
            path,
            executor=keys,
            clock=clock,
            state_dir=state_dir,
            lock_timeout=lock_timeout,
        )
    except SharesError:
        raise
    except WrongPassphraseError as err:
        raise SharesError(STALE_SHARES) from err
    return s, record_open(s, fingerprints)
