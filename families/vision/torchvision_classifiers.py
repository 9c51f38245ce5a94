"""torchvision classifiers: an architecture by name with torchvision's pretrained weights or a state_dict, and its
preprocessing; never random weights. Where the weights come from: families.vision.weights.

Messages name a weights file as the reader knows it (an upload's name, a name relative to the models folder);
state_dicts load from bytes with weights_only=True.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import warnings
from collections.abc import Mapping

import torch
import torchvision

from families.checkpoint import CheckpointError, safe_load
from families.config import MODELS_DIR, VISION_ARCH, VISION_WEIGHTS
from families.vision.errors import WeightsError, WeightsUnavailable
from families.vision.image_classifier import ImageClassifier, default_device, imagenet_categories
from families.vision.weights import (
    SUGGESTED_ARCHS,
    available_architectures,
    cached_weights_file,
    default_architecture,
    hub_checkpoint_dir,
    pretrained_weights,
    read_weights_file,
    resolve_weights,
)


def load_classifier(arch: str | None = None, weights: str | os.PathLike | None = None,
                    device: str | torch.device | None = None) -> ImageClassifier:
    """An ImageNet classifier by torchvision name, with pretrained weights and its preprocessing.

    arch: a torchvision classification model name (googlenet, inception_v3, resnet50, mobilenet_v2,
        ...); None: `default_architecture()`.
    weights: None (see `resolve_weights`), "DEFAULT" or a torchvision weights name (cache, else
        download), or a path to a state_dict file.
    Raises WeightsUnavailable when no weights can be had and WeightsError for a file that does not fit.
    """
    arch = _known_architecture((arch or default_architecture()).strip())
    weights = resolve_weights(arch) if weights is None or str(weights).strip() == "" else str(weights).strip()
    if _is_path(weights):
        path = pathlib.Path(weights).expanduser()
        return classifier_from_state_dict(arch, read_weights_file(path, str(path)), str(path), device)
    return _frozen(arch, *_from_torchvision(arch, weights), device)


def classifier_from_state_dict(arch: str, data: bytes, name: str,
                               device: str | torch.device | None = None) -> ImageClassifier:
    """An ImageNet classifier from the bytes of a state_dict file (loaded with weights_only=True).
    name: how messages call the file (an upload's name, a name relative to the models folder).
    Raises WeightsError for bytes that are no state_dict for `arch`."""
    return _frozen(_known_architecture(arch), *_from_state_dict(arch, data, name), device)


def load_cached_pretrained(arch: str, device: str | torch.device | None = None) -> ImageClassifier:
    """torchvision's pretrained weights for `arch` from torch's cache, never downloaded; errors name no
    server path."""
    if not cached_weights_file(arch).is_file():
        raise WeightsUnavailable(f"torchvision's pretrained weights for {arch} are not in this server's cache.")
    try:
        return load_classifier(arch, "DEFAULT", device)
    except WeightsUnavailable:
        raise WeightsUnavailable(f"torchvision's cached weights for {arch} could not be loaded (a damaged file?); "
                                 f"ask the operator to replace {cached_weights_file(arch).name}.") from None


def _known_architecture(arch: str) -> str:
    if arch not in available_architectures():
        raise WeightsUnavailable(f"{arch!r} is not a torchvision classification model; try one of "
                                 f"{', '.join(SUGGESTED_ARCHS)}.")
    return arch


def _frozen(arch, model, key, source, transform, categories, device) -> ImageClassifier:
    """The model in eval mode without parameter gradients, on `device` (None: the GPU when there is one)."""
    device = default_device(device)
    model = model.to(device).eval()
    model.requires_grad_(False)
    return ImageClassifier(
        model=model, arch=arch, key=key, categories=categories, weights_source=source,
        resize_size=int(transform.resize_size[0]), crop_size=int(transform.crop_size[0]),
        mean=tuple(transform.mean), std=tuple(transform.std), interpolation=transform.interpolation,
    )


def _where_to_put(arch: str) -> str:
    try:
        w = pretrained_weights(arch)
        cache = f"download {w.url} and put it at {hub_checkpoint_dir() / os.path.basename(w.url)}; or "
    except WeightsUnavailable:
        cache = ""
    return (f"To fix: {cache}save a state_dict for torchvision.models.{arch}() anywhere and set "
            f"{VISION_ARCH.name}={arch} and {VISION_WEIGHTS.name}=/path/to/file.pth (or put it in the models folder, "
            f"${MODELS_DIR.name}, and choose it in the sidebar).")


def _from_torchvision(arch: str, name: str):
    w = pretrained_weights(arch, name)
    cached = hub_checkpoint_dir() / os.path.basename(w.url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torchvision.models.get_model(arch, weights=w, progress=False)
    except Exception as exc:  # URLError, hash mismatch, corrupt cache: all mean "no usable weights"
        where = ("found in the cache but could not be loaded" if cached.is_file()
                 else "not cached and could not be downloaded")
        raise WeightsUnavailable(f"The pretrained weights for {arch} ({w}) are {where}: {exc}. "
                                 f"{_where_to_put(arch)}") from None
    source = f"torchvision {w}"
    return model, f"{arch}:{w}:{os.path.basename(w.url)}", source, w.transforms(), list(w.meta["categories"])


def _read_state_dict(data: bytes, name: str) -> dict[str, torch.Tensor]:
    try:
        obj = safe_load(data, name)
    except CheckpointError as exc:
        raise WeightsError(str(exc)) from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]  # a training checkpoint {"state_dict": ..., "epoch": ...}
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{name} is a PyTorch file but not a state_dict (a mapping from parameter names to "
                           f"tensors); it holds a {type(obj).__name__}.")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def _from_state_dict(arch: str, data: bytes, name: str):
    state = _read_state_dict(data, name)
    digest = hashlib.sha256(data).hexdigest()
    kwargs: dict = {}
    aux = None
    if arch in ("googlenet", "inception_v3"):
        # As torchvision's pretrained weights: transform_input=True (the weights expect it), aux heads
        # loaded when present and then dropped so that eval returns plain logits.
        aux = "aux1." if arch == "googlenet" else "AuxLogits."
        kwargs = dict(transform_input=True, aux_logits=any(k.startswith(aux) for k in state), init_weights=False)
    classes = _num_classes(state)
    if classes is not None:
        kwargs["num_classes"] = classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(arch, weights=None, **kwargs)
    _load_strict(model, state, arch, name)
    if aux is not None and kwargs.get("aux_logits"):
        model.aux_logits = False
        if arch == "googlenet":
            model.aux1 = model.aux2 = None
        else:
            model.AuxLogits = None
    transform = _file_transform(arch)
    categories = imagenet_categories()
    if classes not in (None, len(categories)):
        categories = [f"class {i}" for i in range(classes)]
    return model, f"{arch}:file:{digest}", f"state_dict, sha256 {digest[:16]}...", transform, categories


def _num_classes(state: Mapping[str, torch.Tensor]) -> int | None:
    linear = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    return int(linear[-1].shape[0]) if linear else None


def _load_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], arch: str, name: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of its {len(own)} parameters are missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} entries are not in {arch} (e.g. {', '.join(unexpected[:3])})")
        if mismatched:
            k = mismatched[0]
            parts.append(f"{len(mismatched)} shapes differ (e.g. {k}: file {tuple(state[k].shape)}, "
                         f"{arch} {tuple(own[k].shape)})")
        raise WeightsError(f"{name} is not a state_dict for {arch}: " + "; ".join(parts)
                           + ". Was it saved from another architecture? Choose the matching one.")
    model.load_state_dict(state, strict=True)


def _file_transform(arch: str):
    """For a local file: the arch's IMAGENET1K_V1 preprocessing (inception_v3: 342/299), else the
    standard ImageNet one (resize 256, centre crop 224, mean/std)."""
    try:
        return torchvision.models.get_model_weights(arch)["IMAGENET1K_V1"].transforms()
    except (KeyError, ValueError):
        return torchvision.models.ResNet50_Weights.IMAGENET1K_V1.transforms()


def _is_path(weights: str) -> bool:
    return (os.sep in weights or "/" in weights or weights.endswith((".pth", ".pt", ".bin", ".ckpt"))
            or pathlib.Path(weights).expanduser().is_file())
