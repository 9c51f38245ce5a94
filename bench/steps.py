"""Steps to reach a completeness error: the adaptive rule vs each fixed rule in a doubling sequence.

A rule's completeness error depends only on F along the path and the path derivative
phi(alpha) = grad F(gamma(alpha)) . (x - b): the sum of a fixed rule's attributions is sum_k w_k * phi(alpha_k).
One engine PathScan per photo records both at every alpha it evaluates, once, so the rules' searches share their
points; the adaptive rule runs the engine's own refinement (`refine_adaptively`) on a view of that scan that holds
only its own points. The node counts are those of the engine's rules (ig_core.fixed_rule), and a fixed rule's points
evaluated are what the engine would evaluate for it (its nodes plus the ends it adds).
"""
from __future__ import annotations

import numpy as np
import torch

from ig_core import FIXED_RULES, fixed_rule, path_points, trapezoid_weights
from ig_core.evaluator import GradientEvaluator
from ig_core.inputs import AttributionProblem
from ig_core.path.adaptive import refine_adaptively
from ig_core.path.scan import PathScan
from ig_core.result import completeness_scale


def photo_scan(model, x, baseline, target: int, batch: int) -> PathScan:
    """The engine's scan of one photo's path for the target's softmax, with both ends evaluated."""
    problem = AttributionProblem(model, (x,), (baseline,), torch.tensor([[int(target)]], device=x.device), "softmax")
    scan = PathScan(GradientEvaluator(problem, batch))
    scan.evaluate([0.0, 1.0])
    return scan


def relative_delta(scan: PathScan, nodes, weights) -> float:
    """The completeness error of sum_k weights[k] * phi(nodes[k]), relative as the engine reports it."""
    scan.evaluate(nodes)
    phi = np.array([scan.records[float(a)].path_derivative[0, 0] for a in nodes])
    scores = np.stack([scan.records[a].score for a in sorted({*map(float, nodes), 0.0, 1.0})])
    first, last = scan.records[0.0].score, scan.records[1.0].score
    scale = completeness_scale(last, first, scores)[0, 0]
    return abs(float(np.dot(weights, phi)) - float(last[0, 0] - first[0, 0])) / scale


def fixed_relative_delta(scan: PathScan, rule: str, n: int) -> float:
    return relative_delta(scan, *fixed_rule(rule, n))


class RulePoints:
    """What one rule sees of a photo's scan: only the alphas it asked for, each evaluated once for every rule."""

    def __init__(self, scan: PathScan):
        self.scan, self.problem, self.records, self.nonfinite_alphas = scan, scan.problem, {}, scan.nonfinite_alphas

    def evaluate(self, alphas, weights=None) -> None:
        self.scan.evaluate(alphas)
        self.records.update({float(a): self.scan.records[float(a)] for a in alphas})

    def evaluate_each(self, alphas_of: dict) -> None:  # one photo: its own alphas are every example's
        self.evaluate(alphas_of[0])


def adaptive_run(scan: PathScan, start, tolerance: float, budget: int) -> tuple[int, float]:
    """The engine's adaptive rule from `start` on this scan: (points it evaluated, relative delta reached)."""
    (grid,), _ = refine_adaptively(RulePoints(scan), np.asarray(start, dtype=np.float64), tolerance, budget)
    return len(grid), relative_delta(scan, grid, trapezoid_weights(grid))


def points_evaluated(rule: str, n: int) -> int:
    """Path points the engine evaluates for a fixed rule with n nodes and no probes (nodes + ends)."""
    return len(path_points(rule, n)[0])


def doubling(start: int = 4, stop: int = 1024) -> list[int]:
    out, n = [], start
    while n <= stop:
        out.append(n)
        n *= 2
    return out


def steps_for_photo(model, x, baseline, target: int, tolerance=0.01, max_n=1024, adaptive_start=16, batch=16,
                    rules=FIXED_RULES) -> dict:
    """{rule: (nodes, points evaluated, relative delta reached)}; inf where no n <= max_n reached it."""
    scan = photo_scan(model, x, baseline, target, batch)
    try:
        out = {}
        for rule in rules:
            found = (float("inf"), float("inf"), float("nan"))
            for n in doubling(4, max_n):
                rel = fixed_relative_delta(scan, rule, n)
                if rel <= tolerance:
                    found = (n, points_evaluated(rule, n), rel)
                    break
            out[rule] = found
        points, rel = adaptive_run(scan, np.linspace(0, 1, adaptive_start), tolerance, max_n)
        out["adaptive"] = (points, points, rel) if rel <= tolerance else (float("inf"), float("inf"), rel)
        return out
    finally:
        scan.close()
