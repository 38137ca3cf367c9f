"""confvault: a confidential record vault whose every file is a standard age v1 file."""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`'s: the client does not import typing

if TYPE_CHECKING:
    from confvault.errors import ConfvaultError

__version__ = "0.1.0"

__all__ = ["ConfvaultError", "__version__"]


def __getattr__(name: str) -> type[ConfvaultError]:
    # Loaded on first use: the command client (confvault.server.client) starts
    # with the version alone.
    if name == "ConfvaultError":
        from confvault.errors import ConfvaultError

        return ConfvaultError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
