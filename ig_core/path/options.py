"""How the straight-line path is scanned: the options of integrated gradients, which the methods built on its scan
(expected gradients, XRAI, SmoothGrad over it) share."""
from __future__ import annotations

from dataclasses import dataclass

from .quadrature import RULES


@dataclass(frozen=True)
class PathOptions:
    """The rule and its budget, checked and held as plain values: they are part of the engine's cache key."""

    steps: int  # fixed rules: gradient evaluations; adaptive: the starting grid
    rule: str
    tolerance: float  # adaptive: relative completeness error to reach
    max_steps: int  # adaptive: budget of path points
    probe_alphas: tuple[float, ...]  # extra alphas whose interior gradients are kept, sorted and unique
    keep_all_gradients: bool
    multiply_by_inputs: bool = True  # False: the path-averaged gradient alone, which adds up to nothing

    def __post_init__(self):
        # plain Python values, whatever the caller passed (numpy integers, lists): the cache key is their repr
        for name, kind in (("steps", int), ("tolerance", float), ("max_steps", int), ("keep_all_gradients", bool),
                           ("multiply_by_inputs", bool)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        object.__setattr__(self, "probe_alphas", tuple(sorted({float(a) for a in self.probe_alphas})))
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; choose one of {', '.join(RULES)}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"tolerance is relative and must lie in (0, 1), got {self.tolerance}")
        if any(not 0.0 <= a <= 1.0 for a in self.probe_alphas):
            raise ValueError(f"probe alphas must lie in [0, 1], got {self.probe_alphas}")
