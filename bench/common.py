"""Rows of the results table, side-by-side interleaved timing, machine and version facts."""
from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

PASS, FAIL, INFO = "yes", "NO", ""


@dataclass
class Row:
    """One line of the table. `value` is a ratio or a count; `target` is the goal printed beside it."""

    section: str
    name: str
    value: float | None  # None: not measured (see `detail`)
    unit: str = "x"
    target: str = ""
    met: str = INFO  # PASS / FAIL / "" (no target)
    detail: str = ""

    def formatted_value(self) -> str:
        if self.value is None:
            return "n/a"
        v = self.value
        if isinstance(v, float) and math.isinf(v):
            return "inf"
        if self.unit == "x":
            return f"{v:.3g} x"
        if self.unit == "%":
            return f"{v:.3g} %"
        return f"{v:.4g} {self.unit}".strip()


def judge(value: float | None, op: str, bound: float) -> str:
    if value is None or not math.isfinite(value):
        return FAIL if value is not None else INFO
    ok = value <= bound if op == "<=" else value >= bound
    return PASS if ok else FAIL


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(f"  [{row.section}] {row.name}: {row.formatted_value()}"
              + (f"  (target {row.target}: {row.met or '-'})" if row.target else "")
              + (f"  -- {row.detail}" if row.detail else ""), flush=True)
        return row

    def markdown(self) -> str:
        lines = ["| # | measurement | result | target | met | details |", "|---|---|---|---|---|---|"]
        for r in sorted(self.rows, key=lambda r: r.section):  # stable: sections in order, rows as measured
            cells = [r.section, r.name, r.formatted_value(), r.target, r.met, r.detail]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        return "\n".join(lines)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(funcs: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                warmup: int = 1) -> dict[str, list[float]]:
    """Time each function `repeats` times, round robin (a, b, c, a, b, c, ...), after `warmup` rounds.

    Alternating keeps slow drifts of a shared machine's load from favouring one contender; compare
    them with `round_ratios`, which divides times taken in the same round.
    """
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for r in range(warmup + repeats):
        order = list(funcs) if r % 2 == 0 else list(reversed(funcs))  # also alternate who goes first
        for name in order:
            sync(device)
            t0 = time.perf_counter()
            funcs[name]()
            sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def round_ratios(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of time[num] / time[den] (each ratio from one round, side by side)."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def median(xs) -> float:
    return statistics.median(xs)


def percentile(xs, q: float) -> float:
    """Linear-interpolated percentile that keeps inf (a censored count) as inf."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    if math.isinf(xs[hi]) or math.isinf(xs[lo]):
        return xs[hi] if pos != lo else xs[lo]
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def captum_version() -> str | None:
    try:
        import captum
        return captum.__version__
    except ImportError:
        return None


def machine_facts(device: torch.device) -> dict[str, str]:
    import torchvision
    if device.type == "cuda":
        dev = f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    else:
        dev = f"CPU, {torch.get_num_threads()} torch threads"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = f"{names[0]} x {len(names)}"
    except OSError:
        pass
    try:
        load = "%.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        load = "?"
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.node()}: {cpu}, {os.cpu_count()} cores, load average {load} at start",
        "device": dev,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "captum": captum_version() or "not installed",
    }
