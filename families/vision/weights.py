"""Where a torchvision classifier's weights come from, never random ones, and the model files the pages offer.

Weights, in the order `resolve_weights` (the command line's lookup) and `automatic_weights` (the pages') look
for them:
1. ``$IG_VISION_WEIGHTS`` (a state_dict file) when the architecture is ``$IG_VISION_ARCH`` (default googlenet);
2. torchvision's pretrained weights already in torch's cache (``~/.cache/torch/hub/checkpoints``, or
   ``$TORCH_HOME/hub/checkpoints``);
3. a known local file under the data directory (``$IG_DATA_DIR/models/...``; today the MobileNetV2 state_dict
   for ``mobilenet_v2``);
4. the command line only: torchvision's download (needs internet; see families.vision.torchvision_classifiers).

The pages never take a server path from the browser: they offer `weights_files()` and `program_files()` (the
models folder, ``$IG_MODELS_DIR``, by relative name), `automatic_weights` (steps 1-3, never a download) and
uploads.

The app's default architecture (`default_architecture`) is ``$IG_VISION_ARCH`` if set, else googlenet (the
paper's network) when its weights are cached, else mobilenet_v2 when the shared file is present, else googlenet
(whose download may then fail with the clear error).
"""
from __future__ import annotations

import os
import pathlib
from typing import Iterable

import torch
import torchvision

from families.checkpoint import CheckpointError, read_file
from families.config import MODELS_DIR, VISION_ARCH, VISION_WEIGHTS, data_dir, models_dir
from families.vision.errors import WeightsUnavailable

DEFAULT_ARCH = "googlenet"  # the paper's Inception (GoogLeNet, Szegedy et al. 2014)
# Known local state_dict files, relative to the data directory.
LOCAL_WEIGHTS = {"mobilenet_v2": "models/mobilenet_v2_float/mobilenet_v2_imagenet_dequantized.pth"}
SUGGESTED_ARCHS = ("googlenet", "inception_v3", "resnet50", "mobilenet_v2")
WEIGHTS_SUFFIXES = (".pth", ".pt")
FAMILY_FOLDER = "vision"  # the family's own subfolder of the models folder


def available_architectures() -> list[str]:
    """Every torchvision ImageNet classification model name (googlenet, resnet50, ...)."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def hub_checkpoint_dir() -> pathlib.Path:
    return pathlib.Path(torch.hub.get_dir()) / "checkpoints"


def pretrained_weights(arch: str, name: str = "DEFAULT"):
    """torchvision's pretrained weights enum member `name` of `arch` ("DEFAULT": its default)."""
    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        raise WeightsUnavailable(f"{arch!r} is not a torchvision classification model; choose one of "
                                 f"{', '.join(SUGGESTED_ARCHS)}, ... ({len(available_architectures())} in "
                                 "all).") from None
    try:
        return enum[name] if name != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise WeightsUnavailable(f"{arch} has no pretrained weights named {name!r}; "
                                 f"choose DEFAULT or one of {', '.join(w.name for w in enum)}.") from None


def cached_weights_file(arch: str, name: str = "DEFAULT") -> pathlib.Path:
    """Where torchvision keeps (or would keep) `arch`'s pretrained weights file."""
    return hub_checkpoint_dir() / os.path.basename(pretrained_weights(arch, name).url)


def local_weights_file(arch: str) -> pathlib.Path | None:
    rel = LOCAL_WEIGHTS.get(arch)
    if rel is None:
        return None
    path = data_dir() / rel
    return path if path.is_file() else None


def default_architecture() -> str:
    """$IG_VISION_ARCH, else googlenet when its weights are cached, else mobilenet_v2 when the shared
    file is present, else googlenet."""
    if VISION_ARCH.read():
        return VISION_ARCH.read()
    if VISION_WEIGHTS.read() or cached_weights_file(DEFAULT_ARCH).is_file():
        return DEFAULT_ARCH
    if local_weights_file("mobilenet_v2") is not None:
        return "mobilenet_v2"
    return DEFAULT_ARCH


def _env_weights(arch: str) -> pathlib.Path | None:
    """$IG_VISION_WEIGHTS when it is set and meant for `arch` (the architecture $IG_VISION_ARCH names)."""
    if arch == (VISION_ARCH.read() or DEFAULT_ARCH):
        return VISION_WEIGHTS.path()
    return None


def resolve_weights(arch: str) -> str:
    """The weights `load_classifier(arch)` uses when none are given: a file path or "DEFAULT"."""
    env = _env_weights(arch)
    if env is not None:
        return str(env)
    if cached_weights_file(arch).is_file():
        return "DEFAULT"
    local = local_weights_file(arch)
    return str(local) if local is not None else "DEFAULT"


def model_files(suffixes: Iterable[str]) -> dict[str, pathlib.Path]:
    """The files below the models folder with these suffixes, by the name the browser sees (never a server path):
    relative to the family's own subfolder (vision/) for the files in it, else relative to the models folder.
    Where two files get one name, the first in sorted order keeps it."""
    folder = models_dir()
    own = folder / FAMILY_FOLDER
    files: dict[str, pathlib.Path] = {}
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.suffix.lower() in suffixes and path.is_file():
            base = own if path.is_relative_to(own) else folder
            files.setdefault(path.relative_to(base).as_posix(), path)
    return files


def weights_files() -> dict[str, pathlib.Path]:
    """The state_dict files the pages offer: every *.pth / *.pt below the models folder (`model_files`), and the
    known files of the data folder (LOCAL_WEIGHTS) that lie elsewhere, named relative to the data folder."""
    files = model_files(WEIGHTS_SUFFIXES)
    for arch, relative in LOCAL_WEIGHTS.items():
        local = local_weights_file(arch)
        if local is not None and local not in files.values():
            files[relative] = local
    return files


def automatic_weights(arch: str) -> tuple[str, pathlib.Path | None]:
    """The pages' "automatic" weights for `arch`, found without downloading: (the name the browser sees,
    the state_dict file), or (name, None) for torchvision's pretrained weights in torch's cache (load them
    with families.vision.torchvision_classifiers.load_cached_pretrained). Raises WeightsUnavailable, naming no
    server path, when there are none."""
    env = _env_weights(arch)
    if env is not None:
        return f"${VISION_WEIGHTS.name}", env
    if cached_weights_file(arch).is_file():
        return f"torchvision {pretrained_weights(arch)} (cached)", None
    local = local_weights_file(arch)
    if local is not None:
        return local.name, local
    raise WeightsUnavailable(
        f"No pretrained weights for {arch} on this server: torchvision's cache does not hold "
        f"{os.path.basename(pretrained_weights(arch).url)} and the data folder has no known file for {arch}. Choose a "
        f"weights file or upload a state_dict for {arch}, or ask the operator to add one to the models folder "
        f"({MODELS_DIR.name}).")


def read_weights_file(path: pathlib.Path, name: str) -> bytes:
    """The bytes of a weights file; errors call it `name` (what the reader knows it as)."""
    try:
        return read_file(path, name, "weights file")
    except CheckpointError as exc:
        raise WeightsUnavailable(str(exc)) from None

