"""Vision: image classifiers (torchvision architectures, exported programs, factories) as a model family.

One scan of the path from a baseline image to the photo gives, for all target classes, the integrated
gradients, the interior gradients at the Figure 3 alphas, the softmax and logit trend and the distances of an
intermediate layer's activations (Figure 12).
"""
from __future__ import annotations

import pathlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from families.config import DATA_DIR, VISION_SAMPLES, data_dir
from families.contract import EngineInput, Explanation, LoadedModel, ModelFamily, ModelSource, target_label
from families.vision import model_sources
from families.vision.baselines import image_method_options, make_baseline
from families.vision.collection import PhotoFolder
from families.vision.errors import ImageError
from families.vision.image_classifier import ImageClassifier, Prediction, predict_image
from families.vision.images import load_image
from families.vision.importance import pixel_importance
from families.vision.photos import list_photos
from ig_core import Attribution, ScanSettings

PROBE_ALPHAS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)  # Figure 3
MAX_REFERENCES = 16  # other sample photos in the reference set of Expected Gradients
CACHED_REFERENCE_SETS = 4  # models whose preprocessed reference photos are kept


def sample_folder() -> pathlib.Path:
    """The folder of sample photos: $IG_VISION_SAMPLES, else the data folder's imagenet_samples."""
    return VISION_SAMPLES.path() or data_dir() / "imagenet_samples"


@dataclass(frozen=True)
class PhotoItem:
    """A photo as the network sees it, with the path's options: which baseline, which layer to observe."""

    seen: Prediction
    baseline: str = "black"
    layer_name: str | None = None


class VisionExplanation(Explanation):
    """One scan's results for one photo and several target classes."""

    def __init__(self, attribution: Attribution, targets, labels, settings: ScanSettings, model_key: str,
                 photo: PhotoItem, baseline: torch.Tensor, class_names: Sequence[str]):
        super().__init__(attribution, targets, labels, settings, model_key)
        self.class_names = class_names  # the model's, by class index
        self.image: Image.Image = photo.seen.image  # the cropped picture the network sees
        self.input: torch.Tensor = photo.seen.input  # [1, 3, H, W] normalized
        self.probabilities: np.ndarray = photo.seen.probabilities  # [classes] softmax at the input
        self.baseline_name, self.baseline, self.layer_name = photo.baseline, baseline, photo.layer_name
        self.labels = self.target_names

    def attributions(self, t: int = 0) -> np.ndarray:
        """Integrated gradients for the t-th target, [3, H, W] (input space)."""
        return self.attribution.attributions_per_target[0][t, 0].numpy()

    def all_attributions(self) -> np.ndarray:
        return self.attribution.attributions_per_target[0][:, 0].numpy()  # [T, 3, H, W]

    def pixel_importance(self, t: int = 0, mode: str = "sum") -> np.ndarray:
        """The t-th target's attributions aggregated over the colour channels, [H, W] (see
        `families.vision.importance.pixel_importance`). Default "sum" (signed), so the pixels still add up to the
        attribution total (completeness); "abs" is Eq. 1."""
        return pixel_importance(self.attributions(t), mode)

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
        """The photo's own softmax for the t-th target (the method's F(input) can be another number: SmoothGrad's is
        the mean over its noisy copies)."""
        return float(self.probabilities[self.targets[t]])

    def explained_score(self, t: int = 0) -> str:
        """What F is for the t-th target: its softmax, or where a target is a contrast (all explained on the logits)
        its logit, minus the other class's for the contrast itself."""
        name, other = self.class_names[self.targets[t]], self.rather_than[t]
        if not self.contrasted:
            return f"softmax of {name}"
        return f"logit of {name}" + ("" if other is None else f" minus logit of {self.class_names[other]}")

    def baseline_score(self, t: int = 0) -> float:
        return float(self.attribution.score_baseline[0, t])

    @property
    def max_relative_delta(self) -> float:
        return float(np.max(self.attribution.relative_delta))


class VisionFamily(ModelFamily):
    """Image classifiers: torchvision architectures with their automatic weights or a weights file, exported
    programs with their sidecars, the operator's factories and uploads of a state_dict or a program, each a
    ModelSource (families.vision.model_sources)."""

    name, input_name = "vision", "photo"
    collections = (PhotoFolder,)
    model_suffixes = (".pth", ".pt", ".pt2")
    contrast_output = "identity"  # the logits: softmax probabilities of two classes also move with every other class
    trust_checks = {"evaluation": "python -m families.vision.evaluation --arch mobilenet_v2 --folders "
                                  "$IG_DATA_DIR/imagenet_samples $IG_DATA_DIR/imagenet_val_boxes "
                                  "--out bench/RESULTS-methods.md"}
    no_references = (f"this server has no other sample photos (the operator sets {VISION_SAMPLES.name} or "
                     f"{DATA_DIR.name})")

    def __init__(self):
        self._reference_sets: OrderedDict[tuple[str, str], torch.Tensor | None] = OrderedDict()
        self._reference_lock = threading.Lock()

    def sources(self) -> list[ModelSource]:
        return model_sources.sources()

    def load(self, source: ModelSource, device: torch.device) -> LoadedModel:
        return self.wrap(model_sources.load_classifier(source, device))

    @staticmethod
    def wrap(classifier: ImageClassifier) -> LoadedModel:
        """A classifier as the contract's model."""
        return LoadedModel(key=classifier.key, name=classifier.weights_source, target_names=classifier.categories,
                           module=classifier.model, extra=classifier)

    def parse(self, model: LoadedModel, raw) -> PhotoItem:
        """Image bytes, a PIL image or a normalized tensor [1, 3, H, W] (ImageError for what is no image)."""
        image = raw if isinstance(raw, (Image.Image, torch.Tensor)) else load_image(raw)
        return PhotoItem(predict_image(model.extra, image))

    def seen_photo(self, seen: Prediction, baseline: str = "black", layer_name: str | None = None) -> PhotoItem:
        """A photo the page has already classified (its cached prediction), with the path's options."""
        return PhotoItem(seen, baseline, layer_name)

    def default_targets(self, model: LoadedModel, item: PhotoItem) -> list[int]:
        return [int(np.argmax(item.seen.probabilities))]

    def engine_input(self, model: LoadedModel, item: PhotoItem) -> EngineInput:
        classifier, x = model.extra, item.seen.input
        layer = classifier.get_layer(item.layer_name) if item.layer_name else None
        return EngineInput(forward=classifier.model, inputs=(x,),
                           baseline=(make_baseline(classifier, item.baseline, x),), output="softmax",
                           probe_alphas=PROBE_ALPHAS, layer=layer)

    def references(self, model: LoadedModel, item: PhotoItem) -> tuple[torch.Tensor, ...] | None:
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
                        inputs.append(model.extra.preprocess(load_image(photo.path))[0])
                    except ImageError:
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

    def explanation(self, model: LoadedModel, item: PhotoItem, targets, result: Attribution,
                    settings: ScanSettings) -> VisionExplanation:
        baseline = make_baseline(model.extra, item.baseline, item.seen.input)
        return VisionExplanation(result, targets, [target_label(model.target_names, t) for t in targets], settings,
                                 model.key, item, baseline, model.target_names)


FAMILY = VisionFamily()


def explain(engine, classifier: ImageClassifier, image, targets: int | Sequence[int] | None = None,
            baseline: str = "black", settings: ScanSettings | None = None, layer_name: str | None = None,
            progress: Callable[[float], None] | None = None, partial=None) -> VisionExplanation:
    """The family's explanation of one photo for a classifier the caller holds (partial: see ModelFamily.explain).

    image: a PIL image, a normalized tensor [1, 3, H, W], or a `families.vision.image_classifier.Prediction` already
    made of it.
    targets: a class index or several (duplicates dropped); None: the top-1 prediction.
    """
    model = VisionFamily.wrap(classifier)
    seen = image if isinstance(image, Prediction) else predict_image(classifier, image)
    targets = [int(targets)] if isinstance(targets, (int, np.integer)) else targets
    targets = list(dict.fromkeys(int(t) for t in targets)) if targets is not None else None
    if targets is not None and not targets:
        raise ValueError("give at least one target class")
    for t in targets or ():
        if not 0 <= t < len(classifier.categories):
            raise ValueError(f"target {t} is out of range for {len(classifier.categories)} classes")
    return FAMILY.explain(engine, model, PhotoItem(seen, baseline, layer_name), targets, settings, progress, partial)
