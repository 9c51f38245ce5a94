"""The path scan: one batched pass over points of the counterfactual path gives everything.

For each evaluated alpha it records, per example and target: F (the trend), the forward's raw
output, the path derivative sum_i dF/dx_i * (x_i - b_i) (whose integral is F(x) - F(b), which the
adaptive rule uses to measure each interval's exact error), summaries of the interior gradient, and,
for the alphas the caller keeps, the whole interior gradient. The weighted sum of gradients for the
integral is accumulated on the fly, so memory follows the batch size, not the step count.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

OUTPUT_TRANSFORMS = {
    "identity": lambda raw: raw,
    "softmax": lambda raw: torch.softmax(raw, dim=-1),
    "log_softmax": lambda raw: torch.log_softmax(raw, dim=-1),
    "sigmoid": torch.sigmoid,
}


# A batch needs the tensors autograd saves for the backward pass, plus about as much again for the
# gradients flowing back and the activations in flight
MEMORY_PER_SAVED_BYTE = 2.0


class _SavedBytes(torch.autograd.graph.saved_tensors_hooks):
    """Counts the bytes autograd saves during a forward pass that depend on the path points (each storage once,
    frozen weights left out): the memory a batch holds per point."""

    def __init__(self):
        self.total, self._seen = 0, set()
        super().__init__(self._pack, lambda tensor: tensor)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if tensor.requires_grad and storage.data_ptr() not in self._seen:
            self._seen.add(storage.data_ptr())
            self.total += storage.nbytes()
        return tensor


@dataclass
class PathProblem:
    """One attribution request, already on the engine's device."""

    forward: Callable[..., torch.Tensor]
    inputs: tuple[torch.Tensor, ...]  # each [N, ...]
    baselines: tuple[torch.Tensor, ...]  # same shapes
    targets: torch.Tensor  # long [N, T]
    output: str = "identity"
    amp_dtype: torch.dtype | None = None
    layer: torch.nn.Module | None = None

    def __post_init__(self):
        self.target_range = (int(self.targets.min()), int(self.targets.max()))  # checked once, not per chunk

    @property
    def n_examples(self) -> int:
        return self.inputs[0].shape[0]

    @property
    def n_targets(self) -> int:
        return self.targets.shape[1]


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

    def __init__(
        self,
        problem: PathProblem,
        max_batch: int,
        keep_alphas: set[float] = frozenset(),
        keep_all: bool = False,
        progress: Callable[[float], None] | None = None,
        planned_points: int = 1,
        device_lock: contextlib.AbstractContextManager | None = None,
        memory_budget: int | None = None,
    ):
        self.problem = problem
        self.max_batch = max(int(max_batch), 1)
        self.device_lock = device_lock or contextlib.nullcontext()
        self.memory_budget = memory_budget  # bytes a batch may need; None: max_batch alone decides
        self.bytes_per_point: float | None = None  # measured on the first chunk
        self.keep_alphas = set(keep_alphas)
        self.keep_all = keep_all
        self.progress = progress
        self.planned_points = max(planned_points, 1)
        self.records: dict[float, PointRecord] = {}
        self.integral = [torch.zeros((problem.n_targets, *x.shape), dtype=torch.float32, device=x.device)
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
        n = self.problem.n_examples
        start = 0
        while start < len(alphas):
            measuring = self.memory_budget is not None and self.bytes_per_point is None
            per_chunk = 1 if measuring else max(self.max_batch // n, 1)
            stop = min(start + per_chunk, len(alphas))
            try:
                with self.device_lock:  # per chunk: scans from several sessions interleave
                    self._evaluate_chunk(alphas[start:stop], weights[start:stop], measuring)
            except torch.cuda.OutOfMemoryError:
                if per_chunk == 1:
                    raise
                self.max_batch = max(self.max_batch // 2, 1)  # halve and retry this chunk
                torch.cuda.empty_cache()
                continue
            start = stop
            if self.progress is not None:
                self.progress(min(len(self.records) / self.planned_points, 1.0))

    def add_weighted(self, alpha: float, weight: float) -> None:
        """Add weight * (kept) gradient at alpha to the integral (the adaptive rule's final sum)."""
        for integral, grad in zip(self.integral, self.records[alpha].gradients):
            integral.add_(grad.to(integral.device), alpha=weight)

    def _evaluate_chunk(self, alphas: np.ndarray, weights: np.ndarray, measuring: bool = False) -> None:
        p = self.problem
        k, n, t = len(alphas), p.n_examples, p.n_targets
        device = p.inputs[0].device
        a = torch.as_tensor(alphas, dtype=torch.float32, device=device)
        points = []
        for x, b, d in zip(p.inputs, p.baselines, self.differences):
            shape = (k,) + (1,) * x.dim()
            point = b.unsqueeze(0) + a.view(shape) * d.unsqueeze(0)
            points.append(point.reshape(k * n, *x.shape[1:]).requires_grad_(True))

        activations = []
        scanning_thread = threading.get_ident()

        def record(_module, _inputs, out):  # only this scan's forward: others may share the model
            if threading.get_ident() == scanning_thread:
                activations.append(out.detach())

        hook = p.layer.register_forward_hook(record) if p.layer is not None else None
        autocast = (torch.autocast(device.type, dtype=p.amp_dtype) if p.amp_dtype is not None
                    else contextlib.nullcontext())
        saved = _SavedBytes() if measuring else contextlib.nullcontext()
        try:
            with torch.enable_grad():
                with autocast, saved:
                    raw = p.forward(*points)
                if raw.dim() != 2 or raw.shape[0] != k * n:
                    raise ValueError(f"forward must return scores [batch, classes]; for a batch of {k * n} "
                                     f"it returned shape {tuple(raw.shape)}")
                raw = raw.float()
                if not 0 <= p.target_range[0] <= p.target_range[1] < raw.shape[1]:
                    raise ValueError(f"target {p.targets.flatten().tolist()} is out of range for "
                                     f"{raw.shape[1]} outputs")
                score = OUTPUT_TRANSFORMS[p.output](raw)
                rows_targets = p.targets.repeat(k, 1)  # row r = alpha r // n, example r % n
                selected = score.gather(1, rows_targets)  # [k*n, t]
                grads = [torch.autograd.grad(selected[:, j].sum(), points, retain_graph=j < t - 1)
                         for j in range(t)]
        finally:
            if hook is not None:
                hook.remove()

        # stacked[i]: gradient wrt input i, [t, k, n, ...]
        stacked = [torch.stack([g[i] for g in grads]).float().view(t, k, n, *x.shape[1:]) if t > 1
                   else grads[0][i].float().view(1, k, n, *x.shape[1:])  # no copy for one target
                   for i, x in enumerate(p.inputs)]
        w = torch.as_tensor(weights, dtype=torch.float32, device=device)
        contributions = [torch.tensordot(w, g.transpose(0, 1), dims=1) for g in stacked]

        def per_point(values):  # [t, k, n, ...] -> summed over features -> [k, n, t]
            return values.flatten(3).sum(-1).permute(1, 2, 0)

        path_derivative = sum(per_point(g * d.unsqueeze(0).unsqueeze(0)) for g, d in zip(stacked, self.differences))
        # one device-to-host copy per chunk: per-alpha copies would each wait for the GPU
        summaries = torch.stack([selected.detach().view(k, n, t), raw.gather(1, rows_targets).view(k, n, t),
                                 path_derivative, sum(per_point(g.abs()) for g in stacked),
                                 sum(per_point(g) for g in stacked)]).detach().double().cpu().numpy()
        score, raw_score, derivative, grad_abs_sum, grad_sum = summaries
        finite = np.isfinite(score).all(axis=(1, 2)) & np.isfinite(derivative).all(axis=(1, 2))
        layer = activations[0].float().reshape(k, n, -1) if activations else None
        records = {alpha: PointRecord(
            score=score[j], raw_score=raw_score[j], path_derivative=derivative[j],
            grad_abs_mean=grad_abs_sum[j] / self.n_features, grad_sum=grad_sum[j],
            gradients=tuple(g[:, j].clone() for g in stacked) if self.keep_all or alpha in self.keep_alphas else None,
            activation=layer[j].clone() if layer is not None else None,
        ) for j, alpha in enumerate(map(float, alphas))}
        # commit only now, with in-place adds that allocate nothing: an out-of-memory error anywhere above
        # leaves the scan untouched, so the halved retry of this chunk cannot count it twice
        for integral, contribution in zip(self.integral, contributions):
            integral.add_(contribution)
        self.records.update(records)
        if measuring:
            self.bytes_per_point = MEMORY_PER_SAVED_BYTE * saved.total / (k * n)
            self.max_batch = min(self.max_batch, max(int(self.memory_budget // self.bytes_per_point), 1))
        self.nonfinite_alphas.extend(a for j, a in enumerate(records) if not finite[j])
