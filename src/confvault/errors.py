"""Every exception confvault raises on purpose.

This module imports nothing from confvault. Messages state facts with IDs and
never include plaintext, keys, passphrases or client names.
"""

from __future__ import annotations


class ConfvaultError(Exception):
    """Root of every error confvault raises on purpose."""


# --- the age codec -----------------------------------------------------------


class AgeError(ConfvaultError):
    """An age file could not be encrypted or decrypted."""


class HeaderError(AgeError):
    """The age header is malformed or a stanza is invalid (vector: header failure)."""


class HeaderMacError(AgeError):
    """The header MAC does not match the header (vector: HMAC failure)."""


class PayloadError(AgeError):
    """The STREAM payload is truncated, tampered with or has trailing data."""


class ArmorError(AgeError):
    """The ASCII armor is not the strict PEM encoding the spec allows."""


class IncorrectIdentityError(AgeError):
    """An identity found no stanza addressed to it; the caller tries the next one."""


class NoIdentityMatchError(AgeError):
    """No identity could unwrap the file key (vector: no match)."""

    def __init__(self, stanza_types: list[str], errors: list[AgeError]) -> None:
        self.stanza_types = stanza_types
        self.errors = errors
        kinds = ", ".join(stanza_types) or "none"
        super().__init__(f"no identity matched any of the recipients ({kinds})")


class IncompatibleRecipientsError(AgeError):
    """Recipients that must not seal the same file were given together.

    A post-quantum (``mlkem768x25519``) recipient cannot share a file with a
    classic one: the file would be only as safe as its weakest stanza.
    """


class ScryptWorkFactorError(HeaderError):
    """An scrypt stanza asks for more work than this decryptor allows."""


class KeyFormatError(ConfvaultError):
    """A recipient, identity or identity file is not in a format we accept."""


# --- the vault -----------------------------------------------------------------


class VaultError(ConfvaultError):
    """A vault operation failed."""


class VaultNotFoundError(VaultError):
    """There is no vault at the given path."""


class VaultExistsError(VaultError):
    """A vault (or other data) already exists where one was to be created."""


class VaultLockedError(VaultError):
    """Another process holds the vault's write lock."""


class WrongPassphraseError(VaultError):
    """The passphrase (or identity) does not open the owner key."""


class WeakPassphraseError(VaultError):
    """The passphrase is too weak to protect clinical records."""


class WorkFactorError(VaultError, ValueError):
    """A new owner key file was asked for an scrypt work factor out of bounds."""


class PassphraseUnavailableError(VaultError):
    """No passphrase source was given and no terminal is available to ask."""


class IntegrityError(VaultError):
    """Verification found problems; ``findings`` lists them."""

    def __init__(self, message: str, findings: list[object] | None = None) -> None:
        self.findings = findings or []
        super().__init__(message)


class NotFoundError(VaultError):
    """A named thing does not exist in the vault."""


class ClientNotFoundError(NotFoundError):
    """No client matches the given name or ID prefix."""


class NoteNotFoundError(NotFoundError):
    """No note matches the given ID prefix."""


class UnsafeInputError(VaultError):
    """A path-like name, a planted symlink or unsafe permissions."""


class AmbiguousNameError(VaultError):
    """A name or ID prefix matches more than one thing."""


class ClientReferenceError(ClientNotFoundError, UnsafeInputError):
    """A CLIENT reference no client can match: empty, white space only, longer
    than a name may be, or holding a control character."""


class AmbiguousClientError(AmbiguousNameError):
    """A CLIENT reference (an ID prefix, or a prefix of a word of the name)
    matches more than one client. ``candidates`` holds each one's
    ``(id, name)``, by name; the message names none of them."""

    def __init__(
        self, message: str, candidates: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.candidates = candidates
        super().__init__(message)


class ReadOnlyError(VaultError):
    """A write was attempted with a read-only (grantee) session."""


class VaultReadOnlyError(ReadOnlyError):
    """The vault cannot be written here (read-only media, or no write
    permission for this user): it was opened read-only, and this command writes."""


class NoteLockedError(VaultError):
    """A signed note cannot change; add an addendum instead."""


class StorageError(VaultError):
    """The file system refused an operation (full disk, permissions, I/O)."""


class UnsafeVaultEntryError(UnsafeInputError, IntegrityError):
    """Something in the vault directory is not what the format allows there
    (a symlink, a FIFO or device, a hard link, another owner, open
    permissions, a name outside the grammar): refused, exit 13."""


class DamagedNoteError(IntegrityError):
    """The note was found unreadable when its compartment key was rotated:
    its index entry is kept, its text is no longer in the vault."""


class RotationPendingError(IntegrityError):
    """A compartment whose key must be rotated (after a revoke, an expiry or
    a re-key) would be written to under its old key: refused until rotated."""


class KeysMismatchError(VaultError):
    """The owner keys given (an unlock agent's) are not this vault's."""


class AgentError(VaultError):
    """An unlock agent could not be used (absent, dead, stale, refused, slow)."""


class AgentLostError(AgentError):
    """The unlock agent ended while a command was using it (locked, killed)."""


class AlreadyUnlockedError(AgentError):
    """``unlock``: a live agent serves this vault already."""


class NotUnlockedError(VaultError):
    """``lock``: no unlock agent serves this vault."""


class DurationError(VaultError, ValueError):
    """A duration option (``--idle 15m``) that is malformed or out of bounds."""


class RollbackMemoryError(StorageError):
    """This machine's rollback memory could not be written: a change it did
    not record could be undone by a rollback unnoticed, so none is made."""


# Custodians (issue 18)


class SharesError(WrongPassphraseError):
    """Custodians' shares that open nothing: too few, malformed, of different
    splits, or of a split that is no longer the vault's."""


class NoticePendingError(VaultError):
    """The custodians' waiting period (``--notice``) has not ended."""

    def __init__(self, message: str, until: str) -> None:
        super().__init__(message)
        self.until = until


# --- retention, legal hold, records requests (issue 18) ----------------------


class ClientHeldError(VaultError):
    """The client is under a legal hold: their records cannot be shredded
    until ``client release``."""


class RequestNotFoundError(NotFoundError):
    """No records request matches the given ID prefix."""


class ConfirmationRequiredError(VaultError):
    """A destructive command needs a confirmation on a terminal, or ``--yes``."""


# --- sync over git (issue 16) ---------------------------------------------------


class SyncError(VaultError):
    """Sync could not run: git failed, the remote is unreachable or is not a
    repository, the vault is not connected, or is connected elsewhere."""


class GitUnavailableError(SyncError):
    """The system ``git`` binary is not installed (or not runnable)."""


class DeviceNameError(SyncError, ValueError):
    """A device name outside the allowed grammar (letters, digits, ``._-``)."""


class RemoteIntegrityError(IntegrityError):
    """The remote fails a check (rolled back, dropped objects, a manifest not
    signed by the owner, a rewritten or forked history): nothing was changed."""


class DeviceNotFoundError(NotFoundError):
    """No audit entry names the device (by name or ID) given to ``audit
    --device``, and it is not this device."""


class SyncConflictError(SyncError):
    """Both this device and the remote changed the vault since the last sync,
    in a way this version cannot merge yet: nothing was changed."""


class VaultInSyncFolderError(VaultReadOnlyError):
    """The vault directory itself lies in a file-sync folder (Syncthing,
    Dropbox): reads go on, writes are refused (``sync init --folder``)."""
