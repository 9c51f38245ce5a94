"""Path points each quadrature rule needs to reach 1% completeness on the sample photos (MobileNetV2, 224 px).

One engine scan per photo serves every rule, each alpha evaluated once (bench.steps), and the adaptive rule's count
is the engine's own refinement's. A fixed rule doubles its steps (2, 4, ... 64; the trapezoid 3, 5, ... 65) until it
reaches the tolerance; its count is its own nodes (the ends a completeness check adds are not charged to it), and it
lies in (n/2, n] of the smallest step count that would do. The trapezoid, left and right rules share one dyadic grid
and are measured on every photo; the midpoint and Gauss-Legendre rules, whose nodes are new at every step count, on
every SUBSET-th photo.

    python -m bench.points_to_tolerance --out bench/points-photos.jsonl      # resumable: finished photos are kept
    python -m bench.points_to_tolerance --report bench/points-photos.jsonl  # writes bench/RESULTS-points.md
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np

from ig_core import FIXED_RULES

from .steps import adaptive_run, fixed_relative_delta, photo_scan

TOLERANCE = 0.01
LARGEST = 64  # fixed rules: most steps tried; adaptive: budget
NESTED_RULES = ("trapezoid", "left", "right")  # their nodes lie on one dyadic grid: measured on every photo
OWN_NODE_RULES = ("midpoint", "gauss-legendre")  # new nodes at every step count: measured on every SUBSET-th photo
SUBSET = 9
ADAPTIVE_STARTS = {"adaptive (start 16 uniform)": np.linspace(0, 1, 16),
                   "adaptive (start 9 dyadic)": np.linspace(0, 1, 9),
                   "adaptive (start 5 dyadic)": np.linspace(0, 1, 5)}


def fixed_points(scan, rule: str) -> int | None:
    """Smallest doubled step count that reaches the tolerance, None past LARGEST."""
    n = 3 if rule == "trapezoid" else 2
    while n <= LARGEST + 1:
        if fixed_relative_delta(scan, rule, n) <= TOLERANCE:
            return n
        n = 2 * n - 1 if rule == "trapezoid" else 2 * n
    return None


def adaptive_points(scan, start: np.ndarray) -> int | None:
    """Points the engine's adaptive rule evaluates on this photo; None if it ran out of budget."""
    points, reached = adaptive_run(scan, start, TOLERANCE, LARGEST)
    return points if reached <= TOLERANCE else None


def measure(out: pathlib.Path, limit: int | None, max_batch: int) -> None:
    from families.config import data_dir
    from families.vision.baselines import make_baseline
    from families.vision.images import load_image
    from families.vision.photos import list_photos
    from families.vision.torchvision_classifiers import load_classifier

    classifier = load_classifier("mobilenet_v2")
    done = {json.loads(line)["photo"] for line in out.read_text().splitlines()} if out.exists() else set()
    photos = [photo for folder in ("imagenet_samples", "imagenet_more") for photo in list_photos(data_dir() / folder)]
    todo = [photo for photo in photos if photo.path.stem not in done][:limit]
    started, done_before = time.perf_counter(), len(done)
    for count, photo in enumerate(todo, 1):
        path, truth = photo.path, photo.label
        x = classifier.preprocess(load_image(path))
        top = int(classifier.predict(x).argmax())
        scan = photo_scan(classifier.model, x, make_baseline(classifier, "black", x), top, max_batch)
        row = {"photo": path.stem, "target": top, "truth": truth}
        row.update({name: adaptive_points(scan, start) for name, start in ADAPTIVE_STARTS.items()})
        rules = NESTED_RULES + (OWN_NODE_RULES if (done_before + count) % SUBSET == 1 else ())
        row.update({rule: fixed_points(scan, rule) for rule in rules})
        row["evaluated"] = len(scan.records)
        scan.close()
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        elapsed = time.perf_counter() - started
        print(f"{count}/{len(todo)} {path.stem}: {row} ({elapsed / count:.1f} s a photo)", flush=True)


def report(rows_file: pathlib.Path, destination: pathlib.Path) -> str:
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    rules = list(ADAPTIVE_STARTS) + list(FIXED_RULES)
    capped = LARGEST + 2  # a photo a rule did not finish counts above every finished one

    def quantile(values, q):
        return float(np.quantile(values, q, method="inverted_cdf"))

    summary = {}
    for rule in rules:
        counts = [row[rule] if row[rule] is not None else capped for row in rows if rule in row]
        summary[rule] = (quantile(counts, 0.5), quantile(counts, 0.9), counts.count(capped), len(counts))
    best_fixed = min(FIXED_RULES, key=lambda r: (*summary[r][:2], summary[r][2] / summary[r][3]))
    shown = lambda v: f"> {LARGEST + 1}" if v >= capped else f"{v:g}"
    lines = [f"# Path points to {TOLERANCE:.0%} completeness ({time.strftime('%Y-%m-%d')})", "",
             f"`python -m bench.points_to_tolerance`: {len(rows)} sample photos, MobileNetV2 at 224 px, black "
             "baseline, the top label's softmax. A fixed rule's count is its smallest doubled step count that "
             "reaches the tolerance (the true smallest lies in (n/2, n]); the adaptive rule's is every point it "
             f"evaluated. A rule that misses at {LARGEST} steps counts as more than {LARGEST}.", "",
             "| rule | photos | median | 90th percentile | missed |", "| --- | --- | --- | --- | --- |"]
    for rule in rules:
        median, p90, missed, measured = summary[rule]
        lines.append(f"| {rule} | {measured} | {shown(median)} | {shown(p90)} | {missed} |")
    lines += ["", f"Best fixed rule: {best_fixed} (median {shown(summary[best_fixed][0])}, 90th percentile "
              f"{shown(summary[best_fixed][1])})."]
    bound = "at least " if summary[best_fixed][0] >= capped else ""  # the fixed rule's median is past LARGEST
    for rule in ADAPTIVE_STARTS:
        saving = 1 - summary[rule][0] / summary[best_fixed][0]
        lines.append(f"- {rule}: {bound}{saving:.0%} fewer points than {best_fixed} at the median")
    every = [row for row in rows if all(rule in row for rule in rules)]
    if every:
        med = {rule: quantile([row[rule] if row[rule] is not None else capped for row in every], 0.5) for rule in rules}
        best = min(FIXED_RULES, key=med.get)
        lines.append(f"- on the {len(every)} photos where every rule was measured, the median points are "
                     + ", ".join(f"{rule} {shown(med[rule])}" for rule in rules) + f" (best fixed: {best})")
    text = "\n".join(lines) + "\n"
    destination.write_text(text)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench/points-photos.jsonl"))
    parser.add_argument("--limit", type=int, default=None, help="photos to add this time")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--report", type=pathlib.Path, help="summarize this rows file instead of measuring")
    args = parser.parse_args(argv)
    if args.report:
        print(report(args.report, pathlib.Path("bench/RESULTS-points.md")))
    else:
        measure(args.out, args.limit, args.max_batch)


if __name__ == "__main__":
    main()
