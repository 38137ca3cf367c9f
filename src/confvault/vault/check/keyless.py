"""Checking a vault: keyless (signatures and hashes only) and deep (decrypt
every note and check every signature). Problems are gathered as findings;
nothing here raises for a damaged vault, so one report names every problem.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import stat
from collections.abc import Callable
from pathlib import Path

from confvault.errors import ConfvaultError
from confvault.vault.model.results import Finding, VerifyReport
from confvault.vault.store import forked, fs, layout, manifest
from confvault.vault.store.objects import OBJECTS_DIR, is_hash
from confvault.vault.store.paths import DEFAULT_LOCK_TIMEOUT
from confvault.vault.store.seen import SeenStore

Progress = Callable[[int, int], None]
_READ = 1 << 20


class _Report:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def error(self, code: str, subject: str, message: str) -> None:
        self.findings.append(Finding("error", code, subject, message))

    def warning(self, code: str, subject: str, message: str) -> None:
        self.findings.append(Finding("warning", code, subject, message))


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# A symlinked bucket is never followed: the tree walk reports the symlink,
# and each object in the manifest under it is reported as not a regular file.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _hash_file(name: str, dir_fd: int) -> str | None:
    """SHA-256 of the regular file ``name`` in ``dir_fd`` (not a symlink);
    None when it is not one.

    O_NONBLOCK: a FIFO planted in the vault cannot hang the check.
    """
    try:
        fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        sha = hashlib.sha256()
        while block := os.read(fd, _READ):
            sha.update(block)
        return sha.hexdigest()
    finally:
        os.close(fd)


def _check_tree(root: Path, report: _Report) -> None:
    """Symlinks anywhere and permissions that let other users in.

    Walked as ``os.walk`` walks (each directory's subdirectories, then its
    files, then into the subdirectories; symlinks not followed), with string
    paths: a 100,000-note vault has as many entries, and a ``Path`` for each
    cost more than the ``lstat``.
    """
    _check_dir(os.fspath(root), "", report)
    info = root.lstat()
    if info.st_mode & 0o077:
        report.error(
            "permissions",
            ".",
            f"the vault directory is accessible to other users (mode {info.st_mode & 0o777:o})",
        )


def _check_dir(base: str, rel: str, report: _Report) -> None:
    try:
        with os.scandir(f"{base}/{rel}" if rel else base) as found:
            entries = list(found)
    except OSError:
        return  # as os.walk: an unreadable directory is passed over
    dirs, files = [], []
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        (dirs if is_dir else files).append(entry)
    for entry in dirs + files:
        mode = entry.stat(follow_symlinks=False).st_mode
        name = f"{rel}/{entry.name}" if rel else entry.name
        if stat.S_ISLNK(mode):
            report.error("symlink", name, "a symlink was planted in the vault")
        elif mode & 0o077:
            report.error(
                "permissions",
                name,
                f"accessible to other users (mode {mode & 0o777:o})",
            )
    for entry in dirs:
        if not entry.is_symlink():
            _check_dir(base, f"{rel}/{entry.name}" if rel else entry.name, report)


def verify_keyless(
    root: Path, *, seen: SeenStore | None = None, progress: Progress | None = None
) -> tuple[VerifyReport, manifest.Manifest | None]:
    """Check signatures and hashes of everything, with no passphrase."""
    report = _Report()
    if not (root / manifest.MANIFEST_NAME).exists() and not root.is_dir():
        report.error("no-vault", str(root), "there is no vault here")
        return VerifyReport(str(root), 0, 0, 0, False, tuple(report.findings)), None
    try:
        current = manifest.load(fs.Root(root))
    except (ConfvaultError, OSError) as err:
        _check_tree(root, report)
        report.error("manifest", manifest.MANIFEST_NAME, str(err))
        return VerifyReport(str(root), 0, 0, 0, False, tuple(report.findings)), None
    body = current.body
    if seen is not None:
        try:
            seen.check_place(root, body.vault_id)
        except ConfvaultError as err:
            report.error("vault-replaced", manifest.MANIFEST_NAME, str(err))
        _check_seen(body, seen, report)
    live = _live_objects(current, report)
    tree, files = _check_files(root, live, set(body.shards.values()), progress)
    report.findings[:0] = tree  # the tree's findings come first, as they always have
    report.findings += files
    if seen is not None and not any(f.severity == "error" for f in report.findings):
        seen.record(body.vault_id, body.generation, body.signer)
    result = VerifyReport(
        str(root),
        body.generation,
        len(live),
        0,
        False,
        tuple(report.findings),
        body.vault_id,
    )
    return result, current


def _check_seen(body: manifest.ManifestBody, seen: SeenStore, report: _Report) -> None:
    """Rollback and signer swap, against what this machine saw before."""
    try:
        known = seen.get(body.vault_id)
    except ConfvaultError as err:
        report.error("seen-unreadable", manifest.MANIFEST_NAME, str(err))
        return
    if known is None:
        report.warning(
            "never-seen",
            manifest.MANIFEST_NAME,
            "this machine has never seen this vault: a consistent but older copy, "
            "or one built by someone else, cannot be told apart here; compare its "
            "vault ID and generation with the machine that writes it",
        )
        return
    if not manifest.signer_descends(body, known[1]):
        report.error(
            "signer-changed",
            manifest.MANIFEST_NAME,
            "the manifest is signed by a different key than this machine saw before",
        )
    elif body.generation < known[0]:
        report.error(
            "rollback",
            manifest.MANIFEST_NAME,
            f"generation {body.generation} is older than generation {known[0]} seen before",
        )


def _live_objects(current: manifest.Manifest, report: _Report) -> set[str]:
    body = current.body
    live: set[str] = set()
    for prefix in sorted(body.shards):
        try:
            live |= current.shard(prefix)
        except ConfvaultError as err:
            report.error("shard", body.shards[prefix], str(err))
    if len(live) != body.objects and not any(
        f.code == "shard" for f in report.findings
    ):
        report.error(
            "count",
            manifest.MANIFEST_NAME,
            "the manifest's object count does not match its shards",
        )
    shards_ok = not any(f.code == "shard" for f in report.findings)
    for name, digest in sorted(body.pointers.items()):
        if shards_ok and digest not in live:
            report.error(
                "pointer", name, f"the {name} object is not among the live objects"
            )
    return live


_SPLIT_OBJECTS = 2_000  # fewer objects than this hash in ~40 ms: not worth a fork
_HERE = 3 / 4  # of the objects hashed here when split: the child also walks the tree


def _check_files(
    root: Path, live: set[str], shards: set[str], progress: Progress | None
) -> tuple[list[Finding], list[Finding]]:
    """(the tree's findings, those of the objects and of unexpected files).

    Without a progress display, a vault of ``_SPLIT_OBJECTS`` objects or more
    is checked by two processes: a forked child (see ``forked``) walks the
    tree, hashes the last quarter of the sorted objects and lists unexpected
    files while this process hashes the rest. The findings are the same, in
    the same order, as one process gives.
    """
    digests = sorted(live)
    cut = int(len(digests) * _HERE)

    def check(part: list[str]) -> tuple[list[Finding], list[Finding]]:
        tree, files = _Report(), _Report()
        _check_tree(root, tree)
        _hash_objects(root, part, files, progress)
        _extra_files(root, live, shards, files)
        return tree.findings, files.findings

    if (
        progress is not None
        or len(digests) < _SPLIT_OBJECTS
        or not forked.available()
        or forked.processors() < 2
    ):
        return check(digests)

    def there() -> list[list[list[str]]]:
        return [
            [[f.severity, f.code, f.subject, f.message] for f in part]
            for part in check(digests[cut:])
        ]

    here = _Report()
    _, (tree, files) = forked.run_pair(
        lambda: _hash_objects(root, digests[:cut], here, None), there
    )
    return [Finding(*f) for f in tree], here.findings + [Finding(*f) for f in files]


def _missing(bucket: str, name: str) -> bool:
    """True when neither the bucket (a real directory) nor the object exists;
    a symlink in place of either is not missing but unsafe. Nothing followed."""
    try:
        info = os.lstat(bucket)
    except FileNotFoundError:
        return True
    if not stat.S_ISDIR(info.st_mode):
        return False
    try:
        os.lstat(f"{bucket}/{name}")
    except FileNotFoundError:
        return True
    return False


def _hash_objects(
    root: Path, digests: list[str], report: _Report, progress: Progress | None
) -> None:
    """Check ``digests`` (sorted): one open directory per bucket, string names."""
    base = f"{os.fspath(root)}/{OBJECTS_DIR}/"
    bucket, bucket_fd = "", None
    try:
        for number, digest in enumerate(digests, start=1):
            if digest[:2] != bucket:
                if bucket_fd is not None:
                    os.close(bucket_fd)
                bucket = digest[:2]
                try:
                    bucket_fd = os.open(base + bucket, _DIR_FLAGS)
                except OSError:
                    bucket_fd = None
            actual = None if bucket_fd is None else _hash_file(digest, bucket_fd)
            if actual is None:
                if _missing(f"{base}{bucket}", digest):
                    report.error("object-missing", digest, "object is missing")
                else:
                    report.error(
                        "object-unsafe", digest, "object is not a regular file"
                    )
            elif not hmac.compare_digest(actual, digest):
                report.error(
                    "object-damaged",
                    digest,
                    "object content does not match its hash (altered, truncated or replaced)",
                )
            if progress and number % 256 == 0:
                progress(number, len(digests))
    finally:
        if bucket_fd is not None:
            os.close(bucket_fd)


def _inbox_files(root: Path, report: _Report) -> None:
    """Entries waiting in audit-inbox/, and anything there that is not one."""
    inbox = root / layout.INBOX
    if inbox.is_dir() and not inbox.is_symlink():
        names = sorted(os.listdir(inbox))
        waiting = [n for n in names if layout.INBOX_ENTRY.fullmatch(n)]
        for name in names:
            if name not in waiting:
                report.warning(
                    "unexpected-file", f"{layout.INBOX}/{name}", "not an inbox entry"
                )
        if waiting:
            report.warning(
                "audit-inbox",
                layout.INBOX,
                f"{len(waiting)} grantee entries wait for the owner's next command; "
                "one that stays is not authenticated (inspect it, then remove it)",
            )


def _extra_files(root: Path, live: set[str], shards: set[str], report: _Report) -> None:
    expected_top = {
        manifest.MANIFEST_NAME,
        OBJECTS_DIR,
        manifest.SHARDS_DIR,
        fs.TMP_DIR,
        fs.LOCK_NAME,
        layout.INBOX,  # grantee audit entries waiting for the owner
    }
    for entry in sorted(os.listdir(root)):
        if entry not in expected_top:
            report.warning(
                "unexpected-file",
                entry,
                "a file confvault did not write is in the vault",
            )
    objects_dir = root / OBJECTS_DIR
    if objects_dir.is_dir():
        for bucket in sorted(os.listdir(objects_dir)):
            bucket_path = objects_dir / bucket
            if not bucket_path.is_dir() or bucket_path.is_symlink():
                report.warning(
                    "unexpected-file", f"objects/{bucket}", "not an object bucket"
                )
                continue
            for name in os.listdir(bucket_path):
                if not is_hash(name) or name[:2] != bucket:
                    report.warning(
                        "unexpected-file", f"objects/{bucket}/{name}", "not an object"
                    )
                elif name not in live:
                    report.warning(
                        "unreferenced",
                        name,
                        "object not in the manifest (left by an interrupted command; harmless)",
                    )
    shards_dir = root / manifest.SHARDS_DIR
    if shards_dir.is_dir():
        for name in os.listdir(shards_dir):
            if name not in shards:
                report.warning(
                    "unreferenced",
                    f"shards/{name}",
                    "shard not in the manifest (harmless)",
                )
    _inbox_files(root, report)
    tmp_dir = root / fs.TMP_DIR
    if tmp_dir.is_dir():
        for name in os.listdir(tmp_dir):
            if name.endswith((".tmp", fs.JOURNAL_SUFFIX)):
                report.warning(
                    "leftover",
                    f"tmp/{name}",
                    "left by an interrupted command; the next write removes it",
                )


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
            now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
            seen.record_verify(report.vault_id, now.replace("+00:00", "Z"), report.ok)
    return report
