"""Pixel importance: an attribution map over the colour channels (the paper's Eq. 1 and its signed variants), and
the most important pixels of a map."""
from __future__ import annotations

import numpy as np
import torch

IMPORTANCE_MODES = ("abs", "sum", "positive", "negative")


def pixel_importance(attribution, mode: str = "abs"):
    """Aggregate an attribution (or gradient) [3, H, W] or [N, 3, H, W] over the colour channels to
    [H, W] or [N, H, W]; a torch tensor gives a tensor, anything else a numpy array.

    mode "abs" (default): the paper's Eq. 1, sum_c |a_ijc|; the evaluation ranks pixels by it.
    "sum": the signed sum_c a_ijc, whose total is what completeness speaks of.
    "positive" / "negative": max(+-sum_c a_ijc, 0), the evidence for / against the class only.
    The Vision page's polarities (dashboard.renderers.vision.importance_map) are these modes.
    """
    if mode not in IMPORTANCE_MODES:
        raise ValueError(f"mode must be one of {IMPORTANCE_MODES}, got {mode!r}")
    is_tensor = isinstance(attribution, torch.Tensor)
    a = attribution if is_tensor else np.asarray(attribution)
    if a.ndim not in (3, 4):
        raise ValueError(f"attribution must be [3, H, W] or [N, 3, H, W], got {tuple(a.shape)}")
    channel = a.ndim - 3
    if mode == "abs":
        return abs(a).sum(channel)
    total = a.sum(channel)
    if mode == "sum":
        return total
    if mode == "negative":
        total = -total
    return total.clamp_min(0) if is_tensor else np.maximum(total, 0)


def top_fraction_mask(importance: np.ndarray, fraction: float) -> np.ndarray:
    """True for the `fraction` of pixels with the largest importance (ties broken by position)."""
    flat = np.asarray(importance, dtype=np.float64).ravel()
    count = int(round(np.clip(fraction, 0.0, 1.0) * flat.size))
    mask = np.zeros(flat.size, dtype=bool)
    if count:
        mask[np.argsort(-flat, kind="stable")[:count]] = True
    return mask.reshape(np.shape(importance))
