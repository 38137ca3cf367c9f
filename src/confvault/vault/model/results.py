"""Frozen results of vault operations; the CLI renders them (``--json``: ``to_json()``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from confvault.vault.model.retention import Hold
from confvault.vault.store.documents import JSONObject


@dataclass(frozen=True)
class ClientInfo:
    id: str
    name: str
    created: str
    notes: int
    drafts: int
    psychotherapy_notes: int
    fields: dict[str, str] = field(default_factory=dict)
    last_note: str | None = None
    born: str | None = None  # date of birth, when recorded (YYYY-MM-DD)
    hold: Hold | None = None  # a legal hold: {reason, since}

    def to_json(self) -> JSONObject:
        return asdict(self)


@dataclass(frozen=True)
class NoteInfo:
    id: str
    client: str
    client_name: str
    kind: str
    title: str
    date: str
    created: str
    status: str
    size: int
    addendum_of: str | None = None
    template: str | None = None
    filename: str | None = None
    addenda: tuple[str, ...] = ()

    def to_json(self) -> JSONObject:
        doc = asdict(self)
        doc["addenda"] = list(self.addenda)
        return doc


@dataclass(frozen=True)
class NoteView:
    info: NoteInfo
    body: bytes = field(repr=False)
    signature: str  # valid | draft | invalid | unknown-signer
    signed_at: str | None = None

    def to_json(self, *, include_body: bool = True) -> JSONObject:
        doc = self.info.to_json()
        doc["signature"] = self.signature
        doc["signed_at"] = self.signed_at
        if include_body and self.info.kind != "attachment":
            doc["body"] = self.body.decode("utf-8", "replace")
        return doc


@dataclass(frozen=True)
class SearchHit:
    note: NoteInfo
    snippets: tuple[tuple[str, str, str], ...]  # (before, match, after)

    def to_json(self) -> JSONObject:
        return {
            "note": self.note.to_json(),
            "snippets": [
                {"before": b, "match": m, "after": a} for b, m, a in self.snippets
            ],
        }


@dataclass(frozen=True)
class Finding:  # one problem (or note) found by verify
    severity: str  # "error" | "warning"
    code: str  # e.g. "object-missing", "hash-mismatch", "rollback"
    subject: str  # object name, file or note id (never a client name)
    message: str

    def to_json(self) -> JSONObject:
        return asdict(self)


@dataclass(frozen=True)
class VerifyReport:
    vault: str
    generation: int
    objects_checked: int
    notes_checked: int
    deep: bool
    findings: tuple[Finding, ...]
    vault_id: str = ""
    classic_objects: int = 0  # sealed only to X25519 recipients (a classic vault)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_json(self) -> JSONObject:
        doc = asdict(self)
        doc["ok"] = self.ok
        doc["findings"] = [f.to_json() for f in self.findings]
        return doc


@dataclass(frozen=True)
class VaultStatus:
    path: str
    vault_id: str
    generation: int
    clients: int
    notes: int
    drafts: int
    psychotherapy_notes: int
    attachments: int
    objects: int
    last_change: str
    last_verify: str | None
    oldest_key: str | None
    newest_key: str | None
    grants: int
    work_factor: int | None
    recovery_key: bool
    owner_key: str  # fingerprint of the key that signs the manifests
    pending_rotations: tuple[str, ...] = ()  # "client (compartment)" to rotate
    key_kind: str = "classic"  # of new keys: "postquantum" or "classic"
    classic_objects: int = 0  # live objects sealed only to X25519 keys

    def to_json(self) -> JSONObject:
        return asdict(self)


@dataclass(frozen=True)
class GrantInfo:
    id: str
    recipient: str
    label: str
    all_clients: bool
    clients: tuple[str, ...]  # names of the clients covered now
    psychotherapy: bool
    since: str
    until: str | None
    key_kind: str = "classic"  # of the grantee's key: model/keykind

    def to_json(self) -> JSONObject:
        doc = asdict(self)
        doc["clients"] = list(self.clients)
        return doc


@dataclass(frozen=True)
class ClientExposure:
    """What a revoked grantee could have read (and copied) while the grant lasted."""

    client: str
    client_name: str
    compartments: tuple[str, ...]
    notes: int
    first_note: str | None
    last_note: str | None
    since: str
    until: str

    def to_json(self) -> JSONObject:
        doc = asdict(self)
        doc["compartments"] = list(self.compartments)
        return doc


@dataclass(frozen=True)
class RotatedKey:
    client: str
    client_name: str
    compartment: str
    notes: int
    old_key_created: str
    new_key_created: str
    damaged: tuple[str, ...] = ()  # notes found unreadable, recorded as damaged

    def to_json(self) -> JSONObject:
        return asdict(self)


@dataclass(frozen=True)
class RotateReport:
    revoked_grants: tuple[str, ...]
    rotated: tuple[RotatedKey, ...]
    failed: tuple[str, ...]
    dry_run: bool

    @property
    def outcome(self) -> str:  # done | nothing-to-do | partly-done | failed
        if self.failed:
            return "partly-done" if self.rotated or self.revoked_grants else "failed"
        if not self.rotated and not self.revoked_grants:
            return "nothing-to-do"
        return "done"

    def to_json(self) -> JSONObject:
        return {
            "outcome": self.outcome,
            "dry_run": self.dry_run,
            "revoked_grants": list(self.revoked_grants),
            "rotated": [r.to_json() for r in self.rotated],
            "notes_resealed": sum(max(r.notes, 0) for r in self.rotated),
            "failed": list(self.failed),
        }


@dataclass(frozen=True)
class RevokeReport:
    recipient: str
    label: str
    grant_removed: bool
    exposure: tuple[ClientExposure, ...]
    rotated: tuple[RotatedKey, ...]
    failed: tuple[str, ...]

    CANNOT_UNDO = (
        "revocation cannot undo what the grantee already read: copies they made of "
        "notes, or of client keys, while the grant lasted stay readable to them; "
        "everything written from now on, and every file now in the vault, is sealed "
        "to new keys they do not have"
    )

    def to_json(self) -> JSONObject:
        return {
            "recipient": self.recipient,
            "label": self.label,
            "grant_removed": self.grant_removed,
            "exposure": [e.to_json() for e in self.exposure],
            "rotated": [r.to_json() for r in self.rotated],
            "failed": list(self.failed),
            "cannot_undo": self.CANNOT_UNDO,
        }


@dataclass(frozen=True)
class PassphraseReport:
    """A plain passphrase change: only the owner key file was rewritten."""

    work_factor: int

    PROTECTS = "the old passphrase no longer opens this vault's owner key file"
    DOES_NOT_PROTECT = (
        "a copy of the vault taken before the change still opens with the old "
        "passphrase, and the owner keys in it are still this vault's: they open the "
        "client keys, and so the notes, written afterwards, and they still sign as "
        "you; use `confvault passphrase --rekey` if the passphrase may have leaked"
    )

    def to_json(self) -> JSONObject:
        return {
            "action": "passphrase-change",
            "passphrase_changed": True,
            "rekey": False,
            "work_factor": self.work_factor,
            "rewritten": ["owner key file"],
            "protects": self.PROTECTS,
            "does_not_protect": self.DOES_NOT_PROTECT,
        }


@dataclass(frozen=True)
class OwnerRotation:
    """New owner keys, sealed with the same passphrase; client keys re-wrapped."""

    work_factor: int
    client_keys_rewrapped: int
    recovery_key_kept: bool
    signer: str

    PROTECTS = "the old owner key opens no file now in the vault"
    DOES_NOT_PROTECT = (
        "the client keys are unchanged: a copy of the vault taken before holds them, "
        "and they open the notes written afterwards; use `confvault identity rotate "
        "--rekey` if a key may have leaked, `confvault passphrase --rekey` if the "
        "passphrase may have"
    )

    def to_json(self) -> JSONObject:
        return {
            "action": "identity-rotate",
            "passphrase_changed": False,
            "rekey": False,
            "work_factor": self.work_factor,
            "client_keys_rewrapped": self.client_keys_rewrapped,
            "recovery_key_kept": self.recovery_key_kept,
            "signer": self.signer,
            "protects": self.PROTECTS,
            "does_not_protect": self.DOES_NOT_PROTECT,
        }


@dataclass(frozen=True)
class RekeyReport:
    """A full re-key: new owner keys, then every client key rotated."""

    owner: OwnerRotation
    rotated: tuple[RotatedKey, ...]
    failed: tuple[str, ...]
    passphrase_changed: bool

    PROTECTS_CHANGED = (
        "new passphrase, new owner keys and new client keys, every note re-sealed: a "
        "copy of the vault taken before, opened with the old passphrase or its owner "
        "key, opens no file now in the vault and nothing written from now on"
    )
    PROTECTS_KEPT = (
        "new owner keys and new client keys, every note re-sealed: the keys of a copy "
        "of the vault taken before open no file now in the vault and nothing written "
        "from now on; the passphrase is unchanged, and with it a later copy opens: "
        "use `confvault passphrase --rekey` if it may have leaked"
    )
    DOES_NOT_PROTECT = (
        "what a copy taken before held stays readable to whoever can open that copy; "
        "the recovery key, if the vault has one, is unchanged"
    )
    UNFINISHED = (
        "the clients named as not rotated still have their old keys, which a copy "
        "taken before opens: run `confvault rotate` to finish them"
    )

    @property
    def outcome(self) -> str:  # done | partly-done
        return "partly-done" if self.failed else "done"

    @property
    def protects(self) -> str:
        """What the re-key protects, for the passphrase given to it."""
        if self.passphrase_changed:
            return self.PROTECTS_CHANGED
        return self.PROTECTS_KEPT

    def to_json(self) -> JSONObject:
        return {
            **self.owner.to_json(),
            "action": "rekey",
            "passphrase_changed": self.passphrase_changed,
            "rekey": True,
            "outcome": self.outcome,
            "client_keys_rotated": len(self.rotated),
            "notes_resealed": sum(max(r.notes, 0) for r in self.rotated),
            "rotated": [r.to_json() for r in self.rotated],
            "failed": list(self.failed),
            "protects": self.protects,
            "does_not_protect": self.DOES_NOT_PROTECT
            + ("; " + self.UNFINISHED if self.failed else ""),
        }


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str
    actor: str  # "owner:<key>" or "grantee:<age1…>"
    action: str
    client: str | None
    client_name: str | None
    note: str | None
    signed: bool  # False: written by a grantee, not signed by the owner's key
    details: JSONObject = field(default_factory=dict)
    device: JSONObject | None = None  # {"id", "name"}: the synced device that wrote it

    def to_json(self) -> JSONObject:
        return asdict(self)


@dataclass(frozen=True)
class ExportResult:
    client: str
    client_name: str
    notes: int
    attachments: int
    psychotherapy: bool

    def to_json(self) -> JSONObject:
        return asdict(self)


@dataclass(frozen=True)
class ShredResult:
    client: str
    notes: int
    files_destroyed: int
    limits: str

    def to_json(self) -> JSONObject:
        return asdict(self)


Progress = Callable[[int, int], None]  # progress(done, total), by long operations
