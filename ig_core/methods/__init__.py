"""Attribution methods over the engine's batched evaluation: one file per method, one line each below, in the
order the pages list them."""
from __future__ import annotations

from .base import AttributionMethod, MethodContext
from .blur_ig import BlurIG
from .expected_gradients import ExpectedGradients
from .gradient import Gradient
from .gradient_at_input import read_off_scan
from .gradient_x_input import GradientTimesInput
from .guided_ig import GuidedIG
from .idgi import IDGI
from .integrated_gradients import IntegratedGradients
from .registry import METHODS, method, register
from .smoothgrad import SmoothGrad
from .xrai import XRAI

register(
    IntegratedGradients,
    Gradient,
    GradientTimesInput,
    SmoothGrad,
    GuidedIG,
    BlurIG,
    ExpectedGradients,
    IDGI,
    XRAI,
)

__all__ = ["METHODS", "AttributionMethod", "MethodContext", "method", "read_off_scan"]
