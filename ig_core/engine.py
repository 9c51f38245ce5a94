"""The attribution engine: one object, shared by every page and thread, that runs attribution methods.

It checks a request and turns it into batches on its device (ig_core.inputs), answers a repeated one from an LRU
cache keyed by an exact digest (ig_core.cache), and hands the rest to the method (ig_core.methods) with what the
method's points need: the batch size (bounded by a memory budget measured on the first batch, halved on CUDA
out-of-memory), optional mixed precision and a fair lock that lets the requests of several sessions take turns
batch by batch. Models stay outside: `forward` is any callable returning scores [batch, classes] (or [batch]).
"""
from __future__ import annotations

import os
import threading
import weakref
from typing import Callable, Sequence

import numpy as np
import torch

from .cache import ResultCache, ScanRequest, forward_args_key
from .evaluator import check_output
from .inputs import (
    AttributionProblem,
    Contrast,
    as_forward_args,
    baseline_tensors,
    check_precision,
    path_inputs,
    reference_set,
    target_tensor,
)
from .methods import METHODS, AttributionMethod, MethodContext
from .methods import method as make_method
from .path.options import PathOptions
from .result import Attribution
from .runtime.fair_lock import FairLock
from .runtime.host_memory import return_freed_memory

AMP_DTYPES = {None: None, "none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def checked_amp(amp: str | None) -> str | None:
    """The mixed precision asked for, refused unless AMP_DTYPES names it."""
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp must be one of {list(AMP_DTYPES)}, got {amp!r}")
    return amp


class AttributionEngine:
    """Attribution methods over batched gradients of F; integrated and interior gradients along
    gamma(alpha) = baseline + alpha * (input - baseline) by default."""

    def __init__(self, device: str | torch.device | None = None, max_batch: int | None = None,
                 amp: str | None = None, cache_size: int = 256, cache_bytes: int = 1 << 30,
                 memory_budget: int | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # on the CPU small batches run as fast per point as large ones (32 MobileNetV2 points: 1.0 s in batches of 4,
        # 1.5 s in batches of 16) and keep the turns of a shared server short
        self.max_batch = int(max_batch or (128 if self.device.type == "cuda" else 4))
        self.amp = checked_amp(amp)
        self._cache = ResultCache(cache_size, cache_bytes)
        self._device_lock = FairLock()  # taken per batch of path points, first come first served
        self.memory_budget = int(memory_budget or _default_memory_budget(self.device))
        self._frozen: weakref.WeakSet = weakref.WeakSet()

    @property
    def device_name(self) -> str:
        if self.device.type == "cuda":
            return f"GPU: {torch.cuda.get_device_name(self.device)}"
        threads = torch.get_num_threads()
        return f"CPU ({threads} thread{'' if threads == 1 else 's'})"

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
        self, forward: Callable[..., torch.Tensor], inputs: torch.Tensor | Sequence[torch.Tensor],
        target: int | Contrast | Sequence[int | Contrast] | Sequence[Sequence[int | Contrast]] | torch.Tensor
        | np.ndarray | None = None,
        baseline: torch.Tensor | Sequence[torch.Tensor | float] | float | None = None,
        steps: int = 50, rule: str = "trapezoid", *, tolerance: float = 0.01, max_steps: int = 512,
        probe_alphas: Sequence[float] = (), keep_all_gradients: bool = False, output: str = "identity",
        layer: torch.nn.Module | None = None, model_key: str | None = None,
        progress: Callable[[float], None] | None = None, max_batch: int | None = None, amp: str | None = None,
        method: str = "integrated_gradients", method_options: dict | None = None, forward_args: object = (),
        multiply_by_inputs: bool = True, partial_results: Callable[[Attribution], bool | None] | None = None,
    ) -> Attribution:
        """Attribute F to the inputs by the method (integrated gradients by default: one scan of the path gives
        the attributions, the trend, the interior gradients and completeness).

        inputs: a tensor [N, ...] or a tuple of them (all scaled by the same alpha); N examples. A tensor [N] holds
            one scalar feature per example. float64 inputs are scanned in float64 throughout (a double model);
            float16 and bfloat16 inputs are scanned in float32, since path sums in half precision lose the
            completeness: keep a half-precision model's weights in float32 and pass amp="fp16" or "bf16" instead.
        target: which scores to attribute, one form per meaning:
            - an int, or a 0-d or one-element tensor: one target for every example;
            - a list (or tuple) of ints: several targets for every example, one scan (a leading target dimension);
            - per-example targets: a tensor [N] (one each), a tensor [N, T] or a list of N lists of T ints (T each);
            - None: the forward returns one score per example ([N] or [N, 1]); refused for several outputs;
            - ig_core.Contrast(a, b), "a rather than b": F = score[a] - score[b] of logits or log-probabilities, in
              place of any int above ([a, b, Contrast(a, b)]: one scan); result.rather_than [N, T] (-1: none).
            Unlike Captum, a list of N ints means N targets for every example: give per-example targets as a tensor.
        baseline: None (zeros), a number, or a tensor per input (a tuple for tuple inputs, where each entry may also
            be a number); a tensor may be shaped like the input, [1, ...] for every example, or the input's shape
            without the batch dimension.
        steps, rule, tolerance, max_steps: the path rule (one of ig_core.RULES) and its budget; "adaptive" refines
            a trapezoid grid where the exact per-interval error is largest until |delta| <= tolerance *
            |F(input) - F(baseline)| or max_steps points, starting from `steps` uniform points.
        probe_alphas: extra alphas whose interior gradients are kept (evaluated in the same scan);
            keep_all_gradients: keep every point's.
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
            adds up to no difference of scores: the result's completeness is None and its delta NaN. For the
            methods whose `global_attribution` is set (integrated gradients).
        partial_results: called with the result so far after each round of the adaptive rule (the starting grid
            first), its completeness error falling round by round, at no extra model cost; return False to stop
            and get that result back (`stopped_early`, not cached). Fixed rules and methods whose `refines` is not
            set never call it.
        """
        chosen = make_method(method, **(method_options or {}))
        path = PathOptions(steps, rule, tolerance, max_steps, probe_alphas, keep_all_gradients, multiply_by_inputs)
        amp = checked_amp(self.amp if amp is None else amp)
        xs = path_inputs(inputs, self.device)
        targets, rather_than, single_target = target_tensor(target, xs[0].shape[0], self.device)
        check_output(output, contrast=rather_than is not None)
        baselines = reference_set(baseline, xs) if chosen.reference_set else baseline_tensors(baseline, xs)
        problem = AttributionProblem(forward, xs, baselines, targets, output, AMP_DTYPES[amp], layer,
                                     as_forward_args(forward_args, self.device), untargeted=target is None,
                                     rather_than=rather_than)
        request = ScanRequest(model_key=model_key or f"id:{id(forward)}", path=path, output=output, layer=id(layer),
                              amp=amp, method=chosen.name, method_options=chosen.option_items(),
                              forward_args=forward_args_key(problem.forward_args), single_target=single_target,
                              tuple_inputs=isinstance(inputs, (tuple, list)))
        key = self._cache.key(problem, request)
        result = self._cache.get(key)
        if result is None:
            result = self._attribute(chosen, problem, request, int(max_batch or self.max_batch), progress,
                                     partial_results)
            if not result.stopped_early:
                self._cache.put(key, result, (forward, layer))
            return_freed_memory()
        if progress is not None:
            progress(1.0)
        return result

    def _attribute(self, chosen: AttributionMethod, problem: AttributionProblem, request: ScanRequest,
                   max_batch: int, progress, partial_results) -> Attribution:
        """The method's result for the request, once the method has checked the request fits it, and its partial
        results, all shaped like the caller's inputs and targets."""

        def shaped(result: Attribution) -> Attribution:
            result.tuple_inputs, result.single_target = request.tuple_inputs, request.single_target
            return result

        if not request.path.multiply_by_inputs and not chosen.global_attribution:
            offering = ", ".join(name for name, cls in METHODS.items() if cls.global_attribution)
            raise ValueError(f"multiply_by_inputs=False applies to {offering} (the path-averaged gradient), not to "
                             f"{chosen.name}")
        self.freeze(problem.forward)
        check_precision(problem.forward, problem.inputs)
        chosen.check(problem)
        show = None if partial_results is None else (lambda partial: partial_results(shaped(partial)))
        return shaped(chosen.compute(self._context(problem, max_batch, request.path, progress, show)))

    def _context(self, problem: AttributionProblem, max_batch: int, path: PathOptions | None = None,
                 progress=None, partial_results=None) -> MethodContext:
        # the engine's own batch size is trusted; a larger one asked for a call is measured first
        budget = self.memory_budget if max_batch > self.max_batch else None
        return MethodContext(problem, path, max_batch, self._device_lock, budget, progress, partial_results)

    def completeness_delta(self, forward, inputs, attributions, target=None, baseline=None, output: str = "identity",
                           forward_args: object = ()) -> np.ndarray:
        """sum of attributions - (F(input) - F(baseline)) for attributions computed elsewhere (Captum's
        compute_convergence_delta), from two forward passes without gradients. inputs, target, baseline, output
        and forward_args as for attribute; attributions shaped like the inputs, with a leading target dimension
        for several targets. Returns float64 [N], or [N, T] for several targets."""
        xs = path_inputs(inputs, self.device)
        bs = baseline_tensors(baseline, xs)
        targets, rather_than, single_target = target_tensor(target, xs[0].shape[0], self.device)
        check_output(output, contrast=rather_than is not None)
        maps = tuple(attributions) if isinstance(attributions, (tuple, list)) else (attributions,)
        maps = tuple(torch.as_tensor(a).detach().unsqueeze(0) if single_target else torch.as_tensor(a).detach()
                     for a in maps)
        expected = [(targets.shape[1], *x.shape) for x in xs]
        if [tuple(a.shape) for a in maps] != expected:
            raise ValueError(f"attributions of shapes {[tuple(a.shape) for a in maps]} do not fit the inputs and "
                             f"targets: expected {[s[1:] if single_target else s for s in expected]}")
        args = as_forward_args(forward_args, self.device)
        problem = AttributionProblem(forward, xs, bs, targets, output, forward_args=args, untargeted=target is None,
                                     rather_than=rather_than)
        scores = self._context(problem, self.max_batch).evaluator(planned_points=2).scores(
            [torch.stack([x, b]) for x, b in zip(xs, bs)])
        total = sum(a.reshape(*a.shape[:2], -1).double().sum(-1).cpu() for a in maps).T.numpy()  # [N, T]
        delta = total - (scores[0] - scores[1])
        return delta[:, 0] if single_target else delta

    def clear_cache(self) -> None:
        self._cache.clear()


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
