"""THE table: every library error mapped once to an exit code, message and hints.

This is the only module that knows exit codes. docs/CLI.md reproduces the
table, and ``EXIT_STATUS`` is appended to every command's help.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from confvault import errors
from confvault.cli import _output
from confvault.vault.model import policy

OK = 0
FAILURE = 1
USAGE = 2
NOTHING_TO_DO = 3  # rotate: the job found nothing to do; lock: not unlocked
PARTLY_DONE = 4  # rotate/revoke: some clients were done, others failed
HELD = 5  # client shred: the client is under a legal hold
VAULT_NOT_FOUND = 10
VAULT_LOCKED = 11
WRONG_KEY = 12
INTEGRITY = 13
VAULT_READ_ONLY = 14
AGENT_LOST = 15  # the vault was locked (its unlock agent ended) mid-command
SYNC_CONFLICT = 16  # sync: both sides changed in a way not merged yet
INTERNAL = 70
INTERRUPTED = 130

EXIT_STATUS = """\
Exit status: 0 success; 1 other error; 2 usage error (also a CLIENT that is
empty, unprintable, too long or matches several clients); 3 nothing to do
(rotate, lock);
4 partly done (rotate, revoke, --rekey, retention apply); 5 the client is
under a legal hold (client shred); 10 no vault there;
11 vault locked by another process; 12 wrong passphrase or no matching key;
13 integrity problem (tampered, truncated or corrupt data); 14 the vault is
read-only here and the command writes; 15 the vault was locked (lock, auto-lock)
while the command ran; 16 sync refused: both devices changed the vault in a
way this version cannot merge; 70 internal error; 130 interrupted."""


@dataclass(frozen=True)
class Mapping:
    """How one error class reaches the user."""

    code: int
    hints: tuple[str, ...] = ()


_HINT_INIT = "run `confvault init` first, or pass --vault PATH"
_HINT_LOCKED = "another confvault command is writing; try again when it ends"
_HINT_PASSPHRASE = "check the passphrase, or use the recovery key"  # noqa: S105
_HINT_NO_MATCH = "was it sealed to another key? pass the right -i, or the passphrase"
_HINT_WORK = "the file asks for more scrypt work than allowed; it may be hostile"
_HINT_VERIFY = "run `confvault verify` for the full report; restore from a backup"
_HINT_DAMAGED = (
    "its text is no longer in the vault: a backup taken before the date named "
    "holds it (docs/RELIABILITY.md, damaged notes)"
)
_HINT_PENDING = "run `confvault rotate` to finish it, then write again"
_HINT_MEMORY = (
    "free space or fix the permissions of the state directory "
    "($XDG_STATE_HOME/confvault), then run the command again"
)
_HINT_SOURCE = "pass --passphrase-file FILE, or set CONFVAULT_PASSPHRASE_FILE"
_HINT_AGENT_LOST = (
    "nothing was committed (a write cut short is undone by the next one); "
    "run it again: it asks the passphrase, or `confvault unlock` first"
)
_HINT_WORK_FACTOR = (
    f"it is log2 of scrypt's N (default {policy.DEFAULT_WORK_FACTOR}); below "
    f"{policy.MIN_WORK_FACTOR} only with --allow-weak-work-factor, for tests and "
    "benchmarks"
)
_HINT_SHARES = (
    "each custodian opens their own file (`age -d -i KEY share-NAME.age`); only "
    "shares of the latest `custodian split` count (docs/CONTINUITY.md)"
)
_HINT_NOTICE = "run the same command again once the notice has ended"

# Order matters: the first class that matches wins, so subclasses come first.
TABLE: list[tuple[type[errors.ConfvaultError], Mapping]] = [
    (errors.VaultNotFoundError, Mapping(VAULT_NOT_FOUND, (_HINT_INIT,))),
    (errors.VaultLockedError, Mapping(VAULT_LOCKED, (_HINT_LOCKED,))),
    (errors.SharesError, Mapping(WRONG_KEY, (_HINT_SHARES,))),
    (errors.NoticePendingError, Mapping(FAILURE, (_HINT_NOTICE,))),
    (errors.WrongPassphraseError, Mapping(WRONG_KEY, (_HINT_PASSPHRASE,))),
    (errors.NoIdentityMatchError, Mapping(WRONG_KEY, (_HINT_NO_MATCH,))),
    (errors.ScryptWorkFactorError, Mapping(INTEGRITY, (_HINT_WORK,))),
    (errors.DamagedNoteError, Mapping(INTEGRITY, (_HINT_DAMAGED,))),
    (errors.RotationPendingError, Mapping(INTEGRITY, (_HINT_PENDING,))),
    (errors.RollbackMemoryError, Mapping(INTEGRITY, (_HINT_MEMORY,))),
    (
        errors.RemoteIntegrityError,
        Mapping(INTEGRITY, ("the remote is not trusted: see docs/SYNC.md",)),
    ),
    (errors.IntegrityError, Mapping(INTEGRITY, (_HINT_VERIFY,))),
    (errors.HeaderMacError, Mapping(INTEGRITY, ("the header was altered",))),
    (errors.HeaderError, Mapping(INTEGRITY, ("the file is not an intact age file",))),
    (errors.PayloadError, Mapping(INTEGRITY, ("the file is truncated or altered",))),
    (
        errors.ArmorError,
        Mapping(INTEGRITY, ("the armor is damaged or has extra text",)),
    ),
    (errors.PassphraseUnavailableError, Mapping(USAGE, (_HINT_SOURCE,))),
    (errors.DurationError, Mapping(USAGE)),
    (errors.AgentLostError, Mapping(AGENT_LOST, (_HINT_AGENT_LOST,))),
    (
        errors.AlreadyUnlockedError,
        Mapping(
            NOTHING_TO_DO, ("`confvault lock` first to unlock it with other times",)
        ),
    ),
    (errors.NotUnlockedError, Mapping(NOTHING_TO_DO)),
    (errors.KeysMismatchError, Mapping(WRONG_KEY)),
    (errors.WorkFactorError, Mapping(USAGE, (_HINT_WORK_FACTOR,))),
    (
        errors.ClientReferenceError,
        Mapping(USAGE, ("give a client's name, the start of a word of it, or its ID",)),
    ),
    (
        errors.AmbiguousClientError,
        Mapping(USAGE, ("give more of the name, or of the ID",)),
    ),
    (
        errors.ClientNotFoundError,
        Mapping(FAILURE, ("`confvault client list` shows names and IDs",)),
    ),
    (
        errors.NoteNotFoundError,
        Mapping(FAILURE, ("`confvault note list` shows note IDs",)),
    ),
    (
        errors.VaultInSyncFolderError,
        Mapping(
            VAULT_READ_ONLY,
            (
                "move the vault out of the sync folder and let "
                "`confvault sync init --folder DIR` carry it (docs/SYNC.md)",
            ),
        ),
    ),
    (
        errors.VaultReadOnlyError,
        Mapping(
            VAULT_READ_ONLY,
            ("reads work here; write on a writable copy of the vault",),
        ),
    ),
    (
        errors.ReadOnlyError,
        Mapping(FAILURE, ("write commands need the owner's passphrase",)),
    ),
    (
        errors.NoteLockedError,
        Mapping(FAILURE, ("`confvault note amend NOTE` adds an addendum",)),
    ),
    (errors.KeyFormatError, Mapping(USAGE)),
    (
        errors.ClientHeldError,
        Mapping(HELD, ("`confvault client release CLIENT` lifts the hold first",)),
    ),
    (
        errors.RequestNotFoundError,
        Mapping(FAILURE, ("`confvault request list --all` shows request IDs",)),
    ),
    (errors.ConfirmationRequiredError, Mapping(USAGE)),
    # sync over git (issue 16)
    (errors.DeviceNameError, Mapping(USAGE)),
    (
        errors.DeviceNotFoundError,
        Mapping(FAILURE, ("`confvault audit --json` shows each entry's device",)),
    ),
    (
        errors.SyncConflictError,
        Mapping(SYNC_CONFLICT, ("docs/SYNC.md says what merges and what not yet",)),
    ),
    (errors.GitUnavailableError, Mapping(FAILURE)),
    (errors.ConfvaultError, Mapping(FAILURE)),
]


def exit_for(outcome: str) -> None:
    """The exit of a batch job's ``outcome`` (rotate, revoke, migrate,
    retention apply): none for done, 3, 4 or 1 otherwise."""
    codes = {"nothing-to-do": NOTHING_TO_DO, "partly-done": PARTLY_DONE}
    if outcome in codes or outcome == "failed":
        raise typer.Exit(codes.get(outcome, FAILURE))


def mapping_for(err: errors.ConfvaultError) -> Mapping:
    """The table entry for ``err``."""
    for cls, entry in TABLE:
        if isinstance(err, cls):
            return entry
    return Mapping(FAILURE)


def fail(err: errors.ConfvaultError) -> NoReturn:
    """Report ``err`` on stderr and exit with its code."""
    entry = mapping_for(err)
    _output.error(str(err) or type(err).__name__)
    if isinstance(err, errors.AmbiguousClientError):
        for client_id, name in err.candidates:
            _output.line(f"  {client_id}  {_output.safe(name)}", err=True)
    for hint in getattr(err, "hints", ()) or entry.hints:
        _output.hint(hint)
    raise typer.Exit(entry.code)


class ConfvaultGroup(TyperGroup):
    """The root command group: maps every error once, for every command."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except errors.ConfvaultError as err:
            fail(err)
        except KeyboardInterrupt:
            _output.error("interrupted")
            raise typer.Exit(INTERRUPTED) from None
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): not our error to report.
            _silence_stdout()
            raise typer.Exit(FAILURE) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as err:
            if os.environ.get("CONFVAULT_DEBUG"):
                raise
            if _is_usage_error(err):
                raise
            _output.error(f"internal error: {type(err).__name__}")
            _output.hint(
                "this is a bug: please report it; set CONFVAULT_DEBUG=1 for details"
            )
            raise typer.Exit(INTERNAL) from None


def _is_usage_error(err: Exception) -> bool:
    # Click's own exceptions (usage errors) are handled by Click's main loop.
    return type(err).__module__.startswith("typer._click")


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
