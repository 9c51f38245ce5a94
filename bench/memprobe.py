"""Peak memory of one attribution, measured in a fresh process (CPU) or with CUDA's peak counter.

CPU: a child process loads the model, warms up with a 2-step scan, then resets the kernel's peak-RSS
counter (/proc/self/clear_refs "5") and reports VmHWM - VmRSS(before). tracemalloc does not see
torch's allocations, so RSS is the honest measure; a fresh process per step count keeps one run's
freed-but-cached memory from hiding the next one's, and runs on the dashboard's allocator (serve.py).
CUDA: torch.cuda.max_memory_allocated delta.

    python -m bench.memprobe --steps 256 --rule trapezoid --max-batch 16 [--tiny] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import resource
import subprocess
import sys

import torch


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+) kB", f.read()).group(1)) * 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(engine, model, x, baseline, target, steps: int, rule: str, tolerance: float) -> dict:
    """Peak extra bytes of one attribute() call, this process; assumes a warm-up was done."""
    kwargs = dict(output="softmax")
    if rule == "adaptive":  # force `steps` points: unreachable tolerance, budget = steps
        kwargs.update(tolerance=tolerance, max_steps=steps)
        start = 16
    else:
        start = steps
    device = engine.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        r = engine.attribute(model, x, target, baseline, start, rule, **kwargs)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
        how = "torch.cuda.max_memory_allocated delta"
    else:
        before = _status("VmRSS")
        exact = _reset_peak()
        r = engine.attribute(model, x, target, baseline, start, rule, **kwargs)
        if exact:
            peak = _status("VmHWM") - before
            how = "VmHWM - VmRSS before (peak reset)"
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
            how = "ru_maxrss - VmRSS before (no peak reset; upper bound)"
    return {"steps": steps, "points": int(r.points_evaluated), "peak_bytes": int(peak), "how": how}


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--rule", default="trapezoid")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--size", type=int, default=224)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from ig_core import AttributionEngine

    from .workloads import tiny_workload, vision_workload
    device = torch.device(args.device)
    wl = tiny_workload(device, 1) if args.tiny else vision_workload(device, 1, args.size)
    x, b = wl.example(0, device)
    engine = AttributionEngine(device, max_batch=args.max_batch, cache_size=0)
    engine.attribute(wl.model, x, wl.labels[0], b, 2, "trapezoid", output="softmax")  # warm-up
    out = measure(engine, wl.model, x, b, wl.labels[0], args.steps, args.rule, 1e-9)
    out["how"] += f"; {_allocator()} allocator"
    print("MEMPROBE " + json.dumps(out), flush=True)


def _allocator() -> str:
    with open("/proc/self/maps") as maps:
        return "jemalloc" if "libjemalloc" in maps.read() else "system"


def run_child(steps: int, rule: str, max_batch: int, tiny: bool, size: int = 224, timeout: float = 600) -> dict:
    """One measurement in a fresh process on the dashboard's allocator (serve.py)."""
    from serve import allocator_environment

    cmd = [sys.executable, "-m", "bench.memprobe", "--steps", str(steps), "--rule", rule,
           "--max-batch", str(max_batch), "--threads", str(torch.get_num_threads()), "--size", str(size)]
    if tiny:
        cmd.append("--tiny")
    root = pathlib.Path(__file__).resolve().parent.parent
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=root,
                          env={**os.environ, **allocator_environment()})
    for line in proc.stdout.splitlines():
        if line.startswith("MEMPROBE "):
            return json.loads(line[len("MEMPROBE "):])
    raise RuntimeError(f"memory probe failed (rc {proc.returncode}): {proc.stderr[-2000:]}")


if __name__ == "__main__":
    main()
