"""Cap the malloc arenas of a server process (glibc)."""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # from glibc's malloc.h


def malloc_arenas_limit(arenas: int) -> bool:
    """Cap the arenas this process's threads allocate from; False if not glibc.

    glibc gives each thread that allocates its own arena, up to eight per core,
    and memory freed in one arena serves only the threads bound to it: a
    server whose loading, computing and request threads each free tens of MB
    of arrays keeps several such high-water marks at once. 0 leaves glibc's
    default.
    """
    if arenas <= 0:
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
