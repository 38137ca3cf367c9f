"""Backups with no passphrase: exact content, consistency under writes, hostile
archives, and restores that verify and open."""

from __future__ import annotations

import fcntl
import gzip
import io
import os
import shutil
import stat
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from confvault.errors import (
    IntegrityError,
    StorageError,
    UnsafeInputError,
    VaultExistsError,
    VaultLockedError,
    VaultNotFoundError,
)
from confvault.vault import Vault, backup
from confvault.vault.backup import check as backup_check
from confvault.vault.backup import tarformat
from confvault.vault.store import manifest
from confvault.vault.store.seen import SeenStore
from tests.conftest import require_binary
from tests.vault.conftest import PASSPHRASE, init_vault

NOTES = 3


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One vault with a client and NOTES notes, built once and copied per test."""
    root = tmp_path_factory.mktemp("template")
    vault, _ = init_vault(root / "vault", root / "state")
    vault.add_client("Ann")
    for number in range(NOTES):
        vault.add_note("Ann", f"session {number}".encode())
    return root / "vault"


@pytest.fixture
def full(template: Path, tmp_path: Path, state_dir: Path) -> Vault:
    shutil.copytree(template, tmp_path / "vault", symlinks=True)
    return _open(tmp_path / "vault", state_dir)


def _state(vault_root: Path) -> dict[str, bytes]:
    """What a backup must hold: the manifest, its shards, the live objects."""
    current = manifest.load(vault_root)
    names = [manifest.MANIFEST_NAME]
    names += [f"shards/{n}" for n in current.body.shards.values()]
    names += [f"objects/{d[:2]}/{d}" for d in current.all_objects()]
    return {n: (vault_root / n).read_bytes() for n in sorted(names)}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _modes(root: Path) -> set[tuple[str, int]]:
    return {
        ("dir" if p.is_dir() else "file", stat.S_IMODE(p.lstat().st_mode))
        for p in [root, *root.rglob("*")]
    }


def _tar_files(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                out[member.name] = tar.extractfile(member).read()
    return out


def _codes(report) -> list[tuple[str, str]]:
    return [(f.severity, f.code) for f in report.findings]


def _open(root: Path, state_dir: Path) -> Vault:
    return Vault.open(root, passphrase=PASSPHRASE, state_dir=state_dir)


def _an_object(root: Path) -> str:
    return sorted(manifest.load(root).all_objects())[0]


def _rewrite_tar(
    data: bytes,
    change: Callable[[tarfile.TarInfo, bytes], list[tuple[tarfile.TarInfo, bytes]]],
) -> bytes:
    """A copy of the tar with each member replaced by what ``change`` returns."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as src,
        tarfile.open(fileobj=out, mode="w") as dst,
    ):
        for member in src.getmembers():
            body = src.extractfile(member).read() if member.isfile() else b""
            for new, new_body in change(member, body):
                dst.addfile(new, io.BytesIO(new_body) if new.isfile() else None)
    return out.getvalue()


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, body: bytes = b"", **extra
) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(body) if kind == tarfile.REGTYPE else 0
    info.mode = 0o600
    for key, value in extra.items():
        setattr(info, key, value)
    return info, body


# --- what a backup holds ------------------------------------------------------------------


def test_directory_backup_is_exactly_the_live_state(
    full: Vault, tmp_path: Path
) -> None:
    root = full.root
    (root / "tmp" / "leftover.123.tmp").write_bytes(b"half a transaction")
    (root / "objects" / "00").mkdir(mode=0o700, exist_ok=True)
    (root / "objects" / "00" / ("00" + "1" * 62)).write_bytes(b"unreferenced")
    (root / "audit-inbox").mkdir(mode=0o700)
    (root / "audit-inbox" / "x").write_bytes(b"not vault state")
    expected = _state(root)
    current = manifest.load(root)

    result = backup.create(root, tmp_path / "snap")

    assert _files(tmp_path / "snap") == expected
    assert sorted(p.name for p in (tmp_path / "snap").iterdir()) == [
        "manifest",
        "objects",
        "shards",
    ]
    assert _modes(tmp_path / "snap") == {("dir", 0o700), ("file", 0o600)}
    assert result == backup.BackupResult(
        str(tmp_path / "snap"),
        current.body.vault_id,
        current.generation,
        current.body.objects,
        1 + len(set(current.body.shards.values())) + current.body.objects,
        sum(len(b) for b in expected.values()),
    )
    assert backup.verify(tmp_path / "snap").findings == ()


def test_tar_backup_members_sorted_private_anonymous_and_reproducible(
    full: Vault, tmp_path: Path
) -> None:
    expected = _state(full.root)
    result = backup.create(full.root, tmp_path / "vault.tar")
    data = (tmp_path / "vault.tar").read_bytes()
    stream = io.BytesIO()
    streamed = backup.create(full.root, stream)

    assert stream.getvalue() == data  # same generation, same bytes: restic dedups it
    assert streamed.destination == "-"
    assert result.destination == str(tmp_path / "vault.tar")
    assert (result.files, result.bytes) == (
        len(expected),
        sum(map(len, expected.values())),
    )
    assert stat.S_IMODE((tmp_path / "vault.tar").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    with tarfile.open(tmp_path / "vault.tar") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    dirs = {m.name for m in members if m.isdir()}
    assert dirs == {"objects", "shards"} | {
        f"objects/{n[8:10]}" for n in expected if n.startswith("objects/")
    }
    assert {m.name for m in members if m.isfile()} == set(expected)
    assert all(m.isfile() or m.isdir() for m in members)
    assert {(m.isdir(), m.mode) for m in members} == {(True, 0o700), (False, 0o600)}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert _tar_files(data) == expected


def test_create_refuses_bad_destinations_and_missing_vaults(
    full: Vault, tmp_path: Path
) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep").write_bytes(b"mine")
    (tmp_path / "old.tar").write_bytes(b"an older backup")
    with pytest.raises(VaultExistsError, match="not empty"):
        backup.create(full.root, tmp_path / "busy")
    with pytest.raises(VaultExistsError, match="already exists"):
        backup.create(full.root, tmp_path / "old.tar")
    with pytest.raises(UnsafeInputError, match="inside the vault"):
        backup.create(full.root, full.root / "snap")
    with pytest.raises(VaultNotFoundError):
        backup.create(tmp_path / "nothing", tmp_path / "snap")
    assert (tmp_path / "busy" / "keep").read_bytes() == b"mine"
    assert (tmp_path / "old.tar").read_bytes() == b"an older backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "busy",
        "old.tar",
        "state",
        "vault",
    ]
    # An empty directory is fine, and becomes private.
    (tmp_path / "empty").mkdir(mode=0o755)
    os.chmod(tmp_path / "empty", 0o755)  # noqa: S103
    backup.create(full.root, tmp_path / "empty")
    assert stat.S_IMODE((tmp_path / "empty").stat().st_mode) == 0o700


def test_create_refuses_a_damaged_vault_and_leaves_nothing(
    full: Vault, tmp_path: Path
) -> None:
    digest = _an_object(full.root)
    path = full.root / "objects" / digest[:2] / digest
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(
        IntegrityError, match=f"objects/{digest[:2]}/{digest} is damaged"
    ):
        backup.create(full.root, tmp_path / "snap")
    with pytest.raises(IntegrityError, match="is damaged"):
        backup.create(full.root, tmp_path / "vault.tar")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state", "vault"]


def test_a_full_disk_is_a_storage_error(full: Vault) -> None:
    with (
        open("/dev/full", "wb", buffering=0) as full_disk,
        pytest.raises(StorageError, match="the disk is full"),
    ):
        backup.create(full.root, full_disk)


# --- the lock -----------------------------------------------------------------------------------


@pytest.fixture
def lock_held(full: Vault, request: pytest.FixtureRequest) -> Iterator[None]:
    fd = os.open(full.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, request.param | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


@pytest.mark.parametrize("lock_held", [fcntl.LOCK_EX], indirect=True, ids=["writer"])
def test_backup_waits_for_a_writer_then_gives_up(
    full: Vault, tmp_path: Path, lock_held: None
) -> None:
    with pytest.raises(VaultLockedError):
        backup.create(full.root, tmp_path / "snap", lock_timeout=0.2)
    assert not (tmp_path / "snap").exists()


@pytest.mark.parametrize("lock_held", [fcntl.LOCK_SH], indirect=True, ids=["reader"])
def test_backup_runs_beside_a_reader(
    full: Vault, tmp_path: Path, lock_held: None
) -> None:
    result = backup.create(full.root, tmp_path / "snap", lock_timeout=0.2)
    assert result.objects == manifest.load(full.root).body.objects


# --- consistency while notes are being added ---------------------------------------------------


class Writer(threading.Thread):
    """Adds notes through its own Vault instance until stopped; records each commit."""

    def __init__(self, root: Path, state_dir: Path) -> None:
        super().__init__(daemon=True)
        self.vault = _open(root, state_dir)
        self.committed: list[str] = []
        self.stop = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                info = self.vault.add_note(
                    "Ann", f"live {len(self.committed)}".encode()
                )
                self.committed.append(info.id)
                self.stop.wait(0.02)  # a person, or a new process, between notes
        except Exception as err:  # noqa: BLE001 - reported by the test
            self.error = err

    def wait_for(self, count: int) -> None:
        for _ in range(2000):
            if len(self.committed) >= count or self.error:
                return
            threading.Event().wait(0.005)


def test_backups_taken_during_writes_are_consistent_and_restore(
    full: Vault, tmp_path: Path, state_dir: Path
) -> None:
    initial = {n.id for n in full.notes("Ann")}
    writer = Writer(full.root, state_dir)
    writer.start()
    taken = []
    try:
        for form in ("dir", "tar", "stream"):
            writer.wait_for(len(writer.committed) + 2)
            before = list(writer.committed)
            if form == "stream":
                buffer = io.BytesIO()
                result = backup.create(full.root, buffer)
                source: Path | io.BytesIO = io.BytesIO(buffer.getvalue())
            else:
                source = tmp_path / ("snap" if form == "dir" else "vault.tar")
                result = backup.create(full.root, source)
            taken.append((form, before, result, source))
        writer.wait_for(
            len(writer.committed) + 2
        )  # the second started after the backups
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None
    final = writer.committed
    other_machine = tmp_path / "other-state"
    contained = []
    for form, before, result, source in taken:
        if isinstance(source, io.BytesIO):
            assert backup.verify(io.BytesIO(source.getvalue())).findings == (), form
        else:
            assert backup.verify(source).findings == (), form
        restored, report = backup.restore(
            source, tmp_path / f"restored-{form}", state_dir=other_machine / form
        )
        assert report.findings == (), form
        assert (restored.generation, restored.objects) == (
            result.generation,
            result.objects,
        )
        vault = _open(tmp_path / f"restored-{form}", other_machine / form)
        ids = {n.id for n in vault.notes("Ann")}
        from_writer = ids - initial
        # Every note committed before the backup began is there; what is there is
        # one generation: the writer's first N commits, never a mix.
        assert set(before) <= from_writer, form
        assert from_writer == set(final[: len(from_writer)]), form
        assert len(ids) == NOTES + len(from_writer), form
        contained.append(len(from_writer))
        deep = vault.verify(deep=True)
        assert deep.findings == (), form
        assert deep.notes_checked == len(ids), form
    # The backups do come from the middle of the writing.
    assert len(taken[0][1]) >= 2
    assert contained == sorted(contained)
    assert len(final) > contained[-1]


# --- restore ------------------------------------------------------------------------------------


def test_restore_modes_tmp_and_open(
    full: Vault, tmp_path: Path, state_dir: Path
) -> None:
    backup.create(full.root, tmp_path / "vault.tar")
    result, report = backup.restore(
        tmp_path / "vault.tar", tmp_path / "a" / "b" / "restored", state_dir=state_dir
    )
    restored = tmp_path / "a" / "b" / "restored"
    assert report.findings == ()
    assert report.vault == str(restored)
    assert sorted(p.name for p in restored.iterdir()) == [
        "manifest",
        "objects",
        "shards",
        "tmp",
    ]
    assert _modes(restored) == {("dir", 0o700), ("file", 0o600)}
    assert _files(restored) == _state(full.root)
    assert (result.files, result.bytes) == (
        len(_state(full.root)),
        sum(map(len, _state(full.root).values())),
    )
    vault = _open(restored, state_dir)
    assert sorted(vault.note(n.id).body for n in vault.notes("Ann")) == [
        f"session {i}".encode() for i in range(NOTES)
    ]
    assert vault.verify(deep=True).findings == ()


def test_restore_refuses_a_non_empty_directory_and_changes_nothing(
    full: Vault, tmp_path: Path
) -> None:
    backup.create(full.root, tmp_path / "snap")
    busy = tmp_path / "busy"
    busy.mkdir(mode=0o750)
    os.chmod(busy, 0o750)  # noqa: S103
    (busy / "keep.txt").write_bytes(b"precious")
    before = (_files(busy), _modes(busy))
    with pytest.raises(VaultExistsError, match="not empty"):
        backup.restore(tmp_path / "snap", busy)
    with pytest.raises(VaultExistsError, match="not empty"):
        backup.restore(tmp_path / "snap", full.root)
    with pytest.raises(VaultExistsError, match="not a directory"):
        backup.restore(tmp_path / "snap", busy / "keep.txt")
    with pytest.raises(UnsafeInputError, match="into the backup"):
        backup.restore(tmp_path / "snap", tmp_path / "snap" / "inner")
    with pytest.raises(VaultNotFoundError, match="no backup"):
        backup.restore(tmp_path / "missing.tar", tmp_path / "new")
    assert (_files(busy), _modes(busy)) == before
    assert not (tmp_path / "new").exists()


def test_restore_of_a_damaged_backup_leaves_nothing(
    full: Vault, tmp_path: Path
) -> None:
    backup.create(full.root, tmp_path / "snap")
    digest = _an_object(tmp_path / "snap")
    (tmp_path / "snap" / "objects" / digest[:2] / digest).unlink()
    with pytest.raises(
        IntegrityError, match=r"\(1 problem\); nothing was restored"
    ) as caught:
        backup.restore(tmp_path / "snap", tmp_path / "new" / "vault")
    assert [(f.severity, f.code, f.subject) for f in caught.value.findings] == [
        ("error", "object-missing", digest)
    ]
    assert not (tmp_path / "new").exists()
    # An empty directory given by the user stays, empty, with its old mode.
    (tmp_path / "empty").mkdir()
    os.chmod(tmp_path / "empty", 0o750)  # noqa: S103
    with pytest.raises(IntegrityError):
        backup.restore(tmp_path / "snap", tmp_path / "empty")
    assert list((tmp_path / "empty").iterdir()) == []
    assert stat.S_IMODE((tmp_path / "empty").stat().st_mode) == 0o750


def test_restoring_an_older_backup_is_a_rollback_until_accepted(
    full: Vault, tmp_path: Path, state_dir: Path
) -> None:
    backup.create(full.root, tmp_path / "vault.tar")
    old = manifest.load(full.root).body
    full.add_note("Ann", b"after the backup")  # this machine now saw a newer generation
    _, report = backup.restore(
        tmp_path / "vault.tar", tmp_path / "plain", state_dir=state_dir
    )
    assert report.ok
    assert _codes(report) == [("warning", "rollback")]
    assert f"has seen generation {old.generation + 1}" in report.findings[0].message
    with pytest.raises(IntegrityError, match="rolled back"):
        _open(tmp_path / "plain", state_dir)

    _, report = backup.restore(
        tmp_path / "vault.tar",
        tmp_path / "accepted",
        state_dir=state_dir,
        accept_rollback=True,
    )
    assert _codes(report) == [("warning", "rollback-accepted")]
    assert SeenStore(state_dir).get(old.vault_id) == (old.generation, old.signer)
    assert len(_open(tmp_path / "accepted", state_dir).notes("Ann")) == NOTES
    # The newer live vault still opens: it is ahead of what is remembered now.
    assert len(_open(full.root, state_dir).notes("Ann")) == NOTES + 1


# --- tampered and hostile backups ---------------------------------------------------------------


@pytest.fixture
def tar_bytes(full: Vault, tmp_path: Path) -> bytes:
    backup.create(full.root, tmp_path / "vault.tar")
    return (tmp_path / "vault.tar").read_bytes()


def _verify_bytes(data: bytes):
    return backup.verify(io.BytesIO(data))


def test_flipped_byte_in_an_object_is_found(
    full: Vault, tmp_path: Path, tar_bytes: bytes
) -> None:
    digest = _an_object(full.root)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        offset = tar.getmember(f"objects/{digest[:2]}/{digest}").offset_data
    damaged = bytearray(tar_bytes)
    damaged[offset + 40] ^= 0x01
    (tmp_path / "damaged.tar").write_bytes(bytes(damaged))
    report = backup.verify(tmp_path / "damaged.tar")
    assert [(f.severity, f.code, f.subject) for f in report.findings] == [
        ("error", "object-damaged", digest)
    ]
    assert report.vault == str(tmp_path / "damaged.tar")


def test_deleted_object_in_a_directory_backup_is_found(
    full: Vault, tmp_path: Path
) -> None:
    backup.create(full.root, tmp_path / "snap")
    digest = _an_object(full.root)
    (tmp_path / "snap" / "objects" / digest[:2] / digest).unlink()
    report = backup.verify(tmp_path / "snap")
    assert [(f.severity, f.code, f.subject) for f in report.findings] == [
        ("error", "object-missing", digest)
    ]


@pytest.mark.parametrize("where", ["half", "member-boundary", "before-end-marker"])
def test_truncated_tar_is_found(full: Vault, tar_bytes: bytes, where: str) -> None:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
    first_shard = next(m for m in members if m.name.startswith("shards/"))
    last = members[-1]
    cut = {
        "half": len(tar_bytes) // 2,
        "member-boundary": first_shard.offset,  # tarfile alone would not notice
        "before-end-marker": last.offset_data + 512,  # every member, no end marker
    }[where]
    report = _verify_bytes(tar_bytes[:cut])
    errors = [c for c in _codes(report) if c[0] == "error"]
    assert errors[0] == ("error", "tar-damaged")
    assert "truncated" in report.findings[0].message
    shards = len(set(manifest.load(full.root).body.shards.values()))
    if where == "before-end-marker":
        assert errors == [("error", "tar-damaged")]
    else:
        assert cut <= first_shard.offset  # the cut falls among the objects
        assert errors == [("error", "tar-damaged")] + [("error", "shard")] * shards
    assert {c for c in _codes(report) if c[0] == "warning"} <= {
        ("warning", "unreferenced")
    }


@pytest.mark.parametrize(
    ("member", "subject"),
    [
        (_member("../evil", body=b"outside"), "../evil"),
        (_member("/tmp/confvault-evil", body=b"absolute"), "/tmp/confvault-evil"),
        (_member("objects/../../evil", body=b"outside"), "objects/../../evil"),
        (
            _member("shards/link", tarfile.SYMTYPE, linkname="/etc/passwd"),
            "shards/link",
        ),
        (_member("manifest2", tarfile.LNKTYPE, linkname="manifest"), "manifest2"),
        (
            _member("objects/dev", tarfile.CHRTYPE, devmajor=1, devminor=3),
            "objects/dev",
        ),
        (_member("fifo", tarfile.FIFOTYPE), "fifo"),
    ],
    ids=[
        "dotdot",
        "absolute",
        "nested-dotdot",
        "symlink",
        "hardlink",
        "device",
        "fifo",
    ],
)
def test_hostile_members_are_errors_and_never_extracted(
    tar_bytes: bytes, tmp_path: Path, member: tuple, subject: str
) -> None:
    hostile = _rewrite_tar(
        tar_bytes, lambda m, b: [(m, b)] + ([member] if m.name == "manifest" else [])
    )
    report = _verify_bytes(hostile)
    assert [(f.severity, f.code, f.subject) for f in report.findings] == [
        ("error", "hostile-member", subject)
    ]
    with pytest.raises(IntegrityError):
        backup.restore(io.BytesIO(hostile), tmp_path / "r" / "vault")
    assert not (tmp_path / "r").exists()
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/confvault-evil").exists()


def test_a_symlink_in_place_of_an_object_is_found(
    full: Vault, tar_bytes: bytes
) -> None:
    digest = _an_object(full.root)
    name = f"objects/{digest[:2]}/{digest}"

    def swap(member: tarfile.TarInfo, body: bytes):
        if member.name == name:
            return [_member(name, tarfile.SYMTYPE, linkname="/etc/passwd")]
        return [(member, body)]

    report = _verify_bytes(_rewrite_tar(tar_bytes, swap))
    assert [(f.severity, f.code, f.subject) for f in report.findings] == [
        ("error", "hostile-member", name),
        ("error", "object-missing", digest),
    ]


def test_a_second_copy_of_a_member_is_refused(full: Vault, tar_bytes: bytes) -> None:
    digest = _an_object(full.root)
    name = f"objects/{digest[:2]}/{digest}"

    def twice(member: tarfile.TarInfo, body: bytes):
        if member.name == name:
            return [(member, body), _member(name, body=b"replacement")]
        return [(member, body)]

    report = _verify_bytes(_rewrite_tar(tar_bytes, twice))
    assert [(f.severity, f.code, f.subject) for f in report.findings] == [
        ("error", "duplicate-member", name)
    ]


def test_unexpected_members_are_warnings_and_skipped(
    tar_bytes: bytes, tmp_path: Path, state_dir: Path
) -> None:
    extra = _rewrite_tar(
        tar_bytes,
        lambda m, b: (
            [(m, b)]
            + ([_member("README.txt", body=b"hi")] if m.name == "manifest" else [])
        ),
    )
    report = _verify_bytes(extra)
    assert report.ok
    assert [(f.severity, f.code, f.subject) for f in report.findings] == [
        ("warning", "unexpected-member", "README.txt")
    ]
    backup.restore(io.BytesIO(extra), tmp_path / "restored", state_dir=state_dir)
    assert not (tmp_path / "restored" / "README.txt").exists()


def test_a_tar_without_directory_members_restores(
    tar_bytes: bytes, tmp_path: Path, state_dir: Path
) -> None:
    """Like `tar -cf x.tar manifest shards/* objects/*/*`: files only."""
    files_only = _rewrite_tar(tar_bytes, lambda m, b: [] if m.isdir() else [(m, b)])
    assert _verify_bytes(files_only).findings == ()
    _, report = backup.restore(
        io.BytesIO(files_only), tmp_path / "r", state_dir=state_dir
    )
    assert report.findings == ()
    assert _modes(tmp_path / "r") == {("dir", 0o700), ("file", 0o600)}


def test_a_tar_from_a_pipe_path_is_read(tar_bytes: bytes) -> None:
    """`confvault backup verify <(restic dump latest vault.tar)` names a pipe."""
    read_end, write_end = os.pipe()
    feeder = threading.Thread(
        target=lambda: (os.write(write_end, tar_bytes), os.close(write_end))
    )
    feeder.start()
    try:
        report = backup.verify(Path(f"/dev/fd/{read_end}"))
    finally:
        os.close(read_end)
        feeder.join()
    assert report.findings == ()
    assert report.vault == f"/dev/fd/{read_end}"


def test_not_a_tar_is_found(tmp_path: Path) -> None:
    (tmp_path / "junk.tar").write_bytes(os.urandom(4096))
    report = backup.verify(tmp_path / "junk.tar")
    assert _codes(report) == [("error", "tar-damaged"), ("error", "manifest")]
    report = backup.verify(tmp_path / "missing")
    assert _codes(report) == [("error", "no-backup")]


def test_plain_and_compressed_tars_of_a_vault_are_accepted(
    full: Vault, tmp_path: Path, tar_bytes: bytes
) -> None:
    """`tar -czf x.tgz -C VAULT .` of an idle vault (with lock and tmp/) verifies too."""
    (full.root / "tmp" / "left.tmp").write_bytes(b"x")
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w:gz") as tar:
        tar.add(full.root, arcname=".")
    assert _verify_bytes(plain.getvalue()).findings == ()
    assert _verify_bytes(gzip.compress(tar_bytes)).findings == ()


def test_a_directory_copied_with_loose_modes_warns_and_restores_private(
    full: Vault, tmp_path: Path, state_dir: Path
) -> None:
    """A copy brought back by a tool that drops modes (rclone) is still restorable."""
    backup.create(full.root, tmp_path / "snap")
    for path in [tmp_path / "snap", *(tmp_path / "snap").rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    report = backup.verify(tmp_path / "snap")
    assert report.ok
    assert {(f.severity, f.code) for f in report.findings} == {
        ("warning", "permissions")
    }
    _, report = backup.restore(
        tmp_path / "snap", tmp_path / "restored", state_dir=state_dir
    )
    assert report.findings == ()
    assert _modes(tmp_path / "restored") == {("dir", 0o700), ("file", 0o600)}


def test_a_symlink_in_a_directory_backup_is_refused(
    full: Vault, tmp_path: Path
) -> None:
    backup.create(full.root, tmp_path / "snap")
    digest = _an_object(full.root)
    target = tmp_path / "snap" / "objects" / digest[:2] / digest
    os.replace(target, tmp_path / "elsewhere")
    target.symlink_to(tmp_path / "elsewhere")
    report = backup.verify(tmp_path / "snap")
    assert ("error", "symlink") in _codes(report)
    assert not report.ok
    with pytest.raises(IntegrityError) as caught:
        backup.restore(tmp_path / "snap", tmp_path / "restored")
    assert [
        (f.code, f.subject) for f in caught.value.findings if f.severity == "error"
    ] == [
        ("hostile-member", f"objects/{digest[:2]}/{digest}"),
        ("object-missing", digest),
    ]
    assert not (tmp_path / "restored").exists()


# --- the tar, written and read without tarfile's per-member work ------------------------


@pytest.mark.parametrize(
    ("name", "kind", "mode", "size", "mtime"),
    [
        ("manifest", tarfile.REGTYPE, 0o600, 1234, 1_767_225_600),
        ("objects/ab/" + "ab" * 32, tarfile.REGTYPE, 0o600, 0, 0),
        ("objects/ab/", tarfile.DIRTYPE, 0o700, 0, 1_767_225_600),
        ("x" * 100, tarfile.REGTYPE, 0o600, 8**11 - 1, 8**11 - 1),
        # tarfile's pax cases: a long or non-ASCII name, 8 GiB, a pre-1970 time
        ("x" * 101, tarfile.REGTYPE, 0o600, 5, 7),
        ("notes/séance", tarfile.REGTYPE, 0o600, 5, 7),
        ("big", tarfile.REGTYPE, 0o600, 8**11, 7),
        ("old", tarfile.REGTYPE, 0o600, 5, -1),
    ],
)
def test_tar_headers_are_the_bytes_tarfile_writes(
    name: str, kind: bytes, mode: int, size: int, mtime: int
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, mtime
    info.uname = info.gname = ""
    expected = info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
    assert tarformat.header(name, kind, mode, size, mtime) == expected


def test_tar_backup_is_byte_for_byte_what_tarfile_writes(
    full: Vault, tmp_path: Path
) -> None:
    """The same bytes as before the header writer (and as any tarfile reader expects)."""
    backup.create(full.root, tmp_path / "snap")
    backup.create(full.root, tmp_path / "vault.tar")
    mtime = backup.snapshot._epoch(manifest.load(full.root).body.time)
    expected = io.BytesIO()
    with tarfile.open(fileobj=expected, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        snap = tmp_path / "snap"
        for path in sorted(snap.rglob("*"), key=lambda p: str(p.relative_to(snap))):
            info = tarfile.TarInfo(str(path.relative_to(snap)))
            info.type = tarfile.DIRTYPE if path.is_dir() else tarfile.REGTYPE
            info.mode = 0o700 if path.is_dir() else 0o600
            info.size = 0 if path.is_dir() else path.stat().st_size
            info.mtime = mtime
            info.uname = info.gname = ""
            tar.addfile(info, path.open("rb") if path.is_file() else None)
    assert (tmp_path / "vault.tar").read_bytes() == expected.getvalue()


def _tar_of(directory: Path) -> bytes:
    """A sorted tar of a backup directory, as `backup create` lays one out."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return out.getvalue()


def _damage(snap: Path, how: str) -> None:
    current = manifest.load(snap)
    objects = sorted(current.all_objects())
    shards = sorted(current.body.shards.values())
    first = snap / "objects" / objects[0][:2] / objects[0]
    if how == "flipped-object":
        data = bytearray(first.read_bytes())
        data[20] ^= 0x01
        first.write_bytes(bytes(data))
    elif how == "missing-object":
        first.unlink()
    elif how == "unreferenced-object":
        name = "0" * 64
        (snap / "objects" / "00").mkdir(mode=0o700, exist_ok=True)
        (snap / "objects" / "00" / name).write_bytes(b"left by a crash")
        (snap / "objects" / "00" / name).chmod(0o600)
    elif how == "unreferenced-shard":
        (snap / "shards" / ("f" * 64)).write_bytes(b"old shard")
        (snap / "shards" / ("f" * 64)).chmod(0o600)
    elif how == "damaged-shard":
        path = snap / "shards" / shards[0]
        path.write_bytes(path.read_bytes() + b"x")
    elif how == "missing-shard":
        (snap / "shards" / shards[0]).unlink()
    elif how == "altered-manifest":
        path = snap / "manifest"
        path.write_bytes(
            path.read_bytes().replace(b'"generation": ', b'"generation": 1')
        )
    elif how == "missing-manifest":
        (snap / "manifest").unlink()


@pytest.mark.parametrize(
    "how",
    [
        "intact",
        "flipped-object",
        "missing-object",
        "unreferenced-object",
        "unreferenced-shard",
        "damaged-shard",
        "missing-shard",
        "altered-manifest",
        "missing-manifest",
    ],
)
def test_a_streamed_tar_gets_the_findings_of_the_same_backup_as_a_directory(
    full: Vault, tmp_path: Path, how: str
) -> None:
    """Verifying a tar without unpacking it keeps every check of the unpacked copy."""
    backup.create(full.root, tmp_path / "snap")
    _damage(tmp_path / "snap", how)
    as_dir = backup.verify(tmp_path / "snap")
    as_tar = _verify_bytes(_tar_of(tmp_path / "snap"))

    def errors(report) -> list:
        return [f for f in report.findings if f.severity == "error"]

    def everything(report) -> list:  # a directory lists a bucket in any order
        return sorted(report.findings, key=lambda f: (f.code, f.subject, f.message))

    assert errors(as_tar) == errors(as_dir)
    assert everything(as_tar) == everything(as_dir)
    assert (as_tar.ok, as_tar.generation, as_tar.objects_checked, as_tar.vault_id) == (
        as_dir.ok,
        as_dir.generation,
        as_dir.objects_checked,
        as_dir.vault_id,
    )
    assert as_tar.ok == (how in ("intact", "unreferenced-object", "unreferenced-shard"))


def test_a_gnu_tar_of_a_backup_verifies_and_damage_is_found(
    full: Vault, tmp_path: Path
) -> None:
    """`tar -cf` (GNU format, ./ names) is read by the fast reader too."""
    require_binary("tar")
    import subprocess

    backup.create(full.root, tmp_path / "snap")
    subprocess.run(
        ["tar", "-cf", str(tmp_path / "gnu.tar"), "-C", str(tmp_path / "snap"), "."],
        check=True,
    )
    data = (tmp_path / "gnu.tar").read_bytes()
    assert data[257:265] == tarfile.GNU_MAGIC
    assert backup.verify(tmp_path / "gnu.tar").findings == ()
    digest = _an_object(full.root)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        offset = tar.getmember(f"./objects/{digest[:2]}/{digest}").offset_data
    damaged = bytearray(data)
    damaged[offset] ^= 0x01
    assert [(f.code, f.subject) for f in _verify_bytes(bytes(damaged)).findings] == [
        ("object-damaged", digest)
    ]


def test_members_after_a_pax_header_are_still_checked(
    full: Vault, tar_bytes: bytes
) -> None:
    """A pax member halfway hands the rest to tarfile; what follows is checked."""
    digest = sorted(manifest.load(full.root).all_objects())[-1]
    long_name = "notes/" + "x" * 120  # over 100 bytes: a pax header

    def change(member: tarfile.TarInfo, body: bytes):
        if member.name == f"objects/{digest[:2]}/{digest}":
            body = body[:-1] + bytes([body[-1] ^ 1])
        if member.name == "manifest":
            return [(member, body), _member(long_name, body=b"hi")]
        return [(member, body)]

    report = _verify_bytes(_rewrite_tar(tar_bytes, change))
    assert [(f.code, f.subject) for f in report.findings] == [
        ("unexpected-member", long_name),
        ("object-damaged", digest),
    ]


@pytest.mark.parametrize("where", ["in-padding", "in-data", "in-header"])
def test_a_tar_cut_inside_a_member_is_damaged(
    full: Vault, tar_bytes: bytes, where: str
) -> None:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        member = next(
            m for m in tar.getmembers() if m.isfile() and m.size % 512 and m.size > 64
        )
    cut = {
        "in-padding": member.offset_data + member.size + 1,
        "in-data": member.offset_data + 10,
        "in-header": member.offset + 100,
    }[where]
    report = _verify_bytes(tar_bytes[:cut])
    assert _codes(report)[0] == ("error", "tar-damaged")
    assert not report.ok


def test_a_corrupt_header_after_the_first_ends_the_archive_as_tarfile_does(
    full: Vault, tar_bytes: bytes
) -> None:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
        listed = [m.name for m in members]
    last_object = [m for m in members if m.name.startswith("objects/")][-1]
    damaged = bytearray(tar_bytes)
    damaged[last_object.offset + 10] ^= 0x01  # its name: the checksum no longer holds
    with tarfile.open(fileobj=io.BytesIO(bytes(damaged))) as tar:
        assert [m.name for m in tar.getmembers()] == listed[
            : listed.index(last_object.name)
        ]
    report = _verify_bytes(bytes(damaged))
    assert not report.ok
    assert ("error", "shard") in _codes(report)  # the shards came after it


def test_create_refuses_a_symlinked_bucket_and_a_fifo_object(
    full: Vault, tmp_path: Path
) -> None:
    digest = _an_object(full.root)
    bucket = full.root / "objects" / digest[:2]
    os.replace(bucket, tmp_path / "bucket")
    bucket.symlink_to(tmp_path / "bucket")
    with pytest.raises(UnsafeInputError, match="is a symlink"):
        backup.create(full.root, tmp_path / "a.tar")
    bucket.unlink()
    os.replace(tmp_path / "bucket", bucket)

    target = bucket / digest
    target.unlink()
    os.mkfifo(target, 0o600)
    done: list[BaseException] = []

    def run() -> None:
        try:
            backup.create(full.root, tmp_path / "b.tar")
        except BaseException as err:  # noqa: BLE001 - handed to the test
            done.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    if worker.is_alive():  # blocked opening the FIFO: release it, then fail
        os.close(os.open(target, os.O_WRONLY | os.O_NONBLOCK))
        worker.join()
        pytest.fail("backup create hung on a FIFO in the vault")
    assert isinstance(done[0], UnsafeInputError)
    assert "not a regular file" in str(done[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state", "vault"]


@pytest.mark.parametrize(
    ("name", "kind", "verdict"),
    [
        ("objects/ab/ab" + "0" * 62, "file", "file"),
        ("./objects/ab/ab" + "0" * 62, "file", "file"),
        ("objects/ab/ac" + "0" * 62, "file", "unexpected"),  # another bucket's name
        ("objects/AB/AB" + "0" * 62, "file", "unexpected"),
        ("objects/ab/ab" + "0" * 63, "file", "unexpected"),
        ("objects/ab/ab" + "0" * 62, "dir", "unexpected"),
        ("objects/ab/ab" + "0" * 62, "link", "hostile"),
        ("objects/ab/ab" + "0" * 61 + "\\", "file", "hostile"),
    ],
)
def test_member_names_are_classified_the_same_on_the_quick_path(
    name: str, kind: str, verdict: str
) -> None:
    assert backup_check._classify(name, kind)[0] == verdict


def test_a_streamed_manifest_or_shard_too_large_to_hold_is_an_error(
    full: Vault, tar_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tar's manifest and shards are held in memory while it streams by, up
    to a bound far above any vault's; a hostile archive cannot exhaust memory."""
    manifest_size = len((full.root / manifest.MANIFEST_NAME).read_bytes())
    monkeypatch.setattr(backup_check, "_META_LIMIT", manifest_size)
    report = _verify_bytes(tar_bytes)
    assert not report.ok
    shards = sorted(manifest.load(full.root).body.shards.values())
    too_large = [f for f in report.findings if f.code == "too-large"]
    assert [f.subject for f in too_large] == [f"shards/{n}" for n in shards]
    assert too_large[0].message == (
        f"more manifest and shards than any vault has (over {manifest_size:,} "
        "bytes in all); not read"
    )
    assert ("error", "shard") in _codes(report)
    monkeypatch.setattr(backup_check, "_META_LIMIT", manifest_size - 1)
    report = _verify_bytes(tar_bytes)
    assert _codes(report)[0] == ("error", "too-large")
    assert report.findings[0].subject == "manifest"
    assert ("error", "manifest") in _codes(report)
