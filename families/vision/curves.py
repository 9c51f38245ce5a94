"""Perturbation curves of an attribution ranking (forward passes only): pixel ablation and AOPC (Samek et al. 2015,
as the paper's Section 2.5 and Figure 5 run it), deletion and insertion (Petsiuk et al. 2018, RISE).

Every curve is the target's score of images that take their top-ranked pixels from one image and the others from
another, all through one implementation (`masked_scores`), in batches. The measures take plain arguments: a module
returning logits, preprocessed tensors, a fill tensor.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torchvision.transforms import functional as TF

from ig_core import OUTPUT_TRANSFORMS

INSERTION_STARTS = ("blur", "black")
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0  # RISE's blurred start for insertion


def pixel_ranks(importance: torch.Tensor, region: int = 1) -> torch.Tensor:
    """[N, H, W] importance -> [N, H*W] rank of each pixel, 0 = most important (ties in a fixed random order).

    region r > 1 (Samek's r x r regions): blocks are ranked by their mean importance (edge blocks are cut) and a block's
    pixels get consecutive ranks, so ablating the top m * r * r pixels ablates the top m blocks.
    """
    if region > 1:
        n, h, w = importance.shape
        blocks = torch.nn.functional.avg_pool2d(importance.unsqueeze(1).double(), region, ceil_mode=True)[:, 0]
        block_rank = pixel_ranks(blocks).view(blocks.shape)  # [N, h/r, w/r]
        pixel_block = block_rank.repeat_interleave(region, 1).repeat_interleave(region, 2)[:, :h, :w]
        key = pixel_block.flatten(1).double() * (h * w) + torch.arange(h * w, device=importance.device)
        return pixel_ranks(-key.view(n, h, w))
    flat = importance.flatten(1)
    # ties (a region map's equal pixels, zero gradients) go in a fixed random order, not top-left first
    shuffle = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(0)).to(flat.device)
    order = shuffle[torch.sort(flat[:, shuffle], dim=1, descending=True, stable=True).indices]
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def _target_scores(forward, batch: torch.Tensor, targets: torch.Tensor, output: str) -> torch.Tensor:
    """[B] scores of the targets [B] on a batch of images (forward passes only)."""
    return OUTPUT_TRANSFORMS[output](forward(batch).float()).gather(1, targets.view(-1, 1))[:, 0]


@torch.no_grad()
def masked_scores(
    forward: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    source: torch.Tensor,
    targets: torch.Tensor,
    ranks: Mapping[str, torch.Tensor],
    counts: Sequence[int],
    *,
    known: Mapping[int, torch.Tensor | np.ndarray] | None = None,
    output: str = "softmax",
    max_batch: int = 32,
    progress: Callable[[float], None] | None = None,
) -> dict[str, np.ndarray]:
    """Target scores of images that take their ``count`` top-ranked pixels from ``source``, the others from ``start``.

    The one implementation behind AOPC and deletion (start = the image, source = the fill) and insertion (start = a
    blurred or black image, source = the image). start [N, 3, H, W]; source [N, 3, H, W] or [3, H, W]; targets [N];
    ranks: order -> [N, H*W] rank of each pixel (0 = taken first); counts: pixels taken at each column. Returns
    order -> [N, len(counts)]. known: column -> [N] scores the caller has already, the same for every order (the
    intact image, the all-fill image), not recomputed. All orders, images and columns go through the model in
    batches of ``max_batch``.
    """
    n, _, h, w = start.shape
    source = source.expand_as(start)
    known = known or {}
    orders = list(ranks)
    out = {m: np.zeros((n, len(counts))) for m in orders}
    for k, scores in known.items():
        for m in orders:
            out[m][:, k] = torch.as_tensor(scores).double().cpu().numpy().reshape(n)
    rows = [(m, i, k) for m in orders for i in range(n) for k in range(len(counts)) if k not in known]
    size = max(int(max_batch), 1)
    for begin in range(0, len(rows), size):
        chunk = rows[begin:begin + size]
        batch = torch.stack([torch.where((ranks[m][i] < counts[k]).view(1, h, w), source[i], start[i])
                             for m, i, k in chunk])
        picked = _target_scores(forward, batch, torch.stack([targets[i] for _, i, _ in chunk]), output)
        for (m, i, k), s in zip(chunk, picked.double().cpu().numpy()):
            out[m][i, k] = s
        if progress is not None:
            progress(min((begin + len(chunk)) / len(rows), 1.0))
    return out


def perturbation_scores(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    targets: torch.Tensor | Sequence[int],
    importance: Mapping[str, torch.Tensor],
    fill: torch.Tensor,
    *,
    pixels_per_step: int = 100,
    steps: int = 50,
    region: int = 1,
    output: str = "softmax",
    max_batch: int = 32,
    device: str | torch.device | None = None,
    intact: torch.Tensor | np.ndarray | None = None,
    progress: Callable[[float], None] | None = None,
) -> dict[str, np.ndarray]:
    """Scores of the target after ablating the most important pixels first (Samek's MoRF order).

    images [N, 3, H, W] (preprocessed), targets [N], importance: method -> [N, H, W] (larger = ablated
    earlier), fill [3, H, W] or [N, 3, H, W]: what an ablated pixel becomes (the baseline: black).
    Returns method -> [N, steps + 1] scores; column k is after k * pixels_per_step pixels (column 0 is
    the intact image). region > 1 ranks r x r blocks instead of pixels (Samek's 9 x 9 regions; pass
    pixels_per_step = r * r for one region per step). All methods and images go through the model in
    batches of ``max_batch``. intact [N]: the targets' scores of the intact images when the caller has
    them already (column 0, then not recomputed once per method).
    """
    device = torch.device(device) if device is not None else images.device
    images = images.to(device, torch.float32)
    n, _, h, w = images.shape
    fill = torch.as_tensor(fill, dtype=torch.float32).to(device)
    targets = torch.as_tensor(targets, dtype=torch.long, device=device).view(n)
    ranks = {m: pixel_ranks(torch.as_tensor(v).to(device).view(n, h, w), region) for m, v in importance.items()}
    counts = [min(k * int(pixels_per_step), h * w) for k in range(int(steps) + 1)]
    return masked_scores(forward, images, fill, targets, ranks, counts, known=None if intact is None else {0: intact},
                         output=output, max_batch=max_batch, progress=progress)


def fraction_counts(pixels: int, steps: int) -> list[int]:
    """Pixels moved after each of ``steps`` equal steps over all ``pixels``: 0, ..., pixels."""
    return [k * int(pixels) // int(steps) for k in range(int(steps) + 1)]


def curve_auc(scores: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Area under [..., S + 1] scores against the fraction of pixels moved (trapezoids over [0, 1])."""
    return np.trapezoid(np.asarray(scores, dtype=np.float64), np.asarray(fractions, dtype=np.float64), axis=-1)


def blurred(images: torch.Tensor) -> torch.Tensor:
    """RISE's insertion start: a Gaussian blur (11 x 11, sigma 5) of [N, 3, H, W] network inputs. The kernel sums
    to one and normalization is affine per channel, so this is the normalized blurred photo."""
    return TF.gaussian_blur(images, [BLUR_KERNEL, BLUR_KERNEL], [BLUR_SIGMA, BLUR_SIGMA])


@torch.no_grad()
def deletion_insertion_scores(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    targets: torch.Tensor,
    ranks: Mapping[str, torch.Tensor],
    fill: torch.Tensor,
    start: torch.Tensor,
    steps: int,
    *,
    intact: torch.Tensor,
    output: str = "softmax",
    max_batch: int = 32,
    progress: Callable[[float], None] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Deletion and insertion curves (Petsiuk et al. 2018, RISE), columns after k / steps of all pixels.

    Deletion: the most important pixels become ``fill`` first; insertion: starting from ``start`` (blurred or
    black), the most important pixels of the image come back first. images, start [N, 3, H, W]; fill [3, H, W] or
    [N, 3, H, W]; ranks: order -> [N, H*W]; intact [N]: the targets' scores of the images. The two ends shared by
    every order (all pixels removed, the start) are evaluated once. Returns {"deletion": ..., "insertion": ...},
    each order -> [N, steps + 1].
    """
    n, _, h, w = images.shape
    counts = fraction_counts(h * w, steps)
    ends = _target_scores(forward, torch.cat([fill.expand_as(images), start]), targets.repeat(2), output)
    removed, started = ends[:n], ends[n:]
    deletion = masked_scores(forward, images, fill, targets, ranks, counts, known={0: intact, steps: removed},
                             output=output, max_batch=max_batch,
                             progress=progress and (lambda f: progress(f / 2)))
    insertion = masked_scores(forward, start, images, targets, ranks, counts, known={0: started, steps: intact},
                              output=output, max_batch=max_batch,
                              progress=progress and (lambda f: progress(0.5 + f / 2)))
    return {"deletion": deletion, "insertion": insertion}


def aopc_curve(scores: np.ndarray) -> np.ndarray:
    """[..., L + 1] scores after 0..L ablation steps -> AOPC after each step (Samek et al. 2015).

    AOPC(k) = 1/(k+1) * sum_{j=0..k} (f(x) - f(x_after_j)); AOPC(L) is Samek's AOPC of one image.
    The paper's Figure 5 plots the mean of this curve over a data set against k.
    """
    scores = np.asarray(scores, dtype=np.float64)
    drops = scores[..., :1] - scores
    return np.cumsum(drops, axis=-1) / np.arange(1, scores.shape[-1] + 1)
