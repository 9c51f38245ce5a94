"""Guided integrated gradients (Kapishnikov et al. 2021; PAIR's saliency GuidedIG): a path from the baseline to the
input chosen step by step, moving first the features where F is flattest (smallest |gradient|), so that the path
keeps away from the steep places that make straight-line attributions noisy. Anchors on the straight line keep
every feature within max_dist (a fraction of the way) of where the straight line would have it."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from .base import AttributionMethod, MethodContext

CLOSE = 1e-9  # PAIR's relative and absolute tolerance for "the L1 distance has reached this step's goal"


class GuidedIG(AttributionMethod):
    name = "guided_ig"
    label = "Guided IG"

    @dataclass(frozen=True)
    class Options:
        steps: int = 200  # gradient evaluations along the path; each one moves 1/steps of the L1 distance
        fraction: float = 0.25  # share of the features (those with the smallest |gradient|) moved at a time
        max_dist: float = 0.02  # how far a feature may stray from the straight line, as a fraction of the way; 0: IG

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        if o.steps < 1 or not 0 <= o.fraction <= 1 or not 0 <= o.max_dist <= 1:
            raise ValueError(f"Guided IG needs steps >= 1, fraction and max_dist in [0, 1]; got {o.steps}, "
                             f"{o.fraction} and {o.max_dist}")

    def compute(self, context: MethodContext):
        problem, steps = context.problem, self.options.steps
        n, t = problem.n_examples, problem.n_targets
        # the path follows one target's gradients: each (example, target) pair is an example of its own, row n*t + j
        rows = torch.arange(n, device=problem.targets.device).repeat_interleave(t)
        pairs = problem.with_examples([x.index_select(0, rows.to(x.device)) for x in problem.inputs],
                                      [b.index_select(0, rows.to(b.device)) for b in problem.baselines], rows)
        pairs = replace(pairs, targets=problem.targets.reshape(-1, 1),
                        rather_than=None if problem.rather_than is None else problem.rather_than.reshape(-1, 1))
        evaluator = context.on(pairs).evaluator(planned_points=steps + 1)
        shapes = [x.shape[1:] for x in pairs.inputs]

        def per_input(flat):  # [M, D] float64 -> per input [M, ...], in the inputs' dtype
            parts = flat.split([math.prod(s) for s in shapes], dim=1)
            return [p.reshape(-1, *s).to(v.dtype) for p, s, v in zip(parts, shapes, pairs.inputs)]

        # the path is kept in float64, as PAIR keeps it: it is compared with its goals to 1e-9
        start, end = flatten(pairs.baselines), flatten(pairs.inputs)
        x, attributions, path_scores = start.clone(), torch.zeros_like(start), []
        for step in range(steps):
            passed = evaluator.evaluate([p.unsqueeze(0) for p in per_input(x)])
            path_scores.append(passed.score[0])
            gradient = flatten([g[0, 0] for g in passed.gradients])
            moved = self.advance(x, gradient, start, end, (step + 1) / steps)
            attributions += (moved - x) * gradient  # the gradient is held for the whole step: a left Riemann sum
            x = moved
        at_input = evaluator.evaluate([v.unsqueeze(0) for v in pairs.inputs])
        path_scores.append(at_input.score[0])

        def per_target(tensor):  # [M, ...] with M = N*T pairs -> [T, N, ...]
            return tensor.reshape(n, t, *tensor.shape[1:]).transpose(0, 1)

        maps = [per_target(a) for a in per_input(attributions)]
        scores = np.stack(path_scores).reshape(steps + 1, n, t)
        # F(input) - F(baseline), up to the Riemann error of the steps (which falls as 1/steps)
        return self.result(context, maps, scores[-1], scores[0], steps + 1,
                           path_alphas=np.arange(steps + 1) / steps,  # the share of the L1 distance covered
                           path_scores=scores, gradient_at_input=[per_target(g[0, 0]) for g in at_input.gradients])

    def advance(self, x, gradient, start, end, alpha):
        """x [M, D] moved until its L1 distance to `end` is (1 - alpha) of the whole way: features that fell behind
        alpha - max_dist first catch up to it, then the features with the smallest |gradient| move towards
        alpha + max_dist, as far as needed."""
        o = self.options
        difference = end - start
        alpha_low, alpha_high = max(alpha - o.max_dist, 0.0), min(alpha + o.max_dist, 1.0)
        lowest, highest = start + difference * alpha_low, start + difference * alpha_high
        goal = difference.abs().sum(1) * (1 - alpha)
        rank = math.floor((x.shape[1] - 1) * o.fraction)  # numpy's quantile(..., method="lower")
        moving = torch.ones(len(x), dtype=torch.bool, device=x.device)
        while bool(moving.any()):
            # a feature with nowhere to go has alpha 0/0 = nan: never behind
            behind = moving[:, None] & ((x - start) / difference < alpha_low)
            x = torch.where(behind, lowest, x)
            remaining = (x - end).abs().sum(1)
            moving &= (remaining - goal).abs() > (CLOSE * torch.maximum(remaining, goal)).clamp(min=CLOSE)
            steepness = torch.where(x == highest, torch.inf, gradient.abs())  # features at the limit stay
            threshold = steepness.kthvalue(rank + 1, dim=1, keepdim=True).values
            chosen = moving[:, None] & (steepness <= threshold) & (steepness < torch.inf)
            reducible = ((x - highest).abs() * chosen).sum(1)
            share = (remaining - goal) / reducible  # of the chosen features' way to their limit
            x = torch.where(chosen & (share[:, None] > 1), highest, x)
            x = torch.where(chosen & (share[:, None] <= 1), x + (highest - x) * share[:, None], x)
            moving &= (share > 1) & (reducible > 0)  # a row with nothing left to move stops rather than loop
        return x


def flatten(tensors) -> torch.Tensor:
    """Per input [M, ...] -> [M, D] float64: the features of all inputs side by side."""
    return torch.cat([v.reshape(v.shape[0], -1).double() for v in tensors], dim=1)
