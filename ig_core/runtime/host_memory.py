"""The host allocator's freed memory. glibc and jemalloc keep freed pages for reuse; a server whose sessions run
scans in threads, and a long scan whose chunks change size, would otherwise hold memory it no longer uses.
Linux-first: elsewhere these do nothing.
"""
from __future__ import annotations

import ctypes
import os


def _load_glibc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def _jemalloc_control():
    """jemalloc's mallctl when the process runs on it (serve.py preloads it), else None."""
    try:
        return getattr(ctypes.CDLL(None), "mallctl", None)
    except (OSError, TypeError):  # no process symbol table to search (Windows)
        return None


_GLIBC = _load_glibc()
_JEMALLOC_CONTROL = _jemalloc_control()
_M_ARENA_MAX = -8  # mallopt's parameter number
_PURGE_ALL_ARENAS = b"arena.4096.purge"  # 4096: MALLCTL_ARENAS_ALL
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def limit_memory_arenas(arenas: int = 2) -> None:
    """For a server whose sessions each run in a thread: glibc gives every thread its own heap (arena) and keeps
    what is freed there, so memory grows with the number of sessions that ever ran a scan. Call once, early."""
    if _GLIBC is not None:
        _GLIBC.mallopt(_M_ARENA_MAX, arenas)


def return_freed_memory() -> None:
    """Hand the freed memory back to the system: the allocator keeps it for reuse (jemalloc as serve.py sets it
    up, glibc in per-thread arenas), so a server that ran several sessions' scans at once would otherwise stay at
    its peak."""
    if _JEMALLOC_CONTROL is not None:
        _JEMALLOC_CONTROL(_PURGE_ALL_ARENAS, None, None, None, ctypes.c_size_t(0))
    elif _GLIBC is not None:
        _GLIBC.malloc_trim(0)


def resident_bytes() -> int | None:
    """This process's resident memory; None where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


class ResidentCeiling:
    """Holds a scan's resident memory near what its largest chunk first needed. Chunks of changing sizes leave the
    allocator's kept pages in pieces too small for the next chunk's tensors, so without a ceiling memory grows
    with the points; handing the pieces back costs one chunk's page faults, a few times in a long scan."""

    SLACK = 0.03  # of the largest chunk's own memory
    LEAST_EXCESS = 32 * 2**20  # small scans' noise is not worth a hand-back (glibc's malloc_trim walks the heap)

    def __init__(self):
        self.before = resident_bytes()
        self.largest_chunk = 0
        self.ceiling = 0.0
        self.returns = 0  # how often memory was handed back

    def after_chunk(self, size: int) -> None:
        resident = resident_bytes()
        if resident is None or self.before is None:
            return
        if size > self.largest_chunk:
            self.largest_chunk = size
            self.ceiling = resident + max(self.SLACK * (resident - self.before), self.LEAST_EXCESS)
        elif resident > self.ceiling:
            return_freed_memory()
            self.returns += 1


def resident_ceiling() -> ResidentCeiling | None:
    """A ceiling for a CPU scan where the allocator keeps freed pages (jemalloc as serve.py sets it up). glibc hands
    large blocks back by itself and its trim walks the whole heap: there a ceiling costs more time than it saves
    memory (16 photos per call ran 0.6 photos/s with it, 0.78 without)."""
    return ResidentCeiling() if _JEMALLOC_CONTROL is not None else None
