"""Gradient x input (Shrikumar et al. 2016; Captum's InputXGradient): the first-order Taylor term at zero."""
from __future__ import annotations

from .gradient_at_input import GradientAtInputMethod


class GradientTimesInput(GradientAtInputMethod):
    name = "gradient_x_input"
    label = "Gradient x input"
    completeness = None
    no_completeness = "gradient x input adds up to F(input) - F(0) only for a linear model"

    def from_gradient(self, context, score_input, score_baseline, gradient, points_evaluated):
        maps = tuple(g * x.unsqueeze(0) for g, x in zip(gradient, context.problem.inputs))
        return self.result(context, maps, score_input, score_baseline, points_evaluated, gradient_at_input=gradient)
