"""What a command says when the vault cannot be written here.

On read-only media (or without write permission) reads still work: each is
recorded in this machine's spool and added to the vault's audit trail when
the vault is next opened writable here. The command says so once on stderr
(``notice``), and its ``--json`` output carries the field ``read_only``
(``document``): on the document, or on each element of a list. A command
that writes fails before asking the passphrase or opening the editor
(``refuse_write``: exit 14). So does a vault directory placed in a
file-sync folder (``sync.folder.traces``): docs/SYNC.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from confvault.cli import _output

if TYPE_CHECKING:
    from confvault.vault import Vault

LINE = (
    "the vault is read-only here: this read is recorded on this machine and "
    "added to its audit trail when the vault is next opened writable"
)


def refuse_write(path: Path) -> None:
    """A command that writes, on a vault that cannot be written: exit 14 now
    (a missing vault is left for the open to report)."""
    from confvault.errors import VaultReadOnlyError
    from confvault.sync.traces import refuse_in_sync_folder
    from confvault.vault.store.spool import vault_writable

    if path.is_dir():
        refuse_in_sync_folder(path)

    if path.is_dir() and not vault_writable(path):
        raise VaultReadOnlyError(
            f"the vault at {path} is read-only here (read-only media, or no write "
            "permission): this command writes, nothing was changed"
        )


def notice(vault: Vault) -> None:
    """The stderr line of a read-only open, and any spooled read that was refused."""
    if vault.read_only:
        _output.warn(LINE)
    if refused := vault.spool_refused:
        _output.warn(
            f"{len(refused)} spooled read(s) of this machine failed their check and "
            "were not added to the audit trail (kept as *.refused; `confvault audit "
            "--action spool-refused` names them)"
        )


def document(vault: Vault, doc: Any) -> Any:
    """``doc`` (a JSON object or list of objects) with ``read_only`` when it is."""
    if not vault.read_only:
        return doc
    field = {"read_only": {"spooled": vault.spooled}}
    if isinstance(doc, list):
        return [item | field if isinstance(item, dict) else item for item in doc]
    return doc | field if isinstance(doc, dict) else doc
