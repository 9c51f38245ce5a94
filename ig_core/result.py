"""The result of one attribution: attributions, the trend along the path, interior gradients and completeness."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch

# F(input) - F(baseline) within this many float32 roundings of the largest |F| on the path is zero:
# there is nothing to attribute, and the relative completeness error is measured against this floor
NOTHING_TO_ATTRIBUTE = 16 * float(np.finfo(np.float32).eps)
# the axes of an Attribution's arrays (field metadata), by which `select` cuts them: k alpha, n example, t target
ALONG_PATH = {"axes": "knt"}  # [K, N, T]
PER_TARGET = {"axes": "nt"}  # [N, T]
PER_EXAMPLE_ALONG_PATH = {"axes": "kn"}  # [K, N]


def completeness_scale(score_input: np.ndarray, score_baseline: np.ndarray, path_scores: np.ndarray) -> np.ndarray:
    """|F(input) - F(baseline)|, floored at the rounding level of the scores on the path [K, N, T]: an input
    that scores like its baseline gets a relative error of |delta| / floor, not |delta| / 0."""
    floor = NOTHING_TO_ATTRIBUTE * np.nanmax(np.abs(path_scores), axis=0)  # NaN: an alpha an example skipped
    return np.maximum(np.maximum(np.abs(score_input - score_baseline), floor), np.finfo(np.float64).tiny)


@dataclass
class Attribution:
    """Arrays indexed [alpha k, example n, target t]; tensors per input with a leading target dim.

    `attributions`, `gradient_at_input` and `interior_gradient(alpha)` come back shaped like the
    inputs (a tensor, or a tuple for tuple inputs), with a leading target dimension when several
    targets were asked for.
    """

    attributions_per_target: tuple[torch.Tensor, ...]  # each [T, N, ...]
    interior_gradients: dict[float, tuple[torch.Tensor, ...]]  # alpha -> each [T, N, ...]
    alphas: np.ndarray  # [K] every evaluated alpha, sorted
    # [K, N] each example's quadrature weight (0 for points evaluated only to be looked at)
    weights: np.ndarray = field(metadata=PER_EXAMPLE_ALONG_PATH)
    scores: np.ndarray = field(metadata=ALONG_PATH)  # F along the path (the saturation trend)
    raw_scores: np.ndarray = field(metadata=ALONG_PATH)  # the forward's output before the `output` transform
    path_derivative: np.ndarray = field(metadata=ALONG_PATH)  # sum_i dF/dx_i * (x_i - b_i)
    grad_abs_mean: np.ndarray = field(metadata=ALONG_PATH)  # mean |interior gradient|
    grad_sum: np.ndarray = field(metadata=ALONG_PATH)  # sum of interior gradients
    score_input: np.ndarray = field(metadata=PER_TARGET)  # F(input)
    score_baseline: np.ndarray = field(metadata=PER_TARGET)  # F(baseline)
    delta: np.ndarray = field(metadata=PER_TARGET)  # sum of attributions - (F(input) - F(baseline))
    relative_delta: np.ndarray = field(metadata=PER_TARGET)  # |delta| / |F(input) - F(baseline)| (completeness_scale)
    targets: np.ndarray = field(metadata=PER_TARGET)
    rule: str
    steps_used: int  # gradient evaluations that enter the integral
    points_evaluated: int  # all path points evaluated (quadrature nodes, ends and probes)
    tuple_inputs: bool
    single_target: bool
    layer_l2: np.ndarray | None = field(default=None, metadata=PER_EXAMPLE_ALONG_PATH)  # distance of the layer's
    # activations to those at alpha = 1
    layer_cosine: np.ndarray | None = field(default=None, metadata=PER_EXAMPLE_ALONG_PATH)
    nonfinite: bool = False
    nothing_to_attribute: np.ndarray | None = field(default=None, metadata=PER_TARGET)  # F(input) = F(baseline) up
    # to rounding
    message: str = ""
    stopped_early: bool = False  # the caller stopped the adaptive rule before it met its tolerance
    extras: dict = field(default_factory=dict)
    method: str = "integrated_gradients"
    # what the attributions add up to; None: the method has no such law
    completeness: str | None = "F(input) - F(baseline)"
    # [K, N] whether example n was evaluated at alpha k, where the adaptive rule refined each example on its own
    # grid (the arrays along the path hold NaN where not); None: every example at every alpha
    evaluated: np.ndarray | None = field(default=None, metadata=PER_EXAMPLE_ALONG_PATH)
    # [N, T] the class each target was explained rather than (F = score[target] - score[rather_than]), -1 for a plain
    # target; None: made without (a result built by hand)
    rather_than: np.ndarray | None = field(default=None, metadata=PER_TARGET)

    def select(self, examples: int | slice | list[int] = slice(None),
               targets: int | slice | list[int] = slice(None)) -> "Attribution":
        """The result for some of the examples and targets (an int keeps its axis, of size one), in the same
        layout: the arrays cut along the axes their fields declare, the tensors [T, N, ...] along their first two.
        Where the examples were refined on grids of their own, only the alphas evaluated for the chosen ones stay,
        and the point counts become theirs."""
        examples, targets = kept_axis(examples), kept_axis(targets)
        alphas = slice(None)
        counts = {}
        if self.evaluated is not None:
            evaluated = cut_axes(self.evaluated, [slice(None), examples])
            alphas = np.flatnonzero(evaluated.any(axis=1))
            counts = {"steps_used": int(evaluated.sum(0).max()), "points_evaluated": int(evaluated.sum(0).max())}
        along = {"k": alphas, "n": examples, "t": targets}
        cut = {f.name: cut_axes(getattr(self, f.name), [along[axis] for axis in f.metadata["axes"]])
               for f in fields(self) if "axes" in f.metadata and getattr(self, f.name) is not None}
        kept_alphas = set(map(float, self.alphas[alphas]))
        return replace(self, **cut, **counts, alphas=self.alphas[alphas],
                       attributions_per_target=tuple(cut_axes(x, [targets, examples])
                                                     for x in self.attributions_per_target),
                       interior_gradients={alpha: tuple(cut_axes(g, [targets, examples]) for g in gradients)
                                           for alpha, gradients in self.interior_gradients.items()
                                           if alpha in kept_alphas})

    def _shape_like_inputs(self, tensors):
        if self.single_target:
            tensors = tuple(x[0] for x in tensors)
        return tensors if self.tuple_inputs else tensors[0]

    @property
    def attributions(self):
        return self._shape_like_inputs(self.attributions_per_target)

    @property
    def gradient_at_input(self):
        return self.interior_gradient(1.0)

    def interior_gradient(self, alpha: float):
        if alpha not in self.interior_gradients:
            kept = ", ".join(f"{a:g}" for a in sorted(self.interior_gradients))
            raise KeyError(f"the interior gradient at alpha={alpha:g} was not kept; kept: {kept}")
        return self._shape_like_inputs(self.interior_gradients[alpha])

    def nbytes(self) -> int:
        """Memory held by the arrays and tensors (the engine's cache is bounded by it)."""
        extras = [v for value in self.extras.values() for v in (value if isinstance(value, (tuple, list)) else [value])]
        held = [*self.attributions_per_target, *(g for gs in self.interior_gradients.values() for g in gs),
                *vars(self).values(), *extras]  # a method's extras (XRAI's region maps) count too
        return (sum(t.numel() * t.element_size() for t in held if isinstance(t, torch.Tensor))
                + sum(a.nbytes for a in held if isinstance(a, np.ndarray)))

    @property
    def max_relative_delta(self) -> float:
        return float(np.max(self.relative_delta))

    @property
    def completeness_defined(self) -> bool:
        return self.completeness is not None

    def summary(self) -> str:
        if not self.completeness_defined:
            return f"{self.method}: defines no completeness ({self.points_evaluated} points evaluated)"
        return (f"{self.rule}, {self.steps_used} steps: sum of attributions - (F(input) - F(baseline)) = "
                f"{float(np.max(np.abs(self.delta))):.3g} ({100 * self.max_relative_delta:.2f}% relative)")


def kept_axis(index: int | slice | list[int]) -> slice | list[int]:
    """An index that keeps its axis: an int k as the slice k:k+1."""
    return slice(index, index + 1) if isinstance(index, int) else index


def cut_axes(array, indices: list):
    """The array (numpy or torch) cut along its leading axes, one axis at a time (two index lists at once would
    pair their entries)."""
    for axis, index in enumerate(indices):
        array = array[(slice(None),) * axis + (index,)]
    return array
