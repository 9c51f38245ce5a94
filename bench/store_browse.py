"""Browsing a large results store as the pages do: open, filter, sort, and one selection's scores.

    python -m bench.store_browse [--rows 50000] [--repeats 5] [--store DIR]

A synthetic store of molecule-like rows (results_store.SCHEMA, shards of 64 items as run_dataset writes them,
20-60 named scores per row, a manifest) is built in a child process, so that its Python objects do not count in
this process's peak memory; then each page operation is timed (the median of --repeats) and the peak resident
memory (VmHWM) read. Two such stores (the same items, other scores) are also compared as the comparison page does,
and two reads that a change to results_store would allow are timed beside the ones it does now.
Writes bench/RESULTS-stores.md.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import pathlib
import pickle
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from streamlit import dataframe_util

from runs import comparison as run_comparison  # imports torch (ig_core), as the dashboard's server has it
from runs import store

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS-stores.md"
SHARD_ITEMS = 64  # run_dataset's default --shard-size
TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma", "SR-ARE",
         "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]
ELEMENTS = ["C"] * 12 + ["c"] * 8 + ["N"] * 3 + ["O"] * 3 + ["S", "F", "Cl", "Br"]  # a rough Tox21 mix
BOND_TYPES = ["single"] * 6 + ["aromatic"] * 3 + ["double"]
SETTINGS = json.dumps({"amp": None, "max_batch": None, "max_steps": 512, "method": "integrated_gradients",
                       "method_options": [], "rule": "gauss-legendre", "steps": 16, "tolerance": 0.01})
TIME_GOAL_S, MEMORY_GOAL_MB = 1.0, 1024
# the operations the notes under the table compare
LISTING = "open: results_store.listing (a complete run: its listing file)"
SHARDS = "open: the same columns from every shard (a run still being written)"


# --- the synthetic store --------------------------------------------------------------------------------

def molecule_units(structure: np.random.Generator) -> tuple[str, list[str]]:
    """A SMILES-like source and the named units of its explanation: atoms "C3", bonds "C3-N4 single" (a chain
    with a ring closure or two) and "non-bonded pairs" (20 to 60 names)."""
    atoms = structure.choice(ELEMENTS, size=int(structure.integers(10, 29)))
    symbols = [symbol.upper() if len(symbol) == 1 else symbol for symbol in atoms]
    names = [f"{symbol}{k}" for k, symbol in enumerate(symbols)]
    bonds = [(k, k + 1) for k in range(len(symbols) - 1)]
    bonds += [(int(i), int(i) + 5) for i in structure.choice(len(symbols) - 5, size=int(structure.integers(0, 3)),
                                                            replace=False)]
    names += [f"{symbols[i]}{i}-{symbols[j]}{j} {structure.choice(BOND_TYPES)}" for i, j in bonds]
    return "".join(atoms), names + ["non-bonded pairs"]


def item_rows(index: int, structure: np.random.Generator, scores: np.random.Generator) -> list[dict]:
    """An item's rows as run_dataset writes them for --targets actives: one per active task, or one skipped row."""
    source, names = molecule_units(structure)
    common = {"item_index": index, "item_id": f"row {index}", "source": source, "model_key":
              "molecules:synthetic:0123456789abcdef", "method": "integrated_gradients", "settings": SETTINGS,
              "predicted": int(structure.integers(len(TASKS))), "seconds_parse": float(structure.uniform(0.001, 0.005))}
    if structure.random() < 0.25:  # about a quarter of Tox21's molecules are active on no task
        return [{**common, "status": "skipped", "error": "active on no task of the model"}]
    tasks = sorted(structure.choice(len(TASKS), size=int(structure.integers(1, 5)), replace=False))
    rows = []
    for task in tasks:
        probability = float(scores.beta(2, 3))
        baseline = float(scores.uniform(0.2, 0.4))
        delta = float(scores.normal(0, 0.01))
        attributions = scores.normal(0, 0.05, size=len(names))
        attributions *= (probability - baseline + delta) / attributions.sum()  # they add up, as IG's do
        rows.append({**common, "status": "explained", "rule": "gauss-legendre", "target": int(task),
                     "target_name": TASKS[task], "chosen_as": "active", "target_truth": 1.0,
                     "probability": probability, "score_input": probability, "score_baseline": baseline,
                     "delta": delta, "relative_delta": abs(delta) / max(abs(probability - baseline), 1e-12),
                     "nothing_to_attribute": False, "nonfinite": False, "points_evaluated": 18,
                     "score_names": names, "scores": attributions.tolist(),
                     "gradient_scores": (attributions * scores.uniform(0.5, 1.5, len(names))).tolist(),
                     "seconds_scan": float(scores.uniform(0.01, 0.05))})
    return rows


def build_store(folder: pathlib.Path, rows: int, seed: int = 0, score_seed: int | None = None) -> dict:
    """A complete store of exactly `rows` molecule-like rows in shards of SHARD_ITEMS items, with its manifest.
    `seed` decides the items, names and targets; `score_seed` (default: seed) the probabilities and scores, so two
    stores of one seed hold the same items explained differently."""
    folder = pathlib.Path(folder)
    (folder / store.SHARDS).mkdir(parents=True, exist_ok=True)
    structure = np.random.default_rng(seed)
    scores = np.random.default_rng(seed if score_seed is None else score_seed + 1_000_003)
    written, shard, index = 0, [], 0
    while written < rows:
        item = item_rows(index, structure, scores)[:rows - written]
        shard += item
        written += len(item)
        index += 1
        if index % SHARD_ITEMS == 0 or written == rows:
            store.write_shard(folder, (index - 1) // SHARD_ITEMS, shard)
            shard = []
    manifest = {"format": store.FORMAT, "version": store.VERSION, "status": "complete", "items": index,
                "shards": -(-index // SHARD_ITEMS), "model_key": "molecules:synthetic:0123456789abcdef",
                "input_fingerprint": f"synthetic-{seed}", "command": ["python", "-m", "bench.store_browse"],
                "job": {"family": "molecules", "input": f"synthetic-{seed}", "model": "synthetic",
                        "targets": "actives", "shard_size": SHARD_ITEMS},
                "counts": store.counts(folder), "created": now(), "finished": now(),
                "versions": {"python": platform.python_version(), "pyarrow": pa.__version__}}
    store.write_listing(folder)  # as a run's driver does when the run completes
    store.write_manifest(folder, manifest)
    return manifest


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# --- measurements ---------------------------------------------------------------------------------------

def peak_mb() -> float:
    """This process's peak resident memory so far (VmHWM)."""
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\s+(\d+) kB", status.read()).group(1)) / 1024


class Measurements:
    """Rows of the results table: each operation's median wall and CPU seconds over the repetitions (after one call
    not counted) and the process's peak memory once it has run."""

    def __init__(self, repeats: int):
        self.repeats, self.rows = repeats, []

    def measure(self, name: str, operation, describe=lambda result: "", repeats: int | None = None,
                goal: bool = True, warm: bool = True):
        """Time operation(); goal False: a row for information (no 1 s goal); warm False: the first call counts."""
        result = operation() if warm else None
        walls, cpus = [], []
        for _ in range(repeats or self.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            result = operation()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        row = (name, statistics.median(walls), statistics.median(cpus), peak_mb(), goal, describe(result))
        self.rows.append(row)
        print(f"  {name}: {row[1] * 1000:.1f} ms (CPU {row[2] * 1000:.1f} ms), peak {row[3]:.0f} MB {row[5]}",
              flush=True)
        return result


def browse(measurements: Measurements, folder: pathlib.Path) -> None:
    """Each thing a page does with a run: open, filter, sort, show, and one selection's reads."""
    measure = measurements.measure
    listing = measure("open: the first listing in this process (shards in the OS file cache)",
                      lambda: store.listing(folder), lambda frame: f"{len(frame):,} rows", repeats=1, warm=False)
    listing = measure(LISTING, lambda: store.listing(folder),
                      lambda frame: f"{len(frame):,} rows, {frame.memory_usage(deep=True).sum() / 2**20:.0f} MB "
                                    "in pandas")
    measure(SHARDS, lambda: store.read(folder, store.LISTING_COLUMNS).to_pandas(),
            lambda frame: f"{len(frame):,} rows")
    measure("open: the cache key (shard names and times)", lambda: store.stamp(folder),
            lambda stamp: f"{len(stamp)} files")
    pickled = pickle.dumps(listing)
    measure("rerun: st.cache_data's copy of the listing (unpickle)", lambda: pickle.loads(pickled),
            lambda _: f"{len(pickled) / 2**20:.0f} MB pickled")
    task = "SR-ARE"
    measure(f"filter: a task (target_name == {task})", lambda: listing[listing["target_name"] == task],
            lambda frame: f"{len(frame):,} rows")
    measure("filter: a word in the input (source contains 'Cl')",
            lambda: listing[listing["source"].str.contains("Cl", regex=False, na=False)],
            lambda frame: f"{len(frame):,} rows")
    measure("filter: thresholds (probability >= 0.5, completeness error <= 0.05)",
            lambda: listing[(listing["probability"] >= 0.5) & (listing["relative_delta"] <= 0.05)],
            lambda frame: f"{len(frame):,} rows")
    measure("filter: at read time (results_store.listing with status == explained)",
            lambda: store.listing(folder, ds.field("status") == "explained"), lambda frame: f"{len(frame):,} rows")
    measure("sort: by probability, descending", lambda: listing.sort_values("probability", ascending=False))
    measure("sort: by item, then target", lambda: listing.sort_values(["item_id", "target"]))
    measure("show: st.dataframe's Arrow bytes of the whole listing",
            lambda: dataframe_util.convert_pandas_df_to_arrow_bytes(listing),
            lambda payload: f"{len(payload) / 2**20:.1f} MB")
    measure(f"selection: scores of one task ({task}, results_store.read with a filter)",
            lambda: store.read(folder, ["item_index", "item_id", "target_name", "score_names", "scores"],
                               ds.field("target_name") == task).to_pandas(),
            lambda frame: f"{len(frame):,} rows, {sum(map(len, frame['scores'])):,} scores")
    clicked = int(listing["item_index"].iloc[len(listing) // 2])
    measure("selection: one item's whole rows (results_store.item_rows)", lambda: store.item_rows(folder, [clicked]),
            lambda frame: f"{len(frame)} rows")
    items = listing["item_index"].drop_duplicates()
    page = items.iloc[len(items) // 2:len(items) // 2 + 24].tolist()
    measure("selection: a page of 24 items' whole rows (results_store.item_rows)",
            lambda: store.item_rows(folder, page), lambda frame: f"{len(frame)} rows")


def visit(folder: pathlib.Path) -> dict:
    """One visit of a page, once, in this (fresh) process: what its memory peaks at, where the repeated
    measurements above keep every step's garbage. Open, st.cache_data's copy, one task, sorted, shown, its scores
    and one item's rows."""
    imports = peak_mb()
    start = time.perf_counter()
    listing = pickle.loads(pickle.dumps(store.listing(folder)))
    task = listing[listing["target_name"] == "SR-ARE"].sort_values("probability", ascending=False)
    shown = dataframe_util.convert_pandas_df_to_arrow_bytes(task)
    scores = store.read(folder, ["item_index", "score_names", "scores"], ds.field("target_name") == "SR-ARE")
    rows = store.item_rows(folder, [int(task["item_index"].iloc[0])])
    return {"seconds": time.perf_counter() - start, "imports_mb": imports, "peak_mb": peak_mb(),
            "detail": f"{len(listing):,} rows listed, {len(task):,} shown ({len(shown) / 2**20:.1f} MB), "
                      f"{scores.num_rows:,} rows of scores, {len(rows)} rows of one item"}


def compare(measurements: Measurements, folder_a: pathlib.Path, folder_b: pathlib.Path) -> None:
    """The comparison page's work on two whole stores: join the listings, read the scores, agreement per pair."""
    listings = [store.listing(folder) for folder in (folder_a, folder_b)]
    joined = measurements.measure("compare: join two listings on (item_id, target)",
                                  lambda: run_comparison.join(*listings),
                                  lambda joined: f"{len(joined.pairs):,} pairs")
    scores = measurements.measure(
        "compare: read both runs' scores",
        lambda: [store.read(folder, run_comparison.SCORE_COLUMNS, ds.field("status") == "explained").to_pandas()
                 for folder in (folder_a, folder_b)],
        lambda frames: f"{sum(len(frame) for frame in frames):,} rows")
    pairs = len(joined.pairs)
    measurements.measure("compare: Spearman and top overlap per pair (ig_core.agreement)",
                         lambda: run_comparison.agreements(joined.pairs, *scores),
                         lambda agreement: f"{pairs:,} pairs, median Spearman {agreement['spearman'].median():.2f}",
                         repeats=1, warm=False)


# --- the report -----------------------------------------------------------------------------------------

def machine() -> str:
    with open("/proc/cpuinfo") as info:
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    return f"{names[0] if names else platform.machine()}, {os.cpu_count()} cores shared with other work"


def load() -> str:
    return "%.1f %.1f %.1f" % os.getloadavg()


def versions() -> str:
    import streamlit

    duck = ("installed, not compared" if importlib.util.find_spec("duckdb")
            else "not installed: no DuckDB comparison (it is not a dependency)")
    return (f"Python {platform.python_version()}, pyarrow {pa.__version__}, pandas {pd.__version__}, numpy "
            f"{np.__version__}, streamlit {streamlit.__version__}; DuckDB {duck}")


def report(rows: int, folder: pathlib.Path, manifest: dict, measurements: Measurements, start_memory: float,
           one_visit: dict, loads: tuple[str, str], command: str) -> str:
    size = sum(path.stat().st_size for path in (folder / store.SHARDS).iterdir()) / 2**20
    lines = [f"# Browsing a results store ({datetime.date.today().isoformat()})", "", f"`{command}`", "",
             f"- machine: {machine()}; load average (1, 5, 15 min) {loads[0]} at the start, {loads[1]} at the end",
             f"- versions: {versions()}",
             f"- store: {rows:,} molecule-like rows ({manifest['counts']['explained']:,} items explained, "
             f"{manifest['counts']['skipped']:,} skipped) of {manifest['items']:,} items, 20-60 named scores "
             f"per explained row, {manifest['shards']} shards of {SHARD_ITEMS} items, {size:.0f} MB of Parquet "
             "(zstd); the comparison's second store holds the same items with other scores",
             f"- memory after the imports (numpy, pandas, pyarrow, streamlit and torch, as in the dashboard's "
             f"server): {start_memory:,.0f} MB", "",
             f"Times are medians over {measurements.repeats} repetitions after one call not counted (the first "
             "listing and the agreements: one call); wall time, and the process's CPU time (all its threads: on a "
             f"busy machine the wall time waits for the cores). Goal: each within {TIME_GOAL_S:g} s of wall time, "
             f"and the process's peak memory (VmHWM) under {MEMORY_GOAL_MB} MB.", "",
             "| operation | wall | CPU | within 1 s | peak memory after | under 1 GB | detail |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, wall, cpu, peak, goal, detail in measurements.rows:
        within = ("yes" if wall <= TIME_GOAL_S else "NO") if goal else "(no goal)"
        lines.append(f"| {name} | {wall * 1000:,.1f} ms | {cpu * 1000:,.1f} ms | {within} | {peak:,.0f} MB | "
                     f"{'yes' if peak < MEMORY_GOAL_MB else 'NO'} | {detail} |")
    wall = {name: row_wall for name, row_wall, *_ in measurements.rows}
    lines += ["", f"A complete run's listing is one file ({wall[LISTING] * 1000:,.0f} ms); read from its "
              f"{manifest['shards']} shards it takes {wall[SHARDS] * 1000:,.0f} ms, which is what a page pays for a "
              "run still being written.", "",
              f"One page visit in a fresh process (visit: {one_visit['detail']}): "
              f"{one_visit['seconds'] * 1000:,.0f} ms, "
              f"peak memory {one_visit['peak_mb']:,.0f} MB, of which the imports {one_visit['imports_mb']:,.0f} MB "
              f"({'under' if one_visit['peak_mb'] < MEMORY_GOAL_MB else 'NOT under'} 1 GB). The table's peak "
              "memory column is cumulative over all the repetitions above, in one process."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_browse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", type=pathlib.Path, help="where to build the stores (default: a temporary folder)")
    parser.add_argument("--build", type=pathlib.Path, help=argparse.SUPPRESS)  # the child process's work
    parser.add_argument("--score-seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--visit", type=pathlib.Path, help=argparse.SUPPRESS)  # a child process: one page visit
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write RESULTS-stores.md")
    args = parser.parse_args(argv)
    if args.build:
        build_store(args.build, args.rows, score_seed=args.score_seed)
        return 0
    if args.visit:
        print("VISIT " + json.dumps(visit(args.visit)), flush=True)
        return 0
    with tempfile.TemporaryDirectory() as temporary:
        base = args.store or pathlib.Path(temporary)
        folders = {"a": base / f"synthetic-{args.rows}-a", "b": base / f"synthetic-{args.rows}-b"}
        for seed, folder in enumerate(folders.values()):
            if store.read_manifest(folder) is None:
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "bench.store_browse", "--rows", str(args.rows), "--build",
                                str(folder), "--score-seed", str(seed)], check=True, cwd=ROOT)
                print(f"built {folder} in {time.perf_counter() - start:.1f} s", flush=True)
        child = subprocess.run([sys.executable, "-m", "bench.store_browse", "--visit", str(folders["a"])],
                               check=True, cwd=ROOT, capture_output=True, text=True).stdout
        one_visit = json.loads(next(line for line in child.splitlines() if line.startswith("VISIT "))[6:])
        start_memory, start_load = peak_mb(), load()
        measurements = Measurements(args.repeats)
        browse(measurements, folders["a"])
        compare(measurements, folders["a"], folders["b"])
        text = report(args.rows, folders["a"], store.read_manifest(folders["a"]), measurements, start_memory,
                      one_visit, (start_load, load()), "python -m bench.store_browse" + "".join(f" {a}" for a in
                                                                                      (argv or sys.argv[1:])))
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
