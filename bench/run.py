"""Run the benchmarks (speed against Captum and the bare model, steps to 1%, memory) and write bench/RESULTS.md.

    python -m bench.run [--device cuda] [--quick] [--only 1,2,3] [--out bench/RESULTS.md]

Every timing is a ratio of contenders timed side by side, interleaved in one run (median over
rounds), so that a shared machine's load affects both sides alike. Needs IG_DATA_DIR (the MobileNetV2
weights and the sample photos) and, for the Captum rows, `pip install -r bench/requirements.txt`.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time
import traceback

import torch

from . import sections
from .analysis import captum_available
from .common import Table, machine_facts
from .workloads import tiny_workload, vision_workload

HERE = pathlib.Path(__file__).resolve().parent
ALL = ("1", "2", "3", "4", "5", "6", "7")


def run(device: torch.device, quick: bool, only=ALL, tiny: bool = False, cfg: sections.Config | None = None,
        after_section=None, strict: bool = False) -> Table:
    """All measurements on `device`; `tiny` swaps the real model for a tiny one (tests of the bench).

    A section that fails leaves an error row and the others still run (strict=True: raise);
    `after_section(table)` is called after each one (the CLI rewrites RESULTS.md, so a run cut short
    keeps what it measured).
    """
    cfg = cfg or sections.Config.for_run(device, quick)
    cfg.tiny = tiny
    table = Table()
    if not captum_available():
        print("captum not installed: its rows will say so (pip install -r bench/requirements.txt)")
    n_photos = max(cfg.steps_photos, cfg.throughput_photos, 1)
    wl = tiny_workload(device, min(n_photos, 8)) if tiny else vision_workload(device, n_photos, cfg.image_size)
    steps = {
        "1": lambda: (sections.full_analysis(table, wl, device, cfg), sections.equal_accuracy(table, wl, device, cfg),
                      sections.trapezoid_bug(table, device)),
        "2": lambda: sections.steps_to_tolerance(table, wl, device, cfg),
        "3": lambda: sections.two_targets(table, wl, device, cfg),
        "4": lambda: (sections.throughput_photos(table, wl, device, cfg),
                      sections.throughput_molecules(table, device, cfg),
                      sections.throughput_sentences(table, device, cfg)),
        "5": lambda: sections.memory(table, wl, device, cfg),
        "6": lambda: sections.gpu_section(table, wl, device, cfg) if device.type == "cuda" else table.add(
            sections.Row("6", "GPU measurements (GoogLeNet latency, photos/s, bf16)", None, "", "", "",
                         "skipped: run with --device cuda on a GPU machine")),
        "7": lambda: sections.photos_at_tolerance(table, wl, device, cfg),
    }
    for key in [k for k in only if k in ALL]:  # in the order asked (a cut-short run keeps the first)
        t0 = time.perf_counter()
        print(f"== {key} ==", flush=True)
        try:
            steps[key]()
        except Exception as exc:  # report it in the table, measure the rest
            if strict:
                raise
            traceback.print_exc()
            table.add(sections.Row(key, f"section {key} failed", None, "", "", "NO", f"{type(exc).__name__}: {exc}"))
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
        if after_section is not None:
            after_section(table)
    return table


def write_results(table: Table, facts: dict, path: pathlib.Path, elapsed: float) -> None:
    head = "\n".join(f"- {k}: {v}" for k, v in facts.items())
    text = f"""# Benchmark results

Produced by `python -m bench.run {facts.get('args', '')}`
in {elapsed:.0f} s.

{head}

Times are compared as ratios of contenders run side by side, interleaved in one run (median over rounds):
"ours" is one `AttributionEngine.attribute` call; "Captum" is IntegratedGradients (same rule, nodes and
internal batch, with convergence delta) + Saliency at the probe alphas + one forward over the same
alpha grid for the trend; "floor" is the bare model doing forward+backward over the same path points in
the same batch sizes with plain `torch.autograd.grad`. Completeness errors are shown beside the times
(same rule for all: equal accuracy). Section 2 counts path points (model forward+backward evaluations).

{table.markdown()}
"""
    path.write_text(text)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--quick", action="store_true", help="small sample sizes (CPU: about 5 minutes)")
    p.add_argument("--only", default=",".join(ALL), help="comma-separated sections in the order to run, e.g. 1,6,3")
    p.add_argument("--out", default=str(HERE / "RESULTS.md"))
    p.add_argument("--tiny", action="store_true", help="tiny random model instead of MobileNetV2 (smoke test)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default: torch's own); 1 gives steadier ratios on a crowded machine")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU visible to torch")
    facts = machine_facts(device)
    facts["args"] = " ".join(argv if argv is not None else sys.argv[1:])
    for k, v in facts.items():
        print(f"{k}: {v}")
    t0 = time.perf_counter()
    out = pathlib.Path(args.out)
    partial = lambda t: write_results(t, facts, out, time.perf_counter() - t0)
    table = run(device, args.quick, tuple(args.only.split(",")), tiny=args.tiny, after_section=partial)
    elapsed = time.perf_counter() - t0
    print()
    print(table.markdown())
    write_results(table, facts, out, elapsed)
    print(f"\nwrote {args.out} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
