"""The operator's own models: factories "package.module:function" named in $IG_VISION_FACTORY (comma-separated),
never in the browser: it is the operator's code, imported and called on the server."""
from __future__ import annotations

import importlib
from collections.abc import Mapping

import torch

from families.config import VISION_FACTORY
from families.vision.errors import ModelFileError
from families.vision.image_classifier import ImageClassifier, Preprocessing, classifier_from_module, default_device


def factory_names() -> list[str]:
    """The factories the operator named in $IG_VISION_FACTORY ("package.module:function", comma-separated)."""
    return [spec.strip() for spec in VISION_FACTORY.read().split(",") if spec.strip()]


def classifier_from_factory(spec: str, device: str | torch.device | None = None) -> ImageClassifier:
    """A classifier from an operator's factory "package.module:function" (named in $IG_VISION_FACTORY,
    never in the browser: it is the operator's code, imported and called). The function takes no arguments
    and returns an nn.Module with its weights, or a mapping {"model": module, "classes": [...],
    "input_size", "resize", "mean", "std"} (the sidecar's keys; absent ones as for a program)."""
    module_name, _, function_name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError, ValueError):
        raise ModelFileError(f"The factory {spec} cannot be found: {VISION_FACTORY.name} must name an importable "
                             f"package.module:function.") from None
    try:
        made = factory()
    except Exception as exc:  # the operator's code; its message may name server paths, so the log has it
        raise ModelFileError(f"The factory {spec} failed ({type(exc).__name__}); the details are in the server "
                             f"log.") from exc
    settings = made if isinstance(made, Mapping) else {"model": made}
    model = settings.get("model")
    if not isinstance(model, torch.nn.Module):
        raise ModelFileError(f"The factory {spec} returned a {type(model).__name__}, not a torch.nn.Module "
                             f"(or a mapping with one under \"model\").")
    classes = settings.get("classes")
    device = default_device(device)
    return classifier_from_module(model.to(device), spec, f"factory:{spec}", f"factory {spec}",
                              None if classes is None else list(classes),
                              Preprocessing.from_settings(settings, f"The factory {spec}"), device)
