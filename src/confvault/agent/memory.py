"""Keeping the agent's key memory out of swap, where the system allows it.

``mlockall`` (every page the process has now, the keys among them) when the memory-lock
limit allows it; otherwise ``mlock`` of the pages that hold the key objects
themselves. Python copies bytes freely (a derived key, an answer being
encoded), so this narrows what can reach swap; it is no guarantee.
"""

from __future__ import annotations

import ctypes
import sys

from confvault import age
from confvault.vault.model.identity import OwnerIdentity

_MCL_CURRENT = 1


def lock_keys(keys: OwnerIdentity) -> str:
    """``all``, ``keys`` or ``none``: what could be locked in memory."""
    if not sys.platform.startswith("linux"):
        return "none"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(_MCL_CURRENT) == 0:
        return "all"
    locked = True
    key = keys.key
    secret_key = key.secret_key if isinstance(key, age.X25519Identity) else key.seed
    for secret in (keys.signing_seed, secret_key):
        # CPython keeps a bytes object's data inside the object, at its id()
        address, size = id(secret), sys.getsizeof(secret)
        if libc.mlock(ctypes.c_void_p(address), ctypes.c_size_t(size)) != 0:
            locked = False
    return "keys" if locked else "none"
