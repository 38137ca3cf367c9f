"""This machine's memory of each vault: what makes a rollback detectable.

One small JSON file per vault under the state directory
(``paths.default_state_dir()``: ``seen/<vault id>.json``) holds the highest
manifest generation and the signer seen here, and when the vault was last
verified; one per place (``seen/places/<hash of the real path>.json``) holds
the ID of the vault seen at that path. They lie outside the vault, so they
are reached by path, not through ``rootfs``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from confvault.errors import IntegrityError, RollbackMemoryError
from confvault.vault.store import fs
from confvault.vault.store.manifest import ManifestBody, signer_descends


class SeenStore:
    """The highest manifest generation (and the signer) this machine has seen.

    Trust on first use: a vault seen once can no longer be rolled back to an
    older generation, nor swapped for one signed by another key, unnoticed.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, vault_id: str) -> Path:
        if not vault_id.isalnum():
            raise IntegrityError("malformed vault id")
        return self.directory / "seen" / f"{vault_id}.json"

    def get(self, vault_id: str) -> tuple[int, str] | None:
        """(generation, signer) last seen, or None for a vault new to us.

        Fails closed: a memory that exists but cannot be read or parsed is
        an ``IntegrityError``, never "seen nothing" (that is what an attacker
        who can damage the file would want).
        """
        path = self._path(vault_id)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return int(doc["generation"]), str(doc["signer"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise IntegrityError(
                f"this machine's memory of the vault ({path}) is unreadable "
                f"({getattr(err, 'strerror', None) or 'malformed'}); it is what "
                "detects a rollback, so nothing is read until it is fixed: restore "
                "it, or remove it deliberately to trust the vault as it is now"
            ) from err

    def _place_path(self, root: Path) -> Path:
        digest = hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()
        return self.directory / "seen" / "places" / f"{digest[:32]}.json"

    def check_place(self, root: Path, vault_id: str) -> None:
        """Refuse a vault at a known path whose ID is not the one seen there.

        A vault replaced wholesale by one an attacker built (new ID, new
        signer) has no memory of its own to contradict it; the memory of the
        path does.
        """
        path = self._place_path(root)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            known = str(doc["vault"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise IntegrityError(
                f"this machine's memory of {root} ({path}) is unreadable; "
                "restore it, or remove it deliberately"
            ) from err
        if known != vault_id:
            raise IntegrityError(
                f"the vault at {root} is not the one this machine knew there: "
                f"vault {known[:12]} was replaced by vault {vault_id[:12]}, signed "
                "by a key never seen here. If you moved another vault here on "
                f"purpose, remove {path}; otherwise restore the vault from a backup"
            )

    def knows_place(self, root: Path) -> bool:
        """Whether this machine has opened a vault at ``root``."""
        return self._place_path(root).exists()

    def check_manifest(self, root: Path, body: ManifestBody) -> tuple[int, str] | None:
        """Refuse ``body``, read at ``root``, when this machine knew another
        vault there, saw a later generation of it, or saw it signed by a key
        its signer does not descend from (``IntegrityError``); return what
        was known of it (None: never seen here)."""
        self.check_place(root, body.vault_id)
        seen = self.get(body.vault_id)
        if seen is None:
            return None
        generation, signer = seen
        if not signer_descends(body, signer):
            raise IntegrityError(
                "the manifest is signed by a different key than this machine saw before"
            )
        if body.generation < generation:
            raise IntegrityError(
                f"the vault was rolled back: generation {body.generation} is older "
                f"than generation {generation} seen before on this machine"
            )
        return seen

    def record_place(self, root: Path, vault_id: str, *, strict: bool = False) -> None:
        """Remember that ``root`` holds the vault ``vault_id``."""
        path = self._place_path(root)
        if path.exists():
            return
        doc: dict[str, object] = {"path": os.path.realpath(root), "vault": vault_id}
        self._write_file(path, doc, strict=strict)

    def _read(self, vault_id: str) -> dict[str, object]:
        try:
            doc = json.loads(self._path(vault_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def last_verify(self, vault_id: str) -> tuple[str, bool] | None:
        """(when, ok) of the last verify run on this machine."""
        doc = self._read(vault_id)
        if "last_verify" not in doc:
            return None
        return str(doc["last_verify"]), bool(doc.get("last_verify_ok"))

    def record_verify(self, vault_id: str, when: str, ok: bool) -> None:
        """Remember when this machine last verified the vault, and the outcome."""
        doc = self._read(vault_id)
        if "generation" not in doc:
            return
        doc.update(last_verify=when, last_verify_ok=ok)
        self._write(vault_id, doc)

    def record(
        self, vault_id: str, generation: int, signer: str, *, strict: bool = False
    ) -> None:
        """Remember ``generation`` if it is the highest seen so far.

        ``strict`` (after a commit of this process): a memory that cannot be
        written is a ``RollbackMemoryError``; otherwise (a newer generation
        seen while reading) it is left as it was.
        """
        seen = self.get(vault_id)
        if seen is not None and seen[0] >= generation and seen[1] == signer:
            return
        doc = self._read(vault_id)
        doc.update(generation=generation, signer=signer)
        self._write_file(self._path(vault_id), doc, strict=strict)

    def check_writable(self) -> None:
        """``RollbackMemoryError`` unless a file can be written where the memory
        lives: checked before a commit, so that no change is made that this
        machine could not remember (and a rollback could then undo unnoticed).
        """
        directory = self.directory / "seen"
        probe = directory / f".probe.{os.getpid()}.tmp"
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, fs.FILE_MODE)
            try:
                os.write(fd, b"{}" * 256)  # more than the memory's own file
            finally:
                os.close(fd)
            probe.unlink()
        except OSError as err:
            with contextlib.suppress(OSError):
                probe.unlink()
            raise RollbackMemoryError(
                f"this machine's memory of the vault ({directory}) cannot be "
                f"written ({err.strerror}): it is what detects a rollback, so no "
                "change is made that it could not remember; nothing was changed"
            ) from err

    def _write(self, vault_id: str, doc: dict[str, object]) -> None:
        self._write_file(self._path(vault_id), doc)

    def _write_file(
        self, path: Path, doc: dict[str, object], *, strict: bool = False
    ) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            data = json.dumps(doc).encode()
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, fs.FILE_MODE)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as err:
            with contextlib.suppress(OSError):
                path.with_suffix(f".{os.getpid()}.tmp").unlink()
            if strict:
                raise RollbackMemoryError(
                    f"the change was committed, but this machine's memory of the "
                    f"vault ({path}) could not be updated ({err.strerror}): until "
                    "it is, a rollback to before this change would go unnoticed"
                ) from err
            # Not after a commit of ours: reading goes on; the next commit
            # checks the memory can be written before it changes anything.

    def forget(self, vault_id: str) -> None:
        """Drop the memory of a vault (after a deliberate restore of an old backup)."""
        with contextlib.suppress(OSError):
            self._path(vault_id).unlink()
