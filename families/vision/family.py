"""Vision: image classifiers (torchvision architectures, exported programs, factories) as a model family.

One scan of the path from a baseline image to the photo gives, for all target classes, the integrated
gradients, the interior gradients at the Figure 3 alphas, the softmax and logit trend and the distances of an
intermediate layer's activations (Figure 12).
"""
from __future__ import annotations

import os
import pathlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePath
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ig_core import Attribution, ScanSettings

from families.vision import classifiers as vision_models
from families.config import data_dir
from families.contract import EngineInput, Explanation, LoadedModel, ModelFamily, ModelSource
from families.vision.photos import list_photos

PROBE_ALPHAS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)  # Figure 3
SAMPLES_ENV = "IG_VISION_SAMPLES"  # a photo folder (with labels.csv or boxes.csv, or just images)
MAX_REFERENCES = 16  # other sample photos in the reference set of Expected Gradients
CACHED_REFERENCE_SETS = 4  # models whose preprocessed reference photos are kept


def sample_folder() -> pathlib.Path:
    """The folder of sample photos: $IG_VISION_SAMPLES, else the data folder's imagenet_samples."""
    env = os.environ.get(SAMPLES_ENV, "").strip()
    return pathlib.Path(env).expanduser() if env else data_dir() / "imagenet_samples"


@dataclass(frozen=True)
class Photo:
    """A photo as the network sees it, with the path's options: which baseline, which layer to observe."""

    seen: vision_models.Prediction
    baseline: str = "black"
    layer_name: str | None = None


class VisionExplanation(Explanation):
    """One scan's results for one photo and several target classes."""

    def __init__(self, attribution: Attribution, targets, labels, settings: ScanSettings, model_key: str,
                 photo: Photo, baseline: torch.Tensor):
        super().__init__(attribution, targets, labels, settings, model_key)
        self.image: Image.Image = photo.seen.image  # the cropped picture the network sees
        self.input: torch.Tensor = photo.seen.input  # [1, 3, H, W] normalized
        self.probabilities: np.ndarray = photo.seen.probabilities  # [classes] softmax at the input
        self.baseline_name, self.baseline, self.layer_name = photo.baseline, baseline, photo.layer_name
        self.labels = self.target_names
        self.tolerance = float(settings.tolerance)

    def index(self, target: int) -> int:
        return self.targets.index(int(target))

    def attributions(self, t: int = 0) -> np.ndarray:
        """Integrated gradients for the t-th target, [3, H, W] (input space)."""
        return self.attribution.attributions_per_target[0][t, 0].numpy()

    def all_attributions(self) -> np.ndarray:
        return self.attribution.attributions_per_target[0][:, 0].numpy()  # [T, 3, H, W]

    def pixel_importance(self, t: int = 0, mode: str = "sum") -> np.ndarray:
        """The t-th target's attributions aggregated over the colour channels, [H, W] (see
        `families.vision.classifiers.pixel_importance`). Default "sum" (signed), so the pixels still add up to the attribution
        total (completeness); "abs" is Eq. 1."""
        return vision_models.pixel_importance(self.attributions(t), mode)

    def scores(self, t: int) -> np.ndarray:
        """Per pixel at the network's input size, [H, W]: the colour channels summed (they add up to the total)."""
        return self.pixel_importance(t, "sum")

    def gradient(self, t: int = 0, alpha: float = 1.0) -> np.ndarray:
        """The interior gradient at alpha (1.0: the gradient at the image), [3, H, W]."""
        return self.attribution.interior_gradients[float(alpha)][0][t, 0].numpy()

    @property
    def probe_alphas(self) -> list[float]:
        return sorted(self.attribution.interior_gradients)

    def score(self, t: int = 0) -> float:
        return float(self.attribution.score_input[0, t])

    def baseline_score(self, t: int = 0) -> float:
        return float(self.attribution.score_baseline[0, t])

    def relative_delta(self, t: int = 0) -> float:  # a method here: one photo, several targets
        return float(self.attribution.relative_delta[0, t])

    @property
    def max_relative_delta(self) -> float:
        return float(np.max(self.attribution.relative_delta))

    @property
    def within_tolerance(self) -> bool:
        return self.max_relative_delta <= self.tolerance

    def baseline_image(self, classifier: vision_models.ImageClassifier) -> Image.Image:
        return classifier.to_pil(self.baseline)


class VisionFamily(ModelFamily):
    """Sources are torchvision architectures with their automatic weights; the Vision pages' sidebar
    (dashboard.session.choose_classifier) adds weights files, exported programs, factories and uploads."""

    name, input_name = "vision", "photo"
    model_suffixes = (".pth", ".pt", ".pt2")
    no_references = f"this server has no other sample photos (the operator sets {SAMPLES_ENV} or IG_DATA_DIR)"

    def __init__(self):
        self._reference_sets: OrderedDict[tuple[str, str], torch.Tensor | None] = OrderedDict()
        self._reference_lock = threading.Lock()

    def shipped(self) -> list[ModelSource]:
        available = vision_models.available_architectures()
        return [ModelSource(f"torchvision: {arch}", options=(("arch", arch),))
                for arch in vision_models.SUGGESTED_ARCHS if arch in available]

    def load(self, source: ModelSource, device: torch.device) -> LoadedModel:
        options = dict(source.options)
        arch = options.get("arch", vision_models.default_architecture())
        if source.data is None and source.path is None:
            name, path = vision_models.automatic_weights(arch)
            classifier = (vision_models.load_cached_pretrained(arch, device) if path is None
                          else vision_models.classifier_from_state_dict(
                              arch, vision_models.read_weights_file(path, name), name, device))
        elif PurePath(source.name).suffix.lower() == ".pt2":
            classes, preprocessing = (vision_models.read_sidecar(source.path, source.name) if source.path is not None
                                      else (None, vision_models.Preprocessing()))
            classifier = vision_models.classifier_from_program(source.read(), source.name, classes, preprocessing,
                                                               device)
        else:
            classifier = vision_models.classifier_from_state_dict(arch, source.read(), source.name, device)
        return self.wrap(classifier)

    @staticmethod
    def wrap(classifier: vision_models.ImageClassifier) -> LoadedModel:
        """A classifier the Vision pages loaded, as the contract's model."""
        return LoadedModel(key=classifier.key, name=classifier.weights_source, target_names=classifier.categories,
                           module=classifier.model, extra=classifier)

    def parse(self, model: LoadedModel, raw) -> Photo:
        """Image bytes, a PIL image or a normalized tensor [1, 3, H, W] (vision_models.ImageError for what is no
        image)."""
        image = raw if isinstance(raw, (Image.Image, torch.Tensor)) else vision_models.load_image(raw)
        return Photo(vision_models.predict_image(model.extra, image))

    def default_targets(self, model: LoadedModel, item: Photo) -> list[int]:
        return [int(np.argmax(item.seen.probabilities))]

    def engine_input(self, model: LoadedModel, item: Photo) -> EngineInput:
        classifier, x = model.extra, item.seen.input
        layer = classifier.get_layer(item.layer_name) if item.layer_name else None
        return EngineInput(forward=classifier.model, inputs=(x,), baseline=(vision_models.make_baseline(classifier, item.baseline, x),),
                           output="softmax", probe_alphas=PROBE_ALPHAS, layer=layer)

    def references(self, model: LoadedModel, item: Photo) -> tuple[torch.Tensor, ...] | None:
        """Up to MAX_REFERENCES other sample photos, preprocessed like the photo: [R, 3, H, W]."""
        candidates = self._sample_inputs(model)
        if candidates is None:
            return None
        others = [x for x in candidates if not torch.equal(x, item.seen.input[0].cpu())][:MAX_REFERENCES]
        return (torch.stack(others),) if others else None

    def _sample_inputs(self, model: LoadedModel) -> torch.Tensor | None:
        """The first MAX_REFERENCES + 1 readable sample photos (one may be the photo itself) as the model's inputs,
        made once per model and folder."""
        folder = sample_folder()
        key = (model.key, str(folder))
        with self._reference_lock:
            if key not in self._reference_sets:
                inputs = []
                for photo in list_photos(folder) if folder.is_dir() else []:
                    try:
                        inputs.append(model.extra.preprocess(vision_models.load_image(photo.path))[0])
                    except vision_models.ImageError:
                        continue  # an unreadable file is no reference
                    if len(inputs) > MAX_REFERENCES:
                        break
                self._reference_sets[key] = torch.stack(inputs) if inputs else None
                while len(self._reference_sets) > CACHED_REFERENCE_SETS:
                    self._reference_sets.popitem(last=False)
            self._reference_sets.move_to_end(key)
            return self._reference_sets[key]

    def method_options(self, model: LoadedModel, name: str, options: dict) -> dict:
        return image_method_options(model.extra, name, options)

    def explanation(self, model: LoadedModel, item: Photo, targets, result: Attribution,
                    settings: ScanSettings) -> VisionExplanation:
        baseline = vision_models.make_baseline(model.extra, item.baseline, item.seen.input)
        return VisionExplanation(result, targets, [model.target_names[t] for t in targets], settings, model.key,
                                 item, baseline)


FAMILY = VisionFamily()


def image_method_options(classifier: vision_models.ImageClassifier, name: str, options: dict) -> dict:
    """XRAI's second baseline is white, as in PAIR: 1.0 for pixels in [0, 1] is (1 - mean) / std per channel in the
    classifier's normalised units."""
    if name == "xrai" and options.get("second_baseline", 1.0) == 1.0:
        white = classifier.normalize(torch.ones(1, 3, 1, 1)).flatten()
        return {**options, "second_baseline": tuple(float(v) for v in white)}
    return options


def explain(engine, classifier: vision_models.ImageClassifier, image, targets: int | Sequence[int] | None = None,
            baseline: str = "black", settings: ScanSettings | None = None, layer_name: str | None = None,
            progress: Callable[[float], None] | None = None, partial=None) -> VisionExplanation:
    """The family's explanation of one photo for a classifier the caller holds (partial: see ModelFamily.explain).

    image: a PIL image, a normalized tensor [1, 3, H, W], or a `families.vision.classifiers.Prediction` already made of it.
    targets: a class index or several (duplicates dropped); None: the top-1 prediction.
    """
    model = VisionFamily.wrap(classifier)
    seen = image if isinstance(image, vision_models.Prediction) else vision_models.predict_image(classifier, image)
    targets = [int(targets)] if isinstance(targets, (int, np.integer)) else targets
    targets = list(dict.fromkeys(int(t) for t in targets)) if targets is not None else None
    if targets is not None and not targets:
        raise ValueError("give at least one target class")
    for t in targets or ():
        if not 0 <= t < len(classifier.categories):
            raise ValueError(f"target {t} is out of range for {len(classifier.categories)} classes")
    return FAMILY.explain(engine, model, Photo(seen, baseline, layer_name), targets, settings, progress, partial)
