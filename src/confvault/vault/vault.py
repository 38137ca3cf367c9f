"""``Vault``: the facade the CLI and scripts call. No terminal, no prints, no exits.

    vault, recovery_key = Vault.init(path, passphrase)  # Vault.open(path, passphrase=...)
    note = vault.add_note(vault.add_client("A. Client").id, b"Session went well.")
    print([vault.note(info.id).body for info in vault.notes()])

Each method is one operation of ``vault.ops`` over ``vault.session`` (ARCHITECTURE.md).
"""

from __future__ import annotations

from pathlib import Path

from confvault import age
from confvault.vault import ops
from confvault.vault._custody import CustodyMethods
from confvault.vault._migration import MigrationMethods
from confvault.vault._owner_keys import OwnerKeyMethods
from confvault.vault._records import RecordsMethods
from confvault.vault.model import identity, policy, results
from confvault.vault.model.clock import Clock, utc_now
from confvault.vault.model.custody import CustodianOpening
from confvault.vault.session import opening
from confvault.vault.session.core import Session
from confvault.vault.store.manifest import Manifest
from confvault.vault.store.objects import ObjectStore
from confvault.vault.store.seen import SeenStore


class Vault(OwnerKeyMethods, MigrationMethods, CustodyMethods, RecordsMethods):
    """An open vault. Create with ``Vault.init`` or ``Vault.open``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @classmethod
    def init(
        cls,
        path: Path,
        passphrase: bytes,
        *,
        work_factor: int = policy.DEFAULT_WORK_FACTOR,
        recovery_key: bool = True,
        clock: Clock = utc_now,
        state_dir: Path | None = None,
        min_work_factor: int = policy.MIN_WORK_FACTOR,
        postquantum: bool = True,
    ) -> tuple[Vault, str | None]:
        """Create a vault at ``path``; return it and the recovery key (shown
        once). ``min_work_factor``: for tests and benchmarks."""
        session, recovery = opening.create(
            path,
            passphrase,
            work_factor=work_factor,
            recovery_key=recovery_key,
            clock=clock,
            state_dir=state_dir,
            min_work_factor=min_work_factor,
            postquantum=postquantum,
        )
        return cls(session), recovery

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        passphrase: bytes | None = None,
        recovery_key: str | None = None,
        reader: age.AnyIdentity | None = None,
        clock: Clock = utc_now,
        state_dir: Path | None = None,
        lock_timeout: float = policy.DEFAULT_LOCK_TIMEOUT,
        owner_key: str | None = None,
        keys: identity.OwnerKeys | None = None,
    ) -> Vault:
        """Open with the passphrase, the recovery key, an agent's ``keys`` or
        (read-only) a grantee key; ``owner_key`` pins the manifests' signer."""
        return cls(
            opening.open_session(
                path,
                passphrase=passphrase,
                recovery_key=recovery_key,
                reader=reader,
                clock=clock,
                state_dir=state_dir,
                lock_timeout=lock_timeout,
                owner_key=owner_key,
                keys=keys,
            )
        )

    @classmethod
    def open_by_custodians(
        cls,
        path: Path,
        shares: list[str],
        *,
        clock: Clock = utc_now,
        state_dir: Path | None = None,
        lock_timeout: float = policy.DEFAULT_LOCK_TIMEOUT,
    ) -> tuple[Vault, CustodianOpening]:
        """Open with K custodians' shares (words); the opening is audited,
        or a notice started (NoticePendingError). docs/CONTINUITY.md."""
        session, opened = ops.custody.open_with_shares(
            path, shares, clock=clock, state_dir=state_dir, lock_timeout=lock_timeout
        )
        return cls(session), opened

    @property
    def root(self) -> Path:
        return self.session.root

    @property
    def store(self) -> ObjectStore:
        return self.session.store

    @property
    def manifest(self) -> Manifest | None:
        return self.session.manifest

    @property
    def owner(self) -> identity.OwnerKeys | None:
        return self.session.owner

    @property
    def seen(self) -> SeenStore:
        return self.session.seen

    @property
    def first_use(self) -> bool:
        """True when this machine had no memory of the vault before this open."""
        return self.session.first_use

    @property
    def read_only(self) -> bool:
        """True when the vault cannot be written here: reads go to the spool."""
        return self.session.read_only

    @property
    def spooled(self) -> int:
        """Reads this session recorded in this machine's spool."""
        return self.session.spooling.spooled

    @property
    def spool_refused(self) -> list[str]:
        """Spooled entries that failed their check on this open (kept, not folded)."""
        return list(self.session.spooling.refused)

    @property
    def vault_id(self) -> str:
        return self.session.vault_id

    def now(self) -> str:
        return self.session.now()

    def owner_key_fingerprint(self, current: Manifest | None = None) -> str:
        """The fingerprint of the key that signs this vault's manifests."""
        return self.session.owner_key_fingerprint(current)

    def status(self) -> results.VaultStatus:
        """Counts, key ages, grants and the last verify, for the dashboard."""
        return ops.status.status(self.session)

    def merge_flags(self) -> dict[str, object]:
        """Conflict drafts and possible duplicate clients (sync, issue 16)."""
        return ops.status.merge_flags(self.session)

    def verify(
        self, *, deep: bool = False, progress: results.Progress | None = None
    ) -> results.VerifyReport:
        """Keyless checks, and with ``deep`` every note decrypted and its signature checked."""
        return ops.status.verify(self.session, deep=deep, progress=progress)

    def grant(
        self,
        recipient: str,
        *,
        clients: list[str] | None = None,
        all_clients: bool = False,
        label: str | None = None,
        until: str | None = None,
        psychotherapy: bool = False,
    ) -> results.GrantInfo:
        """Give ``recipient`` (an age1… key) read access; re-wraps client keys only."""
        return ops.grants.grant(
            self.session,
            recipient,
            clients=clients,
            all_clients=all_clients,
            label=label,
            until=until,
            psychotherapy=psychotherapy,
        )

    def grants(self) -> list[results.GrantInfo]:
        """Every grant: who, to what, since when, until when."""
        return ops.grants.grants(self.session)

    def revoke(
        self,
        who: str,
        *,
        clients: list[str] | None = None,
        progress: results.Progress | None = None,
    ) -> results.RevokeReport:
        """Remove a grant (or some of its clients) and rotate every affected key."""
        return ops.grants.revoke(self.session, who, clients=clients, progress=progress)

    def rotate(
        self,
        *,
        clients: list[str] | None = None,
        all_clients: bool = False,
        older_than: str | None = None,
        expired: bool = False,
        dry_run: bool = False,
        progress: results.Progress | None = None,
    ) -> results.RotateReport:
        """New client keys and re-sealed notes; ``expired`` revokes lapsed grants."""
        return ops.rotation.rotate(
            self.session,
            clients=clients,
            all_clients=all_clients,
            older_than=older_than,
            expired=expired,
            dry_run=dry_run,
            progress=progress,
        )

    def audit(
        self,
        *,
        client: str | None = None,
        since: str | None = None,
        action: str | None = None,
        device: str | None = None,
    ) -> list[results.AuditEntry]:
        """The audit trail, oldest first, filtered (``device``: a name or ID)."""
        return ops.audit.audit(
            self.session, client=client, since=since, action=action, device=device
        )

    def verify_audit(self) -> list[results.Finding]:
        """Walk the whole chain: sequence, hashes and segment links."""
        return ops.audit.verify_audit(self.session)

    def add_client(
        self, name: str, fields: dict[str, str] | None = None, born: str | None = None
    ) -> results.ClientInfo:
        """Add a client; the name must not already be in use (``born``: YYYY-MM-DD)."""
        return ops.clients.add_client(self.session, name, fields, born)

    def clients(self) -> list[results.ClientInfo]:
        """All clients, by name."""
        return ops.clients.clients(self.session)

    def client(self, ref: str) -> results.ClientInfo:
        """One client, with the profile fields (from the sealed index)."""
        return ops.clients.client(self.session, ref)

    def rename_client(self, ref: str, new_name: str) -> results.ClientInfo:
        """Rename a client (root index and profile change together)."""
        return ops.clients.rename_client(self.session, ref, new_name)

    def add_note(
        self,
        client: str,
        body: bytes,
        *,
        kind: str = "progress",
        title: str | None = None,
        template: str | None = None,
        date: str | None = None,
        draft: bool = False,
    ) -> results.NoteInfo:
        """Add a note; unless ``draft``, it is signed and locked at once."""
        return ops.notes.add_note(
            self.session,
            client,
            body,
            kind=kind,
            title=title,
            template=template,
            date=date,
            draft=draft,
        )

    def import_notes(
        self,
        client: str,
        paths: list[Path],
        *,
        kind: str = "progress",
        progress: results.Progress | None = None,
    ) -> list[results.NoteInfo]:
        """Bring existing text/Markdown files in as signed notes, in one commit."""
        return ops.notes.import_notes(
            self.session, client, paths, kind=kind, progress=progress
        )

    def add_notes(
        self,
        client: str,
        items: list[tuple[str, str, bytes]],
        *,
        kind: str = "progress",
        progress: results.Progress | None = None,
    ) -> list[results.NoteInfo]:
        """Add many signed notes ``(title, date, body)`` to one client in one commit."""
        return ops.notes.add_notes(
            self.session, client, items, kind=kind, progress=progress
        )

    def add_attachment(
        self, client: str, path: Path, *, title: str | None = None
    ) -> results.NoteInfo:
        """Seal any file, streamed, as a signed attachment note."""
        return ops.notes.add_attachment(self.session, client, path, title=title)

    def edit_draft(
        self, ref: str, body: bytes, *, title: str | None = None
    ) -> results.NoteInfo:
        """Replace a draft's text (and title). Signed notes never change."""
        return ops.notes.edit_draft(self.session, ref, body, title=title)

    def sign_note(self, ref: str) -> results.NoteInfo:
        """Sign and lock a draft."""
        return ops.notes.sign_note(self.session, ref)

    def amend(
        self, ref: str, body: bytes, *, title: str | None = None, draft: bool = False
    ) -> results.NoteInfo:
        """Add an addendum to a signed note (in the original's compartment)."""
        return ops.notes.amend(self.session, ref, body, title=title, draft=draft)

    def notes(
        self,
        client: str | None = None,
        *,
        since: str | None = None,
        until: str | None = None,
        kind: str | None = None,
        psychotherapy: bool = False,
    ) -> list[results.NoteInfo]:
        """Notes by date; psychotherapy notes only when asked for."""
        return ops.reading.notes(
            self.session,
            client,
            since=since,
            until=until,
            kind=kind,
            psychotherapy=psychotherapy,
        )

    def note(self, ref: str) -> results.NoteView:
        """A note with its body, after checking hash, index match and signature."""
        return ops.reading.note(self.session, ref)

    def save_attachment(self, ref: str, dst: age.Writer) -> results.NoteInfo:
        """Stream an attachment's file into ``dst``; IntegrityError if it is not intact."""
        return ops.reading.save_attachment(self.session, ref, dst)

    def search(
        self, query: str, *, client: str | None = None, psychotherapy: bool = False
    ) -> list[results.SearchHit]:
        """Case-insensitive full-text search over note titles and bodies."""
        return ops.reading.search(
            self.session, query, client=client, psychotherapy=psychotherapy
        )

    def export_client(
        self,
        client: str,
        sink: ops.export_sinks.ExportSink,
        *,
        psychotherapy: bool = False,
    ) -> results.ExportResult:
        """Write a client's whole record (notes as Markdown, files, an index) to ``sink``."""
        return ops.export.export_client(
            self.session, client, sink, psychotherapy=psychotherapy
        )

    def shred_client(self, client: str) -> results.ShredResult:
        """Destroy a client's keys and every sealed file of theirs (crypto-shredding);
        ``ClientHeldError`` for a client under a legal hold."""
        return ops.export.shred_client(self.session, client)


__all__ = ["Vault"]
