"""A coverage-guided fuzz target (atheris) for the age header and armor parsers.

    .venv/bin/pip install atheris
    .venv/bin/python bench/fuzz_age.py -max_total_time=3600 /tmp/age-corpus

Any exception that is not a confvault error (a typed ``ConfvaultError``) is a
bug: atheris stops and writes the crashing input. The corpus directory is
seeded from tests/vectors/age on the first run.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

try:
    import atheris
except ImportError:
    sys.exit("atheris is not installed: .venv/bin/pip install atheris")

with atheris.instrument_imports():
    from confvault import age
    from confvault.age import _format, armor
    from confvault.errors import ConfvaultError

IDENTITY = age.parse_identity(
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"
)


def one_input(data: bytes) -> None:
    with contextlib.suppress(ConfvaultError):
        _format.parse_header(io.BytesIO(data))
    with contextlib.suppress(ConfvaultError):
        armor.open_armored(io.BytesIO(data)).read()
    with contextlib.suppress(ConfvaultError):
        age.decrypt(
            data, [IDENTITY, age.ScryptIdentity(b"password", max_work_factor=12)]
        )


def seed(corpus: Path) -> None:
    vectors = Path(__file__).parents[1] / "tests" / "vectors" / "age"
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for vector in vectors.iterdir():
        if vector.name != "README.md":
            body = vector.read_bytes().partition(b"\n\n")[2]
            (corpus / vector.name).write_bytes(body)


if __name__ == "__main__":
    corpora = [Path(a) for a in sys.argv[1:] if not a.startswith("-")]
    for corpus in corpora:
        seed(corpus)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
