"""The keyless checker: signatures and hashes of everything, no passphrase.

    report, current = KeylessChecker(root, seen=seen).check()
    report = verify_vault(root, seen=seen)     # the same under the shared lock

Like restic's checker, it gathers typed findings (``model.results.Finding``)
and never raises for a damaged vault, so that one report names every
problem. Its parts, each in its own module: the signed manifest and this
machine's memory of it (``signed``), the tree of the vault directory and
the files nobody named (``tree``), the hash of every live object
(``objects``). It reads the directory only through ``store``: the manifest
and shards by ``rootfs.Root``, everything else as it is by
``store.survey.Survey`` (by descriptor, no link followed, no FIFO waited on).
The deep checker (``check.deep``) starts from its report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from confvault.errors import ConfvaultError
from confvault.vault.check import objects, signed, tree
from confvault.vault.check.findings import Findings
from confvault.vault.model import clock
from confvault.vault.model.policy import DEFAULT_LOCK_TIMEOUT
from confvault.vault.model.results import Finding, VerifyReport
from confvault.vault.store import forked, fs, manifest, survey
from confvault.vault.store.documents import JSONValue
from confvault.vault.store.seen import SeenStore

Progress = Callable[[int, int], None]
_Report = Findings  # the name check.deep still imports

_SPLIT_OBJECTS = 2_000  # fewer objects than this hash in ~40 ms: not worth a fork
_HERE = 3 / 4  # of the objects hashed here when split: the child also walks the tree


class KeylessChecker:
    """Checks one vault directory with no key; ``check`` gives the report.

    ``seen`` is this machine's memory of vaults (None for a backup: nothing
    to compare with); ``progress(done, total)`` is told as objects are
    hashed. A vault of ``split_from`` objects or more, checked without a
    progress display, is checked by two processes (see ``_files``).
    """

    def __init__(
        self,
        root: Path,
        *,
        seen: SeenStore | None = None,
        progress: Progress | None = None,
        split_from: int = _SPLIT_OBJECTS,
    ) -> None:
        self.root = root
        self.seen = seen
        self.progress = progress
        self.split_from = split_from

    def check(self) -> tuple[VerifyReport, manifest.Manifest | None]:
        """The report, and the manifest when it loaded (for the deep checker)."""
        root = self.root
        report = Findings()
        try:
            found = survey.of_path(root)
        except ConfvaultError as err:  # a symlink, or a directory we cannot open
            report.error("manifest", manifest.MANIFEST_NAME, str(err))
            return self._report(report), None
        if found is None:
            report.error("no-vault", str(root), "there is no vault here")
            return self._report(report), None
        try:
            found.root.check_status()
            current = manifest.load(found.root)
        except (ConfvaultError, OSError) as err:
            tree.walk(found, report)
            report.error("manifest", manifest.MANIFEST_NAME, str(err))
            return self._report(report), None
        body = current.body
        if self.seen is not None:
            signed.memory(root, body, self.seen, report)
        live = signed.live_objects(current, report)
        walked, files, classic = self._files(found, live, set(body.shards.values()))
        report.findings[:0] = (
            walked  # the tree's findings come first, as they always have
        )
        report.findings += files
        if self.seen is not None and not report.has_errors():
            self.seen.record(body.vault_id, body.generation, body.signer)
        return self._report(report, body, len(live), classic), current

    def _report(
        self,
        report: Findings,
        body: manifest.ManifestBody | None = None,
        objects_checked: int = 0,
        classic: int = 0,
    ) -> VerifyReport:
        return VerifyReport(
            str(self.root),
            0 if body is None else body.generation,
            objects_checked,
            0,
            False,
            tuple(report.findings),
            "" if body is None else body.vault_id,
            classic,
        )

    def _files(
        self, found: survey.Survey, live: set[str], shards: set[str]
    ) -> tuple[list[Finding], list[Finding], int]:
        """(the tree's findings, those of the objects and of unexpected files,
        the objects sealed only to classic recipients).

        Without a progress display, a vault of ``split_from`` objects or
        more is checked by two processes: a forked child (see ``forked``)
        walks the tree, hashes the last quarter of the sorted objects and
        lists unexpected files while this process hashes the rest. The
        findings are the same, in the same order, as one process gives.
        """
        digests = sorted(live)
        cut = int(len(digests) * _HERE)

        def check(part: list[str]) -> tuple[list[Finding], list[Finding], int]:
            walked, files = Findings(), Findings()
            owned = None if self.seen is None else Findings()  # None: a backup copy
            listings = tree.walk(found, walked, owned)
            classic = objects.hash_objects(found, part, files, self.progress)
            tree.extra_files(listings, live, shards, files)
            if owned is not None:
                files.findings += owned.findings
            return walked.findings, files.findings, classic

        if (
            self.progress is not None
            or len(digests) < self.split_from
            or not forked.available()
            or forked.processors() < 2
        ):
            return check(digests)

        def there() -> list[object]:
            walked, files, classic = check(digests[cut:])
            return [
                *(
                    [[f.severity, f.code, f.subject, f.message] for f in part]
                    for part in (walked, files)
                ),
                classic,
            ]

        here = Findings()
        classic, theirs = forked.run_pair(
            lambda: objects.hash_objects(found, digests[:cut], here, None), there
        )
        walked, files, their_classic = _parts(theirs)
        return walked, here.findings + files, classic + their_classic


def _parts(theirs: JSONValue) -> tuple[list[Finding], list[Finding], int]:
    """The child's two lists of findings and classic count, as JSON gave them back."""

    def findings(part: JSONValue) -> list[Finding]:
        out = []
        for item in part if isinstance(part, list) else ():
            if not (
                isinstance(item, list)
                and len(item) == 4
                and all(isinstance(x, str) for x in item)
            ):
                raise TypeError("the second process sent a malformed finding")
            out.append(Finding(*(str(x) for x in item)))
        return out

    if not (isinstance(theirs, list) and len(theirs) == 3 and type(theirs[2]) is int):
        raise TypeError("the second process sent malformed findings")
    return findings(theirs[0]), findings(theirs[1]), theirs[2]


def verify_keyless(
    root: Path, *, seen: SeenStore | None = None, progress: Progress | None = None
) -> tuple[VerifyReport, manifest.Manifest | None]:
    """Check signatures and hashes of everything, with no passphrase."""
    checker = KeylessChecker(
        root, seen=seen, progress=progress, split_from=_SPLIT_OBJECTS
    )
    return checker.check()


def verify_vault(
    root: Path,
    *,
    seen: SeenStore,
    progress: Progress | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> VerifyReport:
    """Keyless verification under the shared lock (no passphrase needed)."""
    with fs.locked(root, exclusive=False, timeout=lock_timeout):
        report, _ = verify_keyless(root, seen=seen, progress=progress)
        if report.vault_id:
            # Still under the lock, so no writer can commit between this
            # read-modify-write of the machine's memory and lower its generation.
            seen.record_verify(report.vault_id, clock.iso(clock.utc_now()), report.ok)
    return report
