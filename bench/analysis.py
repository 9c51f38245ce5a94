"""The "full Vision analysis" done three ways: our engine, Captum, and the bare-model floor.

The views: IG at `steps` nodes of a rule, interior gradients at PROBE_ALPHAS, the saturation trend
(F along the path), completeness (delta) and the gradient at the image (alpha = 1).
"""
from __future__ import annotations

import contextlib
import importlib
import warnings

import numpy as np
import torch

from families.vision.family import PROBE_ALPHAS  # the Vision page's alphas
from ig_core import AttributionEngine, path_points

CAPTUM_METHODS = {"gauss-legendre": "gausslegendre", "trapezoid": "riemann_trapezoid", "left": "riemann_left",
                  "right": "riemann_right", "midpoint": "riemann_middle"}


def softmax_forward(model):
    return lambda x: torch.softmax(model(x), dim=-1)


def ours(engine: AttributionEngine, model, x, baseline, target, steps=50, rule="gauss-legendre",
         probes=PROBE_ALPHAS, amp=None, max_batch=None):
    """One engine call; returns (result, relative delta)."""
    r = engine.attribute(model, x, target, baseline, steps, rule, probe_alphas=probes, output="softmax",
                         amp=amp, max_batch=max_batch)
    return r, float(r.max_relative_delta)


def path_alphas(steps: int, rule: str, probes=PROBE_ALPHAS) -> tuple[np.ndarray, np.ndarray]:
    """The alphas our engine evaluates for a fixed rule (nodes first, then probes and ends), with weights."""
    return path_points(rule, steps, probes)


def floor(model, x, baseline, target: int, steps=50, rule="gauss-legendre", probes=PROBE_ALPHAS,
          batch=16, amp_dtype=None):
    """The bare model: the same path points, in the same batch sizes, one plain autograd.grad per batch.

    Does only what the views need: weighted gradient sum (IG), gradients kept at the probe alphas,
    F at every point (trend), completeness from F(1) - F(0). Returns relative delta.
    """
    alphas, weights = path_alphas(steps, rule, probes)
    keep = set(map(float, probes)) | {1.0}
    d = x - baseline
    integral = torch.zeros_like(x)
    kept, scores = {}, []
    per_chunk = max(batch // x.shape[0], 1)
    ctx = torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    for s in range(0, len(alphas), per_chunk):
        a = torch.as_tensor(alphas[s:s + per_chunk], dtype=torch.float32, device=x.device)
        w = torch.as_tensor(weights[s:s + per_chunk], dtype=torch.float32, device=x.device)
        points = (baseline + a.view(-1, 1, 1, 1) * d).requires_grad_(True)
        with torch.enable_grad():
            with ctx:
                raw = model(points)
            out = torch.softmax(raw.float(), dim=-1)[:, target]
            (g,) = torch.autograd.grad(out.sum(), points)
        integral += torch.tensordot(w, g.float(), dims=1).unsqueeze(0)
        for j, alpha in enumerate(alphas[s:s + per_chunk]):
            if float(alpha) in keep:
                kept[float(alpha)] = g[j].detach().clone()
        scores.append(out.detach())
    scores = torch.cat(scores).double().cpu().numpy()
    f = dict(zip(map(float, alphas), scores))
    total = float((d * integral).double().sum())
    gap = f[1.0] - f[0.0]
    return abs(total - gap) / max(abs(gap), 1e-12)


def captum_available() -> bool:
    try:
        importlib.import_module("captum.attr")
        return True
    except ImportError:
        return False


def captum_full(model, x, baseline, target: int, steps=50, rule="gauss-legendre", probes=PROBE_ALPHAS,
                batch=16):
    """The same views with Captum: IntegratedGradients (+ convergence delta), Saliency at the probe
    alphas (one call on the probe points stacked, which is kinder to Captum than one call each), and
    one no-grad forward over the same alpha grid as ours for the trend. Returns relative delta."""
    from captum.attr import IntegratedGradients, Saliency

    f = softmax_forward(model)
    ig = IntegratedGradients(f)
    attr, delta = ig.attribute(x, baselines=baseline, target=target, n_steps=steps,
                               method=CAPTUM_METHODS[rule], internal_batch_size=batch,
                               return_convergence_delta=True)
    pa = torch.as_tensor(probes, dtype=torch.float32, device=x.device).view(-1, 1, 1, 1)
    with warnings.catch_warnings():  # "did not already require gradients": Captum sets it itself
        warnings.simplefilter("ignore", UserWarning)
        sal = Saliency(f).attribute(baseline + pa * (x - baseline), target=target, abs=False)
    alphas, _ = path_alphas(steps, rule, probes)
    trend = []
    with torch.no_grad():
        for s in range(0, len(alphas), batch):
            a = torch.as_tensor(alphas[s:s + batch], dtype=torch.float32, device=x.device).view(-1, 1, 1, 1)
            trend.append(f(baseline + a * (x - baseline))[:, target])
    trend = torch.cat(trend).double().cpu().numpy()
    fa = dict(zip(map(float, alphas), trend))
    gap = fa[1.0] - fa[0.0]
    del attr, sal
    return abs(float(delta.double().sum())) / max(abs(gap), 1e-12)


def captum_ig_batch(model, xs, baselines, targets, steps=50, rule="gauss-legendre", batch=16):
    """Captum IG for a batch of photos with per-example targets (throughput comparison)."""
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(softmax_forward(model))
    return ig.attribute(xs, baselines=baselines, target=targets, n_steps=steps, method=CAPTUM_METHODS[rule],
                        internal_batch_size=batch, return_convergence_delta=True)


def linear_trapezoid_check(device, steps=50) -> tuple[float | None, float]:
    """Completeness on a linear F (exact for any correct rule): Captum's trapezoid vs ours."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(20, 3).to(device).requires_grad_(False)
    x = torch.randn(1, 20, device=device)
    engine = AttributionEngine(device, max_batch=64, cache_size=0)
    r = engine.attribute(lin, x, 1, None, steps, "trapezoid")
    ours_rel = float(r.max_relative_delta)
    if not captum_available():
        return None, ours_rel
    from captum.attr import IntegratedGradients

    _, delta = IntegratedGradients(lin).attribute(x, target=1, n_steps=steps, method="riemann_trapezoid",
                                                  return_convergence_delta=True)
    gap = float(lin(x)[0, 1] - lin(torch.zeros_like(x))[0, 1])
    return abs(float(delta.sum())) / abs(gap), ours_rel
