"""Vision: image classifiers (torchvision architectures, exported programs, factories) as a model family.

One scan of the path from a baseline image to the photo gives, for all target classes, the integrated
gradients, the interior gradients at the Figure 3 alphas, the softmax and logit trend and the distances of an
intermediate layer's activations (Figure 12).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ig_core import Attribution, ScanSettings

from .. import vision as mv
from ..family import EngineInput, Explanation, LoadedModel, ModelFamily, ModelSource

PROBE_ALPHAS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)  # Figure 3


@dataclass(frozen=True)
class Photo:
    """A photo as the network sees it, with the path's options: which baseline, which layer to observe."""

    seen: mv.Prediction
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
        `models.vision.pixel_importance`). Default "sum" (signed), so the pixels still add up to the attribution
        total (completeness); "abs" is Eq. 1."""
        return mv.pixel_importance(self.attributions(t), mode)

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

    def baseline_image(self, classifier: mv.ImageClassifier) -> Image.Image:
        return classifier.to_pil(self.baseline)


class VisionFamily(ModelFamily):
    """Sources are torchvision architectures with their automatic weights; the Vision pages' sidebar
    (views.session.choose_classifier) adds weights files, exported programs, factories and uploads."""

    name, input_name = "vision", "photo"
    model_suffixes = (".pth", ".pt", ".pt2")

    def shipped(self) -> list[ModelSource]:
        available = mv.available_architectures()
        return [ModelSource(f"torchvision: {arch}", options=(("arch", arch),))
                for arch in mv.SUGGESTED_ARCHS if arch in available]

    def load(self, source: ModelSource, device: torch.device) -> LoadedModel:
        options = dict(source.options)
        arch = options.get("arch", mv.default_architecture())
        if source.data is None and source.path is None:
            name, path = mv.automatic_weights(arch)
            classifier = (mv.load_cached_pretrained(arch, device) if path is None
                          else mv.classifier_from_state_dict(arch, mv.read_weights_file(path, name), name, device))
        elif PurePath(source.name).suffix.lower() == ".pt2":
            classes, preprocessing = (mv.read_sidecar(source.path, source.name) if source.path is not None
                                      else (None, mv.Preprocessing()))
            classifier = mv.classifier_from_program(source.read(), source.name, classes, preprocessing, device)
        else:
            classifier = mv.classifier_from_state_dict(arch, source.read(), source.name, device)
        return self.wrap(classifier)

    @staticmethod
    def wrap(classifier: mv.ImageClassifier) -> LoadedModel:
        """A classifier the Vision pages loaded, as the contract's model."""
        return LoadedModel(key=classifier.key, name=classifier.weights_source, target_names=classifier.categories,
                           module=classifier.model, extra=classifier)

    def parse(self, model: LoadedModel, raw) -> Photo:
        """Image bytes, a PIL image or a normalized tensor [1, 3, H, W] (mv.ImageError for what is no image)."""
        image = raw if isinstance(raw, (Image.Image, torch.Tensor)) else mv.load_image(raw)
        return Photo(mv.predict_image(model.extra, image))

    def default_targets(self, model: LoadedModel, item: Photo) -> list[int]:
        return [int(np.argmax(item.seen.probabilities))]

    def engine_input(self, model: LoadedModel, item: Photo) -> EngineInput:
        classifier, x = model.extra, item.seen.input
        layer = classifier.get_layer(item.layer_name) if item.layer_name else None
        return EngineInput(forward=classifier.model, inputs=(x,), baseline=(mv.make_baseline(classifier, item.baseline, x),),
                           output="softmax", probe_alphas=PROBE_ALPHAS, layer=layer)

    def explanation(self, model: LoadedModel, item: Photo, targets, result: Attribution,
                    settings: ScanSettings) -> VisionExplanation:
        baseline = mv.make_baseline(model.extra, item.baseline, item.seen.input)
        return VisionExplanation(result, targets, [model.target_names[t] for t in targets], settings, model.key,
                                 item, baseline)


FAMILY = VisionFamily()


def explain(engine, classifier: mv.ImageClassifier, image, targets: int | Sequence[int] | None = None,
            baseline: str = "black", settings: ScanSettings | None = None, layer_name: str | None = None,
            progress: Callable[[float], None] | None = None) -> VisionExplanation:
    """The family's explanation of one photo for a classifier the caller holds.

    image: a PIL image, a normalized tensor [1, 3, H, W], or a `models.vision.Prediction` already made of it.
    targets: a class index or several (duplicates dropped); None: the top-1 prediction.
    """
    model = VisionFamily.wrap(classifier)
    seen = image if isinstance(image, mv.Prediction) else mv.predict_image(classifier, image)
    targets = [int(targets)] if isinstance(targets, (int, np.integer)) else targets
    targets = list(dict.fromkeys(int(t) for t in targets)) if targets is not None else None
    if targets is not None and not targets:
        raise ValueError("give at least one target class")
    for t in targets or ():
        if not 0 <= t < len(classifier.categories):
            raise ValueError(f"target {t} is out of range for {len(classifier.categories)} classes")
    return FAMILY.explain(engine, model, Photo(seen, baseline, layer_name), targets, settings, progress)
