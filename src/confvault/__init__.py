"""confvault: a confidential record vault whose every file is a standard age v1 file."""

from confvault.errors import ConfvaultError

__version__ = "0.1.0"

__all__ = ["ConfvaultError", "__version__"]
