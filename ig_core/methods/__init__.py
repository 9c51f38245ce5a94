"""Attribution methods over the engine's batched evaluation: one file per method, one line each below."""
from __future__ import annotations

import torch

from ..evaluator import AttributionProblem
from ..result import Attribution
from .base import AttributionMethod, MethodContext
from .blur_ig import BlurIG
from .expected_gradients import ExpectedGradients
from .gradient import Gradient
from .gradient_x_input import GradientTimesInput
from .guided_ig import GuidedIG
from .idgi import IDGI
from .integrated_gradients import IntegratedGradients
from .smoothgrad import SmoothGrad
from .xrai import XRAI

METHODS: dict[str, type[AttributionMethod]] = {
    IntegratedGradients.name: IntegratedGradients,
    Gradient.name: Gradient,
    GradientTimesInput.name: GradientTimesInput,
    SmoothGrad.name: SmoothGrad,
    GuidedIG.name: GuidedIG,
    BlurIG.name: BlurIG,
    ExpectedGradients.name: ExpectedGradients,
    IDGI.name: IDGI,
    XRAI.name: XRAI,
}


def method(name: str, **options) -> AttributionMethod:
    """The registered method `name` with its options, or a ValueError listing the methods."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name](**options)


def read_off_scan(scan: Attribution, inputs, name: str, **options) -> Attribution:
    """The gradient and gradient x input methods read off an integrated-gradients scan, which evaluated the input
    already: free. `inputs` as given to the scan."""
    chosen = method(name, **options)
    if not hasattr(chosen, "from_gradient") or 1.0 not in scan.interior_gradients:
        raise ValueError(f"{name} cannot be read off a scan; run it with engine.attribute(method={name!r})")
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    inputs = tuple(torch.as_tensor(x).reshape(g.shape[1:]) for x, g in zip(inputs, scan.interior_gradients[1.0]))
    problem = AttributionProblem(forward=None, inputs=inputs, baselines=inputs, targets=torch.as_tensor(scan.targets))
    context = MethodContext(engine=None, problem=problem, path=None, max_batch=1)
    result = chosen.from_gradient(context, scan.score_input, scan.score_baseline, scan.interior_gradients[1.0],
                                  points_evaluated=0)
    result.tuple_inputs, result.single_target = scan.tuple_inputs, scan.single_target
    return result


__all__ = ["METHODS", "AttributionMethod", "MethodContext", "method", "read_off_scan"]
