"""Global options (before the command) and opening the vault from them.

Light to import: the root callback builds ``Options`` for every command, and a
command that needs no key (``backup``, ``age``, ``--help``) must not load the
vault's key-holding code; ``open_vault`` imports it when it is called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from confvault.cli import _output, _readonly
from confvault.vault.model.policy import DEFAULT_LOCK_TIMEOUT

if TYPE_CHECKING:
    from confvault.vault import Vault

ENV_VAULT = "CONFVAULT_VAULT"
ENV_LOCK_TIMEOUT = "CONFVAULT_LOCK_TIMEOUT"
ENV_OWNER_KEY = "CONFVAULT_OWNER_KEY"


@dataclass
class Options:
    """What the global options said."""

    vault: Path | None = None
    passphrase_file: Path | None = None
    passphrase_fd: int | None = None
    identity: Path | None = None
    owner_key: str | None = None
    # The vault passphrase once read: a command that needs it twice (a sync
    # that opens the other device's new owner key file) reads its source
    # once; a ``--passphrase-fd`` is closed after the first read, and its
    # number may by then name another open file.
    _passphrase: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _output.key_source = None  # a new command (in-process runs share the module)

    @property
    def vault_path(self) -> Path:
        if self.vault is not None:
            return self.vault
        if os.environ.get(ENV_VAULT):
            return Path(os.environ[ENV_VAULT])
        from confvault.vault.store.paths import default_vault_path

        return default_vault_path()

    @property
    def lock_timeout(self) -> float:
        try:
            return float(os.environ.get(ENV_LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT))
        except ValueError:
            return DEFAULT_LOCK_TIMEOUT

    def passphrase(
        self, *, confirm: bool = False, prompt: str = "Vault passphrase: "
    ) -> bytes:
        from confvault.cli import _secrets

        if self._passphrase is not None and not confirm:
            return self._passphrase
        self._passphrase = _secrets.obtain(
            file=self.passphrase_file,
            fd=self.passphrase_fd,
            confirm=confirm,
            prompt=prompt,
        )
        return self._passphrase

    @property
    def passphrase_given(self) -> bool:
        """A passphrase source was named: it wins over an unlock agent."""
        from confvault.cli._secrets import ENV_PASSPHRASE, ENV_PASSPHRASE_FILE

        return (
            self.passphrase_file is not None
            or self.passphrase_fd is not None
            or bool(os.environ.get(ENV_PASSPHRASE_FILE))
            or bool(os.environ.get(ENV_PASSPHRASE))
        )

    def open_vault(self, *, write: bool = False, agent: bool = True) -> Vault:
        """Open with the unlock agent (unless a passphrase source is given, or
        not ``agent``), else the passphrase; or read-only with ``--identity``."""
        from confvault import age
        from confvault.vault import Vault
        from confvault.vault.store.paths import check_vault_dir, default_state_dir

        path = self.vault_path
        if self.identity is not None:
            if write:
                from confvault.errors import ReadOnlyError

                raise ReadOnlyError(
                    "a grantee key (--identity) can only read; this command writes"
                )
            text = self.identity.read_text(encoding="utf-8")
            reader = age.parse_identities(text)[0]
            vault = Vault.open(
                path,
                reader=reader,
                lock_timeout=self.lock_timeout,
                state_dir=default_state_dir(),
                owner_key=self.pinned_owner_key,
            )
            if vault.first_use and not self.pinned_owner_key:
                _output.warn(
                    "first use of this vault on this machine: trusting the owner "
                    f"key {vault.owner_key_fingerprint()} that signs it. Check it "
                    "with the owner (`confvault status` shows it on their machine) "
                    "or pin it with --owner-key; from now on a vault signed by any "
                    "other key is refused here"
                )
            _readonly.notice(vault)
            _output.key_source = "identity"
            return vault
        check_vault_dir(path)  # fail on a missing vault before asking a passphrase
        if write:
            _readonly.refuse_write(path)
        if agent and not self.passphrase_given:
            from confvault.cli._unlocked import open_with_agent

            unlocked = open_with_agent(self)
            if unlocked is not None:
                _readonly.notice(unlocked)
                _output.key_source = "agent"
                return unlocked
        vault = Vault.open(
            path,
            passphrase=self.passphrase(),
            lock_timeout=self.lock_timeout,
            state_dir=default_state_dir(),
            owner_key=self.pinned_owner_key,
        )
        _readonly.notice(vault)
        _output.key_source = "passphrase"
        return vault

    @property
    def pinned_owner_key(self) -> str | None:
        return self.owner_key or os.environ.get(ENV_OWNER_KEY) or None


def unlocked_vault(opts: Options) -> Vault | None:
    """The vault through its live unlock agent only (never a prompt, never a
    line printed), else None: for shell completion."""
    from confvault.cli._unlocked import unlocked_vault as through_agent

    return through_agent(opts)


def options(ctx: typer.Context) -> Options:
    """The Options object the root callback stored."""
    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, Options):
        obj = Options()
        root.obj = obj
    return obj
