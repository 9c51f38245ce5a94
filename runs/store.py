"""The results store of a dataset run: Parquet shards of flat rows and a small JSON manifest, in one folder.

Layout::

    <run>/manifest.json            what the run is (see below); rewritten atomically
    <run>/shards/000000.parquet    the rows of items 0 .. shard_size - 1, written whole or not at all
    <run>/shards/000001.parquet    ...
    <run>/listing.parquet          once the run is complete: every row without the per-item score columns, one
                                   file for the dashboard's listings (PER_ITEM_COLUMNS are read per item)

A shard file exists only once all its items are done: it is written to a temporary file in the same folder and
renamed over its final name (os.replace, atomic on one file system), so a run killed at any moment leaves whole
shards and temporaries, never half a shard. A restart skips the shards present and removes the temporaries.

Rows: one per item and target; an item that is refused or has no target has one row with `target` null.
Readers read every run with SCHEMA, so a column added later (rather_than) reads as null from older shards and
listings.

=====================  ==============  =========================================================================
column                 type            meaning
=====================  ==============  =========================================================================
item_index             int64           the item's position in the input (shard = item_index // shard_size)
item_id                string          stable id: a photo's path relative to the folder, "row 12" of a CSV,
                                       "record 3" of an SDF, "tokens 40-60" of a text
source                 string          the photo's path, the SMILES, the window's words
status                 string          "explained", "refused" (the input cannot be read), "skipped" (no target
                                       under the policy, e.g. a molecule active on no task)
error                  string          why refused or skipped; null when explained
model_key              string          the model's family, name and content digest
method                 string          the attribution method (ig_core.METHODS)
settings               string          the ScanSettings as JSON (rule, steps, tolerance, method options, ...)
rule                   string          the quadrature rule the scan used (the method's name for other methods)
target                 int64           class index, task index or vocabulary id explained
target_name            string          its name: class, task, word
chosen_as              string          why: "predicted", "truth", "predicted+truth", "active", "next_word",
                                       "contrast"
rather_than            int64           the class the target is explained rather than (F = score[target] -
                                       score[rather_than], on the family's contrast output: --targets contrast
                                       explains the prediction rather than the truth); null for a plain target
                                       and in runs stored before the column (read as null)
predicted              int64           the model's top target for the item
truth                  int64           the item's ground-truth class or next word (null: unknown, or a
                                       molecule, whose ground truth is per task)
truth_rank             int64           the truth's rank among the model's outputs, 1 = top (top-5 errors: > 5)
target_truth           float64         ground truth of this target: 1 (true class, active task), 0, null unknown
probability            float64         the model's probability of the target (softmax or sigmoid); null for
                                       a regression output
score_input            float64         F(input)
score_baseline         float64         F(baseline)
delta                  float64         sum of attributions - (F(input) - F(baseline))
relative_delta         float64         |delta| / |F(input) - F(baseline)| (NaN: the method has no completeness)
nothing_to_attribute   bool            F(input) = F(baseline) up to rounding
nonfinite              bool            the model produced non-finite scores or gradients
points_evaluated       int32           path points (gradient evaluations) of the item's scan
score_names            list<string>    the domain's units: atoms "C1", bonds "C1-O2 single" and "non-bonded
                                       pairs" (molecules), context words "1 the" (language); null for photos
scores                 list<float64>   their attributions, in the order of score_names
gradient_scores        list<float64>   gradient x input in the same units, read off the same scan (the gradient
                                       at alpha = 1, no extra model call); null for photos and for methods
                                       other than integrated gradients
pixel_map              binary          photos: per pixel at the network's input size (colour channels summed),
                                       divided by map_scale, float16 little-endian, row-major [height, width]
map_scale              float64         the largest |score| of the map (pixel_map(row) multiplies it back)
map_height, map_width  int32           the pixel map's shape
seconds_parse          float64         reading the item and choosing its targets
seconds_scan           float64         the item's one scan for all its targets (repeated on its rows); its share
                                       of the scan when items were explained together
=====================  ==============  =========================================================================

The pixel map is a binary column rather than a list: one 100 KB value per 224x224 photo is cheap to write and
read in any Parquet reader, where a 50,176-element list becomes as many Python objects in pandas. It is scaled to
[-1, 1] before rounding to float16: a photo's per-pixel attributions of a probability are around 1e-5, where
float16 has no normal numbers left (below 6.1e-5) and would keep only a digit or two.

manifest.json: {"format", "version", "job" (what decides the rows: family, input, model, targets policy,
settings, shard size, input options), "input_fingerprint", "model_key", "command" (argv), "items", "shards",
"status" ("running" or "complete"), "counts" (rows, explained, refused, skipped, when complete), "created",
"finished", "versions" (python, torch, pyarrow)}.
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from families.config import RUNS_DIR

FORMAT, VERSION = "ig-dashboard/attribution-run", 2
MANIFEST = "manifest.json"
SHARDS = "shards"
ROOT = pathlib.Path(__file__).resolve().parent.parent
# the columns of one item's own scores: read for the items shown, never for a whole listing
PER_ITEM_COLUMNS = ("score_names", "scores", "gradient_scores", "pixel_map")
LISTING = "listing.parquet"  # a complete run's listing columns in one file

SCHEMA = pa.schema([
    ("item_index", pa.int64()), ("item_id", pa.string()), ("source", pa.string()),
    ("status", pa.string()), ("error", pa.string()),
    ("model_key", pa.string()), ("method", pa.string()), ("settings", pa.string()), ("rule", pa.string()),
    ("target", pa.int64()), ("target_name", pa.string()), ("chosen_as", pa.string()), ("rather_than", pa.int64()),
    ("predicted", pa.int64()), ("truth", pa.int64()), ("truth_rank", pa.int64()), ("target_truth", pa.float64()),
    ("probability", pa.float64()), ("score_input", pa.float64()), ("score_baseline", pa.float64()),
    ("delta", pa.float64()), ("relative_delta", pa.float64()),
    ("nothing_to_attribute", pa.bool_()), ("nonfinite", pa.bool_()), ("points_evaluated", pa.int32()),
    ("score_names", pa.list_(pa.string())), ("scores", pa.list_(pa.float64())),
    ("gradient_scores", pa.list_(pa.float64())),
    ("pixel_map", pa.binary()), ("map_scale", pa.float64()), ("map_height", pa.int32()), ("map_width", pa.int32()),
    ("seconds_parse", pa.float64()), ("seconds_scan", pa.float64()),
])
LISTING_COLUMNS = [name for name in SCHEMA.names if name not in PER_ITEM_COLUMNS]
LISTING_SCHEMA = pa.schema([SCHEMA.field(name) for name in LISTING_COLUMNS])


class RunConflict(RuntimeError):
    """The output folder holds another run (another command, another input or model)."""


def shard_path(folder: pathlib.Path, index: int) -> pathlib.Path:
    return folder / SHARDS / f"{index:06d}.parquet"


def write_atomically(path: pathlib.Path, write) -> None:
    """write(temporary path), flushed to disk, then renamed over `path`: readers see the old file or the new."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_shard(folder: pathlib.Path, index: int, rows: Sequence[dict]) -> None:
    table = pa.Table.from_pylist(list(rows), schema=SCHEMA)
    write_atomically(shard_path(folder, index), lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def finished_shards(folder: pathlib.Path) -> set[int]:
    return {int(path.stem) for path in (folder / SHARDS).glob("[0-9]*.parquet")}


def remove_temporaries(folder: pathlib.Path) -> None:
    """Temporaries a killed run left behind (no other run writes here: the run's driver holds the folder's lock)."""
    for path in list((folder / SHARDS).glob(".*.tmp")) + list(folder.glob(".*.tmp")):
        path.unlink(missing_ok=True)


def read_manifest(folder: pathlib.Path) -> dict | None:
    path = pathlib.Path(folder) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def write_manifest(folder: pathlib.Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True)
    write_atomically(pathlib.Path(folder) / MANIFEST, lambda tmp: tmp.write_text(text))


def open_run(folder: pathlib.Path, manifest: dict, identity: Iterable[str]) -> dict:
    """Start a run in `folder`, or continue the one there if its `identity` fields equal `manifest`'s; refuses
    (RunConflict) a folder that holds another run. Returns the manifest in force."""
    folder = pathlib.Path(folder)
    (folder / SHARDS).mkdir(parents=True, exist_ok=True)
    existing = read_manifest(folder)
    if existing is None:
        if finished_shards(folder):
            raise RunConflict(f"{folder} holds shards but no {MANIFEST}: choose an empty folder")
        write_manifest(folder, manifest)
        return manifest
    differ = [name for name in identity if existing.get(name) != manifest.get(name)]
    if existing.get("format") != FORMAT or existing.get("version") != VERSION or differ:
        details = "; ".join(f"{name}: {json.dumps(existing.get(name))} there, {json.dumps(manifest.get(name))} now"
                            for name in differ or ["version"])
        raise RunConflict(f"{folder} holds another run ({details or 'another format'}). Restart it with its own "
                          f"command ({' '.join(existing.get('command', []))}) or choose another --out folder.")
    remove_temporaries(folder)
    return existing


def read(folder: pathlib.Path, columns: Sequence[str] | None = None, filter=None) -> pa.Table:
    """The run's rows in item order (the shards are read in order), optionally some columns and a pyarrow filter
    expression, e.g. `pyarrow.dataset.field("status") == "explained"`."""
    files = sorted(str(path) for path in (pathlib.Path(folder) / SHARDS).glob("[0-9]*.parquet"))
    return ds.dataset(files, schema=SCHEMA, format="parquet").to_table(columns=columns, filter=filter)


def runs_folder() -> pathlib.Path:
    """Where the dashboard looks for runs: $IG_RUNS_DIR, else the project's results/ folder."""
    return RUNS_DIR.path() or ROOT / "results"


def list_runs(family: str | None = None) -> dict[str, dict]:
    """{name: manifest} of the runs in runs_folder() with at least one shard (of one family if given), by name."""
    folder = runs_folder()
    runs = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        try:
            manifest = read_manifest(path) if path.is_dir() else None
        except (OSError, ValueError):
            manifest = None  # a folder being written or not a run: not listed
        if (manifest and manifest.get("format") == FORMAT and finished_shards(path)
                and family in (None, manifest.get("job", {}).get("family"))):
            runs[path.name] = manifest
    return runs


def stamp(folder: pathlib.Path) -> tuple:
    """A cache key for what is read from a run: its shards' names and modification times and its manifest's (a
    complete run's listing comes from its own file). A run that grew or was rewritten gets a new key."""
    folder = pathlib.Path(folder)
    files = [folder / MANIFEST, *(shard_path(folder, index) for index in sorted(finished_shards(folder)))]
    return tuple((path.name, path.stat().st_mtime_ns) for path in files if path.is_file())


def listing(folder: pathlib.Path, filter=None) -> pd.DataFrame:
    """Every row without the per-item scores: what a page sorts and filters (50,000 rows in a few MB). A complete
    run's listing is one file (write_listing): opening hundreds of shards costs ten times more than reading it."""
    folder = pathlib.Path(folder)
    manifest = read_manifest(folder)
    if (folder / LISTING).is_file() and manifest and manifest.get("status") == "complete":
        listed = ds.dataset(str(folder / LISTING), schema=LISTING_SCHEMA, format="parquet")
        return listed.to_table(filter=filter).to_pandas()
    return read(folder, LISTING_COLUMNS, filter).to_pandas()


def write_listing(folder: pathlib.Path) -> None:
    """The listing's columns of every shard in one file, for a run whose shards are all written."""
    table = read(folder, LISTING_COLUMNS)
    write_atomically(pathlib.Path(folder) / LISTING, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def item_rows(folder: pathlib.Path, item_indices: Sequence[int]) -> pd.DataFrame:
    """The whole rows (scores included) of some items, in item order, read from the shards that hold them."""
    folder, wanted = pathlib.Path(folder), sorted({int(k) for k in item_indices})
    shard_size = ((read_manifest(folder) or {}).get("job") or {}).get("shard_size")
    where = ds.field("item_index").isin(wanted)
    if not shard_size:
        return read(folder, filter=where).to_pandas()
    files = sorted({str(path) for path in (shard_path(folder, k // shard_size) for k in wanted) if path.is_file()})
    return ds.dataset(files, schema=SCHEMA, format="parquet").to_table(filter=where).to_pandas()


def counts(folder: pathlib.Path) -> dict:
    """Rows, and items by status."""
    table = read(folder, ["item_index", "status"])
    items = table.group_by(["item_index", "status"]).aggregate([]).column("status").to_pylist()
    return {"rows": table.num_rows, "items": len(items),
            **{status: items.count(status) for status in ("explained", "refused", "skipped")}}


def pixel_map(row: dict) -> np.ndarray:
    """A photo row's per-pixel scores as float32 [map_height, map_width]."""
    scaled = np.frombuffer(row["pixel_map"], "<f2").reshape(int(row["map_height"]), int(row["map_width"]))
    return scaled.astype(np.float32) * np.float32(row["map_scale"])


def encode_pixel_map(scores: np.ndarray) -> dict:
    """The pixel_map, map_scale, map_height and map_width of a row, from per-pixel scores [H, W]."""
    scores = np.asarray(scores, dtype=np.float64)
    scale = float(np.abs(scores).max()) or 1.0  # an all-zero map stays zeros
    return {"pixel_map": (scores / scale).astype("<f2").tobytes(), "map_scale": scale,
            "map_height": scores.shape[0], "map_width": scores.shape[1]}
