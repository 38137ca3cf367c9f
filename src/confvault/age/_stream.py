"""The age STREAM payload: ChaCha20-Poly1305 in 64 KiB chunks (C2SP age, "Payload").

Nonce = 11-byte big-endian chunk counter || 0x01 for the final chunk, else 0x00.
The final chunk may be short, and is empty only when the whole payload is.

Memory stays constant: input is read in blocks of ``_BLOCK_CHUNKS`` chunks
into one reused buffer, sealed or opened into one reused output buffer. Whole
blocks (never the final chunk) are split between two threads, each with its
own ``BulkChunkCipher`` (OpenSSL's ChaCha20-Poly1305: half libsodium's CPU
time); the final chunks, and payloads smaller than a block, use libsodium.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a large payload first needs the threads
    from concurrent.futures import Future, ThreadPoolExecutor

from confvault.age._io import Reader, Writer
from confvault.age._primitives import (
    TAG_SIZE,
    BulkChunkCipher,
    ChunkCipher,
    hkdf_sha256,
)
from confvault.errors import HeaderError, PayloadError

CHUNK_SIZE = 64 * 1024
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
NONCE_SIZE = 16
_BLOCK_CHUNKS = 64
_INITIAL_BUFFER = 16 * 1024
_MAX_COUNTER = (1 << 88) - 1
_pool: ThreadPoolExecutor | None = None
_write_pool: ThreadPoolExecutor | None = None


def _workers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="age-stream")
    return _pool


def _writer() -> ThreadPoolExecutor:
    global _write_pool
    if _write_pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="age-writer")
    return _write_pool


def payload_key(file_key: bytes, nonce: bytes) -> bytes:
    """HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload")."""
    return hkdf_sha256(file_key, nonce, b"payload")


def _nonce(counter: int, last: bool) -> bytes:
    if counter > _MAX_COUNTER:
        raise PayloadError("payload has too many chunks")
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class _BlockReader:
    """Reads records in blocks and always knows which record is the last.

    ``blocks()`` yields (view, records, at_eof). When ``at_eof`` is False the
    view holds ``_BLOCK_CHUNKS`` whole records and more input follows them;
    when True it holds all that remained (possibly nothing).
    """

    def __init__(self, src: Reader, record: int) -> None:
        self._src = src
        self._record = record
        self._full = record * (_BLOCK_CHUNKS + 1)
        # Start small (a note is a few KiB) and grow only for large inputs.
        self._buf = bytearray(_INITIAL_BUFFER)
        self._view = memoryview(self._buf)
        self._end = 0

    def _grow(self) -> None:
        bigger = bytearray(min(len(self._buf) * 8, self._full))
        bigger[: self._end] = self._view[: self._end]
        self._buf, self._view = bigger, memoryview(bigger)

    def _fill(self) -> bool:
        """Fill the buffer; False when the input ended first."""
        readinto: Callable[[memoryview], int | None] | None = getattr(
            self._src, "readinto", None
        )
        while True:
            while self._end < len(self._buf):
                if readinto is not None:
                    got = readinto(self._view[self._end :])
                else:
                    data = self._src.read(len(self._buf) - self._end)
                    got = len(data)
                    self._view[self._end : self._end + got] = data
                if not got:
                    return False
                self._end += got
            if len(self._buf) >= self._full:
                return True
            self._grow()

    def blocks(self) -> Iterator[tuple[memoryview, bool]]:
        whole = self._record * _BLOCK_CHUNKS
        while self._fill():
            yield self._view[:whole], False
            # Keep the record that follows the block: it may be the last.
            self._buf[: self._end - whole] = self._view[whole : self._end]
            self._end -= whole
        yield self._view[: self._end], True


def _split(n: int) -> tuple[range, range]:
    half = n // 2
    return range(half), range(half, n)


def encrypt_payload(file_key: bytes, nonce: bytes, src: Reader, dst: Writer) -> int:
    """Write ``nonce`` and the sealed chunks of everything read from ``src``.

    Whole blocks are sealed by two threads into one of two output buffers,
    and written by a third while the next block is sealed, so the write of
    block k overlaps the sealing of block k+1. Returns the plaintext size.
    """
    key = payload_key(file_key, nonce)
    cipher = ChunkCipher(key)
    bulk: list[ChunkCipher] = []  # one per thread, made at the first whole block
    outputs: list[memoryview] = []
    writing: list[Future[object] | None] = [None, None]
    dst.write(nonce)
    counter = 0
    total = 0

    def seal(
        block: memoryview, out: memoryview, base: int, indexes: range, by: ChunkCipher
    ) -> None:
        for i in indexes:
            by.seal_into(
                _nonce(base + i, False),
                block[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE],
                out[i * ENCRYPTED_CHUNK_SIZE : (i + 1) * ENCRYPTED_CHUNK_SIZE],
            )

    def drain() -> None:
        for n, job in enumerate(writing):
            if job is not None:
                job.result()
                writing[n] = None

    try:
        for number, (block, at_eof) in enumerate(
            _BlockReader(src, CHUNK_SIZE).blocks()
        ):
            if not at_eof:
                if not outputs:
                    size = ENCRYPTED_CHUNK_SIZE * _BLOCK_CHUNKS
                    outputs = [memoryview(bytearray(size)), memoryview(bytearray(size))]
                    bulk = [BulkChunkCipher(key), BulkChunkCipher(key)]
                slot = number % 2
                if (earlier := writing[slot]) is not None:
                    earlier.result()
                out = outputs[slot]
                first, second = _split(_BLOCK_CHUNKS)
                job = _workers().submit(seal, block, out, counter, second, bulk[1])
                seal(block, out, counter, first, bulk[0])
                job.result()
                writing[slot] = _writer().submit(dst.write, out)
                counter += _BLOCK_CHUNKS
                total += len(block)
                continue
            drain()
            # The tail: whole chunks, then the final one (empty only if all is).
            size = len(block)
            starts = list(range(0, size, CHUNK_SIZE)) or [0]
            out = memoryview(bytearray(min(size, CHUNK_SIZE) + TAG_SIZE))
            for index, start in enumerate(starts):
                chunk = block[start : start + CHUNK_SIZE]
                sealed = out[: len(chunk) + TAG_SIZE]
                cipher.seal_into(
                    _nonce(counter, index == len(starts) - 1), chunk, sealed
                )
                dst.write(sealed)
                counter += 1
            total += size
    finally:
        drain()
    return total


class StreamWriter:
    """Seal data as it is written; ``close()`` seals the final chunk."""

    def __init__(self, file_key: bytes, nonce: bytes, dst: Writer) -> None:
        self._cipher = ChunkCipher(payload_key(file_key, nonce))
        self._dst = dst
        self._buf = bytearray()
        self._out = memoryview(bytearray(ENCRYPTED_CHUNK_SIZE))
        self._counter = 0
        self._closed = False
        dst.write(nonce)

    def _seal(self, chunk: memoryview, last: bool) -> None:
        sealed = self._out[: len(chunk) + TAG_SIZE]
        self._cipher.seal_into(_nonce(self._counter, last), chunk, sealed)
        self._dst.write(sealed)
        self._counter += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer ``data``; seal every chunk known not to be the last."""
        if self._closed:
            raise ValueError("write to a closed age stream")
        self._buf += data
        if len(self._buf) > CHUNK_SIZE:
            done = 0
            with memoryview(self._buf) as view:
                while len(self._buf) - done > CHUNK_SIZE:
                    with view[done : done + CHUNK_SIZE] as chunk:
                        self._seal(chunk, last=False)
                    done += CHUNK_SIZE
            del self._buf[:done]
        return len(data)

    def close(self) -> None:
        """Seal the final chunk (empty only if nothing at all was written)."""
        if self._closed:
            return
        self._closed = True
        with memoryview(self._buf) as view:
            self._seal(view, last=True)
        self._buf.clear()


def decrypt_payload(file_key: bytes, src: Reader) -> Iterator[memoryview]:
    """Yield authenticated plaintext; raise PayloadError on any fault.

    Plaintext is released only after its tag verified, so whatever a caller
    received before an error is genuine (if incomplete). Each view is valid
    until the next one is requested.
    """
    nonce = _read_exact(src, NONCE_SIZE)
    key = payload_key(file_key, nonce)
    cipher = ChunkCipher(key)
    bulk: list[ChunkCipher] = []  # one per thread, made at the first whole block
    out = memoryview(bytearray(0))
    counter = 0

    def open_range(
        block: memoryview, base: int, indexes: range, by: ChunkCipher
    ) -> int | None:
        """Open chunks in order; return the first index that fails, else None."""
        for i in indexes:
            record = block[i * ENCRYPTED_CHUNK_SIZE : (i + 1) * ENCRYPTED_CHUNK_SIZE]
            target = out[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]
            if not by.open_into(_nonce(base + i, False), record, target):
                return i
        return None

    for block, at_eof in _BlockReader(src, ENCRYPTED_CHUNK_SIZE).blocks():
        if not at_eof:
            if len(out) < CHUNK_SIZE * _BLOCK_CHUNKS:
                out = memoryview(bytearray(CHUNK_SIZE * _BLOCK_CHUNKS))
                bulk = [BulkChunkCipher(key), BulkChunkCipher(key)]
            first, second = _split(_BLOCK_CHUNKS)
            job = _workers().submit(open_range, block, counter, second, bulk[1])
            bad = open_range(block, counter, first, bulk[0])
            bad_second = job.result()
            if bad is None:
                bad = bad_second
            if bad is None:
                yield out[: CHUNK_SIZE * _BLOCK_CHUNKS]
                counter += _BLOCK_CHUNKS
                continue
            if bad:
                yield out[: CHUNK_SIZE * bad]
            # A whole chunk with more input after it that is not an ordinary
            # chunk: either tampered, or a final chunk followed by trailing data.
            record = block[
                bad * ENCRYPTED_CHUNK_SIZE : (bad + 1) * ENCRYPTED_CHUNK_SIZE
            ]
            yield from _final_chunk(cipher, counter + bad, record, out, more=True)
            return
        if len(out) < min(len(block), CHUNK_SIZE):
            out = memoryview(bytearray(min(len(block), CHUNK_SIZE)))
        yield from _tail(cipher, counter, block, out)
        return


def encrypt_payload_bytes(file_key: bytes, nonce: bytes, data: bytes) -> bytes:
    """``nonce`` and the sealed chunks of ``data`` held in memory, in one pass."""
    cipher = ChunkCipher(payload_key(file_key, nonce))
    view = memoryview(data)
    starts = range(0, len(data), CHUNK_SIZE) or range(1)
    last = len(starts) - 1
    return nonce + b"".join(
        cipher.seal(_nonce(n, n == last), view[start : start + CHUNK_SIZE])
        for n, start in enumerate(starts)
    )


def decrypt_payload_bytes(file_key: bytes, payload: memoryview) -> bytes:
    """Open a whole payload held in memory; the plaintext, or PayloadError."""
    if len(payload) < NONCE_SIZE:
        raise HeaderError("file ends before the payload nonce")
    cipher = ChunkCipher(payload_key(file_key, bytes(payload[:NONCE_SIZE])))
    body = payload[NONCE_SIZE:]
    if TAG_SIZE <= len(body) <= ENCRYPTED_CHUNK_SIZE:  # one chunk: a note
        plain = cipher.open(_nonce(0, True), body)
        if plain is not None:
            return plain
        if len(body) < ENCRYPTED_CHUNK_SIZE:
            raise PayloadError("payload chunk failed authentication")
        # a full chunk that is not final: the general path says what is wrong
    out = memoryview(
        bytearray(min(max(len(body), TAG_SIZE), ENCRYPTED_CHUNK_SIZE) - TAG_SIZE)
    )
    return b"".join(bytes(chunk) for chunk in _tail(cipher, 0, body, out))


def _tail(
    cipher: ChunkCipher, counter: int, block: memoryview, out: memoryview
) -> Iterator[memoryview]:
    """The records left at end of input: whole chunks, then the final one."""
    if len(block) < TAG_SIZE:
        raise PayloadError("payload is truncated")
    for start in range(0, len(block), ENCRYPTED_CHUNK_SIZE):
        record = block[start : start + ENCRYPTED_CHUNK_SIZE]
        more = start + ENCRYPTED_CHUNK_SIZE < len(block)
        if len(record) == ENCRYPTED_CHUNK_SIZE:
            target = out[:CHUNK_SIZE]
            if cipher.open_into(_nonce(counter, False), record, target):
                yield target
                counter += 1
                if not more:
                    raise PayloadError("payload is truncated (no final chunk)")
                continue
        yield from _final_chunk(cipher, counter, record, out, more=more)
        return


def _final_chunk(
    cipher: ChunkCipher,
    counter: int,
    record: memoryview,
    out: memoryview,
    *,
    more: bool,
) -> Iterator[memoryview]:
    if len(record) < TAG_SIZE:
        raise PayloadError("payload is truncated")
    target = out[: len(record) - TAG_SIZE]
    if not cipher.open_into(_nonce(counter, True), record, target):
        raise PayloadError("payload chunk failed authentication")
    if counter > 0 and len(target) == 0:
        raise PayloadError("final chunk is empty")
    yield target
    if more:
        raise PayloadError("payload has data after its final chunk")


def _read_exact(src: Reader, n: int) -> bytes:
    data = b""
    while len(data) < n:
        got = src.read(n - len(data))
        if not got:
            raise HeaderError("file ends before the payload nonce")
        data += got
    return data
