"""Dataset runs (python -m runs) at their default settings (the adaptive rule to 1% completeness): items/s with
items explained together vs one at a time, the completeness the rows reach, Ray's 2 local workers vs the local
runner on the same 2 cores, and resident memory through a 5,000-window run.

    python -m bench.dataset [--device cuda] [--quick]

Writes bench/RESULTS-dataset.md (bench/RESULTS-dataset-cuda.md with --device cuda). Ratios are measured side by side
in one run (interleaved rounds), since this machine's load drifts.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from families.config import data_dir
from runs.driver import LocalShards
from runs.job import collection_of
from runs.ray_workers import RayOptions, RayShards, connect_ray
from runs.runner import job_of, parse_args
from runs.worker import Worker

from .common import INFO, PASS, Row, Table, interleaved, judge, machine_facts, median, round_ratios

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECTION = {"throughput": "1", "ray": "2", "memory": "3"}


def inputs() -> dict[str, list[str]]:
    data = data_dir()
    return {
        "molecules": ["--family", "molecules", "--input", str(data / "molecules" / "tox21_moleculenet.csv"),
                      "--targets", "predicted"],
        "sentences": ["--family", "language", "--input", str(data / "ptb" / "ptb.test.txt"), "--targets",
                      "next_word", "--text-format", "tokens"],
        "transformer sentences": ["--family", "language", "--input", str(data / "ptb" / "ptb.test.txt"), "--targets",
                                  "next_word", "--text-format", "tokens", "--model", "ptb_gpt2"],
        "photos": ["--family", "vision", "--input", str(data / "imagenet_samples"), "--model", "mobilenet_v2",
                   "--targets", "predicted"],
    }


def job(kind: str, *options: str) -> dict:
    return job_of(parse_args([*inputs()[kind], "--out", "unused", *options]))


def throughput(table: Table, kind: str, count: int, device: str, repeats: int, scan: list[str]) -> None:
    """Worker.shard_rows over the same preloaded items, batch_items 1 vs 16 (parsing and rows included)."""
    workers = {name: Worker(job(kind, *scan, "--batch-items", str(batch)), device)
               for name, batch in (("one at a time", 1), ("16 per call", 16))}
    items = collection_of(workers["one at a time"].job).items()[:count]
    rows = {}
    times = interleaved({name: (lambda name=name, w=w: rows.__setitem__(name, w.shard_rows(items)))
                         for name, w in workers.items()}, repeats, torch.device(device))
    rate = {name: count / median(t) for name, t in times.items()}
    ratio = 1 / round_ratios(times, "16 per call", "one at a time")
    goal = kind != "photos" and device == "cpu" or kind == "photos" and device != "cpu"
    table.add(Row(SECTION["throughput"], f"{kind}/s: 16 per call / one at a time ({device})", ratio, "x",
                  ">= 1.5" if goal else "", judge(ratio, ">=", 1.5) if goal else INFO,
                  f"{rate['16 per call']:.3g} vs {rate['one at a time']:.3g} {kind}/s; {count} {kind}, "
                  f"{' '.join(scan) or 'default settings'}, {repeats} interleaved rounds, median of per-round "
                  "ratios"))
    for name, made in rows.items():
        explained = [row for row in made if row["status"] == "explained"]
        errors = np.array([row["relative_delta"] for row in explained])
        points = np.array([row["points_evaluated"] for row in explained])
        table.add(Row(SECTION["throughput"], f"{kind}, {name}: rows over 1% completeness error", np.mean(errors > 0.01)
                      * 100, "%", "0", judge(np.mean(errors > 0.01) * 100, "<=", 0), f"{len(explained)} rows; "
                      f"relative error median {np.median(errors):.2%}, 90th percentile {np.quantile(errors, 0.9):.2%}, "
                      f"max {errors.max():.2%}; path points per row median {np.median(points):.0f}, "
                      f"max {points.max()}"))


def ray_vs_local(table: Table, count: int) -> None:
    """The same molecules on the local runner (one process, 2 torch threads) and on a local Ray of 2 workers of
    1 thread each, with the time of each phase."""
    options = ["--limit", str(count), "--shard-size", "32"]
    the_job = job("molecules", *options)
    items = collection_of(the_job).items()[:count]
    shards = [items[k:k + 32] for k in range(0, count, 32)]
    phases = {}

    torch.set_num_threads(2)
    start = time.perf_counter()
    local = LocalShards(the_job, "cpu")
    phases["local: model load"] = time.perf_counter() - start
    start = time.perf_counter()
    local_rows = list(local.explained(shards, list(range(len(shards))), lambda n: None))
    phases["local: explain"] = time.perf_counter() - start
    torch.set_num_threads(1)

    import ray

    start = time.perf_counter()
    connect_ray(RayOptions(workers=2, threads=1))
    phases["ray: start"] = time.perf_counter() - start
    start = time.perf_counter()
    backend = RayShards(the_job, "cpu", RayOptions(workers=2, threads=1))
    phases["ray: 2 actors start and load the model"] = time.perf_counter() - start
    try:
        start = time.perf_counter()
        list(backend.explained(shards, list(range(len(shards))), lambda n: None))
        phases["ray: explain"] = time.perf_counter() - start
        start = time.perf_counter()
        for _, rows in local_rows:
            ray.get(ray.put(rows))
        phases["ray: every shard's rows through the object store"] = time.perf_counter() - start
    finally:
        backend.close()
        ray.shutdown()
    local_total = phases["local: model load"] + phases["local: explain"]
    ray_total = phases["ray: start"] + phases["ray: 2 actors start and load the model"] + phases["ray: explain"]
    table.add(Row(SECTION["ray"], "molecules/s explaining: Ray 2 workers x 1 thread / local 1 process x 2 threads",
                  phases["local: explain"] / phases["ray: explain"], "x", "", INFO,
                  f"{count / phases['ray: explain']:.3g} vs {count / phases['local: explain']:.3g} molecules/s; "
                  f"{count} molecules, {' '.join(options)}"))
    table.add(Row(SECTION["ray"], "wall time with start-up: Ray / local", ray_total / local_total, "x", "", INFO,
                  "; ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())))


def rss_through_a_run(table: Table, count: int) -> None:
    """Resident memory of `python -m runs` over `count` text windows, sampled every second."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "runs", *inputs()["sentences"], "--limit", str(count),
                   "--threads", "1", "--quiet", "--out",
                   os.path.join(folder, "run")]
        child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples, start = [], time.perf_counter()
        while child.poll() is None:
            try:
                with open(f"/proc/{child.pid}/status") as status:
                    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
                samples.append((time.perf_counter() - start, rss / 1024))
            except (OSError, StopIteration):
                pass
            time.sleep(1.0)
        errors = child.stderr.read().decode()
        if child.returncode != 0:
            raise RuntimeError(errors[-2000:])
    seconds = samples[-1][0]
    warm = [mib for t, mib in samples if t >= 0.2 * seconds]  # after the model loaded and the first shards ran
    growth = (warm[-1] - warm[0]) / warm[0] * 100
    table.add(Row(SECTION["memory"], f"RSS growth over a {count}-window run after warm-up", growth, "%", "< 10",
                  judge(growth, "<=", 10),
                  f"{warm[0]:.0f} MiB at 20% of the run, {warm[-1]:.0f} MiB at the end, "
                  f"peak {max(m for _, m in samples):.0f}"
                  f" MiB; {len(samples)} samples over {seconds:.0f} s ({count / seconds:.3g} windows/s, 16 per call, "
                  "default settings)"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dataset", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer items (a smoke run)")
    parser.add_argument("--kinds", nargs="+", choices=list(inputs()), help="only these inputs' throughput (and no "
                        "Ray or memory sections); the results file then names them")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    quick = args.quick
    table = Table()
    scan: list[str] = []  # the default settings: the adaptive rule to 1%
    for kind, count in (("molecules", 32 if quick else 128), ("sentences", 32 if quick else 128),
                        ("transformer sentences", 32 if quick else 128),
                        ("photos", 4 if quick else (16 if args.device == "cpu" else 128))):
        if kind != "photos" and args.device != "cpu" or args.kinds and kind not in args.kinds:
            continue  # the GPU run measures photos; molecules and sentences are CPU goals
        throughput(table, kind, count, args.device, 1 if quick else 2, scan)
    if args.device == "cpu" and not args.kinds:
        ray_vs_local(table, 64 if quick else 256)
        rss_through_a_run(table, 500 if quick else 5000)
    facts = machine_facts(torch.device(args.device))
    import pyarrow
    import ray

    facts.update(pyarrow=pyarrow.__version__, ray=ray.__version__)
    name = "RESULTS-dataset.md" if args.device == "cpu" else f"RESULTS-dataset-{args.device.split(':')[0]}.md"
    if args.kinds:
        name = name.replace(".md", f"-{'-'.join(kind.replace(' ', '_') for kind in args.kinds)}.md")
    text = "\n".join([
        "# Dataset runs: batching across items, Ray, memory",
        "",
        f"Measured {datetime.datetime.now().isoformat(timespec='minutes')} with "
        f"`python -m bench.dataset {shlex.join(argv if argv is not None else sys.argv[1:])}`.",
        "",
        "Machine: " + json.dumps(facts),
        "",
        table.markdown(),
        "",
    ])
    (ROOT / "bench" / name).write_text(text)
    print(f"wrote bench/{name}")
    return 0 if all(row.met in (PASS, INFO) for row in table.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
