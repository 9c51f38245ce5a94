"""The path scan: one batched pass over points of the counterfactual path gives everything.

For each evaluated alpha it records, per example and target: F (the trend), the forward's raw
output, the path derivative sum_i dF/dx_i * (x_i - b_i) (whose integral is F(x) - F(b), which the
adaptive rule uses to measure each interval's exact error), summaries of the interior gradient, and,
for the alphas the caller keeps, the whole interior gradient. A fixed rule's weighted sum of gradients is
accumulated on the fly; the adaptive rule, whose weights change as it refines, writes every point's gradient
to a GradientStore on disk and weighs them when asked (`weigh`). Either way memory follows the batch size,
not the step count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..evaluator import GradientEvaluator
from .gradient_store import GradientStore


@dataclass
class PointRecord:
    """What one alpha gave, all float64 numpy [N, T] except the optional tensors."""

    score: np.ndarray
    raw_score: np.ndarray
    path_derivative: np.ndarray
    grad_abs_mean: np.ndarray
    grad_sum: np.ndarray
    gradients: tuple[torch.Tensor, ...] | None  # each [T, N, ...], kept alphas only
    activation: torch.Tensor | None  # [N, D] of the observed layer


class PathScan:
    """Evaluates path points in chunks and keeps a record per alpha; never evaluates an alpha twice."""

    def __init__(self, evaluator: GradientEvaluator, keep_alphas: set[float] = frozenset(), keep_all: bool = False,
                 store_gradients: bool = False):
        self.problem = problem = evaluator.problem
        self.evaluator = evaluator
        self.keep_alphas = set(keep_alphas)
        self.keep_all = keep_all
        # every point's gradient, for weights decided later; kept ones are in the records already
        self.stored = GradientStore() if store_gradients and not keep_all else None
        self.records: dict[float, PointRecord] = {}
        self.integral = [torch.zeros((problem.n_targets, *x.shape), dtype=x.dtype, device=x.device)
                         for x in problem.inputs]
        self.nonfinite_alphas: list[float] = []
        self.differences = [x - b for x, b in zip(problem.inputs, problem.baselines)]
        self.n_features = sum(d[0].numel() for d in self.differences)

    def evaluate(self, alphas, weights=None) -> None:
        """Evaluate the alphas not yet seen; add weights[k] * gradient to the running integral."""
        alphas = np.asarray(alphas, dtype=np.float64)
        weights = np.zeros_like(alphas) if weights is None else np.asarray(weights, dtype=np.float64)
        seen = set(self.records)
        fresh = [i for i, a in enumerate(map(float, alphas)) if not (a in seen or seen.add(a))]
        alphas, weights = alphas[fresh], weights[fresh]
        self.evaluator.run_in_chunks(len(alphas), lambda start, stop, measuring: self._evaluate_chunk(
            alphas[start:stop], weights[start:stop], measuring))

    def weigh(self, alphas, weights) -> None:
        """Set the integral to sum_k weights[k] * gradient(alphas[k]) (the adaptive rule's current sum)."""
        for integral in self.integral:
            integral.zero_()
        for alpha, weight in zip(map(float, alphas), weights):
            gradients = self.records[alpha].gradients
            if gradients is None:
                gradients = self.stored.get(alpha, self.integral[0].device)
            for integral, grad in zip(self.integral, gradients):
                integral.add_(grad.to(integral.device), alpha=float(weight))

    def close(self) -> None:
        if self.stored is not None:
            self.stored.close()

    def _evaluate_chunk(self, alphas: np.ndarray, weights: np.ndarray, measuring: bool = False) -> None:
        p = self.problem
        k, n = len(alphas), p.n_examples
        device = p.inputs[0].device
        points = []
        for x, b, d in zip(p.inputs, p.baselines, self.differences):
            a = torch.as_tensor(alphas, dtype=x.dtype, device=device)  # rounded once, to this input's dtype
            point = b.unsqueeze(0) + a.view((k,) + (1,) * x.dim()) * d.unsqueeze(0)
            points.append(point.reshape(k * n, *x.shape[1:]))
        passed = self.evaluator.gradient_pass(points, k, measuring)
        stacked = passed.gradients  # per input [t, k, n, ...]
        contributions = [torch.tensordot(torch.as_tensor(weights, dtype=g.dtype, device=device), g.transpose(0, 1),
                                         dims=1) for g in stacked]

        def per_point(values):  # [t, k, n, ...] -> summed over features -> [k, n, t]
            return values.reshape(*values.shape[:3], -1).sum(-1).permute(1, 2, 0)

        path_derivative = sum(per_point(g * d.unsqueeze(0).unsqueeze(0)) for g, d in zip(stacked, self.differences))
        # one device-to-host copy of the summaries per chunk: per-alpha copies would each wait for the GPU
        summaries = torch.stack([path_derivative.double(), sum(per_point(g.abs()) for g in stacked).double(),
                                 sum(per_point(g) for g in stacked).double()]).detach().cpu().numpy()
        derivative, grad_abs_sum, grad_sum = summaries
        finite = (np.isfinite(passed.score).all(axis=(1, 2)) & np.isfinite(derivative).all(axis=(1, 2)))
        records = {alpha: PointRecord(
            score=passed.score[j], raw_score=passed.raw_score[j], path_derivative=derivative[j],
            grad_abs_mean=grad_abs_sum[j] / self.n_features, grad_sum=grad_sum[j],
            gradients=tuple(g[:, j].clone() for g in stacked) if self.keep_all or alpha in self.keep_alphas else None,
            activation=passed.activation[j].clone() if passed.activation is not None else None,
        ) for j, alpha in enumerate(map(float, alphas))}
        # commit only now, with in-place adds that allocate nothing: an out-of-memory error anywhere above
        # leaves the scan untouched, so the halved retry of this chunk cannot count it twice
        for integral, contribution in zip(self.integral, contributions):
            integral.add_(contribution)
        if self.stored is not None:
            for j, alpha in enumerate(map(float, alphas)):
                if records[alpha].gradients is None:
                    self.stored.put(alpha, tuple(g[:, j] for g in stacked))
        self.records.update(records)
        self.nonfinite_alphas.extend(a for j, a in enumerate(records) if not finite[j])
