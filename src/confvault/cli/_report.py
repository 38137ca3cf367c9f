"""A verify report on the terminal (`verify`, `backup verify`, `backup
restore`), and the notes a rotation recorded as damaged."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from confvault.cli import _output
from confvault.cli._errors import INTEGRITY

if TYPE_CHECKING:
    from confvault.vault.model.results import Finding, RotatedKey, VerifyReport


def finding(item: Finding) -> None:
    """One finding on stdout: its severity (coloured on a terminal), code, subject
    and message."""
    style = "red" if item.severity == "error" else "yellow"
    _output.parts(
        (item.severity, style),
        _output.safe(f" {item.code}: {item.subject[:16]} {item.message}"),
    )


def render_report(
    report: VerifyReport, as_json: bool, extra: dict[str, object] | None = None
) -> None:
    """Print a verify report and exit 13 when it found errors; ``extra``:
    fields added to the JSON document (``read_only``)."""
    if as_json:
        _output.emit_json(report.to_json() | (extra or {}))
    else:
        errors = [f for f in report.findings if f.severity == "error"]
        warnings = [f for f in report.findings if f.severity == "warning"]
        what = f"{report.objects_checked} objects" + (
            f", {report.notes_checked} notes decrypted" if report.deep else ""
        )
        for item in report.findings:
            finding(item)
        if errors:
            _output.parts(
                ("vault damaged", "bold red"),
                f": {len(errors)} problems, {len(warnings)} warnings ({what})",
            )
        else:
            _output.parts(
                ("vault ok", "bold green"),
                f": generation {report.generation}, {what}, {len(warnings)} warnings",
            )
        if report.classic_objects:
            _output.info(classic_line(report.classic_objects, report.objects_checked))
    if not report.ok:
        raise typer.Exit(INTEGRITY)


def classic_line(classic: int, total: int) -> str:
    """What verify and status say of objects sealed only to X25519 keys."""
    return (
        f"post-quantum: {classic} of {total} objects are sealed only to classic "
        "(X25519) keys, which a quantum computer could open; `confvault migrate "
        "--pq` re-seals them to post-quantum keys"
    )


def damaged_notes(rotated: tuple[RotatedKey, ...]) -> None:
    """Name the notes a rotation found unreadable and recorded as damaged."""
    for r in rotated:
        if r.damaged:
            _output.warn(
                f"{r.client_name} ({r.compartment}): {len(r.damaged)} unreadable "
                "note(s) recorded as damaged, their text no longer in the vault: "
                f"{', '.join(r.damaged)} (a backup taken before holds them)"
            )
