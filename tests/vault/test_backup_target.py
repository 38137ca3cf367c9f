"""The directory a backup or a restore writes (``backup.dirsink``): held by a
descriptor once it exists, every directory and file made relative to one,
nothing taken that was already there, and an abort that removes what was
made and nothing else. Real directories, real symlinks planted between two
steps of the sink, as someone who writes the target's folder would."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from confvault.errors import UnsafeInputError, VaultExistsError
from confvault.vault.backup.dirsink import DirSink, NewDir


def _sink(target: Path) -> DirSink:
    return DirSink(NewDir(target))


def test_a_symlinked_directory_planted_before_it_is_made_is_refused(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "new" / "backup"
    sink = _sink(target)
    sink.add_dir("objects")
    (target / "shards").symlink_to(outside)

    with pytest.raises(UnsafeInputError, match="shards appeared in the target"):
        sink.add_file("shards/" + "a" * 64, io.BytesIO(b"x").read, None)
    sink.abort()

    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in target.iterdir()) == ["shards"]  # left as found
    assert (target / "shards").is_symlink()


def test_a_file_planted_under_a_name_to_be_written_is_refused(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("someone else's\n")
    target = tmp_path / "backup"
    sink = _sink(target)
    sink.add_dir("objects/ab")
    (target / "manifest").symlink_to(outside)

    source = os.open(os.devnull, os.O_RDONLY)
    try:
        with pytest.raises(UnsafeInputError, match="manifest appeared in the target"):
            sink.copy_fd("manifest", source, 0)
    finally:
        os.close(source)
    sink.abort()

    assert outside.read_text() == "someone else's\n"
    assert sorted(p.name for p in target.iterdir()) == ["manifest"]
    assert not (tmp_path / "backup" / "objects").exists()


def test_abort_removes_what_was_made_and_the_new_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "backup"
    sink = _sink(target)
    sink.add_file("objects/ab/" + "ab" * 32, io.BytesIO(b"data").read, None)
    sink.add_file("manifest", io.BytesIO(b"{}").read, None)
    assert (target / "objects" / "ab" / ("ab" * 32)).read_bytes() == b"data"

    sink.abort()

    assert list(tmp_path.iterdir()) == []


def test_an_empty_directory_of_ours_is_used_and_given_back(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir(mode=0o750)
    target.chmod(0o750)
    sink = _sink(target)
    assert target.stat().st_mode & 0o777 == 0o700
    sink.add_file("manifest", io.BytesIO(b"{}").read, None)
    (target / "planted").write_text("not ours\n")

    sink.abort()

    assert [p.name for p in target.iterdir()] == ["planted"]
    assert target.stat().st_mode & 0o777 == 0o750


def test_a_target_that_is_a_symlink_or_not_empty_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(UnsafeInputError, match="is a symlink"):
        _sink(tmp_path / "link")
    (real / "x").touch()
    with pytest.raises(VaultExistsError, match="not empty"):
        _sink(real)


def test_finish_leaves_private_files_and_lets_every_descriptor_go(
    tmp_path: Path,
) -> None:
    before = len(os.listdir("/proc/self/fd"))
    target = tmp_path / "backup"
    sink = _sink(target)
    for n in range(20):  # more than one syncfs's worth
        sink.add_file(f"objects/{n:02x}/" + "cd" * 32, io.BytesIO(b"z").read, None)
    sink.finish()

    assert len(os.listdir("/proc/self/fd")) == before
    assert target.stat().st_mode & 0o777 == 0o700
    modes = {p.stat().st_mode & 0o777 for p in target.rglob("*") if p.is_file()}
    assert modes == {0o600}
