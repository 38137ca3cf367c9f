"""The git engine: the system ``git`` binary, run with a controlled environment.

No user or system configuration is read (``GIT_CONFIG_NOSYSTEM``,
``GIT_CONFIG_GLOBAL=/dev/null``), author and committer are fixed, messages
are in the C locale, no prompt is ever shown (``GIT_TERMINAL_PROMPT=0``),
only the file, ssh, git and http(s) transports are allowed (not ``ext::``,
which runs a command), and git never runs through a shell. The repository
is bare and lives outside the vault (``state.repo_path``): only plumbing is
used, so git never checks a file out into the vault.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from confvault.errors import GitUnavailableError, SyncError

IDENTITY = "confvault"
EMAIL = "confvault@invalid"
FIXED_DATE = "0 +0000"  # commits carry no clock of their own (the message does)
ALLOWED_PROTOCOLS = "file:ssh:git:http:https"
_KEPT = ("PATH", "HOME", "SSH_AUTH_SOCK", "GIT_SSH_COMMAND", "TMPDIR")
_TIMEOUT = 3600.0


def environment() -> dict[str, str]:
    """The environment every git command runs with."""
    env = {k: os.environ[k] for k in _KEPT if k in os.environ}
    env.setdefault("HOME", "/nonexistent")
    env.setdefault("PATH", "/usr/bin:/bin")
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/false",
        SSH_ASKPASS="/bin/false",
        GIT_ALLOW_PROTOCOL=ALLOWED_PROTOCOLS,
        GIT_AUTHOR_NAME=IDENTITY,
        GIT_AUTHOR_EMAIL=EMAIL,
        GIT_AUTHOR_DATE=FIXED_DATE,
        GIT_COMMITTER_NAME=IDENTITY,
        GIT_COMMITTER_EMAIL=EMAIL,
        GIT_COMMITTER_DATE=FIXED_DATE,
        LC_ALL="C",
        LANG="C",
    )
    return env


def git_binary() -> str:
    """The path of ``git``; ``GitUnavailableError`` when there is none."""
    found = shutil.which("git")
    if found is None:
        raise GitUnavailableError(
            "sync needs the `git` program, which is not installed "
            "(Debian/Ubuntu: apt-get install git)"
        )
    return found


@dataclass(frozen=True)
class TreeEntry:
    """One file of a commit's tree (``git ls-tree -r -l``)."""

    mode: str
    kind: str
    blob: str
    size: int
    path: str


class Repo:
    """A bare repository of this device (outside the vault)."""

    # Seconds this process waited on git, all repositories (bench/sync.py).
    seconds: ClassVar[float] = 0.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self.binary = git_binary()
        self.env = environment()

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        what: str = "",
    ) -> subprocess.CompletedProcess[bytes]:
        """``git --git-dir=REPO ARGS``: output captured, never a shell."""
        argv = [self.binary, f"--git-dir={self.path}", *args]
        start = time.perf_counter()
        try:
            done = subprocess.run(  # noqa: S603 - fixed binary, no shell
                argv,
                input=input,
                capture_output=True,
                env=self.env,
                timeout=_TIMEOUT,
                check=False,
                stdin=None if input is not None else subprocess.DEVNULL,
            )
        except OSError as err:
            raise GitUnavailableError(f"git could not be run: {err.strerror}") from err
        except subprocess.TimeoutExpired as err:
            raise SyncError(f"git {args[0]} did not finish in time") from err
        finally:
            Repo.seconds += time.perf_counter() - start
        if check and done.returncode != 0:
            raise SyncError(f"{what or 'git ' + args[0]} failed: {_last_line(done)}")
        return done

    def init(self) -> None:
        """Create the bare repository (no hooks: an empty template)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.run("init", "--quiet", "--bare", "--template=", "--", str(self.path))
        self.run("config", "transfer.fsckObjects", "true")
        self.run("config", "core.hooksPath", "/dev/null")

    def set_remote(self, url: str) -> None:
        """Remember the remote's URL in the repository (never on argv again)."""
        if url.startswith("-") or "\n" in url or not url:
            raise SyncError("the remote must be a git URL or a path")
        self.run("config", "--replace-all", "remote.origin.url", url)

    def rev(self, ref: str) -> str | None:
        """The commit a ref names, or None."""
        done = self.run(
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            ref + "^{commit}",
            check=False,
        )
        out = done.stdout.decode("ascii", "replace").strip()
        return out if done.returncode == 0 and out else None

    def fetch(self, remote_branch: str, into: str, source: str = "origin") -> None:
        """Fetch the remote's branch into the local ref ``into`` (forced: the
        checks, not git, decide whether the remote's history is acceptable);
        ``source`` is another repository's path (a sync folder's peer)."""
        self.run("update-ref", "-d", into, check=False)
        done = self.run(
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            source,
            f"+refs/heads/{remote_branch}:{into}",
            check=False,
        )
        if done.returncode != 0:
            message = _last_line(done)
            if "couldn't find remote ref" in message:
                return  # an empty remote: nothing to fetch yet
            raise SyncError(f"fetching from the remote failed: {message}")

    def push(self, commit: str, remote_branch: str) -> None:
        """Push ``commit`` as the remote's branch; never forced."""
        done = self.run(
            "push",
            "--quiet",
            "--porcelain",
            "origin",
            f"{commit}:refs/heads/{remote_branch}",
            check=False,
        )
        if done.returncode != 0:
            raise SyncError(
                "pushing to the remote failed (did another device sync meanwhile? "
                f"run `confvault sync` again): {_last_line(done)}"
            )

    def push_replacing(self, commit: str, remote_branch: str, expected: str) -> None:
        """Push ``commit`` as the remote's branch in place of its history,
        only if the branch is still ``expected`` (a lease: refused when
        another device pushed meanwhile)."""
        done = self.run(
            "push",
            "--quiet",
            "--porcelain",
            f"--force-with-lease=refs/heads/{remote_branch}:{expected}",
            "origin",
            f"{commit}:refs/heads/{remote_branch}",
            check=False,
        )
        if done.returncode != 0:
            raise SyncError(
                "replacing the remote's history failed (did another device sync "
                f"meanwhile? run `confvault sync compact` again): {_last_line(done)}"
            )

    def roots(self, commit: str) -> list[str]:
        """The commits without a parent in ``commit``'s history."""
        done = self.run("rev-list", "--max-parents=0", commit)
        return done.stdout.decode("ascii", "replace").split()

    def prune(self) -> None:
        """Drop every object no ref reaches (an old history, once replaced)."""
        self.run("reflog", "expire", "--expire=now", "--all", check=False)
        self.run("gc", "--quiet", "--prune=now")

    def update_ref(self, ref: str, commit: str) -> None:
        self.run("update-ref", "--no-deref", ref, commit)

    def is_ancestor(self, older: str, newer: str) -> bool:
        done = self.run("merge-base", "--is-ancestor", older, newer, check=False)
        if done.returncode not in (0, 1):
            raise SyncError(f"git merge-base failed: {_last_line(done)}")
        return done.returncode == 0

    def message(self, commit: str) -> str:
        done = self.run("cat-file", "commit", commit)
        _, _, text = done.stdout.partition(b"\n\n")
        return text.decode("utf-8", "replace")

    def tree(self, commit: str) -> list[TreeEntry]:
        """Every file of ``commit``'s tree (recursively)."""
        done = self.run("ls-tree", "-r", "-l", "-z", "--full-tree", commit)
        return list(_parse_tree(done.stdout))

    def blobs(self, names: Sequence[str]) -> Iterator[bytes]:
        """The content of each blob in ``names``, in order (one ``cat-file
        --batch`` process)."""
        if not names:
            return
        request = "".join(n + "\n" for n in names).encode("ascii")
        out = self.run("cat-file", "--batch", input=request).stdout
        pos = 0
        for name in names:
            end = out.index(b"\n", pos)
            header = out[pos:end].split(b" ")
            if len(header) != 3 or header[0].decode() != name:
                raise SyncError(f"git cat-file did not return blob {name[:12]}")
            size = int(header[2])
            yield out[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1

    def fast_import(self, stream: bytes) -> None:
        """Write blobs and one commit (``git fast-import``)."""
        self.run(
            "fast-import",
            "--quiet",
            "--force",
            "--done",
            input=stream,
            what="git fast-import",
        )


def _parse_tree(data: bytes) -> Iterator[TreeEntry]:
    for record in data.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        fields = meta.split()
        if len(fields) != 4:
            raise SyncError("git ls-tree printed an entry it should not")
        mode, kind, blob, size = (f.decode("ascii", "replace") for f in fields)
        yield TreeEntry(
            mode,
            kind,
            blob,
            int(size) if size.isdigit() else -1,
            path.decode("utf-8", "replace"),
        )


def _last_line(done: subprocess.CompletedProcess[bytes]) -> str:
    text = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"exit status {done.returncode}"
