"""The adaptive rule: bisect the intervals of a trapezoid grid with the largest exact error until completeness holds.

On [a, b] the trapezoid integral of the path derivative is (b - a)/2 * (g(a) + g(b)), while the true integral is
F(b) - F(a), known from the forward passes: each interval's error is exact, and so is the sum's.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..result import completeness_scale
from .scan import PathScan

REFINE_SHARE = 0.3  # each round bisects the worst intervals holding this share of the error
COARSE_INTERVALS = 5  # about this many intervals of the starting grid come first when partial results are wanted


def coarse_grid(start: np.ndarray) -> np.ndarray | None:
    """About COARSE_INTERVALS intervals of a uniform starting grid, both ends included, for a first picture; None
    where the start is too small to hold a coarser grid."""
    stride = (len(start) - 1) // COARSE_INTERVALS
    return np.union1d(start[::stride], [1.0]) if stride > 1 else None


def refine_adaptively(scan: PathScan, start: np.ndarray, tolerance: float, max_steps: int,
                      go_on: Callable[[np.ndarray], bool] | None = None,
                      coarse: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Refine the grid from `start` until the completeness error is within `tolerance` or the grid has max_steps
    points. Returns the grid and whether go_on(grid), asked after every round that has not met the tolerance,
    stopped it. A coarse part of the start (both ends included) is evaluated first and shown to go_on; the
    refinement starts from the whole start all the same, so the points it evaluates do not depend on it.

    `scan` is anything with PathScan's evaluate(alphas), records and nonfinite_alphas (a view that holds only
    some of a scan's points, say)."""
    if coarse is not None:
        scan.evaluate(coarse)
        grid, errors, scale = _interval_errors(scan)
        if _total_error(errors, scale) > tolerance and not scan.nonfinite_alphas and not go_on(grid):
            return grid, True
    scan.evaluate(start)
    while True:
        grid, errors, scale = _interval_errors(scan)
        widths = np.diff(grid)
        if _total_error(errors, scale) <= tolerance or len(grid) >= max_steps or scan.nonfinite_alphas:
            return grid, False
        if go_on is not None and not go_on(grid):
            return grid, True
        interval_error = np.max(np.abs(errors) / scale, axis=(1, 2))
        interval_error[widths < 1e-9] = 0.0
        order = np.argsort(-interval_error)
        covered = np.cumsum(interval_error[order]) >= REFINE_SHARE * interval_error.sum()
        count = min(int(np.argmax(covered)) + 1, max_steps - len(grid))
        chosen = [i for i in order[:count] if interval_error[i] > 0]
        if not chosen:
            return grid, False
        scan.evaluate((grid[chosen] + grid[np.array(chosen) + 1]) / 2)


def _interval_errors(scan: PathScan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scan's sorted alphas, each interval's trapezoid error [K-1, N, T] and the completeness scale [N, T]."""
    grid = np.array(sorted(scan.records))
    score = np.stack([scan.records[a].score for a in grid])  # [K, N, T]
    slope = np.stack([scan.records[a].path_derivative for a in grid])
    errors = np.diff(grid)[:, None, None] / 2 * (slope[:-1] + slope[1:]) - np.diff(score, axis=0)
    return grid, errors, completeness_scale(score[-1], score[0], score)


def _total_error(errors: np.ndarray, scale: np.ndarray) -> float:
    """The worst example's and target's relative completeness error of the trapezoid sum: its intervals' sum."""
    return float(np.max(np.abs(errors.sum(0)) / scale))
