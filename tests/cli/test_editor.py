"""$EDITOR gets a 0600 file in a private RAM-backed directory, no passphrase
variables, and the file is gone afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from confvault.cli import _editor
from confvault.errors import ConfvaultError, UnsafeInputError


def _fake_editor(tmp_path: Path, text: str, status: int = 0) -> Path:
    report = tmp_path / "editor-report.json"
    script = tmp_path / "fake-editor"
    script.write_text(
        "#!/bin/sh\n"
        f"python3 - \"$1\" <<'EOF'\n"
        "import json, os, sys\n"
        "p = sys.argv[1]\n"
        "st = os.stat(p); dst = os.stat(os.path.dirname(p))\n"
        f"json.dump({{'path': p, 'mode': st.st_mode & 0o777, 'dirmode': dst.st_mode & 0o777,"
        f" 'initial': open(p).read(), 'env': sorted(k for k in os.environ if k.startswith('CONFVAULT'))}},"
        f" open({str(report)!r}, 'w'))\n"
        f"open(p, 'w').write({text!r})\n"
        "EOF\n"
        f"exit {status}\n"
    )
    script.chmod(0o700)
    return script


def test_editor_file_private_in_ram_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITOR", str(_fake_editor(tmp_path, "Written in the editor\n")))
    monkeypatch.setenv("CONFVAULT_PASSPHRASE", "do not leak me")
    monkeypatch.setenv("CONFVAULT_PASSPHRASE_FILE", "/some/file")
    monkeypatch.delenv("VISUAL", raising=False)
    body = _editor.edit("Subjective:\n")
    assert body == b"Written in the editor\n"
    report = json.loads((tmp_path / "editor-report.json").read_text())
    assert report["mode"] == 0o600
    assert report["dirmode"] == 0o700
    assert report["initial"] == "Subjective:\n"
    assert report["env"] == []
    assert _editor._fs_type(Path(report["path"]).parent.parent) in {"tmpfs", "ramfs"}
    assert not Path(report["path"]).exists()
    assert not Path(report["path"]).parent.exists()


def test_editor_failure_saves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITOR", str(_fake_editor(tmp_path, "x", status=3)))
    monkeypatch.delenv("VISUAL", raising=False)
    with pytest.raises(ConfvaultError, match="exited with status 3"):
        _editor.edit("", insecure_tmp=True)


def test_refuses_disk_tmp_without_ram_dir(tmp_path: Path) -> None:
    assert _editor._fs_type(tmp_path) not in {
        "tmpfs",
        "ramfs",
    } or tmp_path.is_relative_to("/dev/shm")
    disk_only = (
        [str(tmp_path)] if _editor._fs_type(tmp_path) not in {"tmpfs", "ramfs"} else []
    )
    with pytest.raises(UnsafeInputError, match="--insecure-tmp"):
        _editor.edit("", candidates=disk_only)
