"""Integrated gradients (the paper's Eq. 6) along the straight line from the baseline, with the scan's rule."""
from __future__ import annotations

from .base import AttributionMethod, MethodContext


class IntegratedGradients(AttributionMethod):
    name = "integrated_gradients"
    label = "Integrated gradients"
    uses_path_rule = True

    def compute(self, context: MethodContext):
        return context.integrated_gradients()
