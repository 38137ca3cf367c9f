"""The findings of a check, gathered in the order they are found.

A checker never raises for a damaged vault: each problem becomes a typed
``Finding`` (severity, code, subject, message), so that one report names
every problem and the CLI only classifies them (as restic's checker does).
The codes are listed in docs/BACKUP.md and docs/CLI.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from confvault.vault.model.results import Finding


class Findings:
    """A list of findings with the two ways to add one."""

    def __init__(self, found: Iterable[Finding] = ()) -> None:
        self.findings: list[Finding] = list(found)

    def error(self, code: str, subject: str, message: str) -> None:
        self.findings.append(Finding("error", code, subject, message))

    def warning(self, code: str, subject: str, message: str) -> None:
        self.findings.append(Finding("warning", code, subject, message))

    def has(self, code: str) -> bool:
        return any(f.code == code for f in self.findings)

    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)
