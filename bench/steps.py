"""Steps to reach a completeness error: the adaptive rule vs each fixed rule in a doubling sequence.

For a fixed rule the sum of IG attributions is sum_k w_k * phi(alpha_k), where
phi(alpha) = grad F(gamma(alpha)) . (x - b) is the path derivative, so the rule's completeness error at
any n follows from phi at its nodes and F(0), F(1). `PathDerivative` evaluates phi once per alpha
(cached) so that the doubling search over five rules does not redo shared points; the node counts are
those of the engine's own rules (ig_core.fixed_rule), and the points evaluated are what the engine
would evaluate for that rule (its nodes plus the ends it adds).
"""
from __future__ import annotations

import numpy as np
import torch

from ig_core import FIXED_RULES, AttributionEngine, fixed_rule

from .analysis import path_alphas


class PathDerivative:
    """F(gamma(alpha)) and phi(alpha) for one photo and target, each alpha evaluated once."""

    def __init__(self, model, x, baseline, target: int, batch: int, amp_dtype=None):
        self.model, self.x, self.b, self.target, self.batch = model, x, baseline, target, batch
        self.d = x - baseline
        self.f: dict[float, float] = {}
        self.phi: dict[float, float] = {}
        self.amp_dtype = amp_dtype

    def ensure(self, alphas) -> None:
        fresh = sorted({float(a) for a in alphas} - set(self.phi))
        for s in range(0, len(fresh), self.batch):
            chunk = fresh[s:s + self.batch]
            a = torch.as_tensor(chunk, dtype=torch.float32, device=self.x.device).view(-1, 1, 1, 1)
            points = (self.b + a * self.d).requires_grad_(True)
            with torch.enable_grad():
                out = torch.softmax(self.model(points).float(), dim=-1)[:, self.target]
                (g,) = torch.autograd.grad(out.sum(), points)
            phi = (g * self.d).flatten(1).double().sum(1).cpu().numpy()
            for alpha, fv, pv in zip(chunk, out.detach().double().cpu().numpy(), phi):
                self.f[alpha], self.phi[alpha] = float(fv), float(pv)

    def relative_delta(self, rule: str, n: int) -> float:
        nodes, weights = fixed_rule(rule, n)
        self.ensure(list(nodes) + [0.0, 1.0])
        total = float(np.dot(weights, [self.phi[float(a)] for a in nodes]))
        gap = self.f[1.0] - self.f[0.0]
        return abs(total - gap) / max(abs(gap), 1e-12)


def points_evaluated(rule: str, n: int) -> int:
    """Path points the engine evaluates for a fixed rule with n nodes and no probes (nodes + ends)."""
    return len(path_alphas(n, rule, probes=())[0])


def doubling(start: int = 4, stop: int = 1024) -> list[int]:
    out, n = [], start
    while n <= stop:
        out.append(n)
        n *= 2
    return out


def steps_for_photo(model, x, baseline, target: int, engine: AttributionEngine, tolerance=0.01,
                    max_n=1024, adaptive_start=16, batch=16, rules=FIXED_RULES) -> dict:
    """{rule: (nodes, points evaluated, relative delta reached)}; inf where no n <= max_n reached it."""
    probe = PathDerivative(model, x, baseline, target, batch)
    out = {}
    for rule in rules:
        found = (float("inf"), float("inf"), float("nan"))
        for n in doubling(4, max_n):
            rel = probe.relative_delta(rule, n)
            if rel <= tolerance:
                found = (n, points_evaluated(rule, n), rel)
                break
        out[rule] = found
    r = engine.attribute(model, x, target, baseline, adaptive_start, "adaptive", tolerance=tolerance,
                         max_steps=max_n, output="softmax")
    rel = float(r.max_relative_delta)
    ok = rel <= tolerance
    out["adaptive"] = (r.steps_used if ok else float("inf"), r.points_evaluated if ok else float("inf"), rel)
    return out
