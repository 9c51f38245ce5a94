"""The path scan: one batched pass over points of the counterfactual path gives everything.

For each evaluated alpha it records, per example and target: F (the trend), the forward's raw
output, the path derivative sum_i dF/dx_i * (x_i - b_i) (whose integral is F(x) - F(b), which the
adaptive rule uses to measure each interval's exact error), summaries of the interior gradient, and,
for the alphas the caller keeps, the whole interior gradient. A fixed rule's weighted sum of gradients is
accumulated on the fly; the adaptive rule, whose weights change as it refines, writes every point's gradient
to a GradientStore on disk and weighs them when asked (`weigh`). Either way memory follows the batch size,
not the step count.

Every example is evaluated at the alphas given to `evaluate`; `evaluate_each` evaluates each of some examples at its
own alphas, together, so that the adaptive rule can refine each example of a batch on its own grid. An alpha's record
then holds NaN for the examples not evaluated there (`PointRecord.examples` says which were).
"""
from __future__ import annotations

import dataclasses
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
    examples: np.ndarray  # bool [N]: the examples evaluated at this alpha (the others' rows are NaN)

    @classmethod
    def unevaluated(cls, n: int, t: int, keep: tuple[torch.Tensor, ...] | None,
                    activation: torch.Tensor | None) -> "PointRecord":
        """A record of no example yet, shaped for n examples, t targets; `keep` and `activation` are rows of an
        evaluated chunk, whose shapes the zero gradients and NaN activations take for all n examples."""
        nan = lambda: np.full((n, t), np.nan)
        gradients = None if keep is None else tuple(g.new_zeros((g.shape[0], n, *g.shape[1:])) for g in keep)
        layer = None if activation is None else activation.new_full((n, *activation.shape), float("nan"))
        return cls(nan(), nan(), nan(), nan(), nan(), gradients, layer, np.zeros(n, dtype=bool))

    def fill(self, row: int, score, raw_score, path_derivative, grad_abs_mean, grad_sum, gradients, activation):
        """Example `row`'s values, from one evaluated point."""
        for name, value in (("score", score), ("raw_score", raw_score), ("path_derivative", path_derivative),
                            ("grad_abs_mean", grad_abs_mean), ("grad_sum", grad_sum)):
            getattr(self, name)[row] = value
        if self.gradients is not None:
            for kept, gradient in zip(self.gradients, gradients):
                kept[:, row] = gradient
        if self.activation is not None:
            self.activation[row] = activation
        self.examples[row] = True


class PathScan:
    """Evaluates path points in chunks and keeps a record per alpha; never evaluates an alpha of an example twice."""

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
        """Evaluate every example at the alphas not yet seen; add weights[k] * gradient to the running integral."""
        alphas = np.asarray(alphas, dtype=np.float64)
        weights = np.zeros_like(alphas) if weights is None else np.asarray(weights, dtype=np.float64)
        seen = set(self.records)
        fresh = [i for i, a in enumerate(map(float, alphas)) if not (a in seen or seen.add(a))]
        alphas, weights = alphas[fresh], weights[fresh]
        rows = np.arange(self.problem.n_examples)
        self.evaluator.run_in_chunks(len(alphas), lambda start, stop, measuring: self._evaluate_chunk(
            np.repeat(alphas[start:stop, None], len(rows), axis=1), weights[start:stop], rows, measuring))

    def evaluate_each(self, alphas_of: dict[int, np.ndarray]) -> None:
        """Evaluate each example n of alphas_of at its own alphas alphas_of[n], the examples together: the batches
        hold (example, alpha) pairs, as many as the batch size allows, so that an example refined at a few points
        does not wait for one refined at many. Nothing enters the running integral: `weigh` sets it."""
        pairs = sorted({(n, float(a)) for n, alphas in alphas_of.items() for a in alphas
                        if not (float(a) in self.records and self.records[float(a)].examples[n])})
        rows = np.array([n for n, _ in pairs], dtype=np.int64)
        alphas = np.array([a for _, a in pairs], dtype=np.float64)

        def evaluate_pairs(start: int, stop: int, measuring: bool) -> None:
            chosen = rows[start:stop]
            part = self.problem.with_examples([x[chosen] for x in self.problem.inputs],
                                              [b[chosen] for b in self.problem.baselines], chosen)
            with self.evaluator.on_problem(part):
                self._evaluate_chunk(alphas[None, start:stop], None, chosen, measuring)

        self.evaluator.run_in_chunks(len(pairs), evaluate_pairs, rows_per_point=1)

    def weigh(self, grids: list[np.ndarray], weights: list[np.ndarray]) -> None:
        """Set each example n's integral to sum_k weights[n][k] * gradient(grids[n][k]) (the adaptive rule's
        current sums), reading each alpha's stored gradients once."""
        for integral in self.integral:
            integral.zero_()
        uses: dict[float, list[tuple[int, float]]] = {}
        for n, (grid, grid_weights) in enumerate(zip(grids, weights)):
            for alpha, weight in zip(map(float, grid), grid_weights):
                uses.setdefault(alpha, []).append((n, float(weight)))
        for alpha in sorted(uses):  # each example's terms in its grid's order, as when it is scanned alone
            examples = uses[alpha]
            whole = self.records[alpha].gradients
            if whole is None and alpha in self.stored:
                whole = self.stored.get(alpha, self.integral[0].device)
            for n, weight in examples:
                gradients = ([g[:, n] for g in whole] if whole is not None
                             else self.stored.get((alpha, n), self.integral[0].device))
                for integral, grad in zip(self.integral, gradients):
                    integral[:, n].add_(grad.to(integral.device), alpha=weight)

    def close(self) -> None:
        if self.stored is not None:
            self.stored.close()

    def _evaluate_chunk(self, alphas: np.ndarray, weights: np.ndarray | None, rows: np.ndarray,
                        measuring: bool = False) -> None:
        """Evaluate the examples `rows` of the whole problem (the evaluator's problem holds them, in this order),
        example rows[j] at alphas[:, j]; weights [k]: add weights[i] * gradient at alphas[i] to the integral, where
        every example is at the same alphas."""
        p = self.evaluator.problem  # the whole problem, or the part holding `rows`
        k, n = alphas.shape
        device = p.inputs[0].device
        differences = self.differences if p is self.problem else [x - b for x, b in zip(p.inputs, p.baselines)]
        points = []
        for x, b, d in zip(p.inputs, p.baselines, differences):
            a = torch.as_tensor(alphas, dtype=x.dtype, device=device)  # rounded once, to this input's dtype
            point = b.unsqueeze(0) + a.view((k, n) + (1,) * (x.dim() - 1)) * d.unsqueeze(0)
            points.append(point.reshape(k * n, *x.shape[1:]))
        passed = self.evaluator.gradient_pass(points, k, measuring)
        stacked = passed.gradients  # per input [t, k, n, ...]
        contributions = None if weights is None else [
            torch.tensordot(torch.as_tensor(weights, dtype=g.dtype, device=device), g.transpose(0, 1), dims=1)
            for g in stacked]

        def per_point(values):  # [t, k, n, ...] -> summed over features -> [k, n, t]
            return values.reshape(*values.shape[:3], -1).sum(-1).permute(1, 2, 0)

        path_derivative = sum(per_point(g * d.unsqueeze(0).unsqueeze(0)) for g, d in zip(stacked, differences))
        # one device-to-host copy of the summaries per chunk: per-alpha copies would each wait for the GPU
        summaries = torch.stack([path_derivative.double(), sum(per_point(g.abs()) for g in stacked).double(),
                                 sum(per_point(g) for g in stacked).double()]).detach().cpu().numpy()
        derivative, grad_abs_sum, grad_sum = summaries
        finite = np.isfinite(passed.score).all(axis=2) & np.isfinite(derivative).all(axis=2)  # [k, n]
        # build the new records first and commit them only at the end, with in-place adds that allocate nothing:
        # an out-of-memory error anywhere above leaves the scan untouched, so the halved retry of this chunk
        # cannot count it twice
        records = {alpha: self.records.get(alpha) for alpha in map(float, np.unique(alphas))}
        fresh, nonfinite = [], set()
        for i in range(k):
            for j, row in enumerate(rows):
                alpha = float(alphas[i, j])
                keep = self.keep_all or alpha in self.keep_alphas
                if records[alpha] is None:
                    records[alpha] = PointRecord.unevaluated(
                        self.problem.n_examples, p.n_targets, tuple(g[:, i, j] for g in stacked) if keep else None,
                        None if passed.activation is None else passed.activation[i, j])
                records[alpha] = copied_if_committed(records[alpha], self.records.get(alpha))
                records[alpha].fill(row, passed.score[i, j], passed.raw_score[i, j], derivative[i, j],
                                    grad_abs_sum[i, j] / self.n_features, grad_sum[i, j],
                                    tuple(g[:, i, j] for g in stacked) if keep else None,
                                    None if passed.activation is None else passed.activation[i, j])
                fresh.append((alpha, i, j, row, keep))
                if not finite[i, j]:
                    nonfinite.add(alpha)
        if contributions is not None:
            for integral, contribution in zip(self.integral, contributions):
                integral.add_(contribution)
        if self.stored is not None:
            self._store(stacked, alphas, rows, [(alpha, i, j, row) for alpha, i, j, row, keep in fresh if not keep])
        self.records.update(records)
        self.nonfinite_alphas.extend(sorted(nonfinite - set(self.nonfinite_alphas)))

    def _store(self, stacked, alphas: np.ndarray, rows: np.ndarray, fresh: list[tuple]) -> None:
        """Write the fresh points' gradients: an alpha evaluated for every example at once as one slab [T, N, ...]
        under its alpha, any other under (alpha, example)."""
        fresh_at = {}
        for alpha, i, j, row in fresh:
            fresh_at.setdefault(i, []).append((alpha, j, row))
        for i, points in fresh_at.items():
            if len(points) == self.problem.n_examples and len({alpha for alpha, _, _ in points}) == 1:
                self.stored.put(points[0][0], tuple(g[:, i] for g in stacked))
                continue
            for alpha, j, row in points:
                self.stored.put((alpha, int(row)), tuple(g[:, i, j] for g in stacked))


def copied_if_committed(record: PointRecord, committed: PointRecord | None) -> PointRecord:
    """The record to fill: a copy where it is the scan's own already, so that a failing chunk changes nothing."""
    if record is not committed:
        return record
    return dataclasses.replace(
        record, score=record.score.copy(), raw_score=record.raw_score.copy(),
        path_derivative=record.path_derivative.copy(), grad_abs_mean=record.grad_abs_mean.copy(),
        grad_sum=record.grad_sum.copy(), examples=record.examples.copy(),
        gradients=None if record.gradients is None else tuple(g.clone() for g in record.gradients),
        activation=None if record.activation is None else record.activation.clone())
