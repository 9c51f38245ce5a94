"""The Vision family's models as the contract's sources (families.contract.ModelSource), and how each one loads.

A source's options are the part of its identity besides its bytes:
- ("arch", name): a torchvision architecture; with bytes (a weights file, an upload) they are a state_dict for it,
  without them its automatic weights (families.vision.weights.automatic_weights, never a download);
- ("factory", "package.module:function"): one of the operator's factories ($IG_VISION_FACTORY);
- ("classes", names or None) and ("preprocessing", Preprocessing): an exported program's class names and
  preprocessing, from its sidecar or from the upload; a program without them reads the sidecar beside its file.
A weights file without "arch" is a state_dict for the default architecture.
"""
from __future__ import annotations

from pathlib import Path, PurePath
from typing import Sequence

import torch

from families.config import VISION_FACTORY
from families.contract import ModelSource
from families.vision import exported_programs, factories, torchvision_classifiers
from families.vision.errors import ModelFileError
from families.vision.image_classifier import ImageClassifier, Preprocessing
from families.vision.weights import (
    SUGGESTED_ARCHS,
    automatic_weights,
    available_architectures,
    default_architecture,
    read_weights_file,
    weights_files,
)

FACTORY_PREFIX = "factory: "
TORCHVISION_PREFIX = "torchvision: "


def architectures() -> list[str]:
    """Every torchvision architecture, the suggested ones first."""
    available = available_architectures()
    suggested = [arch for arch in SUGGESTED_ARCHS if arch in available]
    return suggested + [arch for arch in available if arch not in suggested]


def state_dict_source(arch: str, name: str, data: bytes) -> ModelSource:
    """A state_dict for `arch`, known by its bytes: the same bytes by another route are the same model."""
    return ModelSource(name, data=data, options=(("arch", arch),))


def weights_file_source(arch: str, name: str, path: Path) -> ModelSource:
    """A weights file for `arch`, read now so that the model is known by its content."""
    return state_dict_source(arch, name, read_weights_file(path, name))


def automatic_source(arch: str) -> ModelSource:
    """`arch` with its automatic weights, found now ($IG_VISION_WEIGHTS, torchvision's cache, a known file of the
    data folder; never a download). Raises WeightsUnavailable when there are none."""
    name, path = automatic_weights(arch)
    if path is None:  # torchvision's pretrained weights in torch's cache, known by their name
        return ModelSource(name, options=(("arch", arch),))
    return weights_file_source(arch, name, path)


def factory_source(spec: str) -> ModelSource:
    return ModelSource(FACTORY_PREFIX + spec, options=(("factory", spec),))


def program_source(name: str, path: Path | None = None, data: bytes | None = None,
                   classes: Sequence[str] | None = None, preprocessing: Preprocessing | None = None) -> ModelSource:
    """An exported program: a file of the models folder (its sidecar read now, so that a changed sidecar is another
    model; one that cannot be read is left to `load_classifier`, which says why) or an upload with its class names
    and preprocessing."""
    if path is not None:
        try:
            classes, preprocessing = exported_programs.read_sidecar(path, name)
        except ModelFileError:
            return ModelSource(name, path=path)
    options = (("classes", None if classes is None else tuple(classes)),
               ("preprocessing", preprocessing or Preprocessing()))
    return ModelSource(name, path=path, data=data, options=options)


def upload_preprocessing(input_size: int, resize: int, mean: Sequence[float], std: Sequence[float]) -> Preprocessing:
    """The preprocessing a user set for an uploaded program, checked (ModelFileError says what is wrong)."""
    return Preprocessing(input_size, resize, tuple(mean), tuple(std)).checked("The preprocessing")


def sources() -> list[ModelSource]:
    """Every model the Vision pages offer: the torchvision architectures with their automatic weights (found when
    one is loaded), the operator's factories, the exported programs and the weights files of the models folder (for
    the default architecture; the pages pair a file with any architecture through `weights_file_source`)."""
    return ([ModelSource(TORCHVISION_PREFIX + arch, options=(("arch", arch),)) for arch in architectures()]
            + [factory_source(spec) for spec in factories.factory_names()]
            + [program_source(name, path) for name, path in exported_programs.program_files().items()]
            + [ModelSource(name, path=path) for name, path in weights_files().items()])


def load_classifier(source: ModelSource, device: torch.device) -> ImageClassifier:
    """The classifier a source names, on `device`; a VisionError (or CheckpointError) that says why not."""
    options = dict(source.options)
    if "factory" in options:
        spec = options["factory"]
        if spec not in factories.factory_names():  # the operator's code runs only while the operator names it
            raise ModelFileError(f"The factory {spec} is not named in {VISION_FACTORY.name}.")
        return factories.classifier_from_factory(spec, device)
    if "preprocessing" in options or PurePath(source.name).suffix.lower() == exported_programs.PROGRAM_SUFFIX:
        classes, preprocessing = _program_settings(source, options)
        return exported_programs.classifier_from_program(source.read(), source.name, classes, preprocessing, device)
    arch = options.get("arch") or default_architecture()
    if source.data is None and source.path is None:
        source = automatic_source(arch)
        if source.data is None:
            return torchvision_classifiers.load_cached_pretrained(arch, device)
    return torchvision_classifiers.classifier_from_state_dict(arch, source.read(), source.name, device)


def _program_settings(source: ModelSource, options: dict) -> tuple[list[str] | None, Preprocessing]:
    if "preprocessing" in options:
        classes = options["classes"]
        return (None if classes is None else list(classes)), options["preprocessing"]
    if source.path is not None:
        return exported_programs.read_sidecar(source.path, source.name)
    return None, Preprocessing()
