"""Grant, revoke and rotate: who can read which client, and fresh keys.

A grant re-wraps only the small sealed client-key files (instant at any vault
size) and gives the grantee a directory object sealed to their key. Revoking
removes the grant and rotates every affected client key in the same run: a
new key, every note re-sealed, the new key wrapped to the owner and the
remaining grantees. The clients still to rotate are recorded in the root
index first, so an interrupted job is finished by the next ``rotate``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Collection, Iterator
from typing import Any

from confvault import age
from confvault.errors import (
    AmbiguousNameError,
    ConfvaultError,
    NotFoundError,
    UnsafeInputError,
    WeakPassphraseError,
)
from confvault.vault._core import DEFAULT_MAX_KEY_AGE_DAYS, GRANTEE_POINTER
from confvault.vault.clients import Compartment, _grant_covers
from confvault.vault.model import identity
from confvault.vault.model import note_format as fmt
from confvault.vault.model.note_format import RECORDS
from confvault.vault.model.results import (
    ClientExposure,
    GrantInfo,
    OwnerRotation,
    PassphraseReport,
    RekeyReport,
    RevokeReport,
    RotatedKey,
    RotateReport,
)
from confvault.vault.notebook import parse_date
from confvault.vault.store import root_index, sealing, signing, transaction
from confvault.vault.store.manifest import canonical, endorsement_message

Progress = Callable[[int, int], None]
# A rotation commits once per batch of clients holding about this many notes.
_BATCH_NOTES = 1000
_BATCH_CLIENTS = 64
GRANTEE_FORMAT = "confvault/grantee/v1"
_STREAM_THRESHOLD = 1 << 20
_DIRECTORY_FIELDS = ("key", "index", "key_created", "notes", "drafts", "attachments")


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12w``, ``6m`` (30-day months), ``1y`` or ``36h``."""
    units = {"h": 1 / 24, "d": 1, "w": 7, "m": 30, "y": 365}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise UnsafeInputError(
            f"{text[:20]!r} is not a duration like 90d, 12w, 6m or 1y"
        )
    return dt.timedelta(days=int(text[:-1]) * units[text[-1]])


def _grant_info(grant: dict[str, Any], root: dict[str, Any]) -> GrantInfo:
    covered = sorted(
        root["clients"][cid]["name"]
        for cid in root["clients"]
        if _grant_covers(grant, cid, RECORDS)
    )
    return GrantInfo(
        id=grant["id"],
        recipient=grant["recipient"],
        label=grant["label"],
        all_clients=bool(grant.get("all")),
        clients=tuple(covered),
        psychotherapy=bool(grant.get("psychotherapy")),
        since=grant["since"],
        until=grant.get("until"),
    )


class AccessMixin:
    """Grant, revoke, rotate, passphrase change and owner identity rotation."""

    store: Any
    manifest: Any
    _reading: Any
    _writing: Any
    _root_doc: Any
    _write_root: Any
    _owner: Any
    _note_audit: Any
    _reseal_audit: Any
    _identities: Any
    _resolve_client: Any
    _open_compartment: Any
    _write_index: Any
    _key_recipients: Any
    now: Any
    clock: Any

    # --- grantee directories ------------------------------------------------------

    def _sync_grantees(
        self,
        txn: transaction.Transaction,
        root: dict[str, Any],
        changed: Collection[str] | None = None,
    ) -> None:
        """Reseal each grantee's directory whose content changed; drop stale ones.

        ``changed``: the only clients this write changed (a note written); a
        grant that covers none of them lists nothing new and is passed over
        without rebuilding its directory, which lists every client it covers.
        """
        current = txn.current
        live = {f"{GRANTEE_POINTER}{g['id']}" for g in root.get("grants", [])}
        for name, digest in current.body.pointers.items() if current else []:
            if name.startswith(GRANTEE_POINTER) and name not in live:
                txn.retire(digest)
                txn.point(name, None)
        for grant in root.get("grants", []):
            name = f"{GRANTEE_POINTER}{grant['id']}"
            if (
                changed is not None
                and grant.get("directory")
                and current is not None
                and current.pointer(name)
                and not grant.get("all")
                and not set(changed) & set(grant.get("clients", []))
            ):
                continue
            doc = self._directory(root, grant)
            digest = hashlib.sha256(canonical(doc)).hexdigest()
            if grant.get("directory") == digest and current and current.pointer(name):
                continue
            recipient = age.parse_recipient(grant["recipient"])
            txn.retire(current.pointer(name) if current else None)
            txn.point(name, txn.put_document(doc, [recipient]))
            grant["directory"] = digest

    def _directory(self, root: dict[str, Any], grant: dict[str, Any]) -> dict[str, Any]:
        clients = {}
        for cid, client in root["clients"].items():
            comps = {
                name: {k: entry[k] for k in _DIRECTORY_FIELDS if k in entry}
                for name, entry in client["compartments"].items()
                if _grant_covers(grant, cid, name)
            }
            if comps:
                clients[cid] = {
                    "name": client["name"],
                    "created": client["created"],
                    "compartments": comps,
                }
        return {
            "format": GRANTEE_FORMAT,
            "vault": root["vault"],
            "grant": grant["id"],
            "label": grant["label"],
            "clients": clients,
            # so the grantee's reads can be logged in the audit inbox, sealed to the owner
            "owner_recipient": str(self._owner().recipient),
        }

    # --- key wrapping and re-sealing ---------------------------------------------------

    def _rewrap_key(
        self, txn: transaction.Transaction, root: dict[str, Any], cid: str, name: str
    ) -> None:
        """Seal a compartment's key to the current owner + grantee set."""
        entry = root["clients"][cid]["compartments"][name]
        text = age.decrypt(self.store.get(entry["key"]), self._identities())
        recipients = self._key_recipients(root, cid, name)
        txn.retire(entry["key"])
        entry["key"] = txn.put(sealing.seal_key_file(text, recipients))

    def _reseal(
        self,
        txn: transaction.Transaction,
        note: dict[str, Any],
        old: age.X25519Identity,
        new: age.X25519Identity,
    ) -> None:
        """Re-seal a note to ``new``: new object, new file key, in ``note``."""
        digest = note["object"]
        if note["body_size"] + 4096 <= _STREAM_THRESHOLD:
            plain = fmt.open_object(self.store.get(digest), note, old)
            note.update(fmt.seal_object(txn, plain, new))
        else:

            def write(sink: Any) -> None:
                with (
                    self.store.open_checked(digest) as src,
                    age.EncryptWriter(sink, [new.recipient]) as w,
                ):
                    for chunk in age.decrypt_chunks(src, [old]):
                        w.write(chunk)

            note.pop("file_key", None)
            note["object"] = txn.put_stream(write)
        txn.retire(digest)  # after reading it: it may have been written in this txn

    def _rotate_compartment(
        self, txn: transaction.Transaction, root: dict[str, Any], cid: str, name: str
    ) -> RotatedKey | None:
        comp: Compartment | None = self._open_compartment(root, cid, name)
        if comp is None:
            return None
        entry = comp.entry
        old_created = entry["key_created"]
        new_key = age.X25519Identity.generate()
        created = self.now()
        key_text = sealing.client_key_text(cid, name, created, new_key.encode())
        sealed_key = sealing.seal_key_file(
            key_text, self._key_recipients(root, cid, name)
        )
        # Check before we drop: the owner opens the new key, and it opens a note.
        reopened = age.parse_identities(
            age.decrypt(sealed_key, self._identities()).decode()
        )[0]
        for note in comp.notes:
            self._reseal(txn, note, comp.key, new_key)
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
        self._write_index(txn, comp)
        return RotatedKey(
            client=cid,
            client_name=root["clients"][cid]["name"],
            compartment=name,
            notes=len(comp.notes),
            old_key_created=old_created,
            new_key_created=created,
        )

    def _rotate_clients(self, batch: list[tuple[str, list[str]]]) -> list[RotatedKey]:
        """Rotate the compartments of several clients in one commit."""
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            done: list[RotatedKey] = []
            for cid, compartments in batch:
                if cid in root["clients"]:
                    rotated = [
                        r
                        for name in compartments
                        if (r := self._rotate_compartment(txn, root, cid, name))
                    ]
                    self._note_audit(
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
                        p[0] == cid
                        and (p[1] in compartments or cid not in root["clients"])
                    )
                ]
            self._write_root(txn, root)
            return done

    # --- grants -----------------------------------------------------------------------

    def grant(
        self,
        recipient: str,
        *,
        clients: list[str] | None = None,
        all_clients: bool = False,
        label: str | None = None,
        until: str | None = None,
        psychotherapy: bool = False,
    ) -> GrantInfo:
        """Give ``recipient`` (an age1… key) read access; re-wraps client keys only."""
        key = age.parse_recipient(recipient)
        if not all_clients and not clients:
            raise UnsafeInputError("name the clients to grant (--client), or --all")
        until_iso = parse_date(until) if until else None
        if until_iso and len(until or "") <= 10:
            until_iso = until_iso[:10] + "T23:59:59Z"
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            if str(key) == str(self._owner().recipient):
                raise UnsafeInputError(
                    "that is the owner's own key; it already has access"
                )
            ids = [self._resolve_client(root, c) for c in clients or []]
            grants = root.setdefault("grants", [])
            grant = next((g for g in grants if g["recipient"] == str(key)), None)
            if grant is None:
                grant = {
                    "id": secrets.token_hex(8),
                    "recipient": str(key),
                    "label": label or str(key)[:16],
                    "clients": [],
                    "all": False,
                    "psychotherapy": False,
                    "since": self.now(),
                    "until": until_iso,
                }
                grants.append(grant)
            before = {
                (cid, n)
                for cid in root["clients"]
                for n in root["clients"][cid]["compartments"]
                if _grant_covers(grant, cid, n)
            }
            grant["clients"] = sorted(set(grant["clients"]) | set(ids))
            grant["all"] = grant["all"] or all_clients
            grant["psychotherapy"] = grant["psychotherapy"] or psychotherapy
            grant["until"] = until_iso or grant.get("until")
            if label:
                grant["label"] = label
            for cid, client in root["clients"].items():
                for name in client["compartments"]:
                    if _grant_covers(grant, cid, name) and (cid, name) not in before:
                        self._rewrap_key(txn, root, cid, name)
            self._note_audit(
                "grant", None, None, grant=grant["id"], label=grant["label"]
            )
            self._write_root(txn, root)
            return _grant_info(grant, root)

    def grants(self) -> list[GrantInfo]:
        """Every grant: who, to what, since when, until when."""
        with self._reading() as current:
            root = self._root_doc(current)
            return [_grant_info(g, root) for g in root.get("grants", [])]

    def _find_grant(self, root: dict[str, Any], who: str) -> dict[str, Any]:
        matches = [
            g
            for g in root.get("grants", [])
            if who in (g["recipient"], g["label"], g["id"])
        ]
        if len(matches) > 1:
            raise AmbiguousNameError(f"{len(matches)} grants match; give the age1… key")
        if not matches:
            raise NotFoundError("no grant for that key or label")
        return matches[0]

    def revoke(
        self,
        who: str,
        *,
        clients: list[str] | None = None,
        progress: Progress | None = None,
    ) -> RevokeReport:
        """Remove a grant (or some of its clients) and rotate every affected key.

        Rerunning it after an interruption finishes the rotations the first
        run recorded, even though the grant itself is already gone.
        """
        with self._reading() as current:
            root = self._root_doc(current)
            unfinished = bool(root.get("pending_rotation"))
            known = any(
                who in (g["recipient"], g["label"], g["id"])
                for g in root.get("grants", [])
            )
        if unfinished and not known:
            rotation = self._finish_pending(progress)
            return RevokeReport(
                recipient=who,
                label=who,
                grant_removed=True,
                exposure=(),
                rotated=tuple(rotation.rotated),
                failed=rotation.failed,
            )
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            grant = self._find_grant(root, who)
            covered = [
                (cid, n)
                for cid in root["clients"]
                for n in root["clients"][cid]["compartments"]
                if _grant_covers(grant, cid, n)
            ]
            if clients:
                ids = {self._resolve_client(root, c) for c in clients}
                affected = [(cid, n) for cid, n in covered if cid in ids]
                if grant.get("all"):
                    grant["all"] = False
                    grant["clients"] = sorted(set(root["clients"]) - ids)
                else:
                    grant["clients"] = sorted(set(grant["clients"]) - ids)
                removed = not grant["clients"] and not grant.get("all")
            else:
                affected, removed = covered, True
            if removed:
                root["grants"] = [g for g in root["grants"] if g is not grant]
            exposure = self._exposure(root, affected, grant)
            pending = root.setdefault("pending_rotation", [])
            pending.extend([list(p) for p in affected if list(p) not in pending])
            self._note_audit(
                "revoke",
                None,
                None,
                grant=grant["id"],
                label=grant["label"],
                clients=sorted({c for c, _ in affected}),
            )
            self._write_root(txn, root)
        rotation = self._finish_pending(progress)
        return RevokeReport(
            recipient=grant["recipient"],
            label=grant["label"],
            grant_removed=removed,
            exposure=tuple(exposure),
            rotated=tuple(rotation.rotated),
            failed=rotation.failed,
        )

    def _exposure(
        self,
        root: dict[str, Any],
        affected: list[tuple[str, str]],
        grant: dict[str, Any],
    ) -> list[ClientExposure]:
        out = []
        for cid in sorted({cid for cid, _ in affected}):
            names = [n for c, n in affected if c == cid]
            dates: list[str] = []
            for name in names:
                comp = self._open_compartment(root, cid, name)
                dates += [e["date"] for e in comp.notes] if comp else []
            out.append(
                ClientExposure(
                    client=cid,
                    client_name=root["clients"][cid]["name"],
                    compartments=tuple(names),
                    notes=len(dates),
                    first_note=min(dates) if dates else None,
                    last_note=max(dates) if dates else None,
                    since=grant["since"],
                    until=self.now(),
                )
            )
        return out

    # --- rotation ----------------------------------------------------------------------

    def _finish_pending(self, progress: Progress | None) -> RotateReport:
        with self._reading() as current:
            pending = [
                tuple(p) for p in self._root_doc(current).get("pending_rotation", [])
            ]
        return self._rotate_many(pending, progress)

    def _rotate_many(
        self,
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
        for batch in self._rotation_batches(sorted(by_client.items())):
            try:
                rotated += self._rotate_clients(batch)
            except ConfvaultError:
                # One damaged client must not stop the job: redo this batch
                # client by client, and report the ones that fail.
                for cid, names in batch:
                    try:
                        rotated += self._rotate_clients([(cid, names)])
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
        self, work: list[tuple[str, list[str]]]
    ) -> Iterator[list[tuple[str, list[str]]]]:
        """Clients grouped so that one commit re-seals about ``_BATCH_NOTES`` notes.

        Each commit rewrites the manifest shards it touches, so a commit per
        client would rewrite most shards once per client.
        """
        with self._reading() as current:
            clients = self._root_doc(current)["clients"]
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
        self,
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
        now = self.now()
        with self._reading() as current:
            root = self._root_doc(current)
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
                        if _grant_covers(g, cid, n)
                    ]
            days = root["settings"].get("max_key_age_days", DEFAULT_MAX_KEY_AGE_DAYS)
            max_age = older_than or (f"{days}d" if nightly else None)
            chosen = set(root["clients"]) if all_clients else set()
            chosen |= {self._resolve_client(root, c) for c in clients or []}
            if max_age:
                limit = (self.clock() - parse_duration(max_age)).astimezone(dt.UTC)
                cutoff = limit.replace(microsecond=0).isoformat().replace("+00:00", "Z")
                for cid, client in root["clients"].items():
                    if any(
                        e["key_created"] < cutoff
                        for e in client["compartments"].values()
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
            with self._writing() as txn:
                root = self._root_doc(txn.current)
                root["grants"] = [
                    g for g in root.get("grants", []) if g["label"] not in revoke_labels
                ]
                pending = root.setdefault("pending_rotation", [])
                pending.extend([list(t) for t in targets if list(t) not in pending])
                self._note_audit(
                    "grant-expired", None, None, labels=list(revoke_labels)
                )
                self._write_root(txn, root)
        return self._rotate_many(targets, progress, revoke_labels)

    # --- owner keys ------------------------------------------------------------------------

    def change_passphrase(
        self,
        new_passphrase: bytes,
        *,
        work_factor: int | None = None,
        allow_weak_work_factor: bool = False,
    ) -> PassphraseReport:
        """Re-seal only the owner key file with a new passphrase.

        The owner keys stay: a copy of the vault taken before still opens with
        the old passphrase and its keys open what is written afterwards
        (``PassphraseReport.DOES_NOT_PROTECT``). ``rekey`` changes them too.
        """
        _check_new_secret(new_passphrase, work_factor, allow_weak_work_factor)
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            factor = root["settings"]["work_factor"]
            if work_factor is not None:
                factor = root["settings"]["work_factor"] = work_factor
            owner = self._owner()
            txn.retire(txn.current.pointer("owner"))
            txn.point(
                "owner",
                txn.put(
                    owner.seal_with_passphrase(root["vault"], new_passphrase, factor)
                ),
            )
            self._note_audit("passphrase-change", None, None)
            if work_factor is not None:
                self._write_root(txn, root)
        return PassphraseReport(work_factor=factor)

    def rotate_identity(
        self, passphrase: bytes, progress: Progress | None = None
    ) -> dict[str, Any]:
        """New owner keys in one commit; client keys re-wrapped to them, not changed.

        Root, client keys, audit, recovery and owner files are re-sealed; the
        old signing key endorses the new one. Returns ``OwnerRotation.to_json()``.
        ``rekey`` also rotates every client key.
        """
        return self._new_owner(passphrase, None, progress, rekey=False).to_json()

    def rekey(
        self,
        passphrase: bytes,
        *,
        passphrase_changed: bool = True,
        work_factor: int | None = None,
        allow_weak_work_factor: bool = False,
        progress: Progress | None = None,
    ) -> RekeyReport:
        """The full re-key: new owner keys sealed with ``passphrase``, then every
        client key rotated and every note re-sealed.

        ``passphrase`` is a new one, or (``passphrase_changed=False``, which
        only changes what the report says) the current one: identity rotation.
        Afterwards the keys of a copy of the vault taken before, and with a new
        passphrase the old one, open no file in the vault and nothing written
        later.
        The first commit (the new owner keys) records every client key as
        still to rotate, so an interrupted run is finished by ``rotate``; the
        rotation commits in batches like ``revoke``'s.
        """
        _check_new_secret(passphrase, work_factor, allow_weak_work_factor)
        owner = self._new_owner(passphrase, work_factor, progress, rekey=True)
        rotation = self._finish_pending(progress)
        return RekeyReport(owner, rotation.rotated, rotation.failed, passphrase_changed)

    def _new_owner(
        self,
        passphrase: bytes,
        work_factor: int | None,
        progress: Progress | None,
        *,
        rekey: bool,
    ) -> OwnerRotation:
        """Swap in new owner keys in one commit; with ``rekey``, queue every client key."""
        # Grantees seal their audit-inbox entries to the owner key. Fold them
        # into the chain while that is still the key here (an empty write
        # commits nothing): after the swap no key here opens them.
        with self._writing():
            pass
        old = self._owner()
        new = identity.OwnerIdentity.generate()
        with self._writing() as txn:
            root = self._root_doc(txn.current)
            vault_id = root["vault"]
            settings = root["settings"]
            if work_factor is not None:
                settings["work_factor"] = work_factor
            keys = [
                (cid, n)
                for cid in root["clients"]
                for n in root["clients"][cid]["compartments"]
            ]
            texts = {
                k: age.decrypt(
                    self.store.get(root["clients"][k[0]]["compartments"][k[1]]["key"]),
                    [old.x25519],
                )
                for k in keys
            }
            self.owner = new
            try:
                for number, (cid, name) in enumerate(keys, start=1):
                    entry = root["clients"][cid]["compartments"][name]
                    txn.retire(entry["key"])
                    entry["key"] = txn.put(
                        sealing.seal_key_file(
                            texts[(cid, name)], self._key_recipients(root, cid, name)
                        )
                    )
                    if progress:
                        progress(number, len(keys))
                if rekey:
                    pending = root.setdefault("pending_rotation", [])
                    pending.extend([list(k) for k in keys if list(k) not in pending])
                txn.retire(txn.current.pointer("owner"))
                txn.point(
                    "owner",
                    txn.put(
                        new.seal_with_passphrase(
                            vault_id, passphrase, settings["work_factor"]
                        )
                    ),
                )
                recovery = settings.get("recovery_recipient")
                if recovery and txn.current.pointer("recovery"):
                    txn.retire(txn.current.pointer("recovery"))
                    txn.point(
                        "recovery",
                        txn.put(new.seal_to(vault_id, age.parse_recipient(recovery))),
                    )
                new_signer = signing.b64(new.signer)
                txn.changes.endorsement = {
                    "from": signing.b64(old.signer),
                    "to": new_signer,
                    "signature": signing.b64(
                        old.sign(endorsement_message(vault_id, new_signer))
                    ),
                }
                settings["identity_rotated"] = self.now()
                self._reseal_audit(txn, old.x25519, new.recipient)
                self._note_audit("identity-rotate", None, None, rekey=rekey)
                # Every client bucket is re-sealed to the new key, changed or not.
                for digest in self._root_buckets.objects:
                    txn.retire(digest)
                self._root_buckets = root_index.Buckets()
                self._write_root(txn, root)
            except BaseException:
                self.owner = old
                raise
        return OwnerRotation(
            work_factor=settings["work_factor"],
            client_keys_rewrapped=len(keys),
            recovery_key_kept=bool(recovery),
            signer=new_signer,
        )


def _check_new_secret(
    passphrase: bytes, work_factor: int | None, allow_weak_work_factor: bool
) -> None:
    """Refuse a weak passphrase or an out-of-bounds work factor before any change."""
    weakness = identity.check_passphrase_strength(passphrase)
    if weakness:
        raise WeakPassphraseError(f"passphrase too weak: {weakness}")
    if work_factor is not None:
        identity.check_work_factor(work_factor, allow_weak=allow_weak_work_factor)
