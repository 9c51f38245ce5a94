"""The adaptive rule: bisect the intervals of a trapezoid grid with the largest exact error until completeness holds.

On [a, b] the trapezoid integral of the path derivative is (b - a)/2 * (g(a) + g(b)), while the true integral is
F(b) - F(a), known from the forward passes: each interval's error is exact, and so is the sum's.

Each example of a batch is refined on its own grid and stops when its own error is within the tolerance, its
points evaluated together with the other examples still refining; a grid shared by all the examples (where their
trends are averaged, as over noisy copies) is refined until the worst of them is within it.
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
                      go_on: Callable[[list[np.ndarray]], bool] | None = None, coarse: np.ndarray | None = None,
                      shared: bool = False) -> tuple[list[np.ndarray], bool]:
    """Refine each example's grid from `start` until its completeness error is within `tolerance` or it has
    max_steps points (shared: one grid for all, until the worst example's error is). Returns the grids, one per
    example, and whether go_on(grids), asked after every round that has not met the tolerance, stopped it. A coarse
    part of the start (both ends included) is evaluated first and shown to go_on; the refinement starts from the
    whole start all the same, so the points it evaluates do not depend on it.

    `scan` is anything with PathScan's evaluate(alphas), evaluate_each, example_alphas, records and
    nonfinite_alphas."""
    n_examples = scan.problem.n_examples
    groups = [list(range(n_examples))] if shared else [[n] for n in range(n_examples)]
    if coarse is not None:
        scan.evaluate(coarse)
        unmet = any(len(_next_alphas(scan, group, tolerance, max_steps)[1]) for group in groups)
        if unmet and not scan.nonfinite_alphas and not go_on(_grids(scan, groups)):
            return _grids(scan, groups), True
    scan.evaluate(start)
    while True:
        new = {}
        for group in groups:
            _, alphas = _next_alphas(scan, group, tolerance, max_steps)
            new.update({n: alphas for n in group if len(alphas)})
        grids = _grids(scan, groups)
        if not new or scan.nonfinite_alphas:
            return grids, False
        if go_on is not None and not go_on(grids):
            return grids, True
        scan.evaluate_each(new)


def _grids(scan: PathScan, groups: list[list[int]]) -> list[np.ndarray]:
    """Each example's grid: the alphas evaluated for every example of its group."""
    grids = {}
    for group in groups:
        grid = _group_grid(scan, group)
        grids.update({n: grid for n in group})
    return [grids[n] for n in sorted(grids)]


def _group_grid(scan: PathScan, group: list[int]) -> np.ndarray:
    return np.array(sorted(a for a, record in scan.records.items() if record.examples[group].all()))


def _next_alphas(scan: PathScan, group: list[int], tolerance: float,
                 max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The group's grid and the midpoints of its worst intervals, holding REFINE_SHARE of its error; none where its
    error is within the tolerance or its grid has max_steps points."""
    grid, errors, scale = _interval_errors(scan, grid=_group_grid(scan, group), group=group)
    nothing = np.array([], dtype=np.float64)
    if _total_error(errors, scale) <= tolerance or len(grid) >= max_steps:
        return grid, nothing
    interval_error = np.max(np.abs(errors) / scale, axis=(1, 2))
    interval_error[np.diff(grid) < 1e-9] = 0.0
    order = np.argsort(-interval_error)
    covered = np.cumsum(interval_error[order]) >= REFINE_SHARE * interval_error.sum()
    count = min(int(np.argmax(covered)) + 1, max_steps - len(grid))
    chosen = np.array([i for i in order[:count] if interval_error[i] > 0], dtype=int)
    if not len(chosen):
        return grid, nothing
    return grid, (grid[chosen] + grid[chosen + 1]) / 2


def _interval_errors(scan: PathScan, grid: np.ndarray, group: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid, each interval's trapezoid error [K-1, G, T] and the completeness scale [G, T] of the group's
    examples."""
    score = np.stack([scan.records[a].score[group] for a in grid])  # [K, G, T]
    slope = np.stack([scan.records[a].path_derivative[group] for a in grid])
    errors = np.diff(grid)[:, None, None] / 2 * (slope[:-1] + slope[1:]) - np.diff(score, axis=0)
    return grid, errors, completeness_scale(score[-1], score[0], score)


def _total_error(errors: np.ndarray, scale: np.ndarray) -> float:
    """The worst example's and target's relative completeness error of the trapezoid sum: its intervals' sum."""
    return float(np.max(np.abs(errors.sum(0)) / scale))
