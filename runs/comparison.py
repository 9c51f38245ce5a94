"""Two runs of one family compared item by item: the same inputs explained by two models (W1N2 and W2N2, two
vision architectures, two language models) into two results stores (runs.store).

The runs' explained rows are joined on (item_id, target); an id whose input differs between the runs (another
file's "row 3") is left out and counted. For each pair, the rank correlation of the two attributions
(ig_core.agreement): over the named scores both rows have (atoms and bonds, context words), matched by name, not
by position, since two models may list the same units in another order or one more unit; over the pixel maps,
both averaged down to one small grid (maps of two architectures' input sizes then compare, and a 224x224 map's
50,176 ranks are not needed to tell agreement). Pure: frames in, frames out; the page reads the stores.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ig_core.agreement import spearman, top_overlap
from runs import store
from runs.completeness import over_tolerance

KEY = ["item_id", "target"]
PER_RUN = ["item_index", "probability", "relative_delta"]  # kept for each run, suffixed "_a" and "_b"
MAP_GRID = 32  # pixel maps are compared on at most MAP_GRID x MAP_GRID cells
TOP_SHARE = 0.1  # the top overlap looks at the top tenth of the units by |score|
SCORE_COLUMNS = ["item_id", "target", "score_names", "scores", "pixel_map", "map_scale", "map_height", "map_width"]


def refusal(name_a: str, manifest_a: Mapping, name_b: str, manifest_b: Mapping) -> str | None:
    """Why two runs cannot be compared (None when they can)."""
    if name_a == name_b:
        return f"Both choices are {name_a}: choose two different runs."
    family_a, family_b = (manifest.get("job", {}).get("family") for manifest in (manifest_a, manifest_b))
    if family_a != family_b:
        return (f"{name_a} is a {family_a} run and {name_b} a {family_b} run: only runs of one family explain the "
                "same kind of input in the same units.")
    return None


@dataclasses.dataclass
class Joined:
    """The pairs of rows both runs explained, and what each run has that the other lacks."""

    pairs: pd.DataFrame  # one row per (item_id, target): item_id, target, target_name, source, PER_RUN x {_a, _b}
    items_only_a: int  # items (ids) in run A's input and not in B's
    items_only_b: int
    rows_only_a: int  # (item, target) pairs A explained and B did not (another predicted class, a skipped item)
    rows_only_b: int
    other_input: int  # pairs whose id both runs have but whose input (source) differs: left out


def join(listing_a: pd.DataFrame, listing_b: pd.DataFrame) -> Joined:
    """The explained rows of two listings (results_store.listing) joined on (item_id, target), in run A's order."""
    explained = [listing[listing["status"] == "explained"][KEY + ["target_name", "source"] + PER_RUN]
                 for listing in (listing_a, listing_b)]
    merged = explained[0].merge(explained[1], on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    same_input = both["source_a"] == both["source_b"]
    pairs = (both[same_input].rename(columns={"source_a": "source", "target_name_a": "target_name"})
             .sort_values(["item_index_a", "target"], kind="stable")
             [KEY + ["target_name", "source"] + [f"{name}_{run}" for name in PER_RUN for run in "ab"]]
             .reset_index(drop=True))
    pairs[["item_index_a", "item_index_b", "target"]] = (
        pairs[["item_index_a", "item_index_b", "target"]].astype("int64"))
    ids_a, ids_b = set(listing_a["item_id"]), set(listing_b["item_id"])
    return Joined(pairs=pairs, items_only_a=len(ids_a - ids_b), items_only_b=len(ids_b - ids_a),
                  rows_only_a=int((merged["_merge"] == "left_only").sum()),
                  rows_only_b=int((merged["_merge"] == "right_only").sum()),
                  other_input=int((~same_input).sum()))


def named_pair(names_a: Sequence[str], scores_a, names_b: Sequence[str], scores_b
               ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The units both rows name, in run A's order, with each run's score of them."""
    names_a, names_b = list(names_a), list(names_b)
    if names_a == names_b:  # the common case (one molecule, one window), without a lookup per name
        return names_a, np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    position_b = {name: k for k, name in enumerate(names_b)}
    common = [k for k, name in enumerate(names_a) if name in position_b]
    names = [names_a[k] for k in common]
    return (names, np.asarray(scores_a, np.float64)[common],
            np.asarray(scores_b, np.float64)[[position_b[name] for name in names]])


def downsampled(scores: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map [H, W] averaged over boxes down (or stretched) to `shape` [h, w]."""
    image = Image.fromarray(np.ascontiguousarray(scores, dtype=np.float32), mode="F")
    return np.asarray(image.resize((shape[1], shape[0]), Image.BOX), dtype=np.float64)


def map_pair(map_a: np.ndarray, map_b: np.ndarray, grid: int = MAP_GRID) -> tuple[np.ndarray, np.ndarray]:
    """Two pixel maps on one grid: the smaller map's shape, at most grid x grid."""
    shape = (min(grid, map_a.shape[0], map_b.shape[0]), min(grid, map_a.shape[1], map_b.shape[1]))
    return downsampled(map_a, shape).ravel(), downsampled(map_b, shape).ravel()


def compared_scores(row_a: Mapping, row_b: Mapping, grid: int = MAP_GRID) -> tuple[np.ndarray, np.ndarray]:
    """The two rows' attributions over the same units: named scores matched by name, or pixel maps on one grid."""
    if row_a.get("score_names") is not None and row_b.get("score_names") is not None:
        _, a, b = named_pair(row_a["score_names"], row_a["scores"], row_b["score_names"], row_b["scores"])
        return a, b
    if row_a.get("pixel_map") is not None and row_b.get("pixel_map") is not None:
        return map_pair(store.pixel_map(row_a), store.pixel_map(row_b), grid)
    raise ValueError(f"{row_a['item_id']}: one run stored named scores and the other a pixel map")


def row_agreement(row_a: Mapping, row_b: Mapping, grid: int = MAP_GRID) -> dict:
    """Spearman's rank correlation of two rows' attributions, the overlap of their top tenths by |score| and the
    number of units compared (NaN: no common unit, or one attribution is constant)."""
    a, b = compared_scores(row_a, row_b, grid)
    if a.size == 0:
        return {"spearman": float("nan"), "top_overlap": float("nan"), "units": 0}
    return {"spearman": spearman(a, b), "top_overlap": top_overlap(a, b, max(1, round(TOP_SHARE * a.size))),
            "units": int(a.size)}


def agreements(pairs: pd.DataFrame, scores_a: pd.DataFrame, scores_b: pd.DataFrame,
               grid: int = MAP_GRID) -> pd.DataFrame:
    """row_agreement for each pair (columns spearman, top_overlap, units, in the pairs' order), from the runs'
    score columns (SCORE_COLUMNS) of at least these pairs."""
    rows_a, rows_b = by_key(scores_a), by_key(scores_b)
    keys = zip(pairs["item_id"], pairs["target"].astype("int64"))
    measured = [row_agreement(rows_a[key], rows_b[key], grid) for key in keys]
    return pd.DataFrame(measured, columns=["spearman", "top_overlap", "units"], index=pairs.index)


def by_key(scores: pd.DataFrame) -> dict[tuple[str, int], dict]:
    """{(item_id, target): row} of the explained rows (a listing's targets are floats where nulls are present)."""
    scores = scores[scores["target"].notna()]
    return dict(zip(zip(scores["item_id"], scores["target"].astype("int64")), scores.to_dict("records")))


def most_disagreeing(pairs: pd.DataFrame, tolerance_a: float, tolerance_b: float) -> pd.DataFrame:
    """Pairs with their agreement, the lowest rank correlation first; pairs without one (NaN) last, and after all
    the others the pairs with a row over its run's completeness tolerance (column `incomplete`): attributions that
    do not add up disagree for a reason that is not the models'."""
    incomplete = (over_tolerance(pairs["relative_delta_a"], tolerance_a)
                  | over_tolerance(pairs["relative_delta_b"], tolerance_b))
    flagged = pairs.assign(incomplete=incomplete)
    return flagged.sort_values(["incomplete", "spearman"], ascending=True, na_position="last",
                               kind="stable").reset_index(drop=True)


def unit_table(names_a: Sequence[str], scores_a, names_b: Sequence[str], scores_b) -> pd.DataFrame:
    """Per unit both runs name: each run's score and rank (1 = the most positive), the units whose ranks differ
    most first."""
    names, a, b = named_pair(names_a, scores_a, names_b, scores_b)
    rank_a = pd.Series(a).rank(ascending=False, method="average").to_numpy()
    rank_b = pd.Series(b).rank(ascending=False, method="average").to_numpy()
    table = pd.DataFrame({"unit": names, "score A": a, "score B": b, "rank A": rank_a, "rank B": rank_b,
                          "rank difference": rank_b - rank_a})
    return table.reindex(table["rank difference"].abs().sort_values(ascending=False, kind="stable").index
                         ).reset_index(drop=True)
