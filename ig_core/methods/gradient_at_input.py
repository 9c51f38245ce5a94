"""The methods that need only F at the two ends and the gradient at the input: two points of their own, or none
when read off an integrated-gradients scan, which evaluated the input already."""
from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch

from ..inputs import AttributionProblem
from ..result import Attribution
from .base import AttributionMethod, MethodContext
from .registry import method


class GradientAtInputMethod(AttributionMethod):
    """A method whose attributions follow from the gradient at the input (from_gradient)."""

    reads_off_scan = True

    def compute(self, context: MethodContext) -> Attribution:
        # F(input) and the gradient there from one pass; the baseline needs only a forward pass
        problem = context.problem
        evaluator = context.evaluator(planned_points=2)
        at_input = evaluator.evaluate([x.unsqueeze(0) for x in problem.inputs])
        at_baseline = evaluator.scores([b.unsqueeze(0) for b in problem.baselines])
        gradient = tuple(g[:, 0] for g in at_input.gradients)
        return self.from_gradient(context, at_input.score[0], at_baseline[0], gradient, points_evaluated=2)

    @abstractmethod
    def from_gradient(self, context: MethodContext, score_input: np.ndarray, score_baseline: np.ndarray,
                      gradient: tuple[torch.Tensor, ...], points_evaluated: int) -> Attribution:
        """The attributions from F(input), F(baseline) [N, T] and the gradient at the input, per input [T, N, ...]."""


def read_off_scan(scan: Attribution, inputs, name: str, **options) -> Attribution:
    """The gradient and gradient x input methods read off an integrated-gradients scan, which evaluated the input
    already: free. `inputs` as given to the scan."""
    chosen = method(name, **options)
    if not chosen.reads_off_scan or 1.0 not in scan.interior_gradients:
        raise ValueError(f"{name} cannot be read off a scan; run it with engine.attribute(method={name!r})")
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    inputs = tuple(torch.as_tensor(x).reshape(g.shape[1:]) for x, g in zip(inputs, scan.interior_gradients[1.0]))
    contrasts = None if scan.rather_than is None or (scan.rather_than < 0).all() else torch.as_tensor(scan.rather_than)
    problem = AttributionProblem(forward=None, inputs=inputs, baselines=inputs, targets=torch.as_tensor(scan.targets),
                                 rather_than=contrasts)
    context = MethodContext(problem=problem, path=None, max_batch=1)
    result = chosen.from_gradient(context, scan.score_input, scan.score_baseline, scan.interior_gradients[1.0],
                                  points_evaluated=0)
    result.tuple_inputs, result.single_target = scan.tuple_inputs, scan.single_target
    return result
