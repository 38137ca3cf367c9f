"""The live objects, checked without a key: each one is there, is a regular
file reached without a link, and hashes to its name."""

from __future__ import annotations

import hmac
import itertools
import operator
from collections.abc import Callable

from confvault import age
from confvault.vault.check.findings import Findings
from confvault.vault.store import layout
from confvault.vault.store.survey import Survey

Progress = Callable[[int, int], None]
_BUCKET = operator.itemgetter(slice(2))  # a digest's first two digits


def hash_objects(
    survey: Survey, digests: list[str], report: Findings, progress: Progress | None
) -> int:
    """Check the objects ``digests`` (sorted: one bucket after another).

    Returns how many are sealed only to classic (X25519) recipients, as the
    stanza types of their age headers say (no key needed)."""
    number = 0
    classic = 0

    def head(data: bytes) -> None:
        nonlocal classic
        classic += age.sealed_only_classic(data)

    for bucket, names in itertools.groupby(digests, key=_BUCKET):
        rel = f"{layout.OBJECTS}/{bucket}"
        in_bucket = list(names)
        for digest, actual in zip(
            in_bucket, survey.hash_files(rel, in_bucket, head), strict=True
        ):
            number += 1
            if actual is None:
                if survey.missing(rel, digest):
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
    return classic
