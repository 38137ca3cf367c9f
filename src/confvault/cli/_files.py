"""Files the user asked for (an attachment, a sealed export): written whole or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from confvault.errors import ConfvaultError


@contextlib.contextmanager
def new_private_file(path: Path) -> Iterator[BinaryIO]:
    """A new 0600 file at ``path``: written beside it, renamed into place only
    if the block finishes, removed otherwise. Never overwrites anything."""
    if path.exists() or path.is_symlink():
        raise ConfvaultError(f"{path} already exists; not overwriting it")
    temp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        raise ConfvaultError(f"cannot write {path}: {err.strerror}") from err
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(temp, path)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
