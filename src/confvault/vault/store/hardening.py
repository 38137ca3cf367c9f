"""Keep secrets out of core dumps.

Every process that holds a key or plaintext calls ``harden_process()``
before it does: no core file (``RLIMIT_CORE`` 0, inherited by children such
as the editor) and, on Linux, not dumpable (``PR_SET_DUMPABLE`` 0: no core
even through a piped ``core_pattern`` such as systemd-coredump's, and no
ptrace attach by other processes of the same user that are not its
parent). Idempotent and cheap after the first call.
"""

from __future__ import annotations

import resource
import sys

_PR_SET_DUMPABLE = 4
_done = False


def harden_process() -> None:
    """No core dumps of this process (or its children); not dumpable on Linux."""
    global _done
    if _done:
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        import ctypes  # only here: a keyless command never pays its import

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            # RLIMIT_CORE is 0 already; a kernel without prctl keeps that.
            pass
    _done = True


def is_dumpable() -> bool | None:
    """This process's dumpable flag (Linux), for tests and ``status``."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return bool(ctypes.CDLL(None, use_errno=True).prctl(3, 0, 0, 0, 0))
