"""What an attribution method is: which points to evaluate, and how to combine what comes back.

The engine does the rest for every method: validation, the device, batching, out-of-memory halving, the lock,
the exact cache and progress (`MethodContext`). A method is one file holding a subclass of AttributionMethod with
its options as a frozen dataclass, and one line in the registry (methods/__init__.py).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable, ClassVar

import numpy as np

from ..evaluator import GradientEvaluator
from ..inputs import AttributionProblem
from ..path.options import PathOptions
from ..result import NOTHING_TO_ATTRIBUTE, Attribution, completeness_scale


@dataclass
class MethodContext:
    """What a method gets from the engine for one request: the problem, and how its points are to be evaluated."""

    problem: AttributionProblem
    path: PathOptions | None  # the straight-line scan's rule, steps, tolerance, probes; None where none runs
    max_batch: int
    device_lock: object = None  # the engine's lock, taken per batch; None: none
    memory_budget: int | None = None  # bytes a batch may need, measured on a first batch; None: max_batch decides
    progress: Callable[[float], None] | None = None
    partial_results: Callable[[Attribution], bool | None] | None = None  # the request's own scan only
    shared_grid: bool = False  # the adaptive rule refines one grid for all the examples (their trends are averaged)

    def evaluator(self, planned_points: int) -> GradientEvaluator:
        """Batched gradients of F at any points of this problem (see GradientEvaluator.evaluate)."""
        return GradientEvaluator(self.problem, self.max_batch, self.device_lock, self.memory_budget, self.progress,
                                 planned_points)

    def on(self, problem: AttributionProblem) -> "MethodContext":
        """The same request on other examples (noisy copies, other baselines): their partial results are not the
        request's, and their trends, averaged into the request's, share one grid."""
        return replace(self, problem=problem, partial_results=None, shared_grid=True)


class AttributionMethod(ABC):
    """One attribution method. Subclasses set the class attributes, define Options and compute()."""

    name: ClassVar[str]  # the registry key
    label: ClassVar[str]  # what the dashboard shows
    completeness: ClassVar[str | None] = "F(input) - F(baseline)"  # what its attributions add up to
    no_completeness: ClassVar[str] = ""  # why it has no completeness law, where it has none
    images_only: ClassVar[bool] = False  # needs inputs [N, C, H, W]
    reference_set: ClassVar[bool] = False  # the baseline argument is a set of references [R, ...]
    uses_path_rule: ClassVar[bool] = False  # the rule, steps and tolerance of the scan settings apply
    # what a method can do besides computing attributions, for the engine and its callers to ask rather than check
    # the method's name
    global_attribution: ClassVar[bool] = False  # multiply_by_inputs=False gives the path-averaged gradient alone
    refines: ClassVar[bool] = False  # the adaptive rule shows partial results (partial_results) as it refines
    reads_off_scan: ClassVar[bool] = False  # read off an integrated-gradients scan for free (read_off_scan)
    # a call's examples share nothing but its batches (no noise drawn per call, no grid refined for all): a dataset
    # run may explain several items in one call
    stackable: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Options:
        pass

    def __init__(self, **options):
        known = [f.name for f in fields(self.Options)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"{self.name} has no option {', '.join(unknown)}; its options: "
                             f"{', '.join(known) or 'none'}")
        self.options = self.Options(**options)

    def option_items(self) -> tuple:
        """The options as sorted pairs: part of the cache key."""
        return tuple(sorted(asdict(self.options).items()))

    def check(self, problem: AttributionProblem) -> None:
        """Refuse, with a message that says what to do, inputs the method cannot handle."""
        if self.images_only and any(x.dim() != 4 for x in problem.inputs):
            shapes = ", ".join(str(tuple(x.shape)) for x in problem.inputs)
            raise ValueError(f"{self.label} works on images [N, channels, height, width]; got inputs {shapes}")

    @abstractmethod
    def compute(self, context: MethodContext) -> Attribution:
        """The attributions for context.problem, with its completeness where the method defines one."""

    def attribute(self, forward, inputs, target, baseline=None, *, engine, **scan) -> Attribution:
        """Captum-style entry point: this method through an AttributionEngine (ig_core.default_engine() is the
        shared one), cached, batched and checked; scan holds attribute's other options."""
        return engine.attribute(forward, inputs, target, baseline, method=self.name,
                                method_options=asdict(self.options), **scan)

    def result(self, context: MethodContext, attributions, score_input: np.ndarray, score_baseline: np.ndarray,
               points_evaluated: int, *, steps_used: int | None = None, path_alphas=None, path_scores=None,
               gradient_at_input=None, extras: dict | None = None) -> Attribution:
        """An Attribution for this method. attributions: per input [T, N, ...]; scores [N, T] float64; the trend
        along the method's own path where it has one (alphas [K], scores [K, N, T]), else the two ends.
        points_evaluated: every point evaluated per example; steps_used: the points of one path that enter its
        integral, what the scan's rule and budget speak of (default: points_evaluated)."""
        attributions = tuple(a.detach().cpu() for a in attributions)
        if path_scores is None:
            path_alphas, path_scores = np.array([0.0, 1.0]), np.stack([score_baseline, score_input])
        path_scores = np.asarray(path_scores, dtype=np.float64)
        unknown = np.full_like(path_scores, np.nan)
        total = sum(a.reshape(*a.shape[:2], -1).double().sum(-1) for a in attributions).T.numpy()  # [N, T]
        with np.errstate(invalid="ignore"):
            if self.completeness is None:
                delta = relative = np.full_like(total, np.nan)
            else:
                delta = total - (score_input - score_baseline)
                relative = np.abs(delta) / completeness_scale(score_input, score_baseline, path_scores)
            nothing = np.abs(score_input - score_baseline) <= NOTHING_TO_ATTRIBUTE * np.abs(path_scores).max(axis=0)
        interior = {} if gradient_at_input is None else {1.0: tuple(g.detach().cpu() for g in gradient_at_input)}
        nonfinite = not (np.all(np.isfinite(total)) and np.all(np.isfinite(path_scores)))
        return Attribution(
            attributions_per_target=attributions, interior_gradients=interior,
            alphas=np.asarray(path_alphas, dtype=np.float64), weights=np.zeros(path_scores.shape[:2]),
            scores=path_scores, raw_scores=unknown, path_derivative=unknown, grad_abs_mean=unknown, grad_sum=unknown,
            score_input=score_input, score_baseline=score_baseline, delta=delta, relative_delta=relative,
            targets=context.problem.targets.cpu().numpy(), rather_than=context.problem.rather_than_array(),
            rule=self.name,
            steps_used=int(points_evaluated if steps_used is None else steps_used),
            points_evaluated=int(points_evaluated), tuple_inputs=True, single_target=False,
            nothing_to_attribute=nothing, nonfinite=nonfinite, extras=dict(extras or {}), method=self.name,
            completeness=self.completeness,
            message=("The model produced non-finite scores or gradients; the attributions are not trustworthy."
                     if nonfinite else ""),
        )

