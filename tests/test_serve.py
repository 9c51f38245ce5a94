"""serve.py: the dashboard's server runs on jemalloc, and the engine hands its freed memory back after a scan."""
import os
import subprocess
import sys

import serve

CHILD = """
import re, torch
from ig_core.runtime import host_memory
def rss_mb():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmRSS:\\s+(\\d+)", status.read()).group(1)) // 1024
with open("/proc/self/maps") as maps:
    print("jemalloc" if "libjemalloc" in maps.read() else "system")
big = torch.ones(64 * 2**20)  # 256 MiB
del big
kept = rss_mb()
host_memory.return_freed_memory()
print(kept - rss_mb())
"""


def test_allocator_environment_is_empty_without_jemalloc(monkeypatch):
    monkeypatch.setattr(serve.ctypes.util, "find_library", lambda name: None)
    assert serve.allocator_environment() == {}


def test_a_process_on_the_servers_allocator_keeps_freed_memory_until_the_engine_returns_it():
    environment = serve.allocator_environment()
    assert environment, "jemalloc is not installed (Debian: apt-get install libjemalloc2)"
    child = subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, **environment}, capture_output=True,
                           text=True, check=True, cwd=serve.APP.parent)
    allocator, returned_mb = child.stdout.split()
    assert allocator == "jemalloc"
    assert int(returned_mb) >= 200  # the freed 256 MiB stayed with the process until return_freed_memory


def test_the_server_leaves_one_core_to_the_browser_unless_the_operator_chose(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(serve.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert serve.thread_environment() == {"OMP_NUM_THREADS": "3"}
    monkeypatch.setattr(serve.os, "sched_getaffinity", lambda pid: {0})
    assert serve.thread_environment() == {"OMP_NUM_THREADS": "1"}
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert serve.thread_environment() == {}
