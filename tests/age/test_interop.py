"""Files interoperate both ways with the stock `age` and `age-keygen` binaries."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from confvault import age

SIZES = [0, 1, 65536, 200_000]
CONFVAULT = [sys.executable, "-m", "confvault"]


def _run(args: list[str], data: bytes = b"") -> bytes:
    done = subprocess.run(args, input=data, capture_output=True, check=True, timeout=60)
    return done.stdout


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armor"])
def test_stock_age_decrypts_ours_x25519(
    age_bin: str, identity_file: Path, size: int, armored: bool
) -> None:
    plaintext = os.urandom(size)
    identity = age.parse_identities(identity_file.read_text())[0]
    sealed = age.encrypt(plaintext, [identity.recipient], armored=armored)
    assert _run([age_bin, "-d", "-i", str(identity_file)], sealed) == plaintext


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armor"])
def test_we_decrypt_stock_age_x25519(
    age_bin: str, identity_file: Path, size: int, armored: bool
) -> None:
    plaintext = os.urandom(size)
    identity = age.parse_identities(identity_file.read_text())[0]
    args = [age_bin, "-r", str(identity.recipient)] + (["-a"] if armored else [])
    sealed = _run(args, plaintext)
    assert age.decrypt(sealed, [identity]) == plaintext


def test_stock_keygen_identity_works_both_ways(
    age_bin: str, age_keygen_bin: str, tmp_path: Path
) -> None:
    key = tmp_path / "stock.txt"
    subprocess.run([age_keygen_bin, "-o", str(key)], check=True, capture_output=True)
    identities = age.parse_identities(key.read_text())
    public = _run([age_keygen_bin, "-y", str(key)]).decode().strip()
    assert str(identities[0].recipient) == public
    sealed = age.encrypt(b"from confvault", [age.parse_recipient(public)])
    assert _run([age_bin, "-d", "-i", str(key)], sealed) == b"from confvault"


def test_our_keygen_identity_works_with_stock_age(
    age_bin: str, age_keygen_bin: str, tmp_path: Path
) -> None:
    key = tmp_path / "ours.txt"
    done = subprocess.run(
        [*CONFVAULT, "age", "keygen", "-o", str(key)],
        capture_output=True,
        check=True,
        text=True,
    )
    assert key.stat().st_mode & 0o777 == 0o600
    public = _run([age_keygen_bin, "-y", str(key)]).decode().strip()
    assert done.stderr.strip() == f"Public key: {public}"
    sealed = _run([age_bin, "-r", public], b"to confvault's key")
    assert (
        _run([*CONFVAULT, "age", "decrypt", "-i", str(key)], sealed)
        == b"to confvault's key"
    )


def test_multiple_recipients_stock_age_each_key(age_bin: str, tmp_path: Path) -> None:
    ids = [age.X25519Identity.generate() for _ in range(3)]
    sealed = age.encrypt(b"shared", [i.recipient for i in ids])
    for n, identity in enumerate(ids):
        key = tmp_path / f"k{n}.txt"
        key.write_text(identity.encode() + "\n")
        assert _run([age_bin, "-d", "-i", str(key)], sealed) == b"shared"


def _age_with_pty(args: list[str], passphrase: str, timeout: float = 60) -> bytes:
    """Run stock age with its passphrase prompt on a pseudo-terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # child: age reads the passphrase from /dev/tty (the pty)
        os.execv(args[0], args)
    out = b""
    sent = 0
    deadline = time.monotonic() + timeout
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
            out += chunk
            prompts = out.lower().count(b"passphrase")
            while sent < prompts:
                os.write(fd, passphrase.encode() + b"\n")
                sent += 1
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return out


def test_stock_age_scrypt_roundtrip_both_ways(age_bin: str, tmp_path: Path) -> None:
    plaintext = b"passphrase-sealed note\n" * 100
    passphrase = "correct horse battery staple"
    # ours -> stock
    ours = tmp_path / "ours.age"
    ours.write_bytes(
        age.encrypt(plaintext, [age.ScryptRecipient(passphrase.encode(), 10)])
    )
    out = tmp_path / "ours.out"
    _age_with_pty([age_bin, "-d", "-o", str(out), str(ours)], passphrase)
    assert out.read_bytes() == plaintext
    # stock -> ours
    src = tmp_path / "plain.txt"
    src.write_bytes(plaintext)
    stock = tmp_path / "stock.age"
    _age_with_pty([age_bin, "-p", "-o", str(stock), str(src)], passphrase)
    assert (
        age.decrypt(stock.read_bytes(), [age.ScryptIdentity(passphrase.encode())])
        == plaintext
    )


def test_cli_encrypt_stock_decrypt_and_back(
    age_bin: str, identity_file: Path, tmp_path: Path
) -> None:
    identity = age.parse_identities(identity_file.read_text())[0]
    plain = tmp_path / "note.txt"
    plain.write_bytes(os.urandom(150_000))
    sealed = tmp_path / "note.age"
    subprocess.run(
        [
            *CONFVAULT,
            "age",
            "encrypt",
            "-r",
            str(identity.recipient),
            "-o",
            str(sealed),
            str(plain),
        ],
        check=True,
    )
    assert (
        _run([age_bin, "-d", "-i", str(identity_file), str(sealed)])
        == plain.read_bytes()
    )
    stock = tmp_path / "stock.age"
    subprocess.run(
        [age_bin, "-a", "-r", str(identity.recipient), "-o", str(stock), str(plain)],
        check=True,
    )
    opened = tmp_path / "opened.txt"
    subprocess.run(
        [
            *CONFVAULT,
            "age",
            "decrypt",
            "-i",
            str(identity_file),
            "-o",
            str(opened),
            str(stock),
        ],
        check=True,
    )
    assert opened.read_bytes() == plain.read_bytes()
    assert opened.stat().st_mode & 0o777 == 0o600


def _stock_age_version(age_bin: str) -> tuple[int, ...]:
    text = _run([age_bin, "--version"]).decode().strip().lstrip("v")
    return tuple(int(part) for part in text.split("-")[0].split(".")[:2])


def test_stock_age_before_1_3_refuses_a_hybrid_file_cleanly(
    age_bin: str, tmp_path: Path
) -> None:
    """Hybrid (age1pq1) files need stock age 1.3 or later: Debian's 1.1.1 refuses
    them with an error and no output (docs/FORMAT.md states this limit)."""
    pq, classic = age.HybridIdentity.generate(), age.X25519Identity.generate()
    sealed = age.encrypt(b"post-quantum note", [pq.recipient])
    pq_key, classic_key = tmp_path / "pq.txt", tmp_path / "classic.txt"
    pq_key.write_text(f"{pq.encode()}\n")
    classic_key.write_text(f"{classic.encode()}\n")

    def stock(*args: str, data: bytes = sealed) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [age_bin, *args], input=data, capture_output=True, timeout=60, check=False
        )

    if _stock_age_version(age_bin) >= (1, 3):
        assert stock("-d", "-i", str(pq_key)).stdout == b"post-quantum note"
        return
    done = stock("-d", "-i", str(pq_key))
    assert (done.returncode, done.stdout) == (1, b"")
    assert b"unknown identity type" in done.stderr
    done = stock("-d", "-i", str(classic_key))
    assert (done.returncode, done.stdout) == (1, b"")
    assert b"no identity matched any of the recipients" in done.stderr
    done = stock("-r", str(pq.recipient), data=b"x")  # read as a plugin's recipient
    assert (done.returncode, done.stdout) == (1, b"")
    assert b"age-plugin-pq" in done.stderr
