"""Batched gradients of F at any points: what every attribution method needs from the engine.

A method says which points to evaluate; the evaluator runs them in chunks of the engine's batch size, takes
the device lock per chunk (scans of several sessions interleave), halves the chunk on CUDA out-of-memory,
measures a chunk's memory when asked to, keeps host memory near what the largest chunk needed (on jemalloc),
applies mixed precision and reports progress.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .inputs import AttributionProblem, per_example
from .runtime import host_memory

OUTPUT_TRANSFORMS = {
    "identity": lambda raw: raw,
    "softmax": lambda raw: torch.softmax(raw, dim=-1),
    "log_softmax": lambda raw: torch.log_softmax(raw, dim=-1),
    "sigmoid": torch.sigmoid,
}

# A batch needs the tensors autograd saves for the backward pass, plus about as much again for the
# gradients flowing back and the activations in flight
MEMORY_PER_SAVED_BYTE = 2.0


# the outputs whose difference of two scores is a difference of the model's evidence for the two classes: logits, and
# log-probabilities, whose normaliser cancels; a difference of probabilities also moves with every other class
CONTRAST_OUTPUTS = ("identity", "log_softmax")


def check_output(output: str, contrast: bool = False) -> None:
    """Refuse an output transform that OUTPUT_TRANSFORMS does not define, or, for a request with a contrastive
    target, one that CONTRAST_OUTPUTS does not name."""
    if output not in OUTPUT_TRANSFORMS:
        raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUT_TRANSFORMS)}")
    if contrast and output not in CONTRAST_OUTPUTS:
        raise ValueError(f"a contrast (a target rather than another) explains a difference of two scores, which is a "
                         f"difference of the model's evidence only for logits or log-probabilities, not for output "
                         f"{output!r}: a difference of probabilities shrinks where they saturate (and a softmax's "
                         f"moves with every other class). Use output=\"identity\" (logits) or \"log_softmax\"")


class _SavedBytes(torch.autograd.graph.saved_tensors_hooks):
    """Counts the bytes autograd saves during a forward pass that depend on the points (each storage once,
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
class Gradients:
    """F and its gradients at K points per example: scores numpy float64 [K, N, T]; gradients per input
    [T, K, N, ...]."""

    score: np.ndarray
    raw_score: np.ndarray
    gradients: tuple[torch.Tensor, ...]
    activation: torch.Tensor | None  # [K, N, D] of the observed layer


class GradientEvaluator:
    """Runs forward and backward passes over chunks of points for one problem."""

    def __init__(self, problem: AttributionProblem, max_batch: int, device_lock=None, memory_budget: int | None = None,
                 progress: Callable[[float], None] | None = None, planned_points: int = 1):
        self.problem = problem
        self.max_batch = max(int(max_batch), 1)
        self.device_lock = device_lock or contextlib.nullcontext()
        self.memory_budget = memory_budget  # bytes a batch may need; None: max_batch alone decides
        self.bytes_per_point: float | None = None  # measured on the first chunk
        self.progress = progress
        self.planned_points = max(int(planned_points), 1)
        self.ceiling = host_memory.resident_ceiling() if problem.inputs[0].device.type == "cpu" else None
        self.points_done = 0

    @contextlib.contextmanager
    def on_problem(self, problem: AttributionProblem):
        """Evaluate `problem` (some of this one's examples) for a while, with this evaluator's batch size, memory
        reading and progress."""
        whole, self.problem = self.problem, problem
        try:
            yield self
        finally:
            self.problem = whole

    def run_in_chunks(self, count: int, evaluate_chunk: Callable[[int, int, bool], None],
                      rows_per_point: int | None = None) -> None:
        """evaluate_chunk(start, stop, measuring) for consecutive ranges of `count` points, as large as the batch
        allows; on a CPU allocator that keeps freed pages the rest in powers of two, since chunks of every size would
        fragment them. A chunk must leave nothing behind when it raises, so that its halved retry counts nothing
        twice. A point takes a batch row per example; rows_per_point=1: the points are (example, alpha) pairs, one
        row each, and progress counts each as 1 / N of a point. A batch holds max_batch rows, and at least one point
        of every example (as many rows as examples), whichever is more."""
        n = rows_per_point or self.problem.n_examples
        share = n / self.problem.n_examples  # of a point of every example
        floor = self.problem.n_examples  # rows a batch may hold whatever max_batch says, halved on out-of-memory
        start = 0
        while start < count:
            measuring = self.memory_budget is not None and self.bytes_per_point is None
            per_chunk = 1 if measuring else max(max(self.max_batch, floor) // n, 1)
            if self.ceiling is not None and count - start < per_chunk:  # few distinct shapes: ResidentCeiling
                per_chunk = 1 << ((count - start).bit_length() - 1)
            stop = min(start + per_chunk, count)
            try:
                with self.device_lock:  # per chunk: scans from several sessions interleave
                    evaluate_chunk(start, stop, measuring)
            except torch.cuda.OutOfMemoryError:
                if per_chunk == 1:
                    raise
                self.max_batch = max(self.max_batch // 2, 1)  # halve and retry this chunk
                floor = max(floor // 2, 1)
                torch.cuda.empty_cache()
                continue
            self.points_done += (stop - start) * share
            start = stop
            if self.ceiling is not None:
                self.ceiling.after_chunk(per_chunk)
            if self.progress is not None:
                self.progress(min(self.points_done / self.planned_points, 1.0))

    def gradient_pass(self, points: list[torch.Tensor], k: int, measuring: bool = False) -> Gradients:
        """One forward and backward pass over k points per example; points[i] is [k * n, ...], point-major."""
        p = self.problem
        n, t = p.n_examples, p.n_targets
        points = [x.requires_grad_(True) for x in points]
        activations = []
        scanning_thread = threading.get_ident()

        def record(_module, _inputs, out):  # only this scan's forward: others may share the model
            if threading.get_ident() == scanning_thread:
                activations.append(out.detach())

        hook = p.layer.register_forward_hook(record) if p.layer is not None else None
        saved = _SavedBytes() if measuring else contextlib.nullcontext()
        try:
            with torch.enable_grad():
                with self._autocast(), saved:
                    raw = p.forward(*points, *self._forward_args(k))
                selected, raw_selected = self._select(raw, k)
                grads = [torch.autograd.grad(selected[:, j].sum(), points, retain_graph=j < t - 1)
                         for j in range(t)]
        finally:
            if hook is not None:
                hook.remove()
        gradients = tuple(torch.stack([g[i] for g in grads]).view(t, k, n, *x.shape[1:]) if t > 1
                          else grads[0][i].view(1, k, n, *x.shape[1:])  # no copy for one target
                          for i, x in enumerate(p.inputs))
        gradients = tuple(g if g.dtype == x.dtype else g.to(x.dtype) for g, x in zip(gradients, p.inputs))
        if measuring:
            self.bytes_per_point = MEMORY_PER_SAVED_BYTE * saved.total / (k * n)
            self.max_batch = min(self.max_batch, max(int(self.memory_budget // self.bytes_per_point), 1))
        # one device-to-host copy for both: separate copies would each wait for the GPU
        scores = torch.stack([selected.detach().view(k, n, t), raw_selected.detach().view(k, n, t)])
        score, raw_score = scores.double().cpu().numpy()
        activation = activations[0].float().reshape(k, n, -1) if activations else None
        return Gradients(score, raw_score, gradients, activation)

    def _autocast(self):
        p = self.problem
        if p.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(p.inputs[0].device.type, dtype=p.amp_dtype)

    def _forward_args(self, k: int) -> tuple:
        """The forward args for k points per example: per-example tensors tiled like the points' rows."""
        n = self.problem.n_examples
        return tuple(a.repeat(k, *(1,) * (a.dim() - 1)) if per_example(a, n) else a for a in self.problem.forward_args)

    def _select(self, raw: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """F of the targets and the raw scores they come from, each [k * n, t], from the forward's output."""
        p = self.problem
        n = p.n_examples
        if raw.dim() == 1 and p.target_range == (0, 0):  # one score per example
            raw = raw.unsqueeze(1)
        if raw.dim() != 2 or raw.shape[0] != k * n:
            raise ValueError(f"forward must return scores [batch, classes] (or [batch] with target=None); for "
                             f"a batch of {k * n} it returned shape {tuple(raw.shape)}")
        if p.untargeted and raw.shape[1] != 1:
            raise ValueError(f"target=None needs a forward with one output per example ([batch] or [batch, 1]); "
                             f"this one returns {raw.shape[1]}: pass target (an int, a list of ints or per-example "
                             "targets)")
        if not raw.is_floating_point() or raw.dtype in (torch.float16, torch.bfloat16):
            raw = raw.float()
        if not 0 <= p.target_range[0] <= p.target_range[1] < raw.shape[1]:
            contrasts = "" if p.rather_than is None else f" rather than {p.rather_than.flatten().tolist()} (-1: none)"
            raise ValueError(f"target {p.targets.flatten().tolist()}{contrasts} is out of range for "
                             f"{raw.shape[1]} outputs")
        rows_targets = p.targets.repeat(k, 1)  # row r = point r // n, example r % n
        scores = OUTPUT_TRANSFORMS[p.output](raw)
        selected, raw_selected = scores.gather(1, rows_targets), raw.gather(1, rows_targets)
        if p.rather_than is None:
            return selected, raw_selected
        # a contrast's F is score[target] - score[rather_than]; a plain target (-1) subtracts nothing
        rows_others = p.rather_than.repeat(k, 1)
        plain, others = rows_others < 0, rows_others.clamp(min=0)
        return (selected - scores.gather(1, others).masked_fill(plain, 0.0),
                raw_selected - raw.gather(1, others).masked_fill(plain, 0.0))

    def scores(self, points: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> np.ndarray:
        """F at K points per example from forward passes alone: points[i] is [K, N, ...]; float64 [K, N, T]."""
        count, n, t = points[0].shape[0], self.problem.n_examples, self.problem.n_targets
        parts = []

        def chunk(start, stop, _measuring):
            flat = [x[start:stop].reshape((stop - start) * n, *x.shape[2:]) for x in points]
            with torch.no_grad(), self._autocast():
                raw = self.problem.forward(*flat, *self._forward_args(stop - start))
            parts.append(self._select(raw, stop - start)[0].view(stop - start, n, t).double().cpu().numpy())

        self.run_in_chunks(count, chunk)
        return np.concatenate(parts)

    def evaluate(self, points: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> Gradients:
        """F and gradients at K points per example: points[i] is [K, N, ...] like input i. The gradients of all
        K points are returned, so a method passes as many points as it can hold at once."""
        count = points[0].shape[0]
        n = self.problem.n_examples
        parts: list[Gradients] = []

        def chunk(start, stop, measuring):
            flat = [x[start:stop].reshape((stop - start) * n, *x.shape[2:]).detach() for x in points]
            parts.append(self.gradient_pass(flat, stop - start, measuring))

        self.run_in_chunks(count, chunk)
        if len(parts) == 1:
            return parts[0]
        activations = [g.activation for g in parts]
        return Gradients(np.concatenate([g.score for g in parts]), np.concatenate([g.raw_score for g in parts]),
                         tuple(torch.cat(grads, dim=1) for grads in zip(*(g.gradients for g in parts))),
                         torch.cat(activations) if activations[0] is not None else None)
