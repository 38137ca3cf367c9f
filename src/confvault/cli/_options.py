"""Options that several commands take, each defined once (the options that
carry a value other users must not see are in cli/_argv.py)."""

from __future__ import annotations

from typing import Annotated

import typer

JSON = Annotated[bool, typer.Option("--json", help="print a JSON document instead")]
PSYCHOTHERAPY = Annotated[
    bool, typer.Option("--psychotherapy", help="include psychotherapy notes")
]
SINCE = Annotated[
    str | None, typer.Option("--since", help="from this date (YYYY-MM-DD)")
]
NOTE_KIND = Annotated[
    str, typer.Option("--kind", help="progress, psychotherapy or intake")
]
ALLOW_WEAK_WORK_FACTOR = Annotated[
    bool,
    typer.Option(
        "--allow-weak-work-factor",
        help="allow a work factor below the floor (tests and benchmarks only)",
    ),
]
