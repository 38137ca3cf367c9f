"""Run a command under strace and parse what it printed into system calls.

    calls = record(["confvault", ...], env=..., cwd=...)

``strace -f -y -qq -xx`` follows every process and thread the command makes
(``-f``), prints the path behind every descriptor (``-y``: ``3</a/b>``) and
every string argument as hexadecimal escapes (``-xx``), so written bytes and
paths come back exactly, whatever they hold; ``-s`` is large enough that no
buffer is cut short (a cut one, printed with a trailing ``...``, is an error
here, not a guess). The calls are the ones the crash model needs: those that
create, write, sync, rename and remove files, and those that move a
descriptor's offset or copy a descriptor table (to know where a ``write``
lands).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

TRACED = (
    "open,openat,openat2,creat,close,dup,dup2,dup3,fcntl,lseek,"
    "write,pwrite64,writev,pwritev,pwritev2,ftruncate,truncate,"
    "fsync,fdatasync,syncfs,sync,sync_file_range,"
    "rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,rmdir,"
    "link,linkat,symlink,symlinkat,utimensat,fchmod,chmod,fchmodat,"
    "chdir,fchdir,mmap,copy_file_range,sendfile,splice,"
    "clone,clone3,fork,vfork"
)
STRING_LIMIT = 1 << 26  # bytes strace prints of a buffer: more than any vault file
_LINE = re.compile(r"^(\d+)\s+(?:(\w+)\((.*)|<\.\.\. (\w+) resumed>(.*))$")
_COMMENT = re.compile(r"/\*.*?\*/")
_HEX = re.compile(r"\\x([0-9a-f]{2})")


class TraceError(Exception):
    """strace printed something this parser does not understand."""


@dataclass(frozen=True)
class Fd:
    """A descriptor argument: its number (or -100 for AT_FDCWD) and its path."""

    number: int
    path: str


AT_FDCWD = -100
Arg = str | bytes | int | Fd | list["Arg"]


@dataclass(frozen=True)
class Call:
    """One finished system call of one process (or thread)."""

    pid: int
    name: str
    args: tuple[Arg, ...]
    result: int  # -1 on failure
    result_fd: Fd | None  # the descriptor a call returned, with its path


def decode(text: str) -> bytes:
    """The bytes of a hex-escaped strace string body (``\\x61\\x62``)."""
    if _HEX.sub("", text):
        raise TraceError(f"unexpected characters in a -xx string: {text[:80]!r}")
    return bytes.fromhex(text.replace("\\x", ""))


def _split(text: str) -> list[str]:
    """Top-level comma-separated parts of an argument list."""
    parts, depth, start, quoted = [], 0, 0, False
    for i, ch in enumerate(text):
        if quoted:
            quoted = ch != '"'
        elif ch == '"':
            quoted = True
        elif ch in "[{<":
            depth += 1
        elif ch in "]}>":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def parse_arg(text: str) -> Arg:
    """A string (bytes), a descriptor (Fd), a number (int), an array, or a word."""
    if text.startswith('"'):
        if text.endswith("..."):
            raise TraceError("a buffer was cut short: raise strace's -s")
        if not text.endswith('"'):
            raise TraceError(f"unterminated string: {text[:80]!r}")
        return decode(text[1:-1])
    if text.startswith("["):
        return [parse_arg(p) for p in _split(text[1:-1])]
    if text.startswith("{"):
        return text  # a structure: only iovecs are read, by their fields
    fd = re.fullmatch(r"(-?\d+|AT_FDCWD)<(.*)>", text, re.S)
    if fd:
        number = AT_FDCWD if fd.group(1) == "AT_FDCWD" else int(fd.group(1))
        return Fd(number, os.fsdecode(decode(fd.group(2))))
    if re.fullmatch(r"0[0-7]+", text):
        return int(text, 8)  # a mode: strace prints it in octal
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"0x[0-9a-f]+", text):
        return int(text, 16)
    return text


def iovec_bytes(arg: Arg) -> bytes:
    """The bytes of a writev iovec array, in order."""
    if not isinstance(arg, list):
        raise TraceError("writev without an iovec array")
    out = b""
    for item in arg:
        body = item if isinstance(item, str) else ""
        match = re.search(r'iov_base="([^"]*)"', body)
        if not match:
            raise TraceError(f"unreadable iovec {body[:80]!r}")
        out += decode(match.group(1))
    return out


def _result(text: str) -> tuple[int, Fd | None]:
    text = text.strip()
    if text.startswith("?"):
        return -1, None
    arg = parse_arg(text.split(" ", 1)[0])
    if isinstance(arg, Fd):
        return arg.number, arg
    if isinstance(arg, int):
        return arg, None
    raise TraceError(f"unreadable result {text[:80]!r}")


def parse(text: str) -> list[Call]:
    """The finished calls of a trace, in the order they finished."""
    calls: list[Call] = []
    pending: dict[int, tuple[str, str]] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue  # signals and the like
        pid = int(match.group(1))
        if match.group(2):
            name, rest = match.group(2), match.group(3)
        else:
            if pid not in pending or pending[pid][0] != match.group(4):
                raise TraceError(f"a resumed call with no start: {line[:120]}")
            name, head = pending.pop(pid)
            rest = head + match.group(5)
        if rest.endswith(" <unfinished ...>"):
            pending[pid] = (name, rest[: -len(" <unfinished ...>")])
            continue
        rest = _COMMENT.sub("", rest)
        cut = rest.rfind(") = ")
        if cut < 0:
            if rest.rstrip().endswith(") = ?"):
                continue  # the process ended inside the call (exit_group)
            raise TraceError(f"no result: {line[:120]}")
        result, result_fd = _result(rest[cut + 4 :])
        args = tuple(parse_arg(p) for p in _split(rest[:cut]))
        calls.append(Call(pid, name, args, result, result_fd))
    return calls


@dataclass(frozen=True)
class Recorded:
    returncode: int
    stdout: bytes
    stderr: bytes
    calls: list[Call]
    pid: int  # the first process's id, the one the trace starts from


def record(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    stdin: bytes = b"",
    strace: str = "strace",
    timeout: float = 120,
) -> Recorded:
    """Run ``argv`` under strace; its outcome and the calls it made."""
    with tempfile.TemporaryDirectory(prefix="strace-") as work:
        out = Path(work) / "trace"
        cmd = [strace, "-f", "-y", "-qq", "-xx", "-s", str(STRING_LIMIT)]
        cmd += ["-e", f"trace={TRACED}", "-o", str(out), "--", *argv]
        done = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            env=env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
        text = out.read_text(encoding="ascii") if out.exists() else ""
    if not text:
        raise TraceError(f"strace wrote no trace: {done.stderr[-2000:]!r}")
    first = int(text.split(maxsplit=1)[0])
    return Recorded(done.returncode, done.stdout, done.stderr, parse(text), first)
