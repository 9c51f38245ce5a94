"""How much two attribution maps agree: rank correlation and the overlap of their most important features."""
from __future__ import annotations

import numpy as np


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n along each row of [m, n], ties sharing their mean rank (as Spearman's coefficient needs)."""
    m, n = values.shape
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    starts = np.ones((m, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    tie = (np.cumsum(starts, axis=1) - 1 + n * np.arange(m)[:, None]).ravel()  # a tie group's id, unique overall
    mean_rank = np.bincount(tie, weights=np.tile(np.arange(1.0, n + 1), m), minlength=m * n) / np.maximum(
        np.bincount(tie, minlength=m * n), 1)
    ranks = np.empty((m, n))
    np.put_along_axis(ranks, order, mean_rank[tie].reshape(m, n), axis=1)
    return ranks


def spearman_rows(a, b) -> np.ndarray:
    """Spearman's rank correlation of each row of a with the same row of b, [m, n] each: [m] (NaN where either
    row is constant). Pages rank thousands of pairs at once this way."""
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if a.shape != b.shape:
        raise ValueError(f"the two maps have {a.shape[-1]} and {b.shape[-1]} features")
    middle = (a.shape[1] + 1) / 2
    ra, rb = _ranks(a) - middle, _ranks(b) - middle
    denominator = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (ra * rb).sum(axis=1) / denominator, np.nan)


def spearman(a, b) -> float:
    """Spearman's rank correlation of two score vectors (NaN when either is constant)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"the two maps have {a.size} and {b.size} features")
    return float(spearman_rows(a[None], b[None])[0])


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
