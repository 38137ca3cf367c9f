"""Client key rotation: fresh keys and every note re-sealed, in batches of commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from confvault import age
from confvault.errors import (
    ConfvaultError,
)
from confvault.vault.model import note_format as fmt
from confvault.vault.model.clock import parse_duration
from confvault.vault.model.grant import grant_covers
from confvault.vault.model.results import (
    Progress,
    RotatedKey,
    RotateReport,
)
from confvault.vault.ops import (
    compartments,
)
from confvault.vault.ops.compartments import Compartment
from confvault.vault.session.core import DEFAULT_MAX_KEY_AGE_DAYS
from confvault.vault.store import sealing, transaction

if TYPE_CHECKING:
    from confvault.vault.session.core import Session


# A rotation commits once per batch of clients holding about this many notes.
_BATCH_NOTES = 1000


_BATCH_CLIENTS = 64


_STREAM_THRESHOLD = 1 << 20


def rewrap_key(
    s: Session, txn: transaction.Transaction, root: dict[str, Any], cid: str, name: str
) -> None:
    """Seal a compartment's key to the current owner + grantee set."""
    entry = root["clients"][cid]["compartments"][name]
    text = age.decrypt(s.store.get(entry["key"]), s.identities())
    recipients = compartments.key_recipients(s, root, cid, name)
    txn.retire(entry["key"])
    entry["key"] = txn.put(sealing.seal_key_file(text, recipients))


def _reseal(
    s: Session,
    txn: transaction.Transaction,
    note: dict[str, Any],
    old: age.X25519Identity,
    new: age.X25519Identity,
) -> None:
    """Re-seal a note to ``new``: new object, new file key, in ``note``."""
    digest = note["object"]
    if note["body_size"] + 4096 <= _STREAM_THRESHOLD:
        plain = fmt.open_object(s.store.get(digest), note, old)
        note.update(fmt.seal_object(txn, plain, new))
    else:

        def write(sink: Any) -> None:
            with (
                s.store.open_checked(digest) as src,
                age.EncryptWriter(sink, [new.recipient]) as w,
            ):
                for chunk in age.decrypt_chunks(src, [old]):
                    w.write(chunk)

        note.pop("file_key", None)
        note["object"] = txn.put_stream(write)
    txn.retire(digest)  # after reading it: it may have been written in this txn


def _rotate_compartment(
    s: Session, txn: transaction.Transaction, root: dict[str, Any], cid: str, name: str
) -> RotatedKey | None:
    comp: Compartment | None = compartments.open_compartment(s, root, cid, name)
    if comp is None:
        return None
    entry = comp.entry
    old_created = entry["key_created"]
    new_key = age.X25519Identity.generate()
    created = s.now()
    key_text = sealing.client_key_text(cid, name, created, new_key.encode())
    sealed_key = sealing.seal_key_file(
        key_text, compartments.key_recipients(s, root, cid, name)
    )
    # Check before we drop: the owner opens the new key, and it opens a note.
    reopened = age.parse_identities(age.decrypt(sealed_key, s.identities()).decode())[0]
    for note in comp.notes:
        _reseal(s, txn, note, comp.key, new_key)
    if comp.notes:
        sample = comp.notes[0]
        if sample["body_size"] < _STREAM_THRESHOLD:
            probe = txn.pending_bytes(sample["object"])
            if probe is not None:
                age.decrypt(probe, [reopened])
    txn.retire(entry["key"])
    entry["key"] = txn.put(sealed_key)
    entry["key_created"] = created
    comp.key = new_key
    compartments.write_index(s, txn, comp)
    return RotatedKey(
        client=cid,
        client_name=root["clients"][cid]["name"],
        compartment=name,
        notes=len(comp.notes),
        old_key_created=old_created,
        new_key_created=created,
    )


def _rotate_clients(s: Session, batch: list[tuple[str, list[str]]]) -> list[RotatedKey]:
    """Rotate the compartments of several clients in one commit."""
    with s.writing() as txn:
        root = s.root_doc(txn.current)
        done: list[RotatedKey] = []
        for cid, compartments in batch:
            if cid in root["clients"]:
                rotated = [
                    r
                    for name in compartments
                    if (r := _rotate_compartment(s, txn, root, cid, name))
                ]
                s.note_audit(
                    "key-rotate",
                    cid,
                    None,
                    compartments=[r.compartment for r in rotated],
                )
                done += rotated
            root["pending_rotation"] = [
                p
                for p in root.get("pending_rotation", [])
                if not (
                    p[0] == cid and (p[1] in compartments or cid not in root["clients"])
                )
            ]
        s.write_root(txn, root)
        return done


def finish_pending(s: Session, progress: Progress | None) -> RotateReport:
    with s.reading() as current:
        pending = [tuple(p) for p in s.root_doc(current).get("pending_rotation", [])]
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
            # One damaged client must not stop the job: redo this batch
            # client by client, and report the ones that fail.
            for cid, names in batch:
                try:
                    rotated += _rotate_clients(s, [(cid, names)])
                except ConfvaultError as err:
                    failed.append(f"{cid}: {err}")
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
        clients = s.root_doc(current)["clients"]
    batch: list[tuple[str, list[str]]] = []
    notes = 0
    for cid, names in work:
        comps = clients.get(cid, {}).get("compartments", {})
        notes += sum(
            comps[n].get("notes", 0) + comps[n].get("drafts", 0)
            for n in names
            if n in comps
        )
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
        root = s.root_doc(current)
        targets = [tuple(p) for p in root.get("pending_rotation", [])]
        lapsed = [
            g for g in root.get("grants", []) if g.get("until") and g["until"] < now
        ]
        if expired or nightly:
            for g in lapsed:
                targets += [
                    (cid, n)
                    for cid in root["clients"]
                    for n in root["clients"][cid]["compartments"]
                    if grant_covers(g, cid, n)
                ]
        days = root["settings"].get("max_key_age_days", DEFAULT_MAX_KEY_AGE_DAYS)
        max_age = older_than or (f"{days}d" if nightly else None)
        chosen = set(root["clients"]) if all_clients else set()
        chosen |= {compartments.resolve_client(s, root, c) for c in clients or []}
        if max_age:
            limit = (s.clock() - parse_duration(max_age)).astimezone(dt.UTC)
            cutoff = limit.replace(microsecond=0).isoformat().replace("+00:00", "Z")
            for cid, client in root["clients"].items():
                if any(
                    e["key_created"] < cutoff for e in client["compartments"].values()
                ):
                    chosen.add(cid)
        for cid in chosen:
            targets += [(cid, n) for n in root["clients"][cid]["compartments"]]
        targets = sorted(set(targets))
        revoke_labels = (
            tuple(g["label"] for g in lapsed) if (expired or nightly) else ()
        )
    if dry_run:
        planned = tuple(
            RotatedKey(
                client=cid,
                client_name=root["clients"][cid]["name"],
                compartment=n,
                notes=-1,
                old_key_created="",
                new_key_created="",
            )
            for cid, n in targets
            if cid in root["clients"]
        )
        return RotateReport(
            revoked_grants=revoke_labels, rotated=planned, failed=(), dry_run=True
        )
    if revoke_labels:
        with s.writing() as txn:
            root = s.root_doc(txn.current)
            root["grants"] = [
                g for g in root.get("grants", []) if g["label"] not in revoke_labels
            ]
            pending = root.setdefault("pending_rotation", [])
            pending.extend([list(t) for t in targets if list(t) not in pending])
            s.note_audit("grant-expired", None, None, labels=list(revoke_labels))
            s.write_root(txn, root)
    return _rotate_many(s, targets, progress, revoke_labels)
