"""1 GiB through encrypt_stream / decrypt_stream in a fresh process, in bounded memory.

The plaintext is a 1 MiB random block repeated 1024 times, produced by a raw
reader's ``readinto`` and never held whole; sinks hash and discard. Each child
reports its peak RSS on stderr as JSON when done.

The children are started through coreutils ``timeout``, which forks them from
its own small process: at exec, Linux folds the *old* image's high-water mark
into the new process's ``ru_maxrss``, so a child exec'ed straight from pytest
would report at least pytest's own peak. ``VmHWM`` (this image only) is
reported too; both must stay under the bound.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from confvault import age

MIB = 1 << 20
GIB = 1 << 30
RSS_LIMIT_KIB = 64 * 1024
CHUNK = 64 * 1024
SEALED_CHUNK = CHUNK + 16
TIMEOUT = 120

CHILD_COMMON = r"""
import hashlib, io, json, os, re, resource, sys
from pathlib import Path
from confvault import age

GIB = 1 << 30


class Repeating(io.RawIOBase):
    '''``total`` bytes of ``block`` repeated, served by readinto only.'''

    def __init__(self, block, total):
        super().__init__()
        self._block = memoryview(block)
        self._total = total
        self.pos = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        n = min(len(view), self._total - self.pos)
        done = 0
        while done < n:
            offset = (self.pos + done) % len(self._block)
            step = min(n - done, len(self._block) - offset)
            view[done : done + step] = self._block[offset : offset + step]
            done += step
        self.pos += n
        return n


class HashingSink:
    def __init__(self):
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return len(data)


def report(**fields):
    status = Path("/proc/self/status").read_text()
    fields["vm_hwm_kib"] = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    fields["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stderr.write(json.dumps(fields) + "\n")
"""

ENCRYPT_TO_SINK = r"""
recipient = age.parse_recipient(sys.argv[2])
source = Repeating(Path(sys.argv[1]).read_bytes(), GIB)
sink = HashingSink()
sealed = age.encrypt_stream(source, sink, [recipient])
header = len(age.encrypt(b"", [recipient])) - 32  # minus nonce and empty final chunk
report(plaintext=sealed, read=source.pos, written=sink.size, header=header,
       sha256=sink.sha.hexdigest())
"""

ENCRYPT_TO_STDOUT = r"""
source = Repeating(Path(sys.argv[1]).read_bytes(), GIB)
sealed = age.encrypt_stream(source, sys.stdout.buffer, [age.parse_recipient(sys.argv[2])])
sys.stdout.buffer.flush()
report(plaintext=sealed)
"""

DECRYPT_FROM_STDIN = r"""
identity = age.parse_identity(os.environ["CONFVAULT_TEST_IDENTITY"])
sink = HashingSink()
opened = age.decrypt_stream(sys.stdin.buffer, sink, [identity])
report(plaintext=opened, written=sink.size, sha256=sink.sha.hexdigest())
"""


def _argv(script: str, *args: str) -> list[str]:
    return ["timeout", str(TIMEOUT), sys.executable, "-c", CHILD_COMMON + script, *args]


def _report(name: str, proc: subprocess.Popen[bytes], stderr: bytes) -> dict[str, int]:
    text = stderr.decode(errors="replace")
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{text}"
    fields: dict[str, int] = json.loads(text.strip().splitlines()[-1])
    peak = max(fields["ru_maxrss_kib"], fields["vm_hwm_kib"])
    assert peak < RSS_LIMIT_KIB, f"{name} peaked at {peak / 1024:.1f} MiB: {fields}"
    return fields


def _expected_sha256(block: bytes) -> str:
    sha = hashlib.sha256()
    for _ in range(GIB // len(block)):
        sha.update(block)
    return sha.hexdigest()


@pytest.fixture(scope="module")
def block(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("memory") / "block.bin"
    path.write_bytes(os.urandom(MIB))
    return path


@pytest.mark.slow
def test_encrypt_stream_1gib_in_bounded_memory(block: Path) -> None:
    identity = age.X25519Identity.generate()
    proc = subprocess.Popen(
        _argv(ENCRYPT_TO_SINK, str(block), str(identity.recipient)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, stderr = proc.communicate(timeout=TIMEOUT + 10)
    fields = _report("encrypt", proc, stderr)

    assert fields["plaintext"] == fields["read"] == GIB
    # nonce + 16384 full chunks, the last of them the final chunk
    assert fields["written"] == fields["header"] + 16 + (GIB // CHUNK) * SEALED_CHUNK


@pytest.mark.slow
def test_1gib_pipe_encrypt_then_decrypt_in_bounded_memory(block: Path) -> None:
    identity = age.X25519Identity.generate()
    read_end, write_end = os.pipe()
    try:
        sealer = subprocess.Popen(
            _argv(ENCRYPT_TO_STDOUT, str(block), str(identity.recipient)),
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
        )
        opener = subprocess.Popen(
            _argv(DECRYPT_FROM_STDIN),
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "CONFVAULT_TEST_IDENTITY": identity.encode()},
        )
    finally:
        os.close(read_end)
        os.close(write_end)
    _, opener_err = opener.communicate(timeout=TIMEOUT + 10)
    _, sealer_err = sealer.communicate(timeout=TIMEOUT + 10)
    sealed = _report("encrypt | ", sealer, sealer_err)
    opened = _report("| decrypt", opener, opener_err)

    assert sealed["plaintext"] == GIB
    assert opened["plaintext"] == opened["written"] == GIB
    assert opened["sha256"] == _expected_sha256(block.read_bytes())
