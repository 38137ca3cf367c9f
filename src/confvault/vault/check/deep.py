"""The deep checker: decrypt the root, every client key, index and note, and
check every signature. Problems are gathered as findings, added to those of
the keyless report this check starts from (``DeepChecker.check``).

It reads the vault only through ``store`` (the objects, the root index, the
inbox) and ``model`` (the sealed records and their checks): the same
functions the operations read with, and no session, no lock of its own.
"""

from __future__ import annotations

from confvault import age
from confvault.errors import AgeError, ConfvaultError, IntegrityError
from confvault.vault.model import sealed
from confvault.vault.model.audit import chain_findings, inbox_findings
from confvault.vault.model.index import NoteEntry
from confvault.vault.model.note_format import PSYCHOTHERAPY, RECORDS
from confvault.vault.model.results import Finding, Progress, VerifyReport
from confvault.vault.model.root import RootRecord
from confvault.vault.store import inbox, root_index
from confvault.vault.store.manifest import Manifest
from confvault.vault.store.objects import ObjectStore


class DeepChecker:
    """Opens everything ``current`` names with the owner's key.

    ``signers`` are the owner signing keys a note may be signed by (the
    manifest's signer and the former ones it endorses); ``progress`` is
    called as ``progress(notes checked, notes in all)``.
    """

    def __init__(
        self,
        current: Manifest,
        objects: ObjectStore,
        owner: age.Identity,
        signers: set[str],
        progress: Progress | None = None,
    ) -> None:
        self.current = current
        self.objects = objects
        self.owner = owner
        self.signers = signers
        self.progress = progress
        self.findings: list[Finding] = []
        self.reached: set[str] = set(current.body.pointers.values())
        self.notes_checked = 0

    def check(self, keyless: VerifyReport) -> VerifyReport:
        """The keyless report with the deep findings added."""
        self.findings = list(keyless.findings)
        try:
            root = self._root()
        except (ConfvaultError, AgeError) as err:
            self._error("root", "root", f"the root index does not open: {err}")
            return self._report(keyless)
        total = sum(
            entry.notes + entry.drafts
            for client in root.clients.values()
            for entry in client.compartments.values()
        )
        for client_id, name in root.pending_rotation or ():
            # The vault is whole; a job on it is unfinished (and writes under
            # this key are refused until it is): a warning, as status says.
            self.findings.append(
                Finding(
                    "warning",
                    "rotation-pending",
                    f"{client_id}/{name}",
                    "this key is still to be rotated (a revoke, an expired grant "
                    "or a re-key did not finish): run `confvault rotate`",
                )
            )
        for client_id in sorted(root.clients):
            for name in (RECORDS, PSYCHOTHERAPY):
                self._compartment(root, client_id, name, total)
        self._audit()
        for digest in sorted(self.current.all_objects() - self.reached):
            self.findings.append(
                Finding(
                    "warning", "orphan", digest, "a live object that no index refers to"
                )
            )
        return self._report(keyless)

    def _root(self) -> RootRecord:
        digest = self.current.pointer("root")
        if digest is None:
            raise IntegrityError("the manifest has no root entry")
        vault_id = self.current.body.vault_id
        root, buckets = root_index.read(self.objects, self.owner, digest, vault_id)
        self.reached |= buckets.objects
        return root

    def _compartment(
        self, root: RootRecord, client_id: str, name: str, total: int
    ) -> None:
        entry = root.clients[client_id].compartments.get(name)
        if entry is None:
            return
        self.reached |= {entry.key, entry.index}
        try:
            key = sealed.open_client_key(self.objects, entry.key, [self.owner])
            index = sealed.open_index(self.objects, entry, key, client_id, name)
        except (ConfvaultError, AgeError) as err:
            where = f"{client_id}/{name}"
            self._error("index", where, f"the {name} index does not open: {err}")
            return
        for note in index.notes:
            if note.damaged is not None:
                self.findings.append(
                    Finding(
                        "warning",
                        "note-damaged",
                        note.id,
                        "unreadable when its compartment key was rotated "
                        f"({note.damaged}): its entry is kept, its text is no "
                        "longer in the vault",
                    )
                )
                continue
            self.reached.add(note.object)
            self.notes_checked += 1
            try:
                self._note(key, note, client_id)
            except (ConfvaultError, AgeError) as err:
                self._error("note", note.id, str(err))
            if self.progress:
                self.progress(self.notes_checked, total)

    def _note(self, key: age.AnyIdentity, note: NoteEntry, client_id: str) -> None:
        if note.kind == "attachment":
            sealed.stream_attachment(self.objects, key, note, self.signers, _NullSink())
        else:
            sealed.read_note(
                self.objects, key, note, client_id, self.signers, by_identity=True
            )

    def _audit(self) -> None:
        try:
            head = self.current.pointer("audit")
            segments = sealed.audit_chain(self.objects, [self.owner], head)
            self.reached |= {digest for digest, _ in segments}
            self.findings += chain_findings(segments, self.current.body.vault_id)
            self.findings += inbox_findings(inbox.names(self.objects.disk))
        except (ConfvaultError, AgeError) as err:
            self._error("audit", "audit", f"the audit trail does not open: {err}")

    def _error(self, code: str, subject: str, message: str) -> None:
        self.findings.append(Finding("error", code, subject, message))

    def _report(self, keyless: VerifyReport) -> VerifyReport:
        return VerifyReport(
            keyless.vault,
            keyless.generation,
            keyless.objects_checked,
            self.notes_checked,
            True,
            tuple(self.findings),
            keyless.vault_id,
        )


class _NullSink:
    def write(self, data: bytes | bytearray | memoryview) -> int:
        return len(data)
