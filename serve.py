"""Start the dashboard: `python serve.py [streamlit options]`, which runs `streamlit run app.py` with one torch thread
fewer than the machine's cores, on jemalloc when the system has it (Debian: libjemalloc2).

Threads: a parallel region waits for its slowest thread, so torch threads that share a core with a busy browser or
the server's own work stall. On 2 cores, 21 path points of MobileNetV2 (224 px, 2 targets) took 1.18 s on 2 threads
and 1.89 s on 1 with nothing else running, but 3.45 s on 2 threads and 1.98 s on 1 with one core busy; a browser on
the same machine is busy while it draws the pictures of a scan. OMP_NUM_THREADS, when set, is kept.

Allocator: the adaptive rule evaluates rounds of different sizes, and glibc's allocator fragments under batches whose
shapes keep changing, so a scan's peak memory grew with its path points (MobileNetV2 at 224 px on the CPU: 1.45 GB
at 64 points, 2.06 GB at 1024). jemalloc that keeps freed pages for reuse scans faster; the engine hands them back
when a scan's resident memory outgrows what its largest chunk needed (ig_core.runtime.host_memory), and after each scan.
"""
from __future__ import annotations

import ctypes.util
import os
import pathlib
import sys

APP = pathlib.Path(__file__).resolve().parent / "app.py"
# freed pages wait for reuse instead of decaying back to the system mid-scan (which costs a page fault per reuse);
# huge pages make the rare hand-back (ig_core.runtime.host_memory) cheap: one fault per 2 MB instead of per 4 kB
JEMALLOC_SETTINGS = "dirty_decay_ms:-1,muzzy_decay_ms:-1,thp:always"


def allocator_environment() -> dict[str, str]:
    """Environment variables that run a Python process on jemalloc; empty where it is not installed or not Linux."""
    library = ctypes.util.find_library("jemalloc") if sys.platform.startswith("linux") else None
    if library is None:
        return {}
    preload = " ".join(filter(None, [os.environ.get("LD_PRELOAD", ""), library]))
    return {"LD_PRELOAD": preload, "MALLOC_CONF": JEMALLOC_SETTINGS}


def thread_environment() -> dict[str, str]:
    """OMP_NUM_THREADS (torch's threads): one fewer than the cores this process may use, unless already set."""
    if os.environ.get("OMP_NUM_THREADS"):
        return {}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {"OMP_NUM_THREADS": str(max(1, cores - 1))}


def main(argv: list[str] | None = None) -> None:
    """Serve the dashboard; argv (default: this command's arguments) passes through to `streamlit run`."""
    argv = sys.argv[1:] if argv is None else argv
    environment = allocator_environment()
    if not environment:
        print("jemalloc not found (Debian: apt-get install libjemalloc2): serving on the system allocator, whose peak "
              "memory grows with the path points of a scan.", file=sys.stderr)
    os.execve(sys.executable, [sys.executable, "-m", "streamlit", "run", str(APP), *argv],
              {**os.environ, **environment, **thread_environment()})


if __name__ == "__main__":
    main()
