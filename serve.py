"""Start the dashboard: `python serve.py [streamlit options]`, which runs `streamlit run app.py` on jemalloc when the
system has it (Debian: libjemalloc2), else as it is.

Why: the adaptive rule evaluates rounds of different sizes, and glibc's allocator fragments under batches whose
shapes keep changing, so a scan's peak memory grew with its path points (MobileNetV2 at 224 px on the CPU: 1.45 GB
at 64 points, 2.06 GB at 1024). jemalloc that keeps freed pages for reuse holds it within 10% and scans faster; the
engine hands the pages back to the system after each scan (ig_core.engine's _return_freed_memory).
"""
from __future__ import annotations

import ctypes.util
import os
import pathlib
import sys

APP = pathlib.Path(__file__).resolve().parent / "app.py"
# freed pages wait for reuse instead of decaying back to the system mid-scan (which costs a page fault per reuse)
JEMALLOC_SETTINGS = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def allocator_environment() -> dict[str, str]:
    """Environment variables that run a Python process on jemalloc; empty where it is not installed or not Linux."""
    library = ctypes.util.find_library("jemalloc") if sys.platform.startswith("linux") else None
    if library is None:
        return {}
    preload = " ".join(filter(None, [os.environ.get("LD_PRELOAD", ""), library]))
    return {"LD_PRELOAD": preload, "MALLOC_CONF": JEMALLOC_SETTINGS}


def main(argv: list[str]) -> None:
    environment = allocator_environment()
    if not environment:
        print("jemalloc not found (Debian: apt-get install libjemalloc2): serving on the system allocator, whose peak "
              "memory grows with the path points of a scan.", file=sys.stderr)
    os.execve(sys.executable, [sys.executable, "-m", "streamlit", "run", str(APP), *argv],
              {**os.environ, **environment})


if __name__ == "__main__":
    main(sys.argv[1:])
