"""How many malloc arenas the API process keeps: glibc gives each new thread an arena of its own
up to eight per core, and memory freed in one is not reused by another, so a process with some
fifty threads (the routes' thread pool, the committer, the runner, the read model's pool) holds
more than it uses. With two arenas, `bench/http_load.py` on SQLite: the API process's peak RSS
over the twelve runs 156 -> 137 MB, its throughput within the runs' noise.

``limit(count)`` is ``mallopt(M_ARENA_MAX, count)``: it bounds the arenas created after it, so the
API role calls it before it starts its threads. An operator's ``MALLOC_ARENA_MAX`` (read by glibc
when the process starts) wins; other C libraries have no such arenas and are left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's <malloc.h>
API_ARENAS = 2


def limit(count: int = API_ARENAS) -> bool:
    """True if the limit was set here (glibc, and no MALLOC_ARENA_MAX from the operator)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_ARENA_MAX, count))
