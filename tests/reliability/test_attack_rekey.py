"""Issue 13, finding 7: a copy of the vault taken before a passphrase change.

Written as the attacker works. They hold a copy of the vault taken before the
owner changed the passphrase (an old backup, a sync provider's history) and
the old passphrase. With the stock `age` tool they open the copy's owner key
file, then harvest everything the copy yields: the owner key, every client
key, every file key kept in an index. Later they get the vault as it is now,
after the change and a note written afterwards, and try all of that, and the
old passphrase, on every file in it.

- After `passphrase --rekey`: nothing opens.
- After a plain `passphrase` change (the known limit, which the command says
  in its output): the new owner key file stays shut, and so do the files
  sealed to keys the attacker never had (the recovery copy, the grantee's
  directory); every other sealed file opens, the note written afterwards
  included.
- `identity rotate --rekey` (the owner key leaked, not the passphrase): the
  old keys open nothing; a plain `identity rotate` re-wraps the client keys,
  so the copy's client keys still open the note written afterwards.

Owner commands run as subprocesses of the real CLI on a real vault in a
temporary directory.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import AgeError, WrongPassphraseError
from confvault.vault import Vault
from tests.vault import crash_runner

OLD = "correct horse battery staple"
NEW = "a completely new passphrase"
_SECRET_KEY = re.compile(rb"AGE-SECRET-KEY-1[0-9A-Z]+")
_FILE_KEY = re.compile(rb'"file_key":\s*"([A-Za-z0-9+/]+={0,2})"')
AGE_MAGIC = b"age-encryption.org/v1\n"


# --- the owner's side: the real CLI as a subprocess ------------------------------------


@dataclass
class Practice:
    root: Path
    old_pass: Path = field(init=False)
    new_pass: Path = field(init=False)

    def __post_init__(self) -> None:
        self.old_pass = self._secret("old-pass", OLD)
        self.new_pass = self._secret("new-pass", NEW)

    def _secret(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text + "\n")
        path.chmod(0o600)
        return path

    @property
    def vault(self) -> Path:
        return self.root / "vault"

    def run(
        self, *args: str, passphrase: Path | None = None, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        source = ["--passphrase-file", str(passphrase)] if passphrase else []
        argv = [sys.executable, "-m", "confvault", "--vault", str(self.vault)]
        return subprocess.run(
            [*argv, *source, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=dict(os.environ, XDG_STATE_HOME=str(self.root / "xdg")),
            timeout=120,
            check=False,
        )

    def owner(self, *args: str, stdin: str = "", new: bool = False) -> str:
        done = self.run(
            *args, passphrase=self.new_pass if new else self.old_pass, stdin=stdin
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


def _practice(root: Path) -> tuple[Practice, age.X25519Identity, age.X25519Identity]:
    """A vault with two clients, every kind of note, a grant and a grantee's read."""
    p = Practice(root)
    p.owner(
        "init",
        "--classic",
        "--work-factor",
        "10",
        "--allow-weak-work-factor",
        "--recovery-key-file",
        str(root / "recovery.txt"),
    )
    recovery = age.parse_identities((root / "recovery.txt").read_text())[0]
    for name in ("Ann", "Bob"):
        p.owner("client", "add", name)
    p.owner("note", "add", "Ann", stdin="Ann: the first session, before.\n")
    p.owner("note", "add", "Ann", "--draft", stdin="Ann: a draft, before.\n")
    p.owner(
        "note", "add", "Bob", "--kind", "psychotherapy", stdin="Bob: process, before.\n"
    )
    scan = root / "consent.pdf"
    scan.write_bytes(b"%PDF-1.4 Bob's consent form, before\n" * 50)
    p.owner("attach", "Bob", str(scan))
    grantee = age.X25519Identity.generate()
    key_file = root / "supervisor.key"
    key_file.write_text(grantee.encode() + "\n")
    key_file.chmod(0o600)
    p.owner("grant", str(grantee.recipient), "--client", "Ann", "--label", "sup")
    read = p.run("--identity", str(key_file), "note", "list")  # an audit-inbox entry
    assert read.returncode == 0, read.stderr
    return p, recovery, grantee


def _files(tree: Path) -> list[Path]:
    return sorted(
        path for path in tree.rglob("*") if path.is_file() and not path.is_symlink()
    )


def _age_files(tree: Path) -> list[Path]:
    return [path for path in _files(tree) if path.read_bytes().startswith(AGE_MAGIC)]


# --- the attacker's side -----------------------------------------------------------------


@dataclass
class Loot:
    """Every key the attacker holds, and every file key they read in an index."""

    identities: dict[str, age.X25519Identity] = field(default_factory=dict)
    file_keys: set[bytes] = field(default_factory=set)
    passphrase: bytes | None = None

    def open(self, data: bytes) -> bytes | None:
        keys: list[age.Identity] = list(self.identities.values())
        if self.passphrase is not None:
            keys.append(age.ScryptIdentity(self.passphrase, 22))
        try:
            return age.decrypt(data, keys)
        except AgeError:
            pass
        for file_key in self.file_keys:
            try:
                return age.decrypt_with_file_key(data, file_key)
            except AgeError:
                continue
        return None

    def harvest(self, plain: bytes) -> bool:
        """Take every secret key and file key in ``plain``; True when any is new."""
        before = (len(self.identities), len(self.file_keys))
        for match in _SECRET_KEY.findall(plain):
            identity = age.parse_identity(match.decode())
            self.identities[identity.encode()] = identity
        for match in _FILE_KEY.findall(plain):
            self.file_keys.add(base64.b64decode(match))
        return (len(self.identities), len(self.file_keys)) != before


def sweep(tree: Path, loot: Loot) -> dict[Path, bytes]:
    """Every file under ``tree`` that ``loot`` opens, harvesting as it goes."""
    opened: dict[Path, bytes] = {}
    grew = True
    while grew:
        grew = False
        for path in _files(tree):
            if path in opened:
                continue
            plain = loot.open(path.read_bytes())
            if plain is not None:
                opened[path] = plain
                grew = loot.harvest(plain) or grew
    return opened


def _stock_age_with_passphrase(
    age_bin: str, src: Path, out: Path, passphrase: str
) -> bytes:
    """`age -d` with its passphrase prompt answered on a pseudo-terminal."""
    args = [age_bin, "-d", "-o", str(out), str(src)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: age reads the passphrase from /dev/tty
        os.execv(args[0], args)
    seen = b""
    sent = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            while sent < seen.lower().count(b"passphrase"):
                os.write(fd, passphrase.encode() + b"\n")
                sent += 1
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    return out.read_bytes()


def _loot_of_copy(age_bin: str, copy: Path) -> tuple[Loot, dict[Path, bytes]]:
    """Open the copy's owner key file with stock age and the old passphrase; then
    everything in the copy that it leads to."""
    sealed = [
        path
        for path in _age_files(copy)
        if Loot(passphrase=OLD.encode()).open(path.read_bytes()) is not None
    ]
    assert len(sealed) == 1, sealed  # the owner key file
    identity_file = _stock_age_with_passphrase(
        age_bin, sealed[0], copy.parent / "stolen-owner-key.txt", OLD
    )
    assert b"# confvault owner identity" in identity_file
    loot = Loot(passphrase=OLD.encode())
    loot.harvest(identity_file)
    opened = sweep(copy, loot)
    # The copy is wide open to them: what it held is theirs, and stays theirs.
    everything = b"".join(opened.values())
    for text in (b"the first session, before", b"process, before", b"consent form"):
        assert text in everything
    return loot, opened


def _stock_age_opens(age_bin: str, keys: Path, path: Path) -> bytes | None:
    done = subprocess.run(
        [age_bin, "-d", "-i", str(keys), str(path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.stdout if done.returncode == 0 else None


def _write_keys(loot: Loot, path: Path) -> Path:
    path.write_text("".join(f"{key}\n" for key in loot.identities))
    path.chmod(0o600)
    return path


def _shut_except(opened: dict[Path, bytes], tree: Path) -> set[Path]:
    return set(_age_files(tree)) - set(opened)


def _opens_with(identity: age.Identity, tree: Path) -> set[Path]:
    found = set()
    for path in _age_files(tree):
        try:
            age.decrypt(path.read_bytes(), [identity])
        except AgeError:
            continue
        found.add(path)
    return found


# --- the tests ----------------------------------------------------------------------------


def test_rekey_leaves_a_copy_from_before_nothing_to_open(
    age_bin: str, tmp_path: Path
) -> None:
    p, _, _ = _practice(tmp_path)
    before = tmp_path / "copy-before"
    shutil.copytree(p.vault, before, symlinks=True)

    done = p.run(
        "passphrase",
        "--rekey",
        "--new-passphrase-file",
        str(p.new_pass),
        "--json",
        passphrase=p.old_pass,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["action"], report["outcome"], report["passphrase_changed"]) == (
        "rekey",
        "done",
        True,
    )
    assert report["client_keys_rotated"] == 3  # Ann, Bob, Bob's psychotherapy
    assert report["notes_resealed"] == 4
    assert report["failed"] == []
    p.owner("note", "add", "Ann", stdin="Ann: written after the re-key.\n", new=True)

    loot, _ = _loot_of_copy(age_bin, before)
    assert len(loot.identities) == 4  # the owner key and 3 client keys
    assert loot.file_keys
    opened = sweep(p.vault, loot)
    assert opened == {}, sorted(str(path.relative_to(p.vault)) for path in opened)
    # The same with the stock tool alone: every old key, every file now in the vault.
    keys = _write_keys(loot, tmp_path / "old-keys.txt")
    for path in _age_files(p.vault):
        assert _stock_age_opens(age_bin, keys, path) is None, path
    # ... and the vault is whole for its owner, with the new passphrase only.
    assert p.run("verify", "--deep", passphrase=p.new_pass).returncode == 0
    assert p.run("note", "list", passphrase=p.old_pass).returncode == 12
    # The grantee's read, sealed to the old owner key, was folded in, not lost.
    vault = Vault.open(
        p.vault, passphrase=NEW.encode(), state_dir=p.root / "xdg" / "confvault"
    )
    assert [e.action for e in vault.audit() if not e.signed] == ["note-list"]
    assert not list((p.vault / "audit-inbox").iterdir())


def test_plain_passphrase_change_is_the_known_limit(
    age_bin: str, tmp_path: Path
) -> None:
    p, recovery, grantee = _practice(tmp_path)
    before = tmp_path / "copy-before"
    shutil.copytree(p.vault, before, symlinks=True)

    done = p.run(
        "passphrase", "--new-passphrase-file", str(p.new_pass), passphrase=p.old_pass
    )
    assert done.returncode == 0, done.stderr
    assert (
        "confvault: warning: the old passphrase no longer opens this vault's owner "
        "key file, but a copy of the vault taken before the change still opens with "
        "the old passphrase"
    ) in done.stderr
    assert "use `confvault passphrase --rekey`" in done.stderr
    p.owner("note", "add", "Ann", stdin="Ann: written after the change.\n", new=True)

    loot, _ = _loot_of_copy(age_bin, before)
    opened = sweep(p.vault, loot)
    # What stays shut: exactly the files sealed only to what the attacker never
    # had: the new owner key file, the recovery copy, the grantee's directory.
    (new_owner_file,) = _opens_with(age.ScryptIdentity(NEW.encode(), 22), p.vault)
    (recovery_copy,) = _opens_with(recovery, p.vault)
    (directory,) = [
        path
        for path in _opens_with(grantee, p.vault)
        if b"confvault/grantee/v1" in age.decrypt(path.read_bytes(), [grantee])
    ]
    assert _shut_except(opened, p.vault) == {new_owner_file, recovery_copy, directory}
    # Everything else opens, the note written after the change included ...
    found = [path for path, plain in opened.items() if b"after the change" in plain]
    assert len(found) == 1
    # ... with the stock tool alone, given the keys the old copy holds.
    keys = _write_keys(loot, tmp_path / "old-keys.txt")
    assert b"Ann: written after the change." in (
        _stock_age_opens(age_bin, keys, found[0]) or b""
    )


def _keys_of_copy(copy: Path) -> tuple[Loot, Loot]:
    """The owner key leaked (an identity file), not the passphrase.

    Returns the owner key alone, and everything the copy opens to it.
    """
    old = age.ScryptIdentity(OLD.encode(), 22)
    (owner_file,) = _opens_with(old, copy)
    owner = Loot()
    owner.harvest(age.decrypt(owner_file.read_bytes(), [old]))
    loot = Loot(dict(owner.identities))
    sweep(copy, loot)
    return owner, loot


def test_identity_rotate_rekey_leaves_old_keys_nothing(tmp_path: Path) -> None:
    p, _, _ = _practice(tmp_path)
    before = tmp_path / "copy-before"
    shutil.copytree(p.vault, before, symlinks=True)
    report = json.loads(p.owner("identity", "rotate", "--rekey", "--json"))
    assert (report["rekey"], report["passphrase_changed"], report["outcome"]) == (
        True,
        False,
        "done",
    )
    assert report["client_keys_rotated"] == 3
    assert "passphrase --rekey" in report["protects"]  # the passphrase is unchanged
    p.owner("note", "add", "Ann", stdin="Ann: written after the re-key.\n")
    _, loot = _keys_of_copy(before)
    assert len(loot.identities) == 4
    assert sweep(p.vault, loot) == {}


def test_plain_identity_rotate_keeps_client_keys(tmp_path: Path) -> None:
    """The known limit of a plain `identity rotate`, as its output says."""
    p, _, _ = _practice(tmp_path)
    before = tmp_path / "copy-before"
    shutil.copytree(p.vault, before, symlinks=True)
    done = p.run("identity", "rotate", passphrase=p.old_pass)
    assert done.returncode == 0, done.stderr
    assert "the client keys are unchanged" in done.stderr
    assert "identity rotate --rekey" in done.stderr
    p.owner("note", "add", "Ann", stdin="Ann: written after the rotation.\n")
    owner, loot = _keys_of_copy(before)
    # The old owner key alone opens nothing now in the vault ...
    assert sweep(p.vault, owner) == {}
    # ... but the client keys of the copy still open the note written afterwards.
    opened = sweep(p.vault, loot)
    assert any(b"after the rotation" in plain for plain in opened.values())


# --- a re-key killed at every durable step ------------------------------------------------

_SERVERS: list[
    crash_runner.Servers
] = []  # the crash runner's fork servers, while in use


def _crash_base(root: Path) -> dict[str, bytes]:
    vault, _ = Vault.init(
        root / "vault",
        OLD.encode(),
        work_factor=10,
        postquantum=False,
        min_work_factor=10,
        state_dir=root / "xdg" / "confvault",
    )
    bodies = {}
    for name in ("Ann", "Bob"):
        vault.add_client(name)
        body = f"{name}'s note".encode()
        bodies[vault.add_note(name, body).id] = body
    vault.grant(str(age.X25519Identity.generate().recipient), clients=["Ann"])
    Practice(root)  # the passphrase files
    return bodies


def _crash_run(
    p: Practice, kill_at: str, args: list[str], passphrase: Path
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_STATE_HOME=str(p.root / "xdg"))
    cli = ["--vault", str(p.vault), "--passphrase-file", str(passphrase), *args]
    assert _SERVERS, "the crash runner's servers run only inside the kill test"
    done = _SERVERS[0].run(kill_at, cli, env=env)
    return subprocess.CompletedProcess(
        cli,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def _open_either(p: Practice) -> tuple[Vault, Path]:
    state = p.root / "xdg" / "confvault"
    try:
        return Vault.open(p.vault, passphrase=NEW.encode(), state_dir=state), p.new_pass
    except WrongPassphraseError:
        return Vault.open(p.vault, passphrase=OLD.encode(), state_dir=state), p.old_pass


@pytest.mark.slow
def test_rekey_killed_at_every_durable_step_then_finished(ram_path: Path) -> None:
    """Killed anywhere, the vault opens (old or new passphrase), verifies, reads
    every note back; rerunning (`rotate` once the new owner keys are in,
    else the re-key itself) leaves the old keys nothing to open."""
    tmp_path = ram_path  # on a tmpfs when there is one: see tests/conftest.ram_dir
    with crash_runner.servers(3) as pool:
        _SERVERS.append(pool)
        try:
            _rekey_killed_everywhere(tmp_path)
        finally:
            _SERVERS.clear()


def _rekey_killed_everywhere(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    bodies = _crash_base(base)
    old = Loot(passphrase=OLD.encode())
    (owner_file,) = _opens_with(age.ScryptIdentity(OLD.encode(), 22), base / "vault")
    old.harvest(old.open(owner_file.read_bytes()) or b"")
    sweep(base / "vault", old)
    assert len(old.identities) == 3  # the owner key and two client keys
    rekey = ["passphrase", "--rekey", "--new-passphrase-file", str(base / "new-pass")]

    shutil.copytree(base, tmp_path / "probe")
    counted = _crash_run(Practice(tmp_path / "probe"), "0", rekey, base / "old-pass")
    assert counted.returncode == 0, counted.stderr
    total = int(counted.stderr.strip().splitlines()[-1].split(": ")[1])
    commits = [
        line
        for line in counted.stderr.splitlines()
        if line.startswith("durable-step ")
        and line.split()[2] in ("replace", "rename")
        and Path(line.split()[-1]).name == "manifest"
    ]
    assert len(commits) == 2  # the new owner keys, then the client keys

    def one(point: str) -> str | None:
        root = tmp_path / f"p{point.replace('+', 'a')}"
        shutil.copytree(base, root)
        p = Practice(root)
        run = _crash_run(p, point, rekey, p.old_pass)
        if run.returncode not in (-signal.SIGKILL, 0):
            return f"{point}: exit {run.returncode}\n{run.stderr}"
        vault, works = _open_either(p)
        if not vault.verify(deep=True).ok:
            return f"{point}: does not verify"
        if {n: vault.note(n).body for n in bodies} != bodies:
            return f"{point}: a note does not read back"
        again = ["rotate"] if works == p.new_pass else rekey
        finish = _crash_run(p, "0", again, works)
        if finish.returncode not in (0, 3):
            return f"{point}: {again[0]} exit {finish.returncode}\n{finish.stderr}"
        vault, works = _open_either(p)
        if works != p.new_pass or vault.verify(deep=True).findings != ():
            return f"{point}: not finished cleanly"
        leaked = sweep(
            p.vault, Loot(dict(old.identities), set(old.file_keys), OLD.encode())
        )
        if leaked:
            return f"{point}: the old keys open {sorted(map(str, leaked))}"
        shutil.rmtree(root)
        return None

    points = [str(n) for n in range(1, total + 1)] + [f"{total}+"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        problems = [problem for problem in pool.map(one, points) if problem]
    assert not problems, "\n\n".join(problems[:5])
