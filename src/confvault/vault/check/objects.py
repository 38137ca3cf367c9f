"""The live objects, checked without a key: each one is there, is a regular
file reached without a link, and hashes to its name."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from confvault.vault.check.findings import Findings
from confvault.vault.store import layout
from confvault.vault.store.survey import Survey

Progress = Callable[[int, int], None]


def hash_objects(
    survey: Survey, digests: list[str], report: Findings, progress: Progress | None
) -> None:
    """Check the objects ``digests`` (sorted: one bucket after another)."""
    for number, digest in enumerate(digests, start=1):
        rel = f"{layout.OBJECTS}/{digest[:2]}"
        actual = survey.hash_file(rel, digest)
        if actual is None:
            if survey.missing(rel, digest):
                report.error("object-missing", digest, "object is missing")
            else:
                report.error("object-unsafe", digest, "object is not a regular file")
        elif not hmac.compare_digest(actual, digest):
            report.error(
                "object-damaged",
                digest,
                "object content does not match its hash (altered, truncated or replaced)",
            )
        if progress and number % 256 == 0:
            progress(number, len(digests))
