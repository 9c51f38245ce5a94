"""XRAI (Kapishnikov et al. 2019): integrated gradients gathered over image regions, the regions ranked by how
densely they hold attribution.

Each image is over-segmented (Felzenszwalb's graph segmentation at several scales, each segment dilated so that
it takes in its edges); then regions are added greedily, each time the one whose not yet covered pixels have the
highest mean attribution. Every pixel gets the mean of the region that first covered it, the pixels no region
covered get their own mean, and the regions' order is the explanation. The defaults are those of PAIR's
`saliency` package, whose maps this reproduces given the same integrated gradients.

The segmentation reads the input's own values, rescaled per image from its minimum and maximum as PAIR does:
images in [0, 1] or [0, 255] give the same regions, ImageNet-normalised tensors nearly the same (Felzenszwalb
compares colour differences, which per-channel offsets leave alone and per-channel scales within 2% of each
other barely change).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from scipy.ndimage import find_objects
from skimage.morphology import dilation, disk
from skimage.segmentation import felzenszwalb
from skimage.transform import resize

from .base import AttributionMethod, MethodContext
from .integrated_gradients import scan_path

# Felzenszwalb's scales and minimum segment size are tuned, as in PAIR, for an image resized to this size with
# values rescaled to this range
SEGMENTATION_SIZE = (224, 224)
SEGMENTATION_RANGE = (-1.0, 1.0)


def segment(image: np.ndarray, scales=(50, 100, 150, 250, 500, 1200), sigma: float = 0.8, min_size: int = 150,
            dilation_radius: int = 5) -> np.ndarray:
    """The candidate regions of an image [H, W, channels]: boolean masks [M, H, W], the segments of every scale
    in turn, found on a copy resized to SEGMENTATION_SIZE with values rescaled to SEGMENTATION_RANGE."""
    low, high = image.min(), image.max()
    unit = (image - low) / (high - low) if high > low else np.zeros_like(image)
    scaled = unit * (SEGMENTATION_RANGE[1] - SEGMENTATION_RANGE[0]) + SEGMENTATION_RANGE[0]
    work = resize(scaled, SEGMENTATION_SIZE, order=3, mode="constant", preserve_range=True, anti_aliasing=True)
    footprint = disk(dilation_radius) if dilation_radius else None
    height, width = image.shape[:2]
    masks = []
    for scale in scales:
        labels = felzenszwalb(work, scale=scale, sigma=sigma, min_size=min_size)
        labels = resize(labels, (height, width), order=0, mode="constant", preserve_range=True,
                        anti_aliasing=False).astype(int)
        labels -= labels.min() - 1  # find_objects counts labels from 1
        for label, box in enumerate(find_objects(labels), start=1):
            if box is None:  # a segment too thin to survive the resizing back
                continue
            mask = np.zeros((height, width), dtype=bool)
            if footprint is None:
                mask[box] = labels[box] == label
            else:  # dilation reaches no further than the radius: work on the segment's box grown by it
                grown = tuple(slice(max(s.start - dilation_radius, 0), s.stop + dilation_radius) for s in box)
                mask[grown] = dilation(labels[grown] == label, footprint=footprint)
            masks.append(mask)
    return np.stack(masks)


def rank_regions(attribution: np.ndarray, masks: np.ndarray, area_threshold: float = 1.0,
                 min_region_pixels: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """XRAI's greedy selection. attribution [H, W]; masks [M, H, W] boolean candidate regions.

    While at most `area_threshold` of the image is covered, add the candidate whose uncovered pixels have the
    highest mean attribution (the first such candidate on ties); a candidate that would add fewer than
    `min_region_pixels` pixels is dropped for good. Returns the density map [H, W] float64 (each pixel: the mean
    attribution of the pixels its region added; the pixels left over: their own mean) and the rank map [H, W]
    (1: the densest region added; the pixels left over come last).
    """
    values = attribution.astype(np.float64).ravel()
    members = sparse.csc_array(masks.reshape(len(masks), -1), dtype=np.float64)
    flat_masks = masks.reshape(len(masks), -1)
    # what each candidate would add, kept up to date as pixels get covered (each pixel is subtracted once)
    new_pixels = members.sum(axis=1)
    new_total = members @ values
    candidate = np.ones(len(masks), dtype=bool)
    covered = np.zeros(values.size, dtype=bool)
    density = np.empty(values.size)
    regions = []  # (density, pixel indices) in the order added
    while covered.mean() <= area_threshold:
        candidate &= new_pixels >= min_region_pixels
        if not candidate.any():
            break
        best = int(np.argmax(np.where(candidate, new_total / np.maximum(new_pixels, 1), -np.inf)))
        added = np.flatnonzero(flat_masks[best] & ~covered)
        regions.append((values[added].mean(), added))
        density[added] = regions[-1][0]
        covered[added] = True
        candidate[best] = False
        reached = members[:, added]
        new_pixels -= reached.sum(axis=1)
        new_total -= reached @ values[added]
    if not covered.all():
        rest = np.flatnonzero(~covered)
        density[rest] = values[rest].mean()
    ranks = np.full(values.size, len(regions) + 1)
    for rank, index in enumerate(np.argsort([-d for d, _ in regions], kind="stable"), start=1):
        ranks[regions[index][1]] = rank
    return density.reshape(attribution.shape), ranks.reshape(attribution.shape)


class XRAI(AttributionMethod):
    """Attributions per input [T, N, C, H, W]: the density map in channel 0, minus its least dense region's
    density, and zeros in the other channels, so that the pixel importance sum_c |a| ranks the pixels as XRAI
    does. extras: "regions", per input the rank maps [T, N, H, W] (1: the densest region; the pixels no region
    covered come last), and "lowest_density", per input [T, N], the density taken off channel 0."""

    name = "xrai"
    label = "XRAI (regions)"
    completeness = None
    no_completeness = ("XRAI ranks image regions: each pixel holds the attribution density of its region, which "
                       "does not add up to a difference of scores")
    images_only = True
    uses_path_rule = True

    @dataclass(frozen=True)
    class Options:
        # integrated gradients also from this constant image, averaged with those from the request's baseline, as
        # PAIR averages black and white: one value (1.0: white for inputs in [0, 1]) or one per channel (white for
        # a normalised network: (1 - mean) / std); None: from the request's baseline only
        second_baseline: float | tuple[float, ...] | None = 1.0
        area_threshold: float = 1.0  # rank regions until this share of the image is covered; the rest is one region
        min_region_pixels: int = 50  # a region that would add fewer new pixels is dropped
        scales: tuple[int, ...] = (50, 100, 150, 250, 500, 1200)  # Felzenszwalb's scales, on a 224 x 224 copy
        sigma: float = 0.8  # Felzenszwalb's smoothing
        min_segment_size: int = 150  # Felzenszwalb's smallest segment, in pixels of the 224 x 224 copy
        dilation_radius: int = 5  # each segment grows by this many pixels to take in its edges

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        if not 0 <= o.area_threshold <= 1 or o.min_region_pixels < 1 or not o.scales:
            raise ValueError(f"XRAI needs area_threshold in [0, 1], min_region_pixels >= 1 and some scales, got "
                             f"{o.area_threshold}, {o.min_region_pixels} and {o.scales}")

    def check(self, problem):
        super().check(problem)
        second = self.options.second_baseline
        if isinstance(second, (tuple, list)) and any(len(second) not in (1, x.shape[1]) for x in problem.inputs):
            raise ValueError(f"XRAI's second baseline has {len(second)} values, one per channel, but the images "
                             f"have {', '.join(str(x.shape[1]) for x in problem.inputs)} channels")

    def integrated_gradients(self, context: MethodContext):
        """Integrated gradients per input [T, N, ...], averaged over the request's baseline and the second one, from
        one scan over every example once per baseline; and that scan, whose rows i * copies are the request's
        baseline's, with `copies` the number of baselines."""
        problem, second = context.problem, self.options.second_baseline
        baselines = [problem.baselines]
        if second is not None:
            baselines.append(tuple(torch.as_tensor(second, dtype=x.dtype, device=x.device).view(-1, 1, 1).expand_as(x)
                                   for x in problem.inputs))
        copies = len(baselines)
        rows = torch.arange(problem.n_examples, device=problem.targets.device).repeat_interleave(copies)
        scan = scan_path(context.on(problem.with_examples(
            [x.repeat_interleave(copies, 0) for x in problem.inputs],
            [torch.stack(per_baseline, 1).flatten(0, 1) for per_baseline in zip(*baselines)], rows)))
        averaged = tuple(a.reshape(a.shape[0], problem.n_examples, copies, *a.shape[2:]).mean(2)
                         for a in scan.attributions_per_target)
        return averaged, scan, copies

    def compute(self, context: MethodContext):
        o = self.options
        ig, scan, copies = self.integrated_gradients(context)
        maps, ranks, lowest = [], [], []
        for x, attribution in zip(context.problem.inputs, ig):  # attribution [T, N, C, H, W]
            per_pixel = attribution.amax(dim=2).double().numpy()  # PAIR's aggregation: the largest over channels
            region_map = torch.zeros_like(attribution)
            rank_map = np.empty(per_pixel.shape, dtype=np.int32)
            lowest_density = np.empty(per_pixel.shape[:2])
            for i, image in enumerate(x.detach().cpu().numpy().transpose(0, 2, 3, 1)):
                masks = segment(image, o.scales, o.sigma, o.min_segment_size, o.dilation_radius)
                for j in range(per_pixel.shape[0]):
                    density, rank_map[j, i] = rank_regions(per_pixel[j, i], masks, o.area_threshold,
                                                           o.min_region_pixels)
                    lowest_density[j, i] = density.min()
                    # the least dense region reads 0, so that the sum over channels of |attribution| ranks the
                    # pixels as XRAI does
                    region_map[j, i, 0] = torch.from_numpy(density - density.min())
            maps.append(region_map)
            ranks.append(rank_map)
            lowest.append(lowest_density)
        return self.result(context, maps, scan.score_input[::copies], scan.score_baseline[::copies],
                           copies * scan.points_evaluated, steps_used=scan.steps_used, path_alphas=scan.alphas,
                           path_scores=scan.scores[:, ::copies],
                           gradient_at_input=tuple(g[:, ::copies] for g in scan.interior_gradients[1.0]),
                           extras={"regions": tuple(ranks), "lowest_density": tuple(lowest)})
