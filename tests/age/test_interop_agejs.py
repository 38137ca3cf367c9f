"""Post-quantum files interoperate both ways with an independent implementation.

The stock Debian `age` (1.1.1) predates the hybrid type, so the other side is
the TypeScript age library published on npm as `age-encryption` (typage,
0.3.1), run by tests/agejs/age.mjs under Node.js (`npm ci --prefix
tests/agejs` installs it). Secret keys cross only in 0600 files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from confvault import age

SIZES = [0, 1, 65536, 200_000]
CONFVAULT = [sys.executable, "-m", "confvault"]


def _run(args: list[str], data: bytes = b"") -> bytes:
    done = subprocess.run(
        args, input=data, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    return done.stdout


def _key_file(tmp_path: Path, *identities: age.AnyIdentity) -> Path:
    path = tmp_path / "ours.txt"
    path.write_text("".join(f"{i.encode()}\n" for i in identities))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armor"])
def test_agejs_encrypts_to_our_hybrid_recipient(
    agejs: list[str], size: int, armored: bool
) -> None:
    identity = age.HybridIdentity.generate()
    plaintext = os.urandom(size)
    args = [*agejs, "encrypt"] + (["--armor"] if armored else [])
    sealed = _run([*args, str(identity.recipient)], plaintext)
    assert sealed.startswith(
        b"-----BEGIN AGE ENCRYPTED FILE-----\n"
        if armored
        else b"age-encryption.org/v1\n-> mlkem768x25519 "
    )
    assert age.decrypt(sealed, [identity]) == plaintext


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armor"])
def test_agejs_decrypts_ours_to_a_hybrid_recipient(
    agejs: list[str], tmp_path: Path, size: int, armored: bool
) -> None:
    identity = age.HybridIdentity.generate()
    plaintext = os.urandom(size)
    sealed = age.encrypt(plaintext, [identity.recipient], armored=armored)
    assert _run([*agejs, "decrypt", str(_key_file(tmp_path, identity))], sealed) == (
        plaintext
    )


def test_agejs_keys_work_with_our_codec(agejs: list[str], tmp_path: Path) -> None:
    key = tmp_path / "theirs.txt"
    public = _run([*agejs, "keygen", "pq", str(key)]).decode().strip()
    assert key.stat().st_mode & 0o777 == 0o600
    (identity,) = age.parse_identities(key.read_text())
    assert isinstance(identity, age.HybridIdentity)
    assert str(identity.recipient) == public
    sealed = age.encrypt(b"from confvault", [age.parse_recipient(public)])
    assert _run([*agejs, "decrypt", str(key)], sealed) == b"from confvault"
    sealed = _run([*agejs, "encrypt", public], b"from typage")
    assert age.decrypt(sealed, [identity]) == b"from typage"


def test_our_keygen_pq_works_with_agejs(agejs: list[str], tmp_path: Path) -> None:
    key = tmp_path / "ours.txt"
    done = subprocess.run(
        [*CONFVAULT, "age", "keygen", "--pq", "-o", str(key)],
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    )
    public = _run([*agejs, "recipient", str(key)]).decode().strip()
    assert public.startswith("age1pq1")
    assert done.stderr.strip() == f"Public key: {public}"
    sealed = _run([*agejs, "encrypt", public], b"to confvault's key")
    assert (
        _run([*CONFVAULT, "age", "decrypt", "-i", str(key)], sealed)
        == b"to confvault's key"
    )
    sealed = _run([*CONFVAULT, "age", "encrypt", "-r", public], b"from confvault's CLI")
    assert _run([*agejs, "decrypt", str(key)], sealed) == b"from confvault's CLI"


def test_agejs_file_to_hybrid_and_classic_opens_with_either(
    agejs: list[str],
) -> None:
    # typage does not apply age's label rule when encrypting; such a file is
    # valid age (the vector hybrid_and_x25519), and each identity opens it.
    pq, classic = age.HybridIdentity.generate(), age.X25519Identity.generate()
    sealed = _run(
        [*agejs, "encrypt", str(pq.recipient), str(classic.recipient)], b"both"
    )
    assert age.decrypt(sealed, [pq]) == b"both"
    assert age.decrypt(sealed, [classic]) == b"both"
