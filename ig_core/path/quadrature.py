"""Quadrature rules for the path integral of Eq. 6: nodes alpha_k in [0, 1] and weights w_k.

Integrated gradients = (input - baseline) * sum_k w_k * grad F(baseline + alpha_k * (input - baseline)).
Every rule's weights sum to exactly 1, so a linear F gets exact attributions (Captum's trapezoid
weights sum to (n-1)/n and miss this).
"""
from __future__ import annotations

import numpy as np

FIXED_RULES = ("left", "right", "midpoint", "trapezoid", "gauss-legendre")
RULES = FIXED_RULES + ("adaptive",)


def fixed_rule(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (float64) of a fixed rule with `steps` gradient evaluations."""
    if rule not in FIXED_RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    n = int(steps)
    if n < (2 if rule == "trapezoid" else 1):
        raise ValueError(f"rule {rule!r} needs at least {2 if rule == 'trapezoid' else 1} steps, got {steps}")
    k = np.arange(n, dtype=np.float64)
    if rule == "left":
        return k / n, np.full(n, 1.0 / n)
    if rule == "right":
        return (k + 1) / n, np.full(n, 1.0 / n)
    if rule == "midpoint":
        return (k + 0.5) / n, np.full(n, 1.0 / n)
    if rule == "trapezoid":
        return k / (n - 1), trapezoid_weights(k / (n - 1))
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return (nodes + 1.0) / 2.0, weights / 2.0


def trapezoid_weights(nodes: np.ndarray) -> np.ndarray:
    """Composite trapezoid weights on any sorted grid that spans [0, 1]."""
    h = np.diff(nodes)
    weights = np.zeros_like(nodes)
    weights[:-1] += h / 2
    weights[1:] += h / 2
    return weights


def path_points(rule: str, steps: int, probes=()) -> tuple[np.ndarray, np.ndarray]:
    """Every alpha a fixed-rule scan evaluates, with its weight: the rule's nodes, then the probe alphas
    and the two ends (F(baseline), F(input), the gradient at the input) not among them, weighted 0."""
    nodes, weights = fixed_rule(rule, steps)
    seen = set(map(float, nodes))
    extra = [a for a in sorted({float(a) for a in probes} | {0.0, 1.0}) if a not in seen]
    return np.concatenate([nodes, extra]), np.concatenate([weights, np.zeros(len(extra))])
