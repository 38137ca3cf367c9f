"""The logical content of a vault, read through the library as its owner.

Clients, notes (with a digest of each body), grants, the key set and the
length of the audit trail: what "the state before the command" and "the
state after it" mean, with nothing that a read changes (a read appends an
audit entry, so the trail's length is taken first, before any other read).

The key set is what the public API shows of the keys: the owner key's
fingerprint, whether a recovery key exists, the work factor, and the
creation times of the oldest and the newest client key. The vaults here are
built with a clock in the past, one second per call, so every key a command
makes is newer than every key it found: a rotation that stopped half way
shows an old oldest key beside a new newest one, which is neither before
nor after.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confvault.vault import Vault

PASSPHRASE = b"correct horse battery staple"
WORK_FACTOR = 10


@dataclass(frozen=True)
class Content:
    clients: tuple[tuple[str, str], ...]  # (id, name)
    notes: tuple[
        tuple[str, ...], ...
    ]  # (id, client, kind, title, status, addendum_of, sha256)
    grants: tuple[
        tuple[str, ...], ...
    ]  # (recipient, label, clients, psychotherapy, until)
    keys: tuple[object, ...]  # (owner key, recovery key, work factor, oldest, newest)
    audit: int  # entries in the trail

    def summary(self) -> str:
        return (
            f"{len(self.clients)} clients, {len(self.notes)} notes, {len(self.grants)} grants, "
            f"keys {self.keys[3]}..{self.keys[4]}, owner {str(self.keys[0])[:8]}, "
            f"{self.audit} audit entries"
        )


def past_clock(start: str = "2024-01-02T03:04:05") -> Callable[[], dt.datetime]:
    """A clock in the past that moves one second per reading."""
    now = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC)

    def clock() -> dt.datetime:
        nonlocal now
        now += dt.timedelta(seconds=1)
        return now

    return clock


def open_vault(vault: Path, state: Path) -> Vault:
    return Vault.open(vault, passphrase=PASSPHRASE, state_dir=state)


def read(vault: Vault) -> Content:
    """The content of an open vault (its reads append audit entries)."""
    audit = len(vault.audit())
    clients = tuple(sorted((c.id, c.name) for c in vault.clients()))
    notes = []
    for info in vault.notes(None, psychotherapy=True):
        if info.kind == "attachment":
            sink = io.BytesIO()
            vault.save_attachment(info.id, sink)
            body = sink.getvalue()
        else:
            body = vault.note(info.id).body
        notes.append(
            (
                info.id,
                info.client,
                info.kind,
                info.title,
                info.status,
                info.addendum_of or "-",
                hashlib.sha256(body).hexdigest(),
            )
        )
    grants = tuple(
        sorted(
            (
                g.recipient,
                g.label,
                ",".join(sorted(g.clients)),
                str(g.psychotherapy),
                g.until or "-",
            )
            for g in vault.grants()
        )
    )
    status = vault.status()
    keys = (
        status.owner_key,
        status.recovery_key,
        status.work_factor,
        status.oldest_key,
        status.newest_key,
    )
    return Content(clients, tuple(sorted(notes)), grants, keys, audit)
