"""Issue 13, review finding 7: strings the owner did not write (file names
planted in the vault, tar member names, fields a grantee wrote into the audit
trail) reach the terminal with their control characters escaped, never raw:
no escape sequence can retitle, clear or recolour the owner's terminal, or
print a fake "vault ok" over the real result."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from confvault.cli import _output
from confvault.cli.audit import render
from confvault.vault.model.results import AuditEntry

TITLE = "x\x1b]0;TITLE-FROM-SYNC\x07\x1b[2J"
FAKE = "y\x1b[1A\x1b[2Kvault ok.1.000000000000.tmp"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, ünïcode, 日本", "plain text, ünïcode, 日本"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("bell\x07 nul\x00 del\x7f csi\x9b", "bell\\x07 nul\\x00 del\\x7f csi\\x9b"),
        ("two\nlines\ttab\r", "two\\x0alines\\x09tab\\x0d"),
        ("abc\u202edef\u2066", "abc\\u202edef\\u2066"),  # bidi overrides
        ("\U000e0001tag", "\\U000e0001tag"),
    ],
)
def test_safe_escapes_every_character_that_is_not_printable(
    text: str, shown: str
) -> None:
    assert _output.safe(text) == shown


def test_verify_escapes_planted_file_names(ready: Callable[..., Any]) -> None:
    vault: Path = ready.vault  # type: ignore[attr-defined]
    (vault / TITLE).touch(mode=0o600)
    (vault / "tmp" / FAKE).touch(mode=0o600)

    result = ready("verify")

    assert "\x1b" not in result.output
    assert "\x07" not in result.output
    assert "unexpected-file: x\\x1b]0;TITLE-FROM- a file" in result.output
    assert "tmp/y\\x1b[1A\\x1b[2Kvau" in result.output


def test_backup_verify_escapes_tar_member_names(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    tar = tmp_path / "evil.tar"
    with tarfile.open(tar, "w") as out:
        info = tarfile.TarInfo("\x1b[2J\x1b[32mbackup ok\x1b[0m")
        out.addfile(info, io.BytesIO(b""))

    result = cli("backup", "verify", str(tar))

    assert result.exit_code == 13
    assert "\x1b" not in result.output
    assert "unexpected-member: \\x1b[2J\\x1b[32mbackup  not part" in result.output


def test_error_messages_escape_what_they_quote(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    where = tmp_path / "v\x1b]0;owned\x07"

    result = cli("--vault", str(where), "note", "list")

    assert result.exit_code == 10
    assert "\x1b" not in result.output
    assert "\x07" not in result.output
    assert "v\\x1b]0;owned\\x07" in result.output


def test_audit_fields_a_grantee_wrote_are_escaped_and_never_markup(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one line a row, for the assertions
    monkeypatch.setattr(_output, "_consoles", {})
    entry = AuditEntry(
        seq=6,
        time="2026-12-07T13:52:48Z",
        actor="grantee:age1\x1b]0;TITLE\x07",
        action="note-show[bold]\x1b[2Jmarkup[/bold]",
        client="c" * 32,
        client_name=None,
        note="\x1b[31m0123",
        signed=False,
    )

    render([entry])

    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "note-show[bold]\\x1b[2Jmarkup[/bold]" in out
    assert "\\x1b[31m0123" in out
    assert "grantee (unsigned)" in out
