"""The gradient at the input (saliency, Simonyan et al. 2014): the local slope of F, one point."""
from __future__ import annotations

from dataclasses import dataclass

from .gradient_at_input import GradientAtInputMethod


class Gradient(GradientAtInputMethod):
    name = "gradient"
    label = "Gradient (saliency)"
    completeness = None
    no_completeness = "the gradient is a local slope: it does not add up to a difference of scores"

    @dataclass(frozen=True)
    class Options:
        absolute: bool = False  # |gradient|, as Captum's Saliency does by default

    def from_gradient(self, context, score_input, score_baseline, gradient, points_evaluated):
        maps = tuple(g.abs() for g in gradient) if self.options.absolute else gradient
        return self.result(context, maps, score_input, score_baseline, points_evaluated, gradient_at_input=gradient)
