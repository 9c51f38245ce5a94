"""Evaluation of image attribution methods on photos: AOPC, deletion and insertion curves, box localization (paper
Section 2.5, Figure 5; Petsiuk et al. 2018). The command line is families.vision.evaluation, the summaries and the
results file families.vision.evaluation_report.

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
only, all orders of a batch of photos through one implementation (families.vision.curves) in batches.

No Streamlit here. The runner takes a families.vision.image_classifier.ImageClassifier, whose loading, preprocessing
and pixel importance (Eq. 1) it shares with the Vision page.
"""
from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from families.config import data_dir
from families.vision.baselines import image_method_options, make_baseline
from families.vision.boxes import box_mask, localization, mass_inside
from families.vision.curves import (
    INSERTION_STARTS,
    aopc_curve,
    blurred,
    curve_auc,
    deletion_insertion_scores,
    fraction_counts,
    masked_scores,
    pixel_ranks,
)
from families.vision.errors import ImageError
from families.vision.image_classifier import ImageClassifier
from families.vision.images import load_image
from families.vision.importance import pixel_importance
from families.vision.photos import Photo
from ig_core import METHODS, AttributionEngine, ScanSettings, method, read_off_scan

SATURATION_ALPHA, SATURATION_LEVEL = 0.5, 0.9
IG = "integrated_gradients"
RANDOM = "random"  # the pixels in a random order: the reference of every measure
REFERENCES = 16  # other photos in the reference set of expected gradients
DEFAULT_SCAN = ScanSettings()  # the default scan settings (frozen: one shared instance is safe)
# Method options that keep a CPU run of every method affordable (MobileNetV2 on 2 cores: bench/RESULTS-methods.md);
# expected gradients draws 2 of the references per photo, each one a path scan.
EVAL_OPTIONS = {"smoothgrad": {"samples": 8}, "expected_gradients": {"samples": 2}, "guided_ig": {"steps": 16},
                "blur_ig": {"steps": 16}, "idgi": {"steps": 16}}

METHOD_COLUMNS = ["file", "method", "aopc", "deletion_auc", "insertion_auc", "localization", "localization_positive",
                  "relative_delta", "points_evaluated", "seconds"]
CURVE_COLUMNS = ["file", "method", "curve", "step", "pixels", "fraction", "score"]


def saturation_alpha(alphas: np.ndarray, scores: np.ndarray, level: float = SATURATION_LEVEL) -> np.ndarray:
    """First evaluated alpha where the score reaches ``level`` times its value at alpha = 1.

    alphas [K] sorted with alphas[-1] = 1, scores [K, N] -> [N].
    """
    scores = np.asarray(scores, dtype=np.float64)
    reached = scores >= level * scores[-1:]
    return np.asarray(alphas, dtype=np.float64)[np.argmax(reached, axis=0)]


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


def image_methods() -> list[str]:
    """The registered attribution methods, in registry order: every one of them applies to images."""
    return list(METHODS)


def _option_names(name: str) -> set[str]:
    method(name)  # an unknown name: the registry's error, listing the methods
    return {field.name for field in dataclasses.fields(METHODS[name].Options)}


def method_options(methods: Sequence[str], overrides: Mapping[str, Mapping] | None = None) -> dict[str, dict]:
    """Each method's options for the evaluation: EVAL_OPTIONS where the method has that option (a method that
    lands with other option names keeps its own defaults), then ``overrides`` (method -> options). Refuses an
    unknown method or option now, not mid-run."""
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
    settings: dict  # the evaluation's settings, and under "seconds" the seconds it has run
    skipped: pd.DataFrame  # file, reason: the photos that could not be used
    planned: int = 0  # the photos asked for: more than photos_done in the results so far of an unfinished run

    @property
    def photos_done(self) -> int:
        """The photos taken so far: scored or skipped."""
        return len(self.table) + len(self.skipped)

    @property
    def partial(self) -> bool:
        return self.photos_done < self.planned

    def seconds_left(self, seconds_now: float) -> float | None:
        """The seconds the run still needs when `seconds_now` have passed since it began: the photos done so far
        took settings["seconds"], and the photos left are expected to take as long each, the part of the current
        photo already spent counted off. None before the first photo is done."""
        if not self.photos_done:
            return None
        return max(self.settings["seconds"] / self.photos_done * self.planned - seconds_now, 0.0)

    def to_csv(self) -> str:
        return self.table.to_csv(index=False)


def evaluate_photos(
    classifier: ImageClassifier, photos: Sequence[Photo], engine=None, *, methods: Sequence[str] | None = None,
    options: Mapping[str, Mapping] | None = None, scan: ScanSettings = DEFAULT_SCAN, batch_size: int = 1,
    target: str = "predicted", pixels_per_step: int = 100, ablation_steps: int = 50, region: int = 1,
    fill: str = "black", curve_steps: int = 16, insertion_start: str = "blur", references: int = REFERENCES,
    include_random: bool = True, importance_mode: str = "abs", seed: int = 0,
    progress: Callable[[float], None] | None = None, log: Callable[[str], None] | None = None,
    partial: Callable[[EvalResult], None] | None = None,
) -> EvalResult:
    """Run every chosen method on every photo and score the attributions, ``batch_size`` photos at a time.

    classifier: a families.vision.image_classifier.ImageClassifier (its model is prepared on the engine's device);
    photos are decoded by families.vision.images.load_image and preprocessed by the classifier (its resize and crop
    also map the boxes); a photo that cannot be read or decoded is skipped and listed in ``skipped`` with
    the reason. methods: registry names (default: all, `image_methods`); options: method -> options over
    `method_options`' defaults. The baseline is the black image (zero pixels); a reference-set method gets
    ``references`` other photos of the evaluation instead. Every method runs with the scan settings (its
    method and options aside): the path methods use their rule, steps, tolerance and max_steps. The ablation fill
    (AOPC, deletion) is black unless fill="noise" (uniform random colours); insertion starts from the blurred
    photo (insertion_start="blur") or black. target "predicted" (the paper: the highest-scoring class) or "label".
    F is the target's softmax. With the adaptive rule a batch shares one grid: batch_size 1 gives per-photo step
    counts; larger batches fill a GPU.

    table, per photo: label, predicted, the IG scan's relative_delta, steps_used, alpha_90 / saturated (softmax
    >= 90% of F(x) by alpha 0.5), for boxed photos box_fraction and box_ablation_drop (the paper's filters), and
    seconds (all methods and the scoring). per_method, per photo and method: aopc, deletion_auc, insertion_auc,
    localization (boxed photos), relative_delta (NaN where the method has no completeness), seconds. log gets
    the time per photo and an estimate for all photos after the first batch. partial gets the results so far after
    every batch but the last, whose results are the return value: what a caller that interrupts the run keeps.
    """
    if fill not in ("black", "noise"):
        raise ValueError(f"fill must be 'black' or 'noise', got {fill!r}")
    if insertion_start not in INSERTION_STARTS:
        raise ValueError(f"insertion_start must be one of {', '.join(INSERTION_STARTS)}, got {insertion_start!r}")
    methods = list(methods or image_methods())
    # the options as the Vision page runs them (XRAI's white in this network's normalisation)
    options = {name: image_method_options(classifier, name, chosen_options)
               for name, chosen_options in method_options(methods, options).items()}
    engine = engine or AttributionEngine()
    settings = dict(methods=methods, options=options, rule=scan.rule, steps=scan.steps, tolerance=scan.tolerance,
                    max_steps=scan.max_steps, batch_size=batch_size, target=target, pixels_per_step=pixels_per_step,
                    ablation_steps=ablation_steps, region=region, fill=fill, curve_steps=curve_steps,
                    insertion_start=insertion_start, references=references, importance_mode=importance_mode,
                    seed=seed, model=classifier.key, device=str(engine.device))
    evaluation = _Evaluation(classifier, list(photos), engine, settings, scan, include_random)
    return evaluation.run(progress, log, partial)


@dataclasses.dataclass
class _Batch:
    """One batch of readable photos: its inputs and predictions, then the methods' results and their scores."""

    photos: list[Photo]
    images: list  # the decoded photos, whose sizes map the boxes
    x: torch.Tensor  # [N, 3, H, W] on the engine's device
    probabilities: torch.Tensor  # [N, classes] on the CPU
    targets: torch.Tensor  # [N] on the engine's device
    intact: torch.Tensor  # [N] the targets' softmax on the photos, on the engine's device
    runs: dict = dataclasses.field(default_factory=dict)  # method -> the engine's Attribution
    seconds: dict = dataclasses.field(default_factory=dict)  # method -> seconds per photo
    maps: dict = dataclasses.field(default_factory=dict)  # method -> [N, 3, H, W] attributions
    importance: dict = dataclasses.field(default_factory=dict)  # order (methods, random) -> [N, H, W]
    columns: dict = dataclasses.field(default_factory=dict)  # curve -> pixels moved at each column
    scores: dict = dataclasses.field(default_factory=dict)  # curve -> order -> [N, columns] scores
    eval_seconds: float = 0.0  # the scoring's seconds per photo


class _Evaluation:
    """One evaluation: its settings and methods, the model on the engine's device, the black fill, the random
    generator, the reference photos read so far and the rows so far."""

    def __init__(self, classifier: ImageClassifier, photos: list[Photo], engine, settings: dict,
                 scan: ScanSettings, include_random: bool):
        self.classifier, self.photos, self.engine, self.settings = classifier, photos, engine, settings
        self.scan, self.include_random = scan, include_random
        self.chosen = {name: method(name, **settings["options"][name]) for name in settings["methods"]}
        if any(chosen.reference_set for chosen in self.chosen.values()) and len(photos) < 2:
            raise ValueError("a reference-set method (expected gradients) draws its references from the other "
                             "photos of the evaluation: choose at least two photos")
        # the gradient and gradient x input are read off the IG scan when there is one: it evaluated the photo already
        self.free = {name for name, chosen in self.chosen.items()
                     if chosen.reads_off_scan and IG in self.chosen}
        self.run_order = sorted(settings["methods"], key=lambda name: name != IG)
        self.model = engine.prepare(classifier.model)
        crop = classifier.crop_size
        self.black = make_baseline(classifier, "black", torch.zeros(1, 3, crop, crop))[0]
        self.generator = torch.Generator().manual_seed(settings["seed"])
        self.reference_order = torch.randperm(len(photos),
                                              generator=torch.Generator().manual_seed(settings["seed"])).tolist()
        self.reference_cache: dict = {}
        # the scoring is forward passes without gradients: no activations kept for a backward pass, so 4 times the
        # path points per batch fit
        self.forward_batch = 4 * (scan.max_batch or engine.max_batch)
        self.rows, self.method_rows, self.curve_rows, self.skipped = [], [], [], []
        self.progress: Callable[[float], None] | None = None
        self.span = (0.0, 1.0)  # the current batch's start and share of the whole evaluation

    def report(self, fraction: float, low: float = 0.0, high: float = 1.0) -> None:
        """Progress of the whole evaluation: `fraction` of the part [low, high] of the current batch's work."""
        if self.progress is not None:
            start, share = self.span
            self.progress(min(start + share * (low + (high - low) * fraction), 1.0))

    def run(self, progress: Callable[[float], None] | None, log: Callable[[str], None] | None,
            partial: Callable[[EvalResult], None] | None) -> EvalResult:
        self.progress = progress
        size = max(self.settings["batch_size"], 1)
        batches = [self.photos[i:i + size] for i in range(0, len(self.photos), size)]
        started = time.perf_counter()
        for index, photos in enumerate(batches):
            self.span = (index / len(batches), 1 / len(batches))
            begun = time.perf_counter()
            batch = self.read(photos)
            if batch is not None:
                self.attribute(batch)
                self.score(batch)
                self.record(batch)
                if index == 0 and log is not None:
                    log(_first_batch_note(batch, time.perf_counter() - begun, len(self.photos)))
            if partial is not None and index < len(batches) - 1:
                partial(self.result(time.perf_counter() - started))
            self.report(1.0)
        return self.result(time.perf_counter() - started)

    def result(self, seconds: float) -> EvalResult:
        """The rows so far as frames, with the seconds the run has taken."""
        return EvalResult(pd.DataFrame(self.rows), pd.DataFrame(self.method_rows, columns=METHOD_COLUMNS),
                          pd.DataFrame(self.curve_rows, columns=CURVE_COLUMNS), {**self.settings, "seconds": seconds},
                          pd.DataFrame(self.skipped, columns=["file", "reason"]), planned=len(self.photos))

    def read(self, photos: list[Photo]) -> _Batch | None:
        """The batch's readable photos, preprocessed and classified, with their targets; the others are skipped
        with the reason. None when none is readable."""
        decoded = [(photo, *read_photo(photo)) for photo in photos]
        self.skipped += [{"file": photo.file, "reason": reason} for photo, image, reason in decoded if image is None]
        readable = [(photo, image) for photo, image, _ in decoded if image is not None]
        if not readable:
            return None
        device = self.engine.device
        x = torch.cat([self.classifier.preprocess(image) for _, image in readable]).to(device)
        probabilities = self.classifier.predict(x)
        labels = [photo.label for photo, _ in readable]
        targets = (torch.tensor(labels) if self.settings["target"] == "label" and None not in labels
                   else probabilities.argmax(1)).to(device)
        intact = probabilities.gather(1, targets.view(-1, 1).to(probabilities.device))[:, 0].to(device)
        return _Batch([photo for photo, _ in readable], [image for _, image in readable], x, probabilities, targets,
                      intact)

    def attribute(self, batch: _Batch) -> None:
        """Every method on the batch, the free ones read off the integrated-gradients scan."""
        settings, count = self.settings, len(batch.photos)
        for j, name in enumerate(self.run_order):
            begun = time.perf_counter()
            options = settings["options"][name]
            if name in self.free:
                batch.runs[name] = read_off_scan(batch.runs[IG], batch.x.cpu(), name, **options)
            else:
                batch.runs[name] = self.engine.attribute(
                    self.model, batch.x, batch.targets, self.baseline(name, batch),
                    probe_alphas=(SATURATION_ALPHA,) if name == IG else (), output="softmax",
                    model_key=self.classifier.key, **self.scan.with_method(name, **options).options(),
                    progress=lambda f, j=j: self.report((j + f) / len(self.run_order), 0.0, 0.7))
            batch.seconds[name] = (time.perf_counter() - begun) / count
        batch.maps = {name: batch.runs[name].attributions.reshape(batch.x.shape).float().cpu()
                      for name in settings["methods"]}

    def baseline(self, name: str, batch: _Batch) -> torch.Tensor:
        """The black image, or for a reference-set method other photos of the evaluation."""
        if self.chosen[name].reference_set:
            return _reference_set(self.classifier, self.photos, batch.photos, self.settings["references"],
                                  self.reference_order, self.reference_cache).to(self.engine.device)
        return self.black.to(self.engine.device).expand_as(batch.x)

    def score(self, batch: _Batch) -> None:
        """Each order's pixel ranking (the methods' pixel importance, the random order) through the AOPC, deletion
        and insertion curves."""
        settings, x, device = self.settings, batch.x, self.engine.device
        begun = time.perf_counter()
        count, height, width = x.shape[0], x.shape[2], x.shape[3]
        batch.importance = {name: pixel_importance(batch.maps[name], settings["importance_mode"])
                            for name in settings["methods"]}
        if self.include_random:
            batch.importance[RANDOM] = torch.rand(count, height, width, generator=self.generator)
        noise = settings["fill"] == "noise"
        fill = (noise_fill(self.classifier, x, self.generator) if noise else self.black).to(device)
        start = blurred(x) if settings["insertion_start"] == "blur" else self.black.to(device).expand_as(x)
        ranks = {order: pixel_ranks(v.to(device).view(count, height, width)) for order, v in batch.importance.items()}
        region = settings["region"]
        region_ranks = ranks if region == 1 else {order: pixel_ranks(v.to(device), region)
                                                  for order, v in batch.importance.items()}
        pixels = height * width
        batch.columns = {"aopc": [min(k * settings["pixels_per_step"], pixels)
                                  for k in range(settings["ablation_steps"] + 1)],
                         "deletion": fraction_counts(pixels, settings["curve_steps"]),
                         "insertion": fraction_counts(pixels, settings["curve_steps"])}
        batch.scores = {"aopc": masked_scores(self.model, x, fill, batch.targets, region_ranks, batch.columns["aopc"],
                                              known={0: batch.intact}, output="softmax", max_batch=self.forward_batch,
                                              progress=lambda f: self.report(f, 0.7, 0.8))}
        batch.scores.update(deletion_insertion_scores(self.model, x, batch.targets, ranks, fill, start,
                                                      settings["curve_steps"], intact=batch.intact, output="softmax",
                                                      max_batch=self.forward_batch,
                                                      progress=lambda f: self.report(f, 0.8, 1.0)))
        batch.eval_seconds = (time.perf_counter() - begun) / count

    def record(self, batch: _Batch) -> None:
        """The batch's rows: one per photo, one per photo and order, and every point of their curves."""
        pixels = batch.x.shape[2] * batch.x.shape[3]
        fractions = {kind: np.asarray(counts) / pixels for kind, counts in batch.columns.items()}
        measures = {"aopc": {order: aopc_curve(s)[:, -1] for order, s in batch.scores["aopc"].items()},
                    **{f"{kind}_auc": {order: curve_auc(s, fractions[kind]) for order, s in batch.scores[kind].items()}
                       for kind in ("deletion", "insertion")}}
        figures = _ig_figures(batch.runs.get(IG), len(batch.photos))
        for i, photo in enumerate(batch.photos):
            mask = self.box(batch, i)
            self.rows.append(self.photo_row(batch, i, figures[i], mask))
            for order in batch.importance:
                self.method_rows.append(_method_row(batch, i, order, mask, measures))
                self.curve_rows += [{"file": photo.file, "method": order, "curve": kind, "step": k, "pixels": moved,
                                     "fraction": float(fraction), "score": float(per_order[order][i, k])}
                                    for kind, per_order in batch.scores.items()
                                    for k, (moved, fraction) in enumerate(zip(batch.columns[kind], fractions[kind]))]

    def box(self, batch: _Batch, i: int) -> torch.Tensor | None:
        """The photo's boxes as a mask of the network's view, or None without boxes."""
        photo = batch.photos[i]
        if not photo.boxes:
            return None
        width, height = batch.images[i].size
        return box_mask(photo.boxes, width, height, resize=self.classifier.resize_size, crop=self.classifier.crop_size)

    def photo_row(self, batch: _Batch, i: int, figures: dict, mask: torch.Tensor | None) -> dict:
        photo, target = batch.photos[i], int(batch.targets[i])
        predicted = int(batch.probabilities[i].argmax())
        row = {"file": photo.file, "label": photo.label, "label_name": photo.label_name, "predicted": predicted,
               "predicted_name": self.classifier.categories[predicted],
               "correct": (photo.label == predicted) if photo.label is not None else None,
               "target": target, "score": float(batch.intact[i]), **figures, "has_box": bool(photo.boxes),
               "box_fraction": float("nan"), "box_ablation_drop": float("nan"),
               "seconds": sum(batch.seconds.values()) + batch.eval_seconds, "eval_seconds": batch.eval_seconds}
        if mask is not None:
            row["box_fraction"] = float(mask.float().mean())
            # the paper keeps boxes whose ablation drops the score markedly
            blacked = torch.where(mask.view(1, *mask.shape), self.black, batch.x[i].cpu())
            after = self.classifier.predict(blacked.unsqueeze(0))[0, target]
            row["box_ablation_drop"] = float(batch.intact[i]) - float(after)
        return row


def _ig_figures(ig, count: int) -> list[dict]:
    """Per photo, what the integrated-gradients scan says: F(baseline), the completeness error, the steps used and
    the saturation (softmax >= SATURATION_LEVEL of F(x) by alpha SATURATION_ALPHA); NaN without that scan."""
    if ig is None:
        nan = float("nan")
        return [dict(score_baseline=nan, relative_delta=nan, steps_used=0, score_at_half=nan, alpha_90=nan,
                     saturated=False)] * count
    alpha_90 = saturation_alpha(ig.alphas, ig.scores[:, :, 0])
    score_at_half = ig.scores[list(ig.alphas).index(SATURATION_ALPHA), :, 0]
    return [dict(score_baseline=float(ig.score_baseline[i, 0]), relative_delta=float(ig.relative_delta[i, 0]),
                 steps_used=int(ig.steps_used), score_at_half=float(score_at_half[i]), alpha_90=float(alpha_90[i]),
                 saturated=bool(alpha_90[i] <= SATURATION_ALPHA)) for i in range(count)]


def _method_row(batch: _Batch, i: int, order: str, mask: torch.Tensor | None, measures: dict) -> dict:
    """One photo's measures of one order: a method's, or the random order's (no run, no completeness)."""
    run, nan = batch.runs.get(order), float("nan")
    if mask is None:
        inside = nan
    elif run is None:
        inside = mass_inside(batch.importance[order][i], mask)
    else:
        inside = localization(batch.maps[order][i], mask)
    return {"file": batch.photos[i].file, "method": order,
            **{name: float(per_order[order][i]) for name, per_order in measures.items()},
            "localization": inside,
            "localization_positive": (localization(batch.maps[order][i], mask, "positive")
                                      if run is not None and mask is not None else nan),
            "relative_delta": float(run.relative_delta[i, 0]) if run is not None else nan,
            "points_evaluated": int(run.points_evaluated) if run is not None else 0,
            "seconds": batch.seconds[order] if run is not None else nan}


def _first_batch_note(batch: _Batch, seconds: float, photos: int) -> str:
    """The time per photo of the first batch, its slowest methods and an estimate for all photos."""
    per_photo = seconds / len(batch.photos)
    slowest = ", ".join(f"{name} {s:.1f} s" for name, s in sorted(batch.seconds.items(), key=lambda pair: -pair[1]))
    return (f"first {len(batch.photos)} photo(s): {per_photo:.1f} s per photo ({slowest}; scoring "
            f"{batch.eval_seconds:.1f} s); about {per_photo * photos / 60:.0f} min for {photos} photos")
