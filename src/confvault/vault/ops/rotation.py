"""Client key rotation: fresh keys and every note re-sealed, in batches of commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from confvault import age
from confvault.errors import AgeError, ConfvaultError, IntegrityError
from confvault.vault.model import note_format as fmt
from confvault.vault.model.clock import parse_duration
from confvault.vault.model.index import NoteEntry
from confvault.vault.model.results import (
    Progress,
    RotatedKey,
    RotateReport,
)
from confvault.vault.model.root import RootRecord
from confvault.vault.ops import (
    compartments,
)
from confvault.vault.session.core import DEFAULT_MAX_KEY_AGE_DAYS
from confvault.vault.store import sealing, transaction
from confvault.vault.store.objects import Sink

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


# A rotation commits once per batch of clients holding about this many notes.
_BATCH_NOTES = 1000


_BATCH_CLIENTS = 64


_STREAM_THRESHOLD = 1 << 20


def rewrap_key(
    s: Session, txn: transaction.Transaction, root: RootRecord, cid: str, name: str
) -> RootRecord:
    """Seal a compartment's key to the current owner + grantee set."""
    entry = root.clients[cid].compartments[name]
    text = age.decrypt(s.store.get(entry.key), s.identities())
    recipients = compartments.key_recipients(s, root, cid, name)
    txn.retire(entry.key)
    entry = replace(entry, key=txn.put(sealing.seal_key_file(text, recipients)))
    return root.with_compartment(cid, name, entry)


def _reseal(
    s: Session,
    txn: transaction.Transaction,
    note: NoteEntry,
    old: age.AnyIdentity,
    new: age.AnyIdentity,
) -> NoteEntry:
    """``note`` re-sealed to ``new`` (a new object, with a new file key); a note
    that cannot be read is recorded as damaged instead, never left sealed to
    ``old``. The old object is retired either way."""
    digest = note.object
    if note.damaged is not None:
        return note  # recorded by an earlier rotation; its object is gone
    try:
        resealed = _resealed(s, txn, note, old, new)
    except (IntegrityError, AgeError) as err:
        # Missing, damaged, replaced, hard-linked, another owner...: what
        # every normal command would refuse. StorageError (the disk failed
        # us) is not about this note: it stops the rotation instead.
        resealed = note.marked_damaged(f"{s.now()}: {err}")
    txn.retire(digest)  # after reading it: it may have been written in this txn
    return resealed


def _resealed(
    s: Session,
    txn: transaction.Transaction,
    note: NoteEntry,
    old: age.AnyIdentity,
    new: age.AnyIdentity,
) -> NoteEntry:
    digest = note.object
    if note.body_size + 4096 <= _STREAM_THRESHOLD:
        plain = fmt.open_object(s.store.get(digest), note, old)
        fmt.body_recorded(plain, note)  # the body its signature names
        name, file_key = fmt.seal_object(txn, plain, new)
        return note.stored_at(name, file_key)

    def write(sink: Sink) -> None:
        with (
            s.store.open_checked(digest) as src,
            age.EncryptWriter(sink, [new.recipient]) as w,
        ):
            for chunk in age.decrypt_chunks(src, [old]):
                w.write(chunk)

    return note.stored_at(txn.put_stream(write), None)


def _rotate_compartment(
    s: Session, txn: transaction.Transaction, root: RootRecord, cid: str, name: str
) -> tuple[RootRecord, RotatedKey] | None:
    comp = compartments.open_compartment(s, root, cid, name)
    if comp is None:
        return None
    old_created = comp.entry.key_created
    new_key = root.new_key()
    created = s.now()
    key_text = sealing.client_key_text(cid, name, created, new_key.encode())
    sealed_key = sealing.seal_key_file(
        key_text, compartments.key_recipients(s, root, cid, name)
    )
    # Check before we drop: the owner opens the new key, and it opens a note.
    reopened = sealing.open_key_file(sealed_key, s.identities())
    notes = [_reseal(s, txn, note, comp.key, new_key) for note in comp.notes]
    readable = [n for n in notes if n.damaged is None]
    newly_damaged = tuple(
        n.id
        for n, was in zip(notes, comp.notes, strict=True)
        if n.damaged is not None and was.damaged is None
    )
    if readable:
        sample = readable[0]
        if sample.body_size < _STREAM_THRESHOLD:
            probe = txn.pending_bytes(sample.object)
            if probe is not None:
                age.decrypt(probe, [reopened])
    txn.retire(comp.entry.key)
    entry = replace(comp.entry, key=txn.put(sealed_key), key_created=created)
    comp = replace(comp, entry=entry, key=new_key, pending=False)
    comp = compartments.write_index(
        s, txn, comp, replace(comp.index, notes=tuple(notes))
    )
    rotated = RotatedKey(
        client=cid,
        client_name=root.clients[cid].name,
        compartment=name,
        notes=len(readable),
        old_key_created=old_created,
        new_key_created=created,
        damaged=newly_damaged,
    )
    return root.with_compartment(cid, name, comp.entry), rotated


def _rotate_clients(s: Session, batch: list[tuple[str, list[str]]]) -> list[RotatedKey]:
    """Rotate the compartments of several clients in one commit."""
    with s.writing() as txn:
        root = s.root_record(txn.current)
        done: list[RotatedKey] = []
        for cid, names in batch:
            if cid in root.clients:
                rotated = []
                for name in names:
                    result = _rotate_compartment(s, txn, root, cid, name)
                    if result:
                        root, key = result
                        rotated.append(key)
                damaged = [n for r in rotated for n in r.damaged]
                s.note_audit(
                    "key-rotate",
                    cid,
                    None,
                    compartments=[r.compartment for r in rotated],
                    **({"damaged": damaged} if damaged else {}),
                )
                done += rotated
            root = root.with_pending(
                tuple(
                    p
                    for p in root.pending_rotation or ()
                    if not (p[0] == cid and (p[1] in names or cid not in root.clients))
                )
            )
        s.write_root(txn, root)
        return done


def finish_pending(s: Session, progress: Progress | None) -> RotateReport:
    with s.reading() as current:
        pending = list(s.root_record(current).pending_rotation or ())
    return _rotate_many(s, pending, progress)


def _rotate_many(
    s: Session,
    targets: list[tuple[str, str]],
    progress: Progress | None,
    revoked: tuple[str, ...] = (),
) -> RotateReport:
    by_client: dict[str, list[str]] = {}
    for cid, name in targets:
        by_client.setdefault(cid, []).append(name)
    rotated: list[RotatedKey] = []
    failed: list[str] = []
    finished = 0
    for batch in _rotation_batches(s, sorted(by_client.items())):
        try:
            rotated += _rotate_clients(s, batch)
        except ConfvaultError:
            # One compartment that does not open (its key file or index) must
            # not stop the job: redo this batch compartment by compartment,
            # and report the ones that fail (they stay pending).
            for cid, names in batch:
                for name in names:
                    try:
                        rotated += _rotate_clients(s, [(cid, [name])])
                    except ConfvaultError as err:
                        failed.append(f"{cid} ({name}): {err}")
        finished += len(batch)
        if progress:
            progress(finished, len(by_client))
    return RotateReport(
        revoked_grants=revoked,
        rotated=tuple(rotated),
        failed=tuple(failed),
        dry_run=False,
    )


def _rotation_batches(
    s: Session, work: list[tuple[str, list[str]]]
) -> Iterator[list[tuple[str, list[str]]]]:
    """Clients grouped so that one commit re-seals about ``_BATCH_NOTES`` notes.

    Each commit rewrites the manifest shards it touches, so a commit per
    client would rewrite most shards once per client.
    """
    with s.reading() as current:
        clients = s.root_record(current).clients
    batch: list[tuple[str, list[str]]] = []
    notes = 0
    for cid, names in work:
        comps = clients[cid].compartments if cid in clients else {}
        notes += sum(comps[n].notes + comps[n].drafts for n in names if n in comps)
        batch.append((cid, names))
        if notes >= _BATCH_NOTES or len(batch) >= _BATCH_CLIENTS:
            yield batch
            batch, notes = [], 0
    if batch:
        yield batch


def rotate(
    s: Session,
    *,
    clients: list[str] | None = None,
    all_clients: bool = False,
    older_than: str | None = None,
    expired: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RotateReport:
    """New client keys and re-sealed notes; ``expired`` revokes lapsed grants.

    With no selector it does the nightly job: finish interrupted work,
    revoke expired grants, rotate keys older than the configured maximum.
    """
    nightly = not (clients or all_clients or older_than or expired)
    now = s.now()
    with s.reading() as current:
        root = s.root_record(current)
        targets = list(root.pending_rotation or ())
        lapsed = [g for g in root.grants if g.until and g.until < now]
        if expired or nightly:
            for g in lapsed:
                targets += [k for k in root.compartment_keys() if g.covers(*k)]
        days = root.settings.max_key_age_days if root.settings else None
        if days is None:
            days = DEFAULT_MAX_KEY_AGE_DAYS
        max_age = older_than or (f"{days}d" if nightly else None)
        chosen = set(root.clients) if all_clients else set()
        chosen |= {compartments.resolve_client(s, root, c) for c in clients or []}
        if max_age:
            limit = (s.clock() - parse_duration(max_age)).astimezone(dt.UTC)
            cutoff = limit.replace(microsecond=0).isoformat().replace("+00:00", "Z")
            for cid, client in root.clients.items():
                if any(e.key_created < cutoff for e in client.compartments.values()):
                    chosen.add(cid)
        for cid in chosen:
            targets += [(cid, n) for n in root.clients[cid].compartments]
        targets = sorted(set(targets))
        revoke_labels = tuple(g.label for g in lapsed) if (expired or nightly) else ()
    if dry_run:
        planned = tuple(
            RotatedKey(
                client=cid,
                client_name=root.clients[cid].name,
                compartment=n,
                notes=-1,
                old_key_created="",
                new_key_created="",
            )
            for cid, n in targets
            if cid in root.clients
        )
        return RotateReport(
            revoked_grants=revoke_labels, rotated=planned, failed=(), dry_run=True
        )
    if revoke_labels:
        with s.writing() as txn:
            root = s.root_record(txn.current)
            root = root.with_grants(
                tuple(g for g in root.grants if g.label not in revoke_labels)
            )
            root = root.with_pending(root.pending_with(targets))
            s.note_audit("grant-expired", None, None, labels=list(revoke_labels))
            s.write_root(txn, root)
    return _rotate_many(s, targets, progress, revoke_labels)
