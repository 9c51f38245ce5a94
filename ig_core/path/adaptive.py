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

    `scan` is anything with PathScan's evaluate(alphas), evaluate_each, problem, records and nonfinite_alphas."""
    n_examples = scan.problem.n_examples
    groups = [list(range(n_examples))] if shared else [[n] for n in range(n_examples)]
    if coarse is not None:
        scan.evaluate(coarse)
        table = PathTable(scan)
        unmet = any(len(_next_alphas(table, group, tolerance, max_steps)) for group in groups)
        if unmet and not scan.nonfinite_alphas and not go_on(table.grids(groups)):
            return table.grids(groups), True
    scan.evaluate(start)
    refining = groups  # a group that met its tolerance or budget keeps its grid: it is not looked at again
    while True:
        table = PathTable(scan)
        new, still = {}, []
        for group in refining:
            alphas = _next_alphas(table, group, tolerance, max_steps)
            if len(alphas):
                new.update({n: alphas for n in group})
                still.append(group)
        refining = still
        grids = table.grids(groups)
        if not new or scan.nonfinite_alphas:
            return grids, False
        if go_on is not None and not go_on(grids):
            return grids, True
        scan.evaluate_each(new)


class PathTable:
    """The scan's records as arrays, once per round: every evaluated alpha [K] sorted, which examples were
    evaluated there [K, N], F and the path derivative there [K, N, T] (NaN where not)."""

    def __init__(self, scan: PathScan):
        self.alphas = np.array(sorted(scan.records))
        records = [scan.records[a] for a in self.alphas]
        self.evaluated = np.stack([r.examples for r in records])
        self.score = np.stack([r.score for r in records])
        self.slope = np.stack([r.path_derivative for r in records])

    def rows(self, group: list[int]) -> np.ndarray:
        """The alphas' positions where every example of the group was evaluated."""
        return np.flatnonzero(self.evaluated[:, group].all(axis=1))

    def grids(self, groups: list[list[int]]) -> list[np.ndarray]:
        """Each example's grid: the alphas evaluated for every example of its group."""
        grids = {}
        for group in groups:
            grid = self.alphas[self.rows(group)]
            grids.update({n: grid for n in group})
        return [grids[n] for n in sorted(grids)]


def _next_alphas(table: PathTable, group: list[int], tolerance: float, max_steps: int) -> np.ndarray:
    """The midpoints of the group's worst intervals, holding REFINE_SHARE of its error; none where its error is
    within the tolerance or its grid has max_steps points."""
    rows = table.rows(group)
    grid = table.alphas[rows]
    score, slope = table.score[rows][:, group], table.slope[rows][:, group]  # [K, G, T]
    errors = np.diff(grid)[:, None, None] / 2 * (slope[:-1] + slope[1:]) - np.diff(score, axis=0)
    scale = completeness_scale(score[-1], score[0], score)
    nothing = np.array([], dtype=np.float64)
    if _total_error(errors, scale) <= tolerance or len(grid) >= max_steps:
        return nothing
    interval_error = np.max(np.abs(errors) / scale, axis=(1, 2))
    interval_error[np.diff(grid) < 1e-9] = 0.0
    order = np.argsort(-interval_error)
    covered = np.cumsum(interval_error[order]) >= REFINE_SHARE * interval_error.sum()
    count = min(int(np.argmax(covered)) + 1, max_steps - len(grid))
    chosen = np.array([i for i in order[:count] if interval_error[i] > 0], dtype=int)
    return (grid[chosen] + grid[chosen + 1]) / 2 if len(chosen) else nothing


def _total_error(errors: np.ndarray, scale: np.ndarray) -> float:
    """The worst example's and target's relative completeness error of the trapezoid sum: its intervals' sum."""
    return float(np.max(np.abs(errors.sum(0)) / scale))
