"""The attribution engine: one object, shared by every page and thread, that runs path scans.

It owns the device, the batch size (bounded by a memory budget measured on the first batch, halved on
CUDA out-of-memory), optional mixed precision, a fair lock that lets the scans of several sessions take
turns batch by batch, and an LRU cache of results keyed by an exact digest of the request. Models stay outside:
`forward` is any callable returning scores [batch, classes] (or [batch]).
"""
from __future__ import annotations

import hashlib
import numbers
import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from .evaluator import OUTPUT_TRANSFORMS, AttributionProblem, GradientEvaluator
from .fair_lock import FairLock
from .host_memory import return_freed_memory
from .methods import MethodContext, method as make_method
from .quadrature import RULES, path_points, trapezoid_weights
from .result import NOTHING_TO_ATTRIBUTE, Attribution, completeness_scale
from .scan import PathScan

AMP_DTYPES = {None: None, "none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
HALF_DTYPES = (torch.float16, torch.bfloat16)  # inputs in these are scanned in float32
REFINE_SHARE = 0.3  # each adaptive round bisects the worst intervals holding this share of the error
COARSE_INTERVALS = 5  # about this many intervals of the starting grid come first when partial results are wanted


@dataclass(frozen=True)
class PathOptions:
    """How the straight-line path is scanned (integrated gradients and the methods built on it)."""

    steps: int
    rule: str
    tolerance: float
    max_steps: int
    probe_alphas: tuple[float, ...]
    keep_all_gradients: bool
    multiply_by_inputs: bool = True  # False: the path-averaged gradient alone, which adds up to nothing


@dataclass(frozen=True)
class ScanRequest:
    """What decides a result besides the tensors: the cache key is derived from every field (and the path's), so an
    option added to `attribute` must be added here or to PathOptions (a test checks it) and cannot be left out of
    the key."""

    model_key: str
    path: PathOptions
    output: str
    layer: int  # id() of the observed module; the cache holds the module, so the id is not reused
    amp: str | None
    method: str
    method_options: tuple  # sorted (name, value) pairs
    forward_args: tuple  # per argument: a tensor's (dtype, shape) (its bytes are digested) or the value itself
    single_target: bool
    tuple_inputs: bool


class AttributionEngine:
    """Integrated and interior gradients along gamma(alpha) = baseline + alpha * (input - baseline)."""

    def __init__(self, device: str | torch.device | None = None, max_batch: int | None = None,
                 amp: str | None = None, cache_size: int = 256, cache_bytes: int = 1 << 30,
                 memory_budget: int | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # on the CPU small batches run as fast per point as large ones (32 MobileNetV2 points: 1.0 s in batches of 4,
        # 1.5 s in batches of 16) and keep the turns of a shared server short
        self.max_batch = int(max_batch or (128 if self.device.type == "cuda" else 4))
        if amp not in AMP_DTYPES:
            raise ValueError(f"amp must be one of {list(AMP_DTYPES)}, got {amp!r}")
        self.amp = amp
        self.cache_size, self.cache_bytes = cache_size, cache_bytes
        self._cache: OrderedDict[str, tuple[Attribution, object, int]] = OrderedDict()
        self._cached_bytes = 0
        self._cache_lock = threading.Lock()
        self._device_lock = FairLock()  # taken per batch of path points, first come first served
        self.memory_budget = int(memory_budget or _default_memory_budget(self.device))
        self._frozen: weakref.WeakSet = weakref.WeakSet()

    @property
    def device_name(self) -> str:
        if self.device.type == "cuda":
            return f"GPU: {torch.cuda.get_device_name(self.device)}"
        return f"CPU ({torch.get_num_threads()} threads)"

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move a model to the engine's device, in eval mode, with its parameters frozen."""
        model = model.to(self.device).eval()
        self.freeze(model)
        return model

    def freeze(self, forward) -> None:
        """Turn off the parameter gradients of forward's module (the scan needs only the inputs')."""
        module = forward if isinstance(forward, torch.nn.Module) else getattr(forward, "__self__", None)
        if isinstance(module, torch.nn.Module) and module not in self._frozen:
            module.requires_grad_(False)
            self._frozen.add(module)

    def attribute(
        self,
        forward: Callable[..., torch.Tensor],
        inputs: torch.Tensor | Sequence[torch.Tensor],
        target: int | Sequence[int] | Sequence[Sequence[int]] | torch.Tensor | np.ndarray | None = None,
        baseline: torch.Tensor | Sequence[torch.Tensor | float] | float | None = None,
        steps: int = 50,
        rule: str = "trapezoid",
        *,
        tolerance: float = 0.01,
        max_steps: int = 512,
        probe_alphas: Sequence[float] = (),
        keep_all_gradients: bool = False,
        output: str = "identity",
        layer: torch.nn.Module | None = None,
        model_key: str | None = None,
        progress: Callable[[float], None] | None = None,
        max_batch: int | None = None,
        amp: str | None = None,
        method: str = "integrated_gradients",
        method_options: dict | None = None,
        forward_args: object = (),
        multiply_by_inputs: bool = True,
        partial_results: Callable[[Attribution], bool | None] | None = None,
    ) -> Attribution:
        """Scan the path once and return attributions, trend, interior gradients and completeness.

        inputs: a tensor [N, ...] or a tuple of them (all scaled by the same alpha); N examples. A tensor [N] holds
            one scalar feature per example. float64 inputs are scanned in float64 throughout (a double model);
            float16 and bfloat16 inputs are scanned in float32, since path sums in half precision lose the
            completeness: keep a half-precision model's weights in float32 and pass amp="fp16" or "bf16" instead.
        target: which scores to attribute, one form per meaning:
            - an int, or a 0-d or one-element tensor: one target for every example;
            - a list (or tuple) of ints: several targets for every example, one scan (a leading target dimension);
            - per-example targets: a tensor [N] (one each), a tensor [N, T] or a list of N lists of T ints (T each);
            - None: the forward returns one score per example ([N] or [N, 1]); refused for several outputs.
            Unlike Captum, a list of N ints means N targets for every example: give per-example targets as a tensor.
        baseline: None (zeros), a number, or a tensor per input (a tuple for tuple inputs, where each entry may also
            be a number); a tensor may be shaped like the input, [1, ...] for every example, or the input's shape
            without the batch dimension.
        rule: one of quadrature.RULES; "adaptive" refines a trapezoid grid where the exact
            per-interval error is largest until |delta| <= tolerance * |F(input) - F(baseline)| or
            max_steps points, starting from `steps` uniform points.
        probe_alphas: extra alphas whose interior gradients are kept (evaluated in the same scan).
        output: transform of the forward's raw scores that defines F ("softmax", "identity", ...).
        layer: a module whose activations are compared with those at alpha = 1 (Figure 12).
        max_batch, amp: override the engine's path points per batch and mixed precision for this call; a
            max_batch above the engine's own is bounded by memory_budget, measured on a first one-point batch.
        method, method_options: an attribution method of ig_core.methods.METHODS and its options; integrated
            gradients by default. A method whose `reference_set` is set reads `baseline` as references [R, ...].
        forward_args: arguments passed to forward after the inputs and not scaled (Captum's additional_forward_args):
            a tuple, or one object (None: none). A tensor whose first dimension is N holds one row per example and
            follows its example through the batches; other tensors and objects are passed as they are. The cache
            key holds tensors by their bytes and numbers, strings, None and lists, tuples and dicts of them by
            value; any other object (a module, a callable) turns the cache off for the call, since its repr need
            not tell its contents.
        multiply_by_inputs: False gives the path-averaged gradient alone (Captum's "global" attribution), which
            adds up to no difference of scores: the result's completeness is None and its delta NaN. Integrated
            gradients only.
        partial_results: called with the result so far after each round of the adaptive rule (the starting grid
            first), its completeness error falling round by round, at no extra model cost; return False to stop
            and get that result back (`stopped_early`, not cached). Fixed rules and other methods never call it.
        """
        chosen = make_method(method, **(method_options or {}))
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
        if output not in OUTPUT_TRANSFORMS:
            raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUT_TRANSFORMS)}")
        amp = self.amp if amp is None else amp
        if amp not in AMP_DTYPES:
            raise ValueError(f"amp must be one of {list(AMP_DTYPES)}, got {amp!r}")
        if not 0 < tolerance < 1:
            raise ValueError(f"tolerance is relative and must lie in (0, 1), got {tolerance}")
        if not multiply_by_inputs and chosen.name != "integrated_gradients":
            raise ValueError(f"multiply_by_inputs=False applies to integrated_gradients (the straight-line scan), "
                             f"not to {chosen.name}")
        tuple_inputs = isinstance(inputs, (tuple, list))
        xs = self._inputs(inputs)
        bs = self._references(baseline, xs) if chosen.reference_set else baseline_tensors(baseline, xs)
        targets, single_target = self._targets(target, xs[0].shape[0])
        args = as_forward_args(forward_args, self.device)
        probes = tuple(sorted({float(a) for a in probe_alphas}))
        if any(not 0.0 <= a <= 1.0 for a in probes):
            raise ValueError(f"probe alphas must lie in [0, 1], got {probes}")

        args_key = _forward_args_key(args)
        path = PathOptions(int(steps), rule, float(tolerance), int(max_steps), probes, bool(keep_all_gradients),
                           bool(multiply_by_inputs))
        request = ScanRequest(model_key=model_key or f"id:{id(forward)}", path=path, output=output, layer=id(layer),
                              amp=amp, method=chosen.name, method_options=chosen.option_items(),
                              forward_args=args_key, single_target=single_target, tuple_inputs=tuple_inputs)
        arg_tensors = [a for a in args if isinstance(a, torch.Tensor)]
        keyable = self.cache_size > 0 and args_key is not None
        key = _digest((*xs, *bs, targets, *arg_tensors), request, target is None) if keyable else None
        cached = self._cache_get(key)
        if cached is not None:
            if progress is not None:
                progress(1.0)
            return cached

        self.freeze(forward)
        _check_precision(forward, xs)
        problem = AttributionProblem(forward, xs, bs, targets, output, AMP_DTYPES[amp], layer, args,
                                     untargeted=target is None)
        chosen.check(problem)
        def shaped(partial: Attribution):  # shaped like the final result: the caller's inputs and targets
            partial.tuple_inputs, partial.single_target = tuple_inputs, single_target
            return partial_results(partial)

        result = chosen.compute(MethodContext(self, problem, path, int(max_batch or self.max_batch), progress,
                                              shaped if partial_results is not None else None))
        if progress is not None:
            progress(1.0)
        result.tuple_inputs, result.single_target = tuple_inputs, single_target
        if not result.stopped_early:
            self._cache_put(key, result, (forward, layer))
        return_freed_memory()
        return result

    def completeness_delta(self, forward, inputs, attributions, target=None, baseline=None, output: str = "identity",
                           forward_args: object = ()) -> np.ndarray:
        """sum of attributions - (F(input) - F(baseline)) for attributions computed elsewhere (Captum's
        compute_convergence_delta), from two forward passes without gradients. inputs, target, baseline, output
        and forward_args as for attribute; attributions shaped like the inputs, with a leading target dimension
        for several targets. Returns float64 [N], or [N, T] for several targets."""
        if output not in OUTPUT_TRANSFORMS:
            raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUT_TRANSFORMS)}")
        xs = self._inputs(inputs)
        bs = baseline_tensors(baseline, xs)
        n = xs[0].shape[0]
        targets, single_target = self._targets(target, n)
        maps = tuple(attributions) if isinstance(attributions, (tuple, list)) else (attributions,)
        maps = tuple(torch.as_tensor(a).detach().unsqueeze(0) if single_target else torch.as_tensor(a).detach()
                     for a in maps)
        expected = [(targets.shape[1], *x.shape) for x in xs]
        if [tuple(a.shape) for a in maps] != expected:
            raise ValueError(f"attributions of shapes {[tuple(a.shape) for a in maps]} do not fit the inputs and "
                             f"targets: expected {[s[1:] if single_target else s for s in expected]}")
        args = as_forward_args(forward_args, self.device)
        problem = AttributionProblem(forward, xs, bs, targets, output, forward_args=args, untargeted=target is None)
        scores = self.evaluator(problem, self.max_batch).scores([torch.stack([x, b]) for x, b in zip(xs, bs)])
        total = sum(a.reshape(*a.shape[:2], -1).double().sum(-1).cpu() for a in maps).T.numpy()  # [N, T]
        delta = total - (scores[0] - scores[1])
        return delta[:, 0] if single_target else delta

    def evaluator(self, problem: AttributionProblem, max_batch: int, progress=None, planned_points: int = 1):
        """Batched gradients at any points of `problem`, under the engine's lock and memory budget."""
        return GradientEvaluator(problem, max_batch, self._device_lock, self._budget_for(max_batch), progress,
                                 planned_points)

    def _budget_for(self, max_batch: int) -> int | None:
        # the engine's own batch size is trusted; a larger one asked for a call is measured first
        return self.memory_budget if max_batch > self.max_batch else None

    def scan_path(self, problem: AttributionProblem, path: PathOptions, progress, max_batch: int,
                  partial_results=None) -> Attribution:
        """Integrated gradients along the straight line, with interior gradients, the trend and completeness;
        partial_results as for attribute."""
        steps, rule, tolerance, max_steps = path.steps, path.rule, path.tolerance, path.max_steps
        probes, keep_all = path.probe_alphas, path.keep_all_gradients
        adaptive = rule == "adaptive"
        if adaptive:
            planned = max(int(max_steps), int(steps))
        else:
            alphas, weights = path_points(rule, steps, probes)
            planned = len(alphas)
        if adaptive and steps < 2:
            raise ValueError(f"the adaptive rule starts from at least 2 points, got steps={steps}")
        scan = PathScan(problem, max_batch, keep_alphas=set(probes) | {1.0}, keep_all=keep_all,
                        store_gradients=adaptive, progress=progress, planned_points=planned,
                        device_lock=self._device_lock, memory_budget=self._budget_for(max_batch))

        def assemble(node_weights: dict, steps_used: int) -> Attribution:
            kept = set(probes) | {1.0} | (set(scan.records) if keep_all else set())
            result = _assemble(scan, node_weights, kept, rule, steps_used, path.multiply_by_inputs)
            result.extras.update(max_batch=scan.evaluator.max_batch, bytes_per_point=scan.evaluator.bytes_per_point)
            return result

        def on_grid(grid: np.ndarray) -> Attribution:  # the adaptive rule's trapezoid sum on its current grid
            weights = trapezoid_weights(grid)
            scan.weigh(grid, weights)
            return assemble(dict(zip(map(float, grid), weights)), len(grid))

        try:
            if not adaptive:
                scan.evaluate(alphas, weights)
                return assemble(dict(zip(map(float, alphas[:steps]), weights[:steps])), int(steps))
            go_on = None if partial_results is None else (lambda grid: partial_results(on_grid(grid)) is not False)
            uniform = np.linspace(0, 1, int(steps))
            # a caller waiting for pictures gets the first one from a coarse part of the starting grid
            stride = (len(uniform) - 1) // COARSE_INTERVALS
            coarse = np.union1d(uniform[::stride], [1.0]) if go_on is not None and stride > 1 else None
            grid, stopped = _refine_adaptively(scan, np.unique(np.concatenate([uniform, probes])), tolerance,
                                               max_steps, go_on, coarse)
            result = on_grid(grid)
            result.stopped_early = stopped
            return result
        finally:
            scan.close()

    def _inputs(self, inputs) -> tuple[torch.Tensor, ...]:
        """Inputs on the device, floating point to be scaled along the path; float64 stays float64."""
        xs = as_batches(inputs, self.device)
        for x in xs:
            if not x.is_floating_point():
                raise ValueError(f"inputs must be floating point to be scaled along the path, got {x.dtype}")
        return tuple(x.float() if x.dtype in HALF_DTYPES else x for x in xs)

    def _references(self, references, xs) -> tuple[torch.Tensor, ...]:
        if references is None or isinstance(references, (int, float)):
            raise ValueError("this method draws baselines from a reference set: pass baseline=tensor [R, ...] of "
                             "references shaped like the inputs (other photos, say)")
        rs = as_batches(references, self.device)
        if len(rs) != len(xs) or any(r.shape[1:] != x.shape[1:] for r, x in zip(rs, xs)):
            raise ValueError(f"references {[tuple(r.shape) for r in rs]} must be [R, ...] shaped like the inputs "
                             f"{[tuple(x.shape) for x in xs]} after the first dimension")
        return tuple(r.to(x.dtype) for r, x in zip(rs, xs))

    def _targets(self, target, n: int) -> tuple[torch.Tensor, bool]:
        """Targets [N, T] and whether one target was asked for (the result then has no target dimension)."""
        if target is None:  # the forward's only output; the evaluator refuses several
            return torch.zeros((n, 1), dtype=torch.long, device=self.device), True
        if _is_index(target):
            return torch.full((n, 1), int(target), dtype=torch.long, device=self.device), True
        if isinstance(target, (torch.Tensor, np.ndarray)):
            t = torch.as_tensor(target)
            if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise ValueError(f"targets must be integers, got a tensor of {t.dtype}")
            t = t.to(self.device, torch.long)
            if t.dim() == 1 and t.shape[0] == n:
                return t.view(n, 1), True
            if t.dim() == 2 and t.shape[0] == n and t.shape[1] > 0:
                return t, False
            if t.numel() == 1:  # 0-d or one element: every example's target
                return t.reshape(1, 1).expand(n, 1).contiguous(), True
            raise ValueError(f"a tensor of targets must have shape [{n}] or [{n}, T] (per example) or hold one "
                             f"target for all, got {tuple(t.shape)}")
        items = list(target) if isinstance(target, (list, tuple)) else []
        if items and all(_is_index(t) for t in items):
            return torch.tensor([[int(t) for t in items]] * n, dtype=torch.long, device=self.device), False
        if (len(items) == n and all(isinstance(t, (list, tuple)) for t in items)
                and len({len(t) for t in items}) == 1 and all(_is_index(j) for t in items for j in t) and items[0]):
            return torch.tensor([[int(j) for j in t] for t in items], dtype=torch.long, device=self.device), False
        raise ValueError(f"target must be an int (every example), a list of ints (several targets for every "
                         f"example), a list of {n} lists of T ints or a tensor [{n}] or [{n}, T] (per example), or "
                         f"None (a forward with one output); got {target!r}")

    def _cache_get(self, key):
        if key is None:
            return None
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key][0]
        return None

    def _cache_put(self, key, result, owners) -> None:
        if key is None:
            return
        size = result.nbytes()
        with self._cache_lock:
            if key in self._cache:
                self._cached_bytes -= self._cache.pop(key)[2]
            self._cache[key] = (result, owners, size)  # holding forward and layer keeps their ids from being reused
            self._cached_bytes += size
            while len(self._cache) > self.cache_size or (self._cached_bytes > self.cache_bytes and len(self._cache) > 1):
                self._cached_bytes -= self._cache.popitem(last=False)[1][2]

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()
            self._cached_bytes = 0


def _check_precision(forward, xs) -> None:
    """A module whose weights are all of one precision gets inputs of that precision: float64 inputs into a float32
    model would fail inside its forward with a message about matrices, not about the inputs."""
    module = forward if isinstance(forward, torch.nn.Module) else getattr(forward, "__self__", None)
    if not isinstance(module, torch.nn.Module):
        return
    weights = {p.dtype for p in module.parameters() if p.is_floating_point()}
    if len(weights) == 1:
        weight = weights.pop()
        for i, x in enumerate(xs):
            if {x.dtype, weight} == {torch.float32, torch.float64}:
                raise ValueError(f"input {i} is {x.dtype} but the model's weights are {weight}: pass inputs of the "
                                 f"model's precision (x.to({weight})) or convert the model (model.to({x.dtype}))")


def as_batches(inputs, device) -> tuple[torch.Tensor, ...]:
    """A tensor or a tuple of them, each [N, ...] with the same N, detached on `device`, dtypes kept."""
    xs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    if not xs:
        raise ValueError("inputs is empty")
    out = []
    for x in xs:
        x = torch.as_tensor(x)
        if x.dim() == 0:
            raise ValueError("each input needs a leading batch dimension, e.g. x.unsqueeze(0)")
        out.append(x.detach().to(device))
    if len({x.shape[0] for x in out}) != 1:
        raise ValueError(f"all inputs must share the batch dimension, got {[tuple(x.shape) for x in out]}")
    return tuple(out)


def baseline_tensors(baseline, xs) -> tuple[torch.Tensor, ...]:
    """One baseline per input, shaped and typed like it, from None (zeros), a number, or per input a number or a
    tensor that broadcasts to the input: [N, ...], [1, ...] or the input's shape without the batch dimension."""
    if baseline is None:
        baseline = 0.0
    parts = tuple(baseline) if isinstance(baseline, (tuple, list)) else (baseline,) * len(xs)
    if len(parts) != len(xs):
        raise ValueError(f"{len(xs)} inputs but {len(parts)} baselines")
    out = []
    for i, (x, b) in enumerate(zip(xs, parts)):
        if isinstance(b, numbers.Real):
            out.append(torch.full_like(x, float(b)))
            continue
        b = torch.as_tensor(b).detach().to(x.device, x.dtype)
        try:
            out.append(torch.broadcast_to(b, x.shape).contiguous())
        except RuntimeError:
            raise ValueError(f"baseline {i} of shape {tuple(b.shape)} does not fit input {i} of shape "
                             f"{tuple(x.shape)}: give a number, a tensor of the input's shape, [1, ...] for every "
                             "example, or the input's shape without the batch dimension") from None
    return tuple(out)


def as_forward_args(forward_args, device) -> tuple:
    """forward_args as a tuple (None: none; anything but a tuple: one argument), tensors detached on `device`."""
    args = () if forward_args is None else forward_args if isinstance(forward_args, tuple) else (forward_args,)
    return tuple(a.detach().to(device) if isinstance(a, torch.Tensor) else a for a in args)


def _forward_args_key(args: tuple) -> tuple | None:
    """The forward args in the cache key: a tensor's dtype and shape (its bytes go into the digest), a plain value
    itself; None when an argument's repr need not tell its contents (a module, a callable): no caching."""
    key = []
    for a in args:
        if isinstance(a, torch.Tensor):
            key.append(("tensor", str(a.dtype), tuple(a.shape)))
        elif _plain(a):
            key.append(a)
        else:
            return None
    return tuple(key)


def _plain(value) -> bool:
    """A value its repr tells exactly: numbers, strings, None, and lists, tuples and dicts of them."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return True
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


def _is_index(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _refine_adaptively(scan: PathScan, start: np.ndarray, tolerance: float, max_steps: int,
                       go_on: Callable[[np.ndarray], bool] | None = None,
                       coarse: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Bisect the intervals with the largest exact trapezoid error until completeness holds. Returns the grid
    and whether go_on(grid), asked after every round that has not met the tolerance, stopped it. A coarse part of
    the start (both ends included) is evaluated first and shown to go_on; the refinement starts from the whole
    start all the same, so the points it evaluates do not depend on it.

    On [a, b] the trapezoid integral of the path derivative is (b - a)/2 * (g(a) + g(b)), while the
    true integral is F(b) - F(a), known from the forward passes: each interval's error is exact.
    """
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


def _assemble(scan: PathScan, node_weights: dict, kept: set, rule: str, steps_used: int,
              multiply_by_inputs: bool = True) -> Attribution:
    grid = np.array(sorted(scan.records))
    records = [scan.records[a] for a in grid]
    stack = lambda name: np.stack([getattr(r, name) for r in records])  # noqa: E731
    attributions = tuple((d.unsqueeze(0) * integral if multiply_by_inputs else integral).cpu()
                         for d, integral in zip(scan.differences, scan.integral))
    total = sum(a.reshape(*a.shape[:2], -1).double().sum(-1) for a in attributions).T.numpy()  # [N, T]
    score_input, score_baseline = scan.records[1.0].score, scan.records[0.0].score
    scores = stack("score")
    with np.errstate(invalid="ignore"):  # non-finite scores are reported below, not warned about
        if multiply_by_inputs:
            delta = total - (score_input - score_baseline)
            relative = np.abs(delta) / completeness_scale(score_input, score_baseline, scores)
        else:  # a mean gradient adds up to no difference of scores
            delta = relative = np.full_like(total, np.nan)
        nothing = np.abs(score_input - score_baseline) <= NOTHING_TO_ATTRIBUTE * np.abs(scores).max(axis=0)
    result = Attribution(
        attributions_per_target=attributions,
        interior_gradients={a: tuple(g.cpu() for g in scan.records[a].gradients) for a in grid if a in kept},
        alphas=grid,
        weights=np.array([node_weights.get(a, 0.0) for a in grid]),
        scores=scores, raw_scores=stack("raw_score"), path_derivative=stack("path_derivative"),
        grad_abs_mean=stack("grad_abs_mean"), grad_sum=stack("grad_sum"),
        score_input=score_input, score_baseline=score_baseline, delta=delta, relative_delta=relative,
        targets=scan.problem.targets.cpu().numpy(), rule=rule, steps_used=steps_used,
        points_evaluated=len(grid), tuple_inputs=True, single_target=False, nothing_to_attribute=nothing,
        completeness="F(input) - F(baseline)" if multiply_by_inputs else None,
    )
    if records[0].activation is not None:
        acts = torch.stack([r.activation for r in records])  # [K, N, D]
        reference = scan.records[1.0].activation.unsqueeze(0)
        result.layer_l2 = (acts - reference).norm(dim=-1).cpu().double().numpy()
        result.layer_cosine = (1 - torch.nn.functional.cosine_similarity(acts, reference, dim=-1)).cpu().double().numpy()
    if scan.nonfinite_alphas or not np.all(np.isfinite(total)):
        bad = ", ".join(f"{a:g}" for a in sorted(scan.nonfinite_alphas)) or "the final sum"
        result.nonfinite = True
        result.message = (f"The model produced non-finite scores or gradients at alpha = {bad}; the attributions "
                          "are not trustworthy. Check the input for NaN/inf values or the model for overflow "
                          "(try turning mixed precision off).")
    return result


def _digest(tensors, request: ScanRequest, untargeted: bool) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype
    h.update(repr(request).encode())  # every field of the frozen request
    if untargeted:  # target=None reads like target=0 but refuses a forward with several outputs
        h.update(b"target=None")
    return h.hexdigest()


def _default_memory_budget(device: torch.device) -> int:
    """Bytes one batch of path points may need: a quarter of the device's memory (the host's available memory on
    the CPU), so that one user's "points per batch" cannot exhaust the server for everyone. IG_BATCH_MEMORY_MB
    overrides it."""
    setting = os.environ.get("IG_BATCH_MEMORY_MB", "").strip()
    if setting:
        return int(float(setting) * 2**20)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory // 4
    try:
        with open("/proc/meminfo") as meminfo:
            available_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
        return available_kb * 1024 // 4
    except (OSError, StopIteration, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


_default_engine: AttributionEngine | None = None
_default_lock = threading.Lock()


def default_engine() -> AttributionEngine:
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = AttributionEngine()
        return _default_engine


def integrated_gradients(forward, inputs, target=None, baseline=None, steps=50, rule="trapezoid",
                         **options) -> Attribution:
    """Integrated gradients (Eq. 6) and everything else one path scan gives; see AttributionEngine.attribute."""
    engine = options.pop("engine", None) or default_engine()
    return engine.attribute(forward, inputs, target, baseline, steps, rule, **options)


def completeness_delta(forward, inputs, attributions, target=None, baseline=None, output="identity", forward_args=(),
                       engine: AttributionEngine | None = None) -> np.ndarray:
    """The completeness delta of attributions computed elsewhere; see AttributionEngine.completeness_delta."""
    return (engine or default_engine()).completeness_delta(forward, inputs, attributions, target, baseline, output,
                                                           forward_args)
