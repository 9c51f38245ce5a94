"""How much two attribution maps agree: rank correlation and the overlap of their most important features."""
from __future__ import annotations

import numpy as np


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank (as Spearman's coefficient needs)."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(values)]])
    ranks = np.empty(len(values))
    for start, stop in zip(starts, stops):
        ranks[order[start:stop]] = (start + stop + 1) / 2  # mean of ranks start+1 .. stop
    return ranks


def spearman(a, b) -> float:
    """Spearman's rank correlation of two score vectors (NaN when either is constant)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"the two maps have {a.size} and {b.size} features")
    ra, rb = _ranks(a) - (a.size + 1) / 2, _ranks(b) - (b.size + 1) / 2
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def top_overlap(a, b, top: int) -> float:
    """Share of the `top` features by |score| that both maps put in their top (1: the same features)."""
    a, b = np.abs(np.asarray(a, np.float64).ravel()), np.abs(np.asarray(b, np.float64).ravel())
    top = max(1, min(int(top), a.size))
    first = set(np.argsort(-a, kind="stable")[:top])
    return len(first.intersection(np.argsort(-b, kind="stable")[:top])) / top


def agreement(a, b, top: int | None = None) -> dict[str, float]:
    """Spearman over all features, Spearman of |score| over the union of both top sets, and the top overlap.
    `top` defaults to a tenth of the features (at least one)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    top = top or max(1, a.size // 10)
    union = np.union1d(np.argsort(-np.abs(a), kind="stable")[:top], np.argsort(-np.abs(b), kind="stable")[:top])
    return {"spearman": spearman(a, b), "spearman_top": spearman(np.abs(a[union]), np.abs(b[union])),
            "top_overlap": top_overlap(a, b, top), "top": int(top)}
