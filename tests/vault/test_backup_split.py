"""A backup copied by two processes is the same backup, byte for byte, and
fails as a one-process backup fails."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from confvault.vault import backup
from confvault.vault.backup import tarformat
from confvault.vault.store import manifest
from tests.vault.conftest import init_vault


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vault whose objects spread over many ``objects/<xx>`` buckets."""
    root = tmp_path_factory.mktemp("split")
    vault, _ = init_vault(root / "vault", root / "state")
    for client in ("Ann", "Bo", "Cy"):
        vault.add_client(client)
        vault.add_notes(
            client,
            [(f"n{i}", "2025-01-01", f"{client} note {i}".encode()) for i in range(12)],
        )
    return root / "vault"


@pytest.fixture
def vault_root(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template, tmp_path / "vault", symlinks=True)
    return tmp_path / "vault"


# The splits run in a fresh process: this one may hold threads (the age
# codec's worker pools), and a process with threads never forks a copier.
_SPY = """
import json, sys
from pathlib import Path
from confvault.vault import backup
from confvault.vault.store import forked
pairs, error = [], None
real = forked.run_pair
def spy(here, there):
    mine, theirs = real(here, there)
    pairs.append(theirs)
    return mine, theirs
forked.run_pair = spy
try:
{body}
except Exception as err:
    error = [type(err).__name__, str(err)]
print(json.dumps({{"pairs": pairs, "error": error}}))
"""


def _fresh(*lines: str) -> tuple[list[list[int]], list[str] | None]:
    """(what each split's child handed back: [entries, bytes], the error) of
    ``lines`` run in a new process with ``backup`` and ``Path`` imported."""
    body = "\n".join("    " + line for line in lines)
    done = subprocess.run(
        [sys.executable, "-c", _SPY.format(body=body)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    return out["pairs"], out["error"]


def _one_process_tar(root: Path) -> bytes:
    out = io.BytesIO()
    backup.create(root, out, jobs=1)
    return out.getvalue()


def _entries(root: Path) -> list[str]:
    return backup.snapshot._listing(manifest.load(root))[0]


def test_the_listing_is_the_sorted_paths_of_the_live_state(vault_root: Path) -> None:
    current = manifest.load(vault_root)
    entries, dirs = backup.snapshot._listing(current)
    live = current.all_objects()
    expected_files = {manifest.MANIFEST_NAME}
    expected_files |= {f"shards/{n}" for n in current.body.shards.values()}
    expected_files |= {f"objects/{d[:2]}/{d}" for d in live}
    expected_dirs = {"objects", "shards"} | {f"objects/{d[:2]}" for d in live}
    assert entries == sorted(expected_files | expected_dirs)
    assert dirs == expected_dirs
    assert len({d[:2] for d in live}) > 4  # the halves cross buckets


def test_one_job_never_forks(vault_root: Path, tmp_path: Path) -> None:
    dest = tmp_path / "snap.tar"
    pairs, error = _fresh(
        f"backup.create(Path({str(vault_root)!r}), Path({str(dest)!r}), jobs=1)"
    )
    assert (pairs, error) == ([], None)
    assert dest.read_bytes() == _one_process_tar(vault_root)


def test_a_split_tar_file_is_the_one_process_tar(
    vault_root: Path, tmp_path: Path
) -> None:
    alone = _one_process_tar(vault_root)
    dest = tmp_path / "out" / "snap.tar"
    dest.parent.mkdir()
    pairs, error = _fresh(
        f"backup.create(Path({str(vault_root)!r}), Path({str(dest)!r}), jobs=2)"
    )
    assert error is None
    entries = _entries(vault_root)
    assert dest.read_bytes() == alone
    assert len(pairs) == 1
    assert pairs[0][0] == len(entries) - len(entries) // 2  # the second half
    assert pairs[0][1] > 0
    assert sorted(os.listdir(dest.parent)) == ["snap.tar"]  # no side file left
    assert backup.verify(dest).ok


def test_a_split_stream_is_the_one_process_tar(
    vault_root: Path, tmp_path: Path
) -> None:
    alone = _one_process_tar(vault_root)
    root = f"Path({str(vault_root)!r})"
    pairs, error = _fresh(
        "import io",
        "memory = io.BytesIO()  # no descriptor: copied through the process",
        f"backup.create({root}, memory, jobs=2)",
        f"Path({str(tmp_path / 'memory.tar')!r}).write_bytes(memory.getvalue())",
        f"with open({str(tmp_path / 'real.tar')!r}, 'wb') as out:  # the kernel copies",
        f"    backup.create({root}, out, jobs=2)",
        f"with open({str(tmp_path / 'appended.tar')!r}, 'ab') as out:  # O_APPEND",
        f"    backup.create({root}, out, jobs=2)",
    )
    assert error is None
    assert len(pairs) == 3
    for name in ("memory.tar", "real.tar", "appended.tar"):
        assert (tmp_path / name).read_bytes() == alone


def test_a_split_directory_backup_is_the_one_process_backup(
    vault_root: Path, tmp_path: Path
) -> None:
    backup.create(vault_root, tmp_path / "alone", jobs=1)
    split = tmp_path / "split"
    pairs, error = _fresh(
        f"backup.create(Path({str(vault_root)!r}), Path({str(split)!r}), jobs=2)"
    )
    assert error is None
    assert len(pairs) == 1

    def tree(root: Path) -> dict[str, tuple[int, bytes]]:
        return {
            str(p.relative_to(root)): (
                p.stat().st_mode & 0o777,
                p.read_bytes() if p.is_file() else b"",
            )
            for p in sorted(root.rglob("*"))
        }

    assert tree(split) == tree(tmp_path / "alone")
    assert backup.verify(split).ok


def test_a_child_that_reaches_its_limit_leaves_the_rest_here(
    vault_root: Path, tmp_path: Path
) -> None:
    alone = _one_process_tar(vault_root)
    dest = tmp_path / "snap.tar"
    pairs, error = _fresh(
        "backup.snapshot._SIDE_LIMIT = 1  # the child stops after its first file",
        f"backup.create(Path({str(vault_root)!r}), Path({str(dest)!r}), jobs=2)",
    )
    assert error is None
    assert dest.read_bytes() == alone
    entries = _entries(vault_root)
    half = len(entries) // 2
    done, size = pairs[0]
    assert 1 <= done < len(entries) - half
    last = entries[half + done - 1]
    assert size == (vault_root / last).stat().st_size  # one file, then it stopped
    assert last.startswith("objects/")
    assert last.count("/") == 2


def test_when_no_process_can_be_forked_the_backup_is_the_same(
    vault_root: Path, tmp_path: Path
) -> None:
    alone = _one_process_tar(vault_root)
    dest = tmp_path / "snap.tar"
    pairs, error = _fresh(
        "import errno, os",
        "def no_fork():",
        "    raise BlockingIOError(errno.EAGAIN, 'Resource temporarily unavailable')",
        "os.fork = no_fork",
        f"backup.create(Path({str(vault_root)!r}), Path({str(dest)!r}), jobs=2)",
    )
    assert error is None
    assert len(pairs) == 1  # split, then both halves done in this process
    assert dest.read_bytes() == alone


@pytest.mark.parametrize("side", ["first", "second"])
@pytest.mark.parametrize("kind", ["tar", "dir"])
def test_a_damaged_object_in_either_half_fails_and_leaves_nothing(
    vault_root: Path, tmp_path: Path, side: str, kind: str
) -> None:
    entries = _entries(vault_root)
    half = len(entries) // 2
    objects = [e for e in entries if e.count("/") == 2 and e.startswith("objects/")]
    first = [e for e in objects if entries.index(e) < half]
    second = [e for e in objects if entries.index(e) >= half]
    victim = first[-1] if side == "first" else second[0]
    path = vault_root / victim
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    dest = out / ("snap.tar" if kind == "tar" else "snap")
    pairs, error = _fresh(
        "import os",
        "try:",
        f"    backup.create(Path({str(vault_root)!r}), Path({str(dest)!r}), jobs=2)",
        "finally:",
        "    try:",
        "        os.waitpid(-1, os.WNOHANG)",
        "    except ChildProcessError:",
        "        pairs.append('no child left')",
    )
    assert error == [
        "IntegrityError",
        f"{victim} is damaged (its content does not match its hash); "
        "run `confvault verify`",
    ]
    assert pairs == ["no child left"]
    assert os.listdir(out) == []


def test_making_a_backup_loads_none_of_the_checking_code(
    vault_root: Path, tmp_path: Path
) -> None:
    """A nightly `backup create` pays for what it does: the tar reader, the
    checks of a backup and the verify report stay unloaded."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from confvault.vault import backup\n"
        f"backup.create(Path({str(vault_root)!r}), Path({str(tmp_path / 's.tar')!r}))\n"
        "print(sorted(m for m in ('tarfile', 'tempfile', 'shutil', 'ctypes',\n"
        "  'confvault.vault.backup.check', 'confvault.vault.backup.tarreader',\n"
        "  'confvault.vault.model.results', 'confvault.vault.check.keyless') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout == "[]\n"
    assert backup.verify(tmp_path / "s.tar").ok


def test_the_tar_constants_are_tarfiles() -> None:
    assert tarformat.BLOCK == tarfile.BLOCKSIZE
    assert tarformat.RECORDSIZE == tarfile.RECORDSIZE
    assert (tarformat.REGTYPE, tarformat.DIRTYPE) == (tarfile.REGTYPE, tarfile.DIRTYPE)
    assert tarformat.POSIX_MAGIC == tarfile.POSIX_MAGIC
