"""Evaluation of image attribution methods: AOPC, deletion and insertion curves, box localization (paper Section
2.5, Figure 5; Petsiuk et al. 2018).

Every chosen method of the registry (ig_core.METHODS; all of them apply to images) attributes each photo's target,
and four measures compare the attributions, with the pixels in a random order as the reference:

* **Pixel ablation / AOPC** (Samek et al. 2015, as the paper runs it): rank the pixels by importance
  (Eq. 1), ablate the most important ones first, ``pixels_per_step`` single pixels at a time (100 in
  the paper) for ``ablation_steps`` steps (50 in the paper: 5,000 pixels, 10% of a 224x224 image),
  replacing all three channels by the baseline, i.e. black (footnote 4; uniform noise, as Samek
  proposes, is the ``fill="noise"`` option: every channel of every pixel uniform in [0, 1]), and
  record the target's softmax score after each step.
  AOPC after step k is the mean over j = 0..k of f(x) - f(x_after_j) (Samek's 1/(L+1) sum from
  k = 0); a better ranking gives a larger AOPC. Pixels are ablated singly, as in the paper, not in
  Samek's 9x9 regions.
* **Deletion and insertion** (Petsiuk et al. 2018, RISE; also in Quantus and xplique): the same ranking over all
  pixels in ``curve_steps`` equal steps. Deletion: the target's softmax as the most important pixels become the
  fill; insertion: as they are put back, most important first, into a blurred copy of the photo (RISE's Gaussian
  blur; a black start as an option). The area under each curve, over the fraction of pixels (0 to 1), is the
  measure: lower is better for deletion, higher for insertion.
* **Localization**: the share of the pixel-importance mass that falls inside the human bounding
  box(es). Mass is Eq. 1 (sum over channels of |attribution|) by default, so that it is the same
  quantity that ranks the pixels; ``mode="positive"`` uses the positive part of the signed channel
  sum instead (only the evidence *for* the class).
* **Completeness** where the method defines it (relative error), and the seconds each method takes per photo.

The baseline is the black image. Reference-set methods (expected gradients) draw their references from the other
photos of the evaluation: up to ``references`` (16) photos in a fixed random order (``seed``), never the photo
itself; all folders hold ImageNet photos, and the boxed folder alone has too few. The gradient and gradient x
input are read off the integrated-gradients scan (its point at the photo), free. The scoring is forward passes
only, all orders of a batch of photos through one implementation (`masked_scores`) in batches.

``python -m families.vision.evaluation ... --out bench/RESULTS-methods.md`` writes the Markdown results file (the command,
the date, the machine, the table per method, the settings); another --out name writes the per-photo CSV.

No Streamlit here. The measures take plain arguments (a module returning logits, preprocessed tensors,
a fill tensor); the runner takes a families.vision.classifiers.ImageClassifier, whose loading, preprocessing and
pixel importance (Eq. 1) it shares with the Vision page.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import math
import os
import pathlib
import platform
import shlex
import sys
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torchvision.transforms import functional as TF

from families.config import data_dir
from families.vision.photos import Photo, list_photos
from families.vision.classifiers import IMPORTANCE_MODES, ImageClassifier, ImageError, load_classifier, load_image, make_baseline, pixel_importance

RESIZE, CROP = 256, 224  # the standard ImageNet preprocessing: defaults of map_box / box_mask
SATURATION_ALPHA, SATURATION_LEVEL = 0.5, 0.9

IG = "integrated_gradients"
RANDOM = "random"  # the pixels in a random order: the reference of every measure
INSERTION_STARTS = ("blur", "black")
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0  # RISE's blurred start for insertion
REFERENCES = 16  # other photos in the reference set of expected gradients
# Method options that keep a CPU run of every method affordable (MobileNetV2 on 2 cores: bench/RESULTS-methods.md);
# expected gradients draws 2 of the references per photo, each one a path scan.
EVAL_OPTIONS = {"smoothgrad": {"samples": 8}, "expected_gradients": {"samples": 2}, "guided_ig": {"steps": 16},
                "blur_ig": {"steps": 16}, "idgi": {"steps": 16}}


# ----------------------------------------------------------------------------- AOPC

def _ranks(importance: torch.Tensor, region: int = 1) -> torch.Tensor:
    """[N, H, W] importance -> [N, H*W] rank of each pixel, 0 = most important (ties in a fixed random order).

    region r > 1 (Samek's r x r regions): blocks are ranked by their mean importance (edge blocks are cut) and a block's
    pixels get consecutive ranks, so ablating the top m * r * r pixels ablates the top m blocks.
    """
    if region > 1:
        n, h, w = importance.shape
        blocks = torch.nn.functional.avg_pool2d(importance.unsqueeze(1).double(), region, ceil_mode=True)[:, 0]
        block_rank = _ranks(blocks).view(blocks.shape)  # [N, h/r, w/r]
        pixel_block = block_rank.repeat_interleave(region, 1).repeat_interleave(region, 2)[:, :h, :w]
        key = pixel_block.flatten(1).double() * (h * w) + torch.arange(h * w, device=importance.device)
        return _ranks(-key.view(n, h, w))
    flat = importance.flatten(1)
    # ties (a region map's equal pixels, zero gradients) go in a fixed random order, not top-left first
    shuffle = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(0)).to(flat.device)
    order = shuffle[torch.sort(flat[:, shuffle], dim=1, descending=True, stable=True).indices]
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def _target_scores(forward, batch: torch.Tensor, targets: torch.Tensor, output: str) -> torch.Tensor:
    """[B] scores of the targets [B] on a batch of images (forward passes only)."""
    from ig_core import OUTPUT_TRANSFORMS

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
    ranks = {m: _ranks(torch.as_tensor(v).to(device).view(n, h, w), region) for m, v in importance.items()}
    counts = [min(k * int(pixels_per_step), h * w) for k in range(int(steps) + 1)]
    return masked_scores(forward, images, fill, targets, ranks, counts, known=None if intact is None else {0: intact},
                         output=output, max_batch=max_batch, progress=progress)


# ----------------------------------------------------------------------------- deletion and insertion

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


# ----------------------------------------------------------------------------- localization

def map_box(box: Sequence[float], width: int, height: int, resize: int = RESIZE, crop: int = CROP) -> tuple:
    """Map an ImageNet box (xmin, ymin, xmax, ymax; inclusive pixel indices of the original image)
    through torchvision's Resize(resize) (shorter side to ``resize``, the longer one truncated to
    int(resize * long / short)) and CenterCrop(crop) (offset int(round((size - crop) / 2))).

    Returns continuous edges (x0, y0, x1, y1) in crop pixel units, clipped to [0, crop]; the box
    covers original pixels xmin..xmax, i.e. the interval [xmin, xmax + 1).
    """
    xmin, ymin, xmax, ymax = map(float, box)
    if width <= height:
        new_w, new_h = resize, int(resize * height / width)
    else:
        new_w, new_h = int(resize * width / height), resize
    left, top = int(round((new_w - crop) / 2.0)), int(round((new_h - crop) / 2.0))
    sx, sy = new_w / width, new_h / height
    clip = lambda v: min(max(v, 0.0), float(crop))  # noqa: E731
    return (clip(xmin * sx - left), clip(ymin * sy - top), clip((xmax + 1) * sx - left), clip((ymax + 1) * sy - top))


def box_mask(boxes: Sequence[Sequence[float]], width: int, height: int, resize: int = RESIZE,
             crop: int = CROP) -> torch.Tensor:
    """Union of the mapped boxes as a bool [crop, crop] mask: a pixel is inside when its centre is."""
    mask = torch.zeros(crop, crop, dtype=torch.bool)
    centres = torch.arange(crop, dtype=torch.float64) + 0.5
    for box in boxes:
        x0, y0, x1, y1 = map_box(box, width, height, resize, crop)
        rows = (centres >= y0) & (centres < y1)
        cols = (centres >= x0) & (centres < x1)
        mask |= rows.view(-1, 1) & cols.view(1, -1)
    return mask


def mass_inside(importance: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of a non-negative [H, W] importance map inside the bool mask (nan if the map is all zero)."""
    importance = torch.as_tensor(importance, dtype=torch.float64)
    if bool((importance < 0).any()):
        raise ValueError("mass_inside needs a non-negative map; use pixel_importance(mode='abs' or 'positive')")
    total = float(importance.sum())
    return float(importance[mask.to(importance.device)].sum()) / total if total > 0 else float("nan")


def localization(attribution: torch.Tensor, mask: torch.Tensor, mode: str = "abs") -> float:
    """Fraction of the [3, H, W] attribution's pixel mass inside the box mask (mode: "abs" = Eq. 1, or "positive")."""
    if mode not in ("abs", "positive"):
        raise ValueError("localization mass must be non-negative: mode 'abs' or 'positive'")
    return mass_inside(pixel_importance(attribution, mode), mask)


# ----------------------------------------------------------------------------- saturation

def saturation_alpha(alphas: np.ndarray, scores: np.ndarray, level: float = SATURATION_LEVEL) -> np.ndarray:
    """First evaluated alpha where the score reaches ``level`` times its value at alpha = 1.

    alphas [K] sorted with alphas[-1] = 1, scores [K, N] -> [N].
    """
    scores = np.asarray(scores, dtype=np.float64)
    reached = scores >= level * scores[-1:]
    return np.asarray(alphas, dtype=np.float64)[np.argmax(reached, axis=0)]


# ----------------------------------------------------------------------------- data

def default_folders() -> list[pathlib.Path]:
    return [data_dir() / "imagenet_samples", data_dir() / "imagenet_val_boxes"]


def evaluation_folders() -> dict[str, pathlib.Path]:
    """The photo folders the evaluation page offers, by the name the browser sees (relative to the data
    folder): the default folders and imagenet_more, those that exist."""
    folders = default_folders() + [data_dir() / "imagenet_more"]
    return {folder.relative_to(data_dir()).as_posix(): folder for folder in folders if folder.is_dir()}


def read_photo(photo: Photo):
    """(the photo as an RGB image, "") or (None, why it cannot be used); the reason names no server path."""
    try:
        return load_image(photo.path.read_bytes()), ""
    except OSError as exc:
        return None, f"The file could not be read ({exc.strerror or type(exc).__name__})."
    except ImageError as exc:
        return None, str(exc)


def noise_fill(classifier: ImageClassifier, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Uniform random colours (Samek et al.) shaped like `like` [N, 3, H, W]: each channel of each pixel
    uniform in [0, 1] in pixel space, then normalized for the network (CPU)."""
    return classifier.normalize(torch.rand(tuple(like.shape), generator=generator))


# ----------------------------------------------------------------------------- runner

def image_methods() -> list[str]:
    """The registered attribution methods, in registry order: every one of them applies to images."""
    from ig_core import METHODS

    return list(METHODS)


def _option_names(name: str) -> set[str]:
    from ig_core import METHODS, method

    method(name)  # an unknown name: the registry's error, listing the methods
    return {field.name for field in dataclasses.fields(METHODS[name].Options)}


def method_options(methods: Sequence[str], overrides: Mapping[str, Mapping] | None = None) -> dict[str, dict]:
    """Each method's options for the evaluation: EVAL_OPTIONS where the method has that option (a method that
    lands with other option names keeps its own defaults), then ``overrides`` (method -> options). Refuses an
    unknown method or option now, not mid-run."""
    from ig_core import method

    chosen = {}
    for name in methods:
        defaults = {k: v for k, v in EVAL_OPTIONS.get(name, {}).items() if k in _option_names(name)}
        chosen[name] = {**defaults, **dict((overrides or {}).get(name, {}))}
        method(name, **chosen[name])
    return chosen


def _reference_set(classifier, photos, batch, count: int, order, cache: dict) -> torch.Tensor:
    """Up to ``count`` photos of the evaluation outside ``batch``, in a fixed random order, preprocessed [R, 3, H, W];
    ``cache`` keeps them between batches."""
    inside = {photo.path for photo in batch}
    chosen = []
    for index in order:
        if len(chosen) == count:
            break
        if photos[index].path in inside:
            continue
        if index not in cache:
            image, _ = read_photo(photos[index])
            cache[index] = None if image is None else classifier.preprocess(image)[0]
        if cache[index] is not None:
            chosen.append(cache[index])
    if not chosen:
        raise ValueError("no other photo of the evaluation could be read for the reference set")
    return torch.stack(chosen)


@dataclasses.dataclass
class EvalResult:
    table: pd.DataFrame  # one row per photo
    per_method: pd.DataFrame  # one row per photo and method (and the random order)
    curves: pd.DataFrame  # long: file, method, curve (aopc / deletion / insertion), step, pixels, fraction, score
    settings: dict
    skipped: pd.DataFrame  # file, reason: the photos that could not be used

    def to_csv(self) -> str:
        return self.table.to_csv(index=False)


def evaluate_photos(
    classifier: ImageClassifier,
    photos: Sequence[Photo],
    engine=None,
    *,
    methods: Sequence[str] | None = None,
    options: Mapping[str, Mapping] | None = None,
    rule: str = "adaptive",
    steps: int = 16,
    tolerance: float = 0.01,
    max_steps: int = 512,
    max_batch: int | None = None,
    amp: str | None = None,
    batch_size: int = 1,
    target: str = "predicted",
    pixels_per_step: int = 100,
    ablation_steps: int = 50,
    region: int = 1,
    fill: str = "black",
    curve_steps: int = 16,
    insertion_start: str = "blur",
    references: int = REFERENCES,
    include_random: bool = True,
    importance_mode: str = "abs",
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> EvalResult:
    """Run every chosen method on every photo and score the attributions, ``batch_size`` photos at a time.

    classifier: a families.vision.classifiers.ImageClassifier (its model is prepared on the engine's device); photos
    are decoded by families.vision.classifiers.load_image and preprocessed by the classifier (its resize and crop
    also map the boxes); a photo that cannot be read or decoded is skipped and listed in ``skipped`` with
    the reason. methods: registry names (default: all, `image_methods`); options: method -> options over
    `method_options`' defaults. The baseline is the black image (zero pixels); a reference-set method gets
    ``references`` other photos of the evaluation instead. The path methods use rule, steps, tolerance and
    max_steps. The ablation fill (AOPC, deletion) is black unless fill="noise" (uniform random colours);
    insertion starts from the blurred photo (insertion_start="blur") or black. target "predicted" (the paper:
    the highest-scoring class) or "label". F is the target's softmax. With the adaptive rule a batch shares one
    grid: batch_size 1 gives per-photo step counts; larger batches fill a GPU.

    table, per photo: label, predicted, the IG scan's relative_delta, steps_used, alpha_90 / saturated (softmax
    >= 90% of F(x) by alpha 0.5), for boxed photos box_fraction and box_ablation_drop (the paper's filters), and
    seconds (all methods and the scoring). per_method, per photo and method: aopc, deletion_auc, insertion_auc,
    localization (boxed photos), relative_delta (NaN where the method has no completeness), seconds. log gets
    the time per photo and an estimate for all photos after the first batch.
    """
    from ig_core import AttributionEngine, method, read_off_scan

    from families.vision.family import image_method_options

    if fill not in ("black", "noise"):
        raise ValueError(f"fill must be 'black' or 'noise', got {fill!r}")
    if insertion_start not in INSERTION_STARTS:
        raise ValueError(f"insertion_start must be one of {', '.join(INSERTION_STARTS)}, got {insertion_start!r}")
    methods = list(methods or image_methods())
    # the options as the Vision page runs them (XRAI's white in this network's normalisation)
    options = {name: image_method_options(classifier, name, chosen_options)
               for name, chosen_options in method_options(methods, options).items()}
    chosen = {name: method(name, **options[name]) for name in methods}
    photos = list(photos)
    if any(m.reference_set for m in chosen.values()) and len(photos) < 2:
        raise ValueError("a reference-set method (expected gradients) draws its references from the other photos "
                         "of the evaluation: choose at least two photos")
    # the gradient and gradient x input are read off the IG scan when there is one: it evaluated the photo already
    free = {name for name, m in chosen.items() if hasattr(m, "from_gradient") and IG in chosen}
    run_order = sorted(methods, key=lambda name: name != IG)
    engine = engine or AttributionEngine()
    model = engine.prepare(classifier.model)
    device = engine.device
    crop = classifier.crop_size
    black = make_baseline(classifier, "black", torch.zeros(1, 3, crop, crop))[0]
    gen = torch.Generator().manual_seed(seed)
    reference_order = torch.randperm(len(photos), generator=torch.Generator().manual_seed(seed)).tolist()
    reference_cache: dict = {}
    rows, method_rows, curve_rows, skipped = [], [], [], []
    batches = [photos[i:i + batch_size] for i in range(0, len(photos), max(batch_size, 1))]
    # the scoring is forward passes without gradients: no activations kept for a backward pass, so 4 times the
    # path points per batch fit
    forward_batch = 4 * (max_batch or engine.max_batch)
    t_start = time.perf_counter()
    for b, batch in enumerate(batches):
        t0 = time.perf_counter()
        base = b / len(batches)
        share = 1 / len(batches)

        def report(f, lo=0.0, hi=1.0):
            if progress is not None:
                progress(min(base + share * (lo + (hi - lo) * f), 1.0))

        decoded = [(photo, *read_photo(photo)) for photo in batch]
        skipped += [{"file": photo.file, "reason": reason} for photo, image, reason in decoded if image is None]
        batch = [photo for photo, image, _ in decoded if image is not None]
        images = [image for _, image, _ in decoded if image is not None]
        if not batch:
            report(1.0)
            continue
        x = torch.cat([classifier.preprocess(im) for im in images]).to(device)
        n = x.shape[0]
        probs = classifier.predict(x)
        predicted = probs.argmax(1)
        if target == "label" and all(p.label is not None for p in batch):
            targets = torch.tensor([p.label for p in batch])
        else:
            targets = predicted
        targets = targets.to(device)

        runs, seconds = {}, {}
        for j, name in enumerate(run_order):
            t1 = time.perf_counter()
            if name in free:
                runs[name] = read_off_scan(runs[IG], x.cpu(), name, **options[name])
            else:
                if chosen[name].reference_set:
                    baseline = _reference_set(classifier, photos, batch, references, reference_order,
                                              reference_cache).to(device)
                else:
                    baseline = black.to(device).expand_as(x)
                runs[name] = engine.attribute(
                    model, x, targets, baseline, steps, rule, tolerance=tolerance, max_steps=max_steps,
                    probe_alphas=(SATURATION_ALPHA,) if name == IG else (), output="softmax",
                    model_key=classifier.key, max_batch=max_batch, amp=amp, method=name,
                    method_options=options[name],
                    progress=lambda f, j=j: report((j + f) / len(run_order), 0.0, 0.7))
            seconds[name] = (time.perf_counter() - t1) / n
        maps = {name: runs[name].attributions.reshape(x.shape).float().cpu() for name in methods}

        t1 = time.perf_counter()
        importance = {name: pixel_importance(maps[name], importance_mode) for name in methods}
        if include_random:
            importance[RANDOM] = torch.rand(n, x.shape[2], x.shape[3], generator=gen)
        fill_t = (black if fill == "black" else noise_fill(classifier, x, gen)).to(device)
        start = blurred(x) if insertion_start == "blur" else black.to(device).expand_as(x)
        intact = probs.gather(1, targets.view(-1, 1).to(probs.device))[:, 0].to(device)
        pixel_ranks = {m: _ranks(v.to(device).view(n, *x.shape[2:])) for m, v in importance.items()}
        scores = {"aopc": masked_scores(
            model, x, fill_t, targets,
            pixel_ranks if region == 1 else {m: _ranks(v.to(device), region) for m, v in importance.items()},
            [min(k * pixels_per_step, x.shape[2] * x.shape[3]) for k in range(ablation_steps + 1)],
            known={0: intact}, output="softmax", max_batch=forward_batch, progress=lambda f: report(f, 0.7, 0.8))}
        scores.update(deletion_insertion_scores(model, x, targets, pixel_ranks, fill_t, start, curve_steps,
                                                intact=intact, output="softmax", max_batch=forward_batch,
                                                progress=lambda f: report(f, 0.8, 1.0)))
        pixels = x.shape[2] * x.shape[3]
        columns = {"aopc": [min(k * pixels_per_step, pixels) for k in range(ablation_steps + 1)],
                   "deletion": fraction_counts(pixels, curve_steps), "insertion": fraction_counts(pixels, curve_steps)}
        fractions = {kind: np.asarray(counts) / pixels for kind, counts in columns.items()}
        aopc = {m: aopc_curve(s) for m, s in scores["aopc"].items()}
        auc = {kind: {m: curve_auc(s, fractions[kind]) for m, s in scores[kind].items()}
               for kind in ("deletion", "insertion")}
        eval_seconds = (time.perf_counter() - t1) / n

        ig = runs.get(IG)
        if ig is not None:
            alpha90 = saturation_alpha(ig.alphas, ig.scores[:, :, 0])
            score_half = ig.scores[list(ig.alphas).index(SATURATION_ALPHA), :, 0]
        for i, photo in enumerate(batch):
            t = int(targets[i])
            row = {
                "file": photo.file,
                "label": photo.label,
                "label_name": photo.label_name,
                "predicted": int(predicted[i]),
                "predicted_name": classifier.categories[int(predicted[i])],
                "correct": (photo.label == int(predicted[i])) if photo.label is not None else None,
                "target": t,
                "score": float(intact[i]),
                "score_baseline": float(ig.score_baseline[i, 0]) if ig is not None else float("nan"),
                "relative_delta": float(ig.relative_delta[i, 0]) if ig is not None else float("nan"),
                "steps_used": int(ig.steps_used) if ig is not None else 0,
                "score_at_half": float(score_half[i]) if ig is not None else float("nan"),
                "alpha_90": float(alpha90[i]) if ig is not None else float("nan"),
                "saturated": bool(alpha90[i] <= SATURATION_ALPHA) if ig is not None else False,
                "has_box": bool(photo.boxes),
                "box_fraction": float("nan"),
                "box_ablation_drop": float("nan"),
                "seconds": sum(seconds.values()) + eval_seconds,
                "eval_seconds": eval_seconds,
            }
            mask = None
            if photo.boxes:
                w, h = images[i].size
                mask = box_mask(photo.boxes, w, h, resize=classifier.resize_size, crop=crop)
                row["box_fraction"] = float(mask.float().mean())
                # the paper keeps boxes whose ablation drops the score markedly
                blacked = torch.where(mask.view(1, *mask.shape), black, x[i].cpu())
                after = classifier.predict(blacked.unsqueeze(0))[0, t]
                row["box_ablation_drop"] = float(intact[i]) - float(after)
            rows.append(row)
            for m in importance:
                run = runs.get(m)
                method_rows.append({
                    "file": photo.file, "method": m,
                    "aopc": float(aopc[m][i, -1]),
                    "deletion_auc": float(auc["deletion"][m][i]),
                    "insertion_auc": float(auc["insertion"][m][i]),
                    "localization": (float("nan") if mask is None else localization(maps[m][i], mask)
                                     if run is not None else mass_inside(importance[m][i], mask)),
                    "localization_positive": (localization(maps[m][i], mask, "positive")
                                              if run is not None and mask is not None else float("nan")),
                    "relative_delta": float(run.relative_delta[i, 0]) if run is not None else float("nan"),
                    "points_evaluated": int(run.points_evaluated) if run is not None else 0,
                    "seconds": seconds[m] if run is not None else float("nan"),
                })
                for kind, per_order in scores.items():
                    for k, (count, fraction) in enumerate(zip(columns[kind], fractions[kind])):
                        curve_rows.append({"file": photo.file, "method": m, "curve": kind, "step": k,
                                           "pixels": count, "fraction": float(fraction),
                                           "score": float(per_order[m][i, k])})
        if b == 0 and log is not None:
            per_photo = (time.perf_counter() - t0) / n
            slowest = ", ".join(f"{name} {s:.1f} s" for name, s in sorted(seconds.items(), key=lambda p: -p[1]))
            log(f"first {n} photo(s): {per_photo:.1f} s per photo ({slowest}; scoring {eval_seconds:.1f} s); "
                f"about {per_photo * len(photos) / 60:.0f} min for {len(photos)} photos")
        report(1.0)
    settings = dict(methods=methods, options=options, rule=rule, steps=steps, tolerance=tolerance,
                    max_steps=max_steps, batch_size=batch_size, target=target, pixels_per_step=pixels_per_step,
                    ablation_steps=ablation_steps, region=region, fill=fill, curve_steps=curve_steps,
                    insertion_start=insertion_start, references=references, importance_mode=importance_mode,
                    seed=seed, model=classifier.key, device=str(device), seconds=time.perf_counter() - t_start)
    return EvalResult(pd.DataFrame(rows), pd.DataFrame(method_rows, columns=METHOD_COLUMNS),
                      pd.DataFrame(curve_rows, columns=CURVE_COLUMNS), settings,
                      pd.DataFrame(skipped, columns=["file", "reason"]))


METHOD_COLUMNS = ["file", "method", "aopc", "deletion_auc", "insertion_auc", "localization", "localization_positive",
                  "relative_delta", "points_evaluated", "seconds"]
CURVE_COLUMNS = ["file", "method", "curve", "step", "pixels", "fraction", "score"]
SUMMARY_COLUMNS = ["method", "photos", "aopc", "aopc_se", "deletion_auc", "insertion_auc", "boxed_photos",
                   "localization", "completeness_median", "seconds"]


def summarize(table: pd.DataFrame) -> dict:
    """The headline figures of the photos: the IG scan's completeness and saturation, accuracy, time."""
    if table.empty:
        return {"photos": 0}
    out = {
        "photos": int(len(table)),
        "relative_delta_median": float(table.relative_delta.median()),
        "relative_delta_p90": float(table.relative_delta.quantile(0.9)),
        "relative_delta_max": float(table.relative_delta.max()),
        "steps_used_median": float(table.steps_used.median()),
        "saturated_share": float(table.saturated.mean()),
        "boxed_photos": int(table.has_box.sum()),
        "seconds_per_photo": float(table.seconds.mean()),
        "eval_seconds_per_photo": float(table.eval_seconds.mean()),
    }
    if table.correct.notna().any():
        out["top1_accuracy"] = float(table.correct.dropna().astype(bool).mean())
    return out


def summarize_methods(per_method: pd.DataFrame) -> pd.DataFrame:
    """One row per method (in the order they appear): photos, mean AOPC and its standard error, mean deletion AUC
    (lower is better), mean insertion AUC (higher is better), mean localization over the boxed photos, median
    relative completeness error where the method defines completeness (NaN where not), mean seconds per photo."""
    rows = []
    for name, g in per_method.groupby("method", sort=False):
        boxed, complete = g.localization.dropna(), g.relative_delta.dropna()
        rows.append({
            "method": name, "photos": len(g),
            "aopc": g.aopc.mean(), "aopc_se": g.aopc.std(ddof=1) / math.sqrt(len(g)),
            "deletion_auc": g.deletion_auc.mean(), "insertion_auc": g.insertion_auc.mean(),
            "boxed_photos": len(boxed), "localization": boxed.mean() if len(boxed) else float("nan"),
            "completeness_median": complete.median() if len(complete) else float("nan"),
            "seconds": g.seconds.mean(),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """The curves averaged over photos, per method, curve and step (columns method, curve, step, pixels, fraction,
    score, n, aopc). aopc: on the AOPC rows, Figure 5's AOPC after each step; AOPC is linear in the scores, so the
    AOPC of the mean scores is the mean of the photos' AOPC."""
    columns = ["method", "curve", "step", "pixels", "fraction", "score", "n", "aopc"]
    if curves.empty:
        return pd.DataFrame(columns=columns)
    out = (curves.groupby(["method", "curve", "step"], as_index=False)
           .agg(pixels=("pixels", "mean"), fraction=("fraction", "mean"), score=("score", "mean"),
                n=("score", "size")))
    out["aopc"] = float("nan")
    for _, g in out[out.curve == "aopc"].groupby("method"):
        out.loc[g.index, "aopc"] = aopc_curve(g.score.to_numpy())
    return out[columns]


# ----------------------------------------------------------------------------- the results file

def machine_description(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and cores, and torch's version."""
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        cpuinfo = pathlib.Path("/proc/cpuinfo")
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")] if cpuinfo.exists() else []
        where = (f"{names[0] if names else platform.processor() or 'CPU'}, {os.cpu_count()} cores, "
                 f"{torch.get_num_threads()} torch threads")
    return f"{where}; torch {torch.__version__}"


def _number(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def results_markdown(result: EvalResult, command: str, machine: str, date: str) -> str:
    """The results file: the command, the date, the machine, the table per method and the settings."""
    from ig_core import method

    s = result.settings
    summary = summarize(result.table)
    per = summarize_methods(result.per_method)
    lines = [
        "# Attribution methods on ImageNet photos: AOPC, deletion, insertion, localization",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {date}. Machine: {machine}. Model: {s['model']} on {s['device']}.",
        "",
        f"Photos: {summary['photos']} ({summary.get('boxed_photos', 0)} with boxes), {len(result.skipped)} skipped; "
        f"target: the {s['target']} class; scores: the target's softmax.",
        "",
        "| method | AOPC (± s.e.) ↑ | deletion AUC ↓ | insertion AUC ↑ | localization ↑ (boxed photos) | "
        "completeness error, median | seconds per photo |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in per.itertuples():
        lines.append(f"| {r.method} | {_number(r.aopc)} ± {_number(r.aopc_se)} | {_number(r.deletion_auc)} | "
                     f"{_number(r.insertion_auc)} | {_number(r.localization, 3)} ({r.boxed_photos}) | "
                     f"{'n/a' if math.isnan(r.completeness_median) else f'{100 * r.completeness_median:.2f}%'} | "
                     f"{_number(r.seconds, 2)} |")
    lines += [
        "",
        "How to read it: AOPC (Samek et al. 2015) is the mean drop of the score as the most important pixels are "
        f"ablated, {s['pixels_per_step']} pixels a step for {s['ablation_steps']} steps (larger is better). "
        "Deletion and insertion (Petsiuk et al. 2018) are areas under the score as the most important pixels are "
        f"removed, or put back into a {'blurred' if s['insertion_start'] == 'blur' else 'black'} copy, over all "
        f"pixels in {s['curve_steps']} steps (x axis: fraction of pixels, 0 to 1). Localization: the share of the "
        "attribution mass (sum over channels of |attribution|) inside the human boxes; the random order's is the "
        "box's share of the image. Completeness error: |sum of attributions - score difference| relative to that "
        "difference, where the method defines one. random: the pixels in a random order, the reference.",
        "",
        "## Settings",
        "",
        f"- Path methods (integrated gradients and the methods on its path): rule {s['rule']}, steps {s['steps']}"
        + (f", tolerance {s['tolerance']:g}, budget {s['max_steps']} points" if s['rule'] == "adaptive" else "")
        + f"; the IG scan used a median of {summary.get('steps_used_median', float('nan')):.0f} points.",
        f"- Baseline: the black image; reference-set methods: up to {s['references']} other photos of the "
        f"evaluation (a fixed random choice, seed {s['seed']}), never the photo itself.",
        f"- AOPC and deletion fill: {s['fill']}; pixel ranking: {s['importance_mode']} (sum over channels); AOPC "
        f"regions: {s['region']} x {s['region']}.",
        "- Gradient and gradient x input are read off the IG scan (its point at the photo): their time is the "
        "read-off only.",
        f"- Scoring (forward passes only) took {summary.get('eval_seconds_per_photo', float('nan')):.2f} s per "
        f"photo; the whole run {s['seconds'] / 60:.1f} min.",
        "- Method options:",
    ]
    for name in s["methods"]:
        chosen = dataclasses.asdict(method(name, **s["options"][name]).options)
        lines.append(f"  - {name}: " + (", ".join(f"{k}={v}" for k, v in chosen.items()) or "none"))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- CLI

def format_summary(summary: dict, per_method: pd.DataFrame) -> str:
    lines = [f"photos: {summary.get('photos', 0)}"]
    if not summary.get("photos"):
        return lines[0]
    lines += [
        f"IG relative completeness error: median {100 * summary['relative_delta_median']:.2f}%, "
        f"90th percentile {100 * summary['relative_delta_p90']:.2f}%, max {100 * summary['relative_delta_max']:.2f}% "
        f"(median steps used {summary['steps_used_median']:.0f})",
        f"saturating by alpha {SATURATION_ALPHA:g} (softmax >= {SATURATION_LEVEL:.0%} of final): "
        f"{100 * summary['saturated_share']:.1f}%",
    ]
    if "top1_accuracy" in summary:
        lines.append(f"top-1 accuracy: {100 * summary['top1_accuracy']:.1f}%")
    lines.append(f"{'method':<22} {'AOPC':>14} {'deletion':>9} {'insertion':>9} {'local.':>7} {'s/photo':>8}")
    for r in summarize_methods(per_method).itertuples():
        lines.append(f"{r.method:<22} {_number(r.aopc)} ± {_number(r.aopc_se)} {_number(r.deletion_auc):>9} "
                     f"{_number(r.insertion_auc):>9} {_number(r.localization, 3):>7} {_number(r.seconds, 2):>8}")
    lines.append(f"time: {summary['seconds_per_photo']:.2f} s per photo")
    return "\n".join(lines)


def _folder(name: pathlib.Path) -> pathlib.Path:
    """A folder as given, else under the data folder ($IG_DATA_DIR)."""
    return name if name.is_dir() else data_dir() / name


def _option(text: str) -> tuple[str, str, object]:
    """"method.option=value" -> (method, option, value); the value read as a Python literal, else as text."""
    key, _, value = text.partition("=")
    name, _, option = key.partition(".")
    if not (name and option and value):
        raise argparse.ArgumentTypeError(f"expected method.option=value, got {text!r}")
    try:
        return name, option, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, option, value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m families.vision.evaluation", description=__doc__.split("\n")[0])
    p.add_argument("--folder", action="append", type=pathlib.Path, default=[],
                   help="an image folder (labels.csv / boxes.csv), as a path or a name in $IG_DATA_DIR; repeatable")
    p.add_argument("--folders", nargs="*", type=pathlib.Path, default=None,
                   help="image folders; default (without --folder): $IG_DATA_DIR imagenet_samples and "
                        "imagenet_val_boxes")
    p.add_argument("--limit", type=int, default=250, help="at most this many photos from each folder")
    p.add_argument("--methods", nargs="+", default=["all"],
                   help="registry names of the methods, or all (every registered method)")
    p.add_argument("--option", action="append", type=_option, default=[], metavar="METHOD.OPTION=VALUE",
                   help="a method option over the evaluation's defaults, e.g. smoothgrad.samples=25; repeatable")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("vision_eval.csv"),
                   help="per-photo CSV, or with a .md name the Markdown results file")
    p.add_argument("--per-method", type=pathlib.Path, default=None, help="optional CSV, one row per photo and method")
    p.add_argument("--curves", type=pathlib.Path, default=None, help="optional CSV of the per-photo curves")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--arch", default="mobilenet_v2", help="torchvision classifier name")
    p.add_argument("--weights", default=None, help="state_dict file (default: families.vision.classifiers.load_classifier's lookup)")
    p.add_argument("--rule", default="adaptive")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--max-steps", type=int, default=512)
    p.add_argument("--max-batch", type=int, default=None, help="path points per batch (engine default if unset)")
    p.add_argument("--amp", default=None, choices=[None, "bf16", "fp16"])
    p.add_argument("--batch", type=int, default=1, help="photos per engine scan (adaptive: they share a grid)")
    p.add_argument("--target", default="predicted", choices=["predicted", "label"])
    p.add_argument("--pixels-per-step", type=int, default=100)
    p.add_argument("--ablation-steps", type=int, default=50)
    p.add_argument("--region", type=int, default=1,
                   help="ablate r x r regions (Samek: 9 with --pixels-per-step 81 --ablation-steps 100); 1 = pixels")
    p.add_argument("--fill", default="black", choices=["black", "noise"])
    p.add_argument("--curve-steps", type=int, default=16, help="steps of the deletion and insertion curves")
    p.add_argument("--insertion-start", default="blur", choices=INSERTION_STARTS)
    p.add_argument("--references", type=int, default=REFERENCES,
                   help="other photos in the reference set of expected gradients")
    p.add_argument("--importance", default="abs", choices=IMPORTANCE_MODES,
                   help="pixel ranking: abs = Eq. 1 (the paper), sum = signed channel sum (most positive first)")
    p.add_argument("--no-random", action="store_true", help="skip the random-order reference curve")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from ig_core import AttributionEngine

    methods = image_methods() if args.methods == ["all"] else args.methods
    overrides: dict[str, dict] = {}
    for name, option, value in args.option:
        overrides.setdefault(name, {})[option] = value
    engine = AttributionEngine(device=args.device)
    classifier = load_classifier(args.arch, args.weights, device=engine.device)
    folders = [_folder(f) for f in args.folder] + list(args.folders or ([] if args.folder else default_folders()))
    photos = [ph for folder in folders for ph in list_photos(folder, args.limit)]
    print(f"{len(photos)} photos ({sum(bool(ph.boxes) for ph in photos)} with boxes) on {engine.device_name}; "
          f"methods: {', '.join(methods)}", file=sys.stderr)
    if not any(ph.boxes for ph in photos):
        print("no photo has a box: localization has no data (add --folder imagenet_val_boxes)", file=sys.stderr)
    last = [-1]

    def progress(f):
        pct = int(100 * f)
        if pct // 5 > last[0]:
            last[0] = pct // 5
            print(f"  {pct}%", file=sys.stderr, flush=True)

    result = evaluate_photos(classifier, photos, engine, methods=methods, options=overrides, rule=args.rule,
                             steps=args.steps, tolerance=args.tolerance, max_steps=args.max_steps,
                             max_batch=args.max_batch, amp=args.amp, batch_size=args.batch, target=args.target,
                             pixels_per_step=args.pixels_per_step, ablation_steps=args.ablation_steps,
                             region=args.region, fill=args.fill, curve_steps=args.curve_steps,
                             insertion_start=args.insertion_start, references=args.references,
                             include_random=not args.no_random, importance_mode=args.importance, seed=args.seed,
                             progress=progress, log=lambda text: print(text, file=sys.stderr, flush=True))
    for row in result.skipped.itertuples():
        print(f"skipped {row.file}: {row.reason}", file=sys.stderr)
    if args.out.suffix == ".md":
        command = "python -m families.vision.evaluation " + " ".join(shlex.quote(a) for a in argv)
        args.out.write_text(results_markdown(result, command, machine_description(engine.device),
                                             datetime.date.today().isoformat()))
    else:
        result.table.to_csv(args.out, index=False)
    if args.per_method:
        result.per_method.to_csv(args.per_method, index=False)
    if args.curves:
        result.curves.to_csv(args.curves, index=False)
    print(format_summary(summarize(result.table), result.per_method))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
