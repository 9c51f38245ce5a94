"""Evaluation of integrated gradients on an image classifier (paper Section 2.5, Figure 5).

Two measures compare integrated gradients (IG) with the gradient at the image:

* **Pixel ablation / AOPC** (Samek et al. 2015, as the paper runs it): rank the pixels by importance
  (Eq. 1), ablate the most important ones first, ``pixels_per_step`` single pixels at a time (100 in
  the paper) for ``ablation_steps`` steps (50 in the paper: 5,000 pixels, 10% of a 224x224 image),
  replacing all three channels by the baseline, i.e. black (footnote 4; uniform noise, as Samek
  proposes, is the ``fill="noise"`` option: every channel of every pixel uniform in [0, 1]), and
  record the target's softmax score after each step.
  AOPC after step k is the mean over j = 0..k of f(x) - f(x_after_j) (Samek's 1/(L+1) sum from
  k = 0); a better ranking gives a larger AOPC. Pixels are ablated singly, as in the paper, not in
  Samek's 9x9 regions.
* **Localization**: the share of the pixel-importance mass that falls inside the human bounding
  box(es). Mass is Eq. 1 (sum over channels of |attribution|) by default, so that it is the same
  quantity that ranks the pixels; ``mode="positive"`` uses the positive part of the signed channel
  sum instead (only the evidence *for* the class).

The runner does ONE engine scan per image (per batch of images): the scan gives the integrated
gradients, the gradient at the image (alpha = 1), the completeness error and the prediction trend
(saturation). Everything else is forward passes without gradients.

No Streamlit here. The measures take plain arguments (a module returning logits, preprocessed tensors,
a fill tensor); the runner takes a models.vision.ImageClassifier, whose loading, preprocessing and
pixel importance (Eq. 1) it shares with the Vision page.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import sys
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .data import data_dir
from .photos import Photo, list_photos
from .vision import (IMPORTANCE_MODES, ImageClassifier, ImageError, load_classifier, load_image, make_baseline,
                     pixel_importance)

RESIZE, CROP = 256, 224  # the standard ImageNet preprocessing: defaults of map_box / box_mask
SATURATION_ALPHA, SATURATION_LEVEL = 0.5, 0.9


# ----------------------------------------------------------------------------- AOPC

def _ranks(importance: torch.Tensor, region: int = 1) -> torch.Tensor:
    """[N, H, W] importance -> [N, H*W] rank of each pixel, 0 = most important (stable on ties).

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
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


@torch.no_grad()
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
    from ig_core import OUTPUT_TRANSFORMS

    device = torch.device(device) if device is not None else images.device
    images = images.to(device, torch.float32)
    n, _, h, w = images.shape
    fill = torch.as_tensor(fill, dtype=torch.float32).to(device)
    fill = fill.expand(n, *images.shape[1:]) if fill.dim() == 3 else fill
    targets = torch.as_tensor(targets, dtype=torch.long, device=device).view(n)
    methods = list(importance)
    ranks = {m: _ranks(torch.as_tensor(importance[m]).to(device).view(n, h, w), region) for m in methods}
    counts = [min(k * int(pixels_per_step), h * w) for k in range(int(steps) + 1)]
    first = 0 if intact is None else 1
    rows = [(m, i, k) for m in methods for i in range(n) for k in range(first, len(counts))]
    out = {m: np.zeros((n, len(counts))) for m in methods}
    if intact is not None:
        for m in methods:
            out[m][:, 0] = torch.as_tensor(intact).double().cpu().numpy().reshape(n)
    transform = OUTPUT_TRANSFORMS[output]
    for start in range(0, len(rows), max(int(max_batch), 1)):
        chunk = rows[start:start + max(int(max_batch), 1)]
        batch = torch.stack([
            torch.where((ranks[m][i] < counts[k]).view(1, h, w), fill[i], images[i]) for m, i, k in chunk
        ])
        scores = transform(forward(batch).float())
        picked = scores.gather(1, torch.stack([targets[i] for _, i, _ in chunk]).view(-1, 1))[:, 0]
        for (m, i, k), s in zip(chunk, picked.double().cpu().numpy()):
            out[m][i, k] = s
        if progress is not None:
            progress(min((start + len(chunk)) / len(rows), 1.0))
    return out


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

@dataclasses.dataclass
class EvalResult:
    table: pd.DataFrame  # one row per photo
    curves: pd.DataFrame  # long: file, method, step, pixels, score, aopc
    settings: dict
    skipped: pd.DataFrame  # file, reason: the photos that could not be used

    def to_csv(self) -> str:
        return self.table.to_csv(index=False)


def evaluate_photos(
    classifier: ImageClassifier,
    photos: Sequence[Photo],
    engine=None,
    *,
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
    include_random: bool = True,
    importance_mode: str = "abs",
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> EvalResult:
    """Run the evaluation over photos; one engine scan per batch of ``batch_size`` photos.

    classifier: a models.vision.ImageClassifier (its model is prepared on the engine's device); photos
    are decoded by models.vision.load_image and preprocessed by the classifier (its resize and crop
    also map the boxes); a photo that cannot be read or decoded is skipped and listed in ``skipped`` with
    the reason. The IG baseline is the black image (zero pixels), and so is the ablation fill unless
    fill="noise" (uniform random colours). target "predicted" (the paper: the highest-scoring
    class) or "label". F is the target's softmax. With the adaptive rule a batch shares one grid, so
    its photos share ``steps_used``: batch_size 1 gives per-photo step counts; larger batches fill a GPU.
    Per photo: label, predicted, relative_delta (completeness), steps_used, alpha_90 / saturated
    (softmax >= 90% of F(x) by alpha 0.5), aopc_ig / aopc_gradient / aopc_random, and for boxed
    photos loc_* (mass inside the box), box_fraction and box_ablation_drop (the paper's filters).
    """
    from ig_core import AttributionEngine

    if fill not in ("black", "noise"):
        raise ValueError(f"fill must be 'black' or 'noise', got {fill!r}")
    engine = engine or AttributionEngine()
    model = engine.prepare(classifier.model)
    device = engine.device
    crop = classifier.crop_size
    black = make_baseline(classifier, "black", torch.zeros(1, 3, crop, crop))[0]
    gen = torch.Generator().manual_seed(seed)
    rows, curve_rows, skipped = [], [], []
    photos = list(photos)
    batches = [photos[i:i + batch_size] for i in range(0, len(photos), max(batch_size, 1))]
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
        result = engine.attribute(
            model, x, targets, black.to(device).expand_as(x), steps, rule, tolerance=tolerance,
            max_steps=max_steps, probe_alphas=(SATURATION_ALPHA,), output="softmax", model_key=classifier.key,
            progress=lambda f: report(f, 0.0, 0.8), max_batch=max_batch, amp=amp)
        ig = result.attributions.reshape(x.shape).float()
        grad = result.gradient_at_input.reshape(x.shape).float()
        alpha90 = saturation_alpha(result.alphas, result.scores[:, :, 0])
        score_half = result.scores[list(result.alphas).index(SATURATION_ALPHA), :, 0]

        importance = {"integrated gradients": pixel_importance(ig, importance_mode),
                      "gradient": pixel_importance(grad, importance_mode)}
        if include_random:
            importance["random"] = torch.rand(n, x.shape[2], x.shape[3], generator=gen)
        fill_t = black if fill == "black" else noise_fill(classifier, x, gen)
        scores = perturbation_scores(model, x, targets, importance, fill_t, pixels_per_step=pixels_per_step,
                                     steps=ablation_steps, region=region, output="softmax",
                                     max_batch=max_batch or engine.max_batch, device=device,
                                     intact=probs.gather(1, targets.view(-1, 1))[:, 0],
                                     progress=lambda f: report(f, 0.8, 1.0))
        curves = {m: aopc_curve(s) for m, s in scores.items()}
        elapsed = (time.perf_counter() - t0) / n
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
                "score": float(result.score_input[i, 0]),
                "score_baseline": float(result.score_baseline[i, 0]),
                "relative_delta": float(result.relative_delta[i, 0]),
                "steps_used": int(result.steps_used),
                "score_at_half": float(score_half[i]),
                "alpha_90": float(alpha90[i]),
                "saturated": bool(alpha90[i] <= SATURATION_ALPHA),
                "aopc_ig": float(curves["integrated gradients"][i, -1]),
                "aopc_gradient": float(curves["gradient"][i, -1]),
                "aopc_random": float(curves["random"][i, -1]) if include_random else float("nan"),
                "has_box": bool(photo.boxes),
                "box_fraction": float("nan"),
                "box_ablation_drop": float("nan"),
                "loc_ig": float("nan"), "loc_gradient": float("nan"),
                "loc_ig_positive": float("nan"), "loc_gradient_positive": float("nan"),
                "seconds": elapsed,
            }
            if photo.boxes:
                w, h = images[i].size
                mask = box_mask(photo.boxes, w, h, resize=classifier.resize_size, crop=crop)
                row["box_fraction"] = float(mask.float().mean())
                row["loc_ig"] = localization(ig[i].cpu(), mask)
                row["loc_gradient"] = localization(grad[i].cpu(), mask)
                row["loc_ig_positive"] = localization(ig[i].cpu(), mask, "positive")
                row["loc_gradient_positive"] = localization(grad[i].cpu(), mask, "positive")
                # the paper keeps boxes whose ablation drops the score markedly
                blacked = torch.where(mask.view(1, *mask.shape), black, x[i].cpu())
                after = classifier.predict(blacked.unsqueeze(0))[0, t]
                row["box_ablation_drop"] = float(result.score_input[i, 0] - float(after))
            rows.append(row)
            for m, s in scores.items():
                for k in range(s.shape[1]):
                    curve_rows.append({"file": photo.file, "method": m, "step": k,
                                       "pixels": min(k * pixels_per_step, x.shape[2] * x.shape[3]),
                                       "score": float(s[i, k]), "aopc": float(curves[m][i, k])})
        report(1.0)
    settings = dict(rule=rule, steps=steps, tolerance=tolerance, max_steps=max_steps, batch_size=batch_size,
                    target=target, pixels_per_step=pixels_per_step, ablation_steps=ablation_steps, region=region,
                    fill=fill, importance_mode=importance_mode, model=classifier.key, device=str(device),
                    seconds=time.perf_counter() - t_start)
    return EvalResult(pd.DataFrame(rows), pd.DataFrame(curve_rows), settings,
                      pd.DataFrame(skipped, columns=["file", "reason"]))


def summarize(table: pd.DataFrame) -> dict:
    """The headline figures: completeness, saturation, AOPC (IG vs gradient) and localization."""
    if table.empty:
        return {"photos": 0}
    out = {
        "photos": int(len(table)),
        "relative_delta_median": float(table.relative_delta.median()),
        "relative_delta_p90": float(table.relative_delta.quantile(0.9)),
        "relative_delta_max": float(table.relative_delta.max()),
        "steps_used_median": float(table.steps_used.median()),
        "saturated_share": float(table.saturated.mean()),
        "aopc_ig_mean": float(table.aopc_ig.mean()),
        "aopc_gradient_mean": float(table.aopc_gradient.mean()),
        "aopc_random_mean": float(table.aopc_random.mean()),
        "aopc_ig_wins_share": float((table.aopc_ig > table.aopc_gradient).mean()),
        "seconds_per_photo": float(table.seconds.mean()),
    }
    if table.correct.notna().any():
        out["top1_accuracy"] = float(table.correct.dropna().astype(bool).mean())
    boxed = table[table.has_box]
    if len(boxed):
        out["boxed_photos"] = int(len(boxed))
        out["loc_ig_mean"] = float(boxed.loc_ig.mean())
        out["loc_gradient_mean"] = float(boxed.loc_gradient.mean())
        out["loc_ig_wins_share"] = float((boxed.loc_ig > boxed.loc_gradient).mean())
    return out


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Figure 5: AOPC (and the target score) after each step averaged over photos, per method
    (columns method, step, pixels, aopc, score, n)."""
    if curves.empty:
        return pd.DataFrame(columns=["method", "step", "pixels", "aopc", "score", "n"])
    return (curves.groupby(["method", "step", "pixels"], as_index=False)
            .agg(aopc=("aopc", "mean"), score=("score", "mean"), n=("aopc", "size")))


# ----------------------------------------------------------------------------- CLI

def format_summary(summary: dict) -> str:
    lines = [f"photos: {summary.get('photos', 0)}"]
    if not summary.get("photos"):
        return lines[0]
    lines += [
        f"relative completeness error: median {100 * summary['relative_delta_median']:.2f}%, "
        f"90th percentile {100 * summary['relative_delta_p90']:.2f}%, max {100 * summary['relative_delta_max']:.2f}% "
        f"(median steps used {summary['steps_used_median']:.0f})",
        f"saturating by alpha {SATURATION_ALPHA:g} (softmax >= {SATURATION_LEVEL:.0%} of final): "
        f"{100 * summary['saturated_share']:.1f}%",
        f"mean AOPC: integrated gradients {summary['aopc_ig_mean']:.4f}, gradient {summary['aopc_gradient_mean']:.4f}"
        + (f", random {summary['aopc_random_mean']:.4f}" if not math.isnan(summary['aopc_random_mean']) else "")
        + f"; IG larger on {100 * summary['aopc_ig_wins_share']:.1f}% of photos",
    ]
    if "top1_accuracy" in summary:
        lines.append(f"top-1 accuracy: {100 * summary['top1_accuracy']:.1f}%")
    if "boxed_photos" in summary:
        lines.append(f"localization over {summary['boxed_photos']} boxed photos: mean mass inside box IG "
                     f"{100 * summary['loc_ig_mean']:.1f}%, gradient {100 * summary['loc_gradient_mean']:.1f}%; "
                     f"IG higher on {100 * summary['loc_ig_wins_share']:.0f}%")
    lines.append(f"time: {summary['seconds_per_photo']:.2f} s per photo")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.vision_eval", description=__doc__.split("\n")[0])
    p.add_argument("--folders", nargs="*", type=pathlib.Path, default=None,
                   help="image folders (labels.csv / boxes.csv); default: $IG_DATA_DIR imagenet_samples and "
                        "imagenet_val_boxes")
    p.add_argument("--limit", type=int, default=250, help="at most this many photos from each folder")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("vision_eval.csv"), help="per-photo CSV")
    p.add_argument("--curves", type=pathlib.Path, default=None, help="optional CSV of the per-photo AOPC curves")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--arch", default="mobilenet_v2", help="torchvision classifier name")
    p.add_argument("--weights", default=None, help="state_dict file (default: models.vision.load_classifier's lookup)")
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
    p.add_argument("--importance", default="abs", choices=IMPORTANCE_MODES,
                   help="pixel ranking: abs = Eq. 1 (the paper), sum = signed channel sum (most positive first)")
    p.add_argument("--no-random", action="store_true", help="skip the random-order reference curve")
    args = p.parse_args(argv)

    from ig_core import AttributionEngine

    engine = AttributionEngine(device=args.device)
    classifier = load_classifier(args.arch, args.weights, device=engine.device)
    photos = [ph for folder in (args.folders or default_folders()) for ph in list_photos(folder, args.limit)]
    print(f"{len(photos)} photos on {engine.device_name}", file=sys.stderr)
    last = [-1]

    def progress(f):
        pct = int(100 * f)
        if pct // 5 > last[0]:
            last[0] = pct // 5
            print(f"  {pct}%", file=sys.stderr, flush=True)

    result = evaluate_photos(classifier, photos, engine, rule=args.rule, steps=args.steps,
                             tolerance=args.tolerance, max_steps=args.max_steps, max_batch=args.max_batch,
                             amp=args.amp, batch_size=args.batch, target=args.target,
                             pixels_per_step=args.pixels_per_step, ablation_steps=args.ablation_steps,
                             region=args.region, fill=args.fill, include_random=not args.no_random,
                             importance_mode=args.importance, progress=progress)
    for row in result.skipped.itertuples():
        print(f"skipped {row.file}: {row.reason}", file=sys.stderr)
    result.table.to_csv(args.out, index=False)
    if args.curves:
        result.curves.to_csv(args.curves, index=False)
    print(format_summary(summarize(result.table)))
    fig5 = mean_curves(result.curves)
    for m, g in fig5.groupby("method"):
        pts = g.set_index("step").aopc
        print(f"AOPC curve {m}: " + " ".join(f"k={k}:{pts[k]:.3f}" for k in (0, 10, 20, 30, 40, len(pts) - 1)
                                             if k in pts.index))
    boxed = result.table[result.table.has_box]
    for r in boxed.itertuples():
        print(f"  box {r.file}: inside box IG {100 * r.loc_ig:.1f}%, gradient {100 * r.loc_gradient:.1f}% "
              f"(box {100 * r.box_fraction:.0f}% of crop, ablating it drops the score by {r.box_ablation_drop:.3f})")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
