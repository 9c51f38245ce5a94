"""IDGI (Yang, Wang and Bilen, CVPR 2023): integrated gradients without the noise of the gradient's directions
orthogonal to it. On each step of the straight line the score's change d_i = F(x_{i+1}) - F(x_i) is shared out
among the features in proportion to g_i * g_i, the squared gradient at the step's start, so that the attributions
add up to F(input) - F(baseline) exactly, whatever the number of steps.

The paper shares it among all the features, those the path does not move (input == baseline) too, though they cannot
have caused it. With moving_only they get nothing, as in integrated gradients. The paper's images move nearly every
pixel; a molecule's baseline keeps its structure columns and a one-hot column is zero at both ends, and there the
paper's rule gave such columns 98% of the map, which then stayed the same when the model's weights were randomised
(so the molecules family turns moving_only on)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .base import AttributionMethod, MethodContext


def add_steps(totals: list[torch.Tensor], squares: list[torch.Tensor], changes: np.ndarray) -> None:
    """totals[i] [T, N, ...] += sum over steps k of squares_k / sum(squares_k) * changes_k, the sum taken over the
    features of all inputs; squares per input [T, K, N, ...], changes [K, N, T]. A flat step adds nothing."""
    norms = sum(s.reshape(*s.shape[:3], math.prod(s.shape[3:])).sum(-1) for s in squares)  # [T, K, N]
    changes = torch.as_tensor(changes, dtype=norms.dtype, device=norms.device).permute(2, 0, 1)
    shares = torch.where(norms > 0, changes / norms, torch.zeros_like(norms))
    for total, s in zip(totals, squares):
        total += (s * shares.view(*shares.shape, *(1,) * (s.dim() - 3))).sum(1)


class IDGI(AttributionMethod):
    name = "idgi"
    label = "IDGI (important direction IG)"

    @dataclass(frozen=True)
    class Options:
        steps: int = 64  # uniform intervals of the straight line
        moving_only: bool = False  # share each step among the features the path moves only (module docstring)

    def __init__(self, **options):
        super().__init__(**options)
        if self.options.steps < 1:
            raise ValueError(f"IDGI needs steps >= 1, got {self.options.steps}")

    def compute(self, context: MethodContext):
        problem, steps = context.problem, self.options.steps
        n = problem.n_examples
        alphas = np.linspace(0.0, 1.0, steps + 1)
        evaluator = context.evaluator(planned_points=steps + 1)
        differences = [x - b for x, b in zip(problem.inputs, problem.baselines)]
        # who shares a step's change: [N, ...] 1 where the path moves, or all (1.0, an exact product)
        sharing = [(d != 0).double() if self.options.moving_only else 1.0 for d in differences]
        # float64 shares: the features' shares of a step must add up to 1 well below float32 rounding
        totals = [torch.zeros((problem.n_targets, *x.shape), dtype=torch.float64, device=x.device)
                  for x in problem.inputs]
        scores = np.empty((steps + 1, n, problem.n_targets))
        carried = None  # squared gradient at the last node evaluated: its step ends in the next chunk
        start = 0
        while start <= steps:
            # nodes by the batch, so that memory follows the batch size, not the step count
            stop = min(start + max(evaluator.max_batch // n, 1), steps + 1)
            passed = evaluator.evaluate([b + torch.as_tensor(alphas[start:stop], dtype=d.dtype, device=d.device).view(
                -1, *(1,) * d.dim()) * d for b, d in zip(problem.baselines, differences)])  # [K, N, ...] each
            scores[start:stop] = passed.score
            squares = [g.double() ** 2 * m for g, m in zip(passed.gradients, sharing)]
            if carried is not None:
                squares = [torch.cat([c, s], 1) for c, s in zip(carried, squares)]
            add_steps(totals, [s[:, :-1] for s in squares], np.diff(scores[max(start - 1, 0):stop], axis=0))
            carried = [s[:, -1:].clone() for s in squares]
            last_gradient = [g[:, -1].clone() for g in passed.gradients]
            start = stop
        maps = [total.to(x.dtype) for total, x in zip(totals, problem.inputs)]
        return self.result(context, maps, scores[-1], scores[0], steps + 1, path_alphas=alphas, path_scores=scores,
                           gradient_at_input=last_gradient)
