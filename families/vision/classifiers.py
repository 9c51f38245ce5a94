"""Image classifiers: loading them (never with random weights), images, baselines and ablation.

The family's explanation (one scan for several classes) is families.vision.family.

No Streamlit here: the page (dashboard/pages/vision.py) and the evaluation (models/vision_eval.py) import this.

Weights, in the order `load_classifier` looks for them when it is not told (weights=None):
1. ``$IG_VISION_WEIGHTS`` (a state_dict file) when the architecture is ``$IG_VISION_ARCH``
   (default googlenet);
2. torchvision's pretrained weights already in torch's cache (``~/.cache/torch/hub/checkpoints``,
   or ``$TORCH_HOME/hub/checkpoints``);
3. a known local file under the data directory (``$IG_DATA_DIR/models/...``; today the MobileNetV2
   state_dict for ``mobilenet_v2``);
4. torchvision's download (needs internet). If that fails: `WeightsUnavailable`, whose message says
   where to put the file. Random weights are never used.

The pages never take a server path from the browser: they offer `weights_files()` (the models folder,
``$IG_MODELS_DIR``), `automatic_weights` (steps 1-3, never a download) and uploads, all loaded from
bytes by `classifier_from_state_dict`, whose messages name the file as the browser knows it.

Engineers' own models, beside torchvision's architectures (see `classifier_from_program` and
`classifier_from_factory`): a `torch.export` program (``.pt2``, with a dynamic batch dimension) in the models
folder with a sidecar ``<stem>.json`` (class names and preprocessing) or uploaded with a class-names file,
and factories "package.module:function" the operator names in ``$IG_VISION_FACTORY``. Uploaded programs
are checked before torch.export.load, which is not safe for untrusted files (`_check_program_archive`).

The app's default architecture (`default_architecture`) is ``$IG_VISION_ARCH`` if set, else googlenet
(the paper's network) when its weights are cached, else mobilenet_v2 when the shared file is present,
else googlenet (whose download may then fail with the clear error).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import operator
import os
import pathlib
import pickle
import re
import threading
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torchvision
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from families.checkpoint import CheckpointError, read_file, safe_load
from families.config import MODELS_ENV, data_dir, models_dir
from families.contract import FamilyError, InputError

ARCH_ENV = "IG_VISION_ARCH"
WEIGHTS_ENV = "IG_VISION_WEIGHTS"
DEFAULT_ARCH = "googlenet"  # the paper's Inception (GoogLeNet, Szegedy et al. 2014)
# Known local state_dict files, relative to the data directory (see models/data.py).
LOCAL_WEIGHTS = {"mobilenet_v2": "models/mobilenet_v2_float/mobilenet_v2_imagenet_dequantized.pth"}
SUGGESTED_ARCHS = ("googlenet", "inception_v3", "resnet50", "mobilenet_v2")
WEIGHTS_SUFFIXES = (".pth", ".pt")

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif")
MIN_SIDE = 16  # pixels; smaller images carry nothing a 224x224 network can use
MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (decompression bombs)



class VisionError(FamilyError):
    """Base of the errors the Vision page shows to the user as they are."""


class WeightsUnavailable(VisionError):
    """No pretrained weights could be found or downloaded (never falls back to random weights)."""


class WeightsError(VisionError):
    """A weights file exists but is not a state_dict for the chosen architecture."""


class ImageError(VisionError, InputError):
    """The input is not an image the page can use."""


# --- images ----------------------------------------------------------------------------------------

def load_image(source: "bytes | str | os.PathLike | io.IOBase") -> Image.Image:
    """Decode an image file to an RGB PIL image, or raise ImageError saying what is wrong.

    Accepts JPEG, PNG, WebP, BMP, TIFF (and GIF). Animated or multi-page files: the first frame is
    used and `image.info["notices"]` says so. Greyscale, palette, CMYK and 16-bit images are converted
    to 8-bit RGB; transparent pixels are composited on white. EXIF orientation is applied.
    """
    data = _read_bytes(source)
    if not data:
        raise ImageError("The file is empty (0 bytes).")
    notices: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"The image is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); "
                                 f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels. Resize it first.")
            if img.format not in IMAGE_FORMATS:
                raise ImageError(f"{img.format} images are not supported; use JPEG, PNG, WebP, BMP or TIFF.")
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                img.seek(0)
                notices.append(f"The file has {frames} frames (animated or multi-page); the first frame is used.")
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"The image is too large to decode safely (possible decompression bomb): {exc}") from None
    except UnidentifiedImageError:
        raise ImageError("The file is not a recognised image; upload a JPEG, PNG, WebP, BMP or TIFF file.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or corrupt data
        raise ImageError(f"The image file is damaged or truncated and could not be decoded ({exc}).") from None
    if min(img.size) < MIN_SIDE:
        raise ImageError(f"The image is {img.size[0]} x {img.size[1]} pixels; it must be at least "
                         f"{MIN_SIDE} x {MIN_SIDE}.")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not refuse a good image
        pass
    rgb = _to_rgb(img)
    rgb.info["notices"] = notices
    rgb.info["source_mode"] = img.mode
    rgb.info["source_format"] = img.format or ""
    return rgb


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if not path.is_file():
            raise ImageError(f"No such image file: {path}")
        return path.read_bytes()
    if hasattr(source, "read"):  # a file-like object, e.g. Streamlit's UploadedFile
        if hasattr(source, "seek"):
            source.seek(0)
        return source.read()
    raise ImageError(f"Cannot read an image from a {type(source).__name__}.")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16/32-bit greyscale: scale, do not clip
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() if arr.size else 0.0
        if mode.startswith("I;16") or (mode == "I" and top > 255):
            arr = arr / 257.0
        elif mode == "F" and top <= 1.0:
            arr = arr * 255.0
        return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8)).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
    elif mode == "L" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    return img.convert("RGB")


# --- weights and classifiers -------------------------------------------------------------------------

def available_architectures() -> list[str]:
    """Every torchvision ImageNet classification model name (googlenet, resnet50, ...)."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def hub_checkpoint_dir() -> pathlib.Path:
    return pathlib.Path(torch.hub.get_dir()) / "checkpoints"


def _pretrained(arch: str, name: str = "DEFAULT"):
    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        raise WeightsUnavailable(f"{arch!r} is not a torchvision classification model; choose one of "
                                 f"{', '.join(SUGGESTED_ARCHS)}, ... ({len(available_architectures())} in all).") from None
    try:
        return enum[name] if name != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise WeightsUnavailable(f"{arch} has no pretrained weights named {name!r}; "
                                 f"choose DEFAULT or one of {', '.join(w.name for w in enum)}.") from None


def cached_weights_file(arch: str, name: str = "DEFAULT") -> pathlib.Path:
    """Where torchvision keeps (or would keep) `arch`'s pretrained weights file."""
    return hub_checkpoint_dir() / os.path.basename(_pretrained(arch, name).url)


def local_weights_file(arch: str) -> pathlib.Path | None:
    rel = LOCAL_WEIGHTS.get(arch)
    if rel is None:
        return None
    path = data_dir() / rel
    return path if path.is_file() else None


def default_architecture() -> str:
    """$IG_VISION_ARCH, else googlenet when its weights are cached, else mobilenet_v2 when the shared
    file is present, else googlenet."""
    env = os.environ.get(ARCH_ENV, "").strip()
    if env:
        return env
    if os.environ.get(WEIGHTS_ENV, "").strip() or cached_weights_file(DEFAULT_ARCH).is_file():
        return DEFAULT_ARCH
    if local_weights_file("mobilenet_v2") is not None:
        return "mobilenet_v2"
    return DEFAULT_ARCH


def _env_weights(arch: str) -> pathlib.Path | None:
    """$IG_VISION_WEIGHTS when it is set and meant for `arch` (the architecture $IG_VISION_ARCH names)."""
    env = os.environ.get(WEIGHTS_ENV, "").strip()
    if env and arch == (os.environ.get(ARCH_ENV, "").strip() or DEFAULT_ARCH):
        return pathlib.Path(env).expanduser()
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


def weights_files() -> dict[str, pathlib.Path]:
    """The state_dict files the pages offer, by the name the browser sees (never a server path): every
    *.pth / *.pt below the models folder, named relative to it, and the known files of the data folder
    (LOCAL_WEIGHTS) that lie elsewhere, named relative to the data folder."""
    folder = models_dir()
    files = {}
    if folder.is_dir():
        files = {path.relative_to(folder).as_posix(): path for path in sorted(folder.rglob("*"))
                 if path.suffix.lower() in WEIGHTS_SUFFIXES and path.is_file()}
    for arch, relative in LOCAL_WEIGHTS.items():
        local = local_weights_file(arch)
        if local is not None and local not in files.values():
            files[relative] = local
    return files


def automatic_weights(arch: str) -> tuple[str, pathlib.Path | None]:
    """The pages' "automatic" weights for `arch`, found without downloading: (the name the browser sees,
    the state_dict file), or (name, None) for torchvision's pretrained weights in torch's cache (load them
    with `load_cached_pretrained`). Raises WeightsUnavailable, naming no server path, when there are none."""
    env = _env_weights(arch)
    if env is not None:
        return f"${WEIGHTS_ENV}", env
    if cached_weights_file(arch).is_file():
        return f"torchvision {_pretrained(arch)} (cached)", None
    local = local_weights_file(arch)
    if local is not None:
        return local.name, local
    raise WeightsUnavailable(
        f"No pretrained weights for {arch} on this server: torchvision's cache does not hold "
        f"{os.path.basename(_pretrained(arch).url)} and the data folder has no known file for {arch}. Choose a "
        f"weights file or upload a state_dict for {arch}, or ask the operator to add one to the models folder "
        f"({MODELS_ENV}).")


def read_weights_file(path: pathlib.Path, name: str) -> bytes:
    """The bytes of a weights file; errors call it `name` (what the reader knows it as)."""
    try:
        return read_file(path, name, "weights file")
    except CheckpointError as exc:
        raise WeightsUnavailable(str(exc)) from None


def _is_path(weights: str) -> bool:
    return (os.sep in weights or "/" in weights or weights.endswith((".pth", ".pt", ".bin", ".ckpt"))
            or pathlib.Path(weights).expanduser().is_file())


def _imagenet_categories() -> list[str]:
    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass
class ImageClassifier:
    """A frozen ImageNet classifier in eval mode with its own preprocessing."""

    model: torch.nn.Module
    arch: str
    key: str  # identity for the engine's cache: architecture + weights digest
    categories: list[str]
    weights_source: str  # human-readable: where the weights came from
    resize_size: int = 256
    crop_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: InterpolationMode = InterpolationMode.BILINEAR
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def forward(self) -> torch.nn.Module:
        return self.model

    @property
    def imagenet_classes(self) -> bool:
        """Whether the classes are ImageNet's (so ImageNet labels, e.g. the sample photos', apply)."""
        return self.categories == _imagenet_categories()

    # preprocessing
    def crop(self, image: Image.Image) -> Image.Image:
        """The picture the network sees: shorter side resized, then centre-cropped (PIL, RGB)."""
        resized = TF.resize(image.convert("RGB"), [self.resize_size], interpolation=self.interpolation, antialias=True)
        return TF.center_crop(resized, [self.crop_size])

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], [N, 3, H, W] -> the network's normalized input."""
        mean = torch.tensor(self.mean, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
        return (pixels - mean) / std

    def unnormalize(self, tensor: torch.Tensor) -> torch.Tensor:
        """The network's input -> pixels in [0, 1] (not clamped)."""
        mean = torch.tensor(self.mean, dtype=tensor.dtype, device=tensor.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=tensor.dtype, device=tensor.device).view(1, 3, 1, 1)
        return tensor * std + mean

    def to_tensor(self, cropped: Image.Image) -> torch.Tensor:
        return self.normalize(TF.to_tensor(cropped.convert("RGB")).unsqueeze(0))

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """PIL image -> normalized tensor [1, 3, crop, crop] on the CPU."""
        return self.to_tensor(self.crop(image))

    def to_pil(self, tensor: torch.Tensor) -> Image.Image:
        pixels = self.unnormalize(tensor.detach().float().cpu()[:1]).clamp(0, 1)[0]
        return Image.fromarray((pixels.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))

    # prediction
    @torch.no_grad()
    def predict(self, tensor: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities [N, classes] (CPU) for a normalized batch."""
        with self.lock:
            logits = self.model(tensor.to(self.device, torch.float32))
        return torch.softmax(logits.float(), dim=-1).cpu()

    def top_k(self, tensor_or_probs: torch.Tensor, k: int = 5) -> list[tuple[int, str, float]]:
        """[(class index, name, probability)] of the first example, best first."""
        probs = tensor_or_probs if tensor_or_probs.dim() == 2 and tensor_or_probs.shape[-1] == len(self.categories) \
            else self.predict(tensor_or_probs)
        values, indices = probs[0].topk(k)
        return [(int(i), self.categories[int(i)], float(v)) for v, i in zip(values, indices)]

    def class_index(self, name: str) -> int:
        lowered = [c.lower() for c in self.categories]
        try:
            return lowered.index(name.strip().lower().replace("_", " "))
        except ValueError:
            raise KeyError(f"no class named {name!r}") from None

    # layers for Figure 12
    def layer_names(self) -> list[str]:
        """Intermediate layers whose saturation can be plotted, shallow to deep."""
        if isinstance(self.model, ExportedModule):
            return []  # one flat graph: its parts never run as modules, so no layer hook would fire
        named = dict(self.model.named_modules())
        curated = {
            "googlenet": ["inception3b", "inception4b", "inception4d", "inception5b"],  # mixed3b, 4b, 4d, 5b
            "inception_v3": ["Mixed_5d", "Mixed_6b", "Mixed_6e", "Mixed_7c"],
        }.get(self.arch)
        if curated and all(n in named for n in curated):
            return curated
        if "features" in named and len(list(named["features"].children())) > 1:
            return [f"features.{n}" for n, _ in named["features"].named_children()]
        return [n for n, m in self.model.named_children() if any(True for _ in m.parameters())
                and not isinstance(m, (torch.nn.Linear,))]

    def default_layer(self) -> str:
        names = self.layer_names()
        return names[-1] if names else ""

    def get_layer(self, name: str) -> torch.nn.Module:
        modules = dict(self.model.named_modules())
        if name not in modules:
            raise KeyError(f"{self.arch} has no layer {name!r}; choose one of {', '.join(self.layer_names())}")
        return modules[name]


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
    device = _device(device)
    model = model.to(device).eval()
    model.requires_grad_(False)
    return ImageClassifier(
        model=model, arch=arch, key=key, categories=categories, weights_source=source,
        resize_size=int(transform.resize_size[0]), crop_size=int(transform.crop_size[0]),
        mean=tuple(transform.mean), std=tuple(transform.std), interpolation=transform.interpolation,
    )


def _where_to_put(arch: str) -> str:
    try:
        w = _pretrained(arch)
        cache = f"download {w.url} and put it at {hub_checkpoint_dir() / os.path.basename(w.url)}; or "
    except WeightsUnavailable:
        cache = ""
    return (f"To fix: {cache}save a state_dict for torchvision.models.{arch}() anywhere and set "
            f"{ARCH_ENV}={arch} and {WEIGHTS_ENV}=/path/to/file.pth (or put it in the models folder, "
            f"${MODELS_ENV}, and choose it in the sidebar).")


def _from_torchvision(arch: str, name: str):
    w = _pretrained(arch, name)
    cached = hub_checkpoint_dir() / os.path.basename(w.url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torchvision.models.get_model(arch, weights=w, progress=False)
    except Exception as exc:  # URLError, hash mismatch, corrupt cache: all mean "no usable weights"
        where = "found in the cache but could not be loaded" if cached.is_file() else "not cached and could not be downloaded"
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
    categories = _imagenet_categories()
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


# --- models an engineer brings: a torch.export program or a factory named by the operator ---------------

PROGRAM_SUFFIX = ".pt2"
FACTORY_ENV = "IG_VISION_FACTORY"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DYNAMIC_BATCH_HINT = ("export it with a dynamic batch dimension: torch.export.export(model, (x,), "
                      "dynamic_shapes=({0: torch.export.Dim('batch')},))")


class ModelFileError(VisionError):
    """An exported program, its class names or preprocessing, or a factory does not give a usable classifier."""


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the network's input: shorter side resized to `resize`, centre-cropped to
    `input_size`, normalized with `mean` and `std` (RGB). Defaults: ImageNet's."""

    input_size: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def from_settings(cls, settings: Mapping, name: str) -> "Preprocessing":
        """From a sidecar's (or a factory's) keys input_size, resize, mean, std; the ones absent keep
        ImageNet's, and resize follows input_size (x 256/224) when only input_size is given."""
        try:
            size = int(settings.get("input_size", cls.input_size))
            resize = int(settings.get("resize", round(size * 256 / 224)))
            mean = tuple(float(v) for v in settings.get("mean", IMAGENET_MEAN))
            std = tuple(float(v) for v in settings.get("std", IMAGENET_STD))
        except (TypeError, ValueError):
            raise ModelFileError(f"{name}: input_size and resize must be whole numbers, mean and std lists of "
                                 f"three numbers.") from None
        return cls(size, resize, mean, std).checked(name)

    def checked(self, name: str) -> "Preprocessing":
        if not 8 <= self.input_size <= self.resize <= 4096:
            raise ModelFileError(f"{name}: the input size must be at least 8 pixels and at most the resize "
                                 f"({self.input_size} and {self.resize} given).")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ModelFileError(f"{name}: mean and std need three values (R, G, B), std all positive.")
        return self


def program_files() -> dict[str, pathlib.Path]:
    """The exported programs (*.pt2) below the models folder, by their name relative to it."""
    folder = models_dir()
    if not folder.is_dir():
        return {}
    return {path.relative_to(folder).as_posix(): path for path in sorted(folder.rglob(f"*{PROGRAM_SUFFIX}"))
            if path.is_file()}


def read_sidecar(program: pathlib.Path, name: str) -> tuple[list[str] | None, Preprocessing]:
    """The class names and preprocessing of a models-folder program from its sidecar `<stem>.json`:
    {"classes": [...] or "classes_file": "names.txt" (next to it), "input_size", "resize", "mean", "std"}.
    No sidecar: no class names (see `classifier_from_program`) and ImageNet's preprocessing."""
    sidecar = program.with_suffix(".json")
    shown = str(pathlib.PurePosixPath(name).with_suffix(".json"))
    if not sidecar.is_file():
        return None, Preprocessing()
    try:
        settings = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{shown} could not be read as JSON ({type(exc).__name__}).") from None
    if not isinstance(settings, dict):
        raise ModelFileError(f"{shown} must hold a JSON object (classes, input_size, resize, mean, std).")
    classes = settings.get("classes")
    if "classes_file" in settings:
        names_file = (sidecar.parent / str(settings["classes_file"])).resolve()
        if not names_file.is_relative_to(models_dir().resolve()) or not names_file.is_file():  # no way out of the folder
            raise ModelFileError(f"{shown} names the class-names file {settings['classes_file']!r}, which is not "
                                 f"in the models folder.")
        classes = parse_class_names(names_file.read_bytes(), settings["classes_file"])
    elif classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise ModelFileError(f"{shown}: classes must be a list of names.")
    return classes, Preprocessing.from_settings(settings, shown)


def parse_class_names(data: bytes, name: str) -> list[str]:
    """Class names, one a line (blank lines skipped), from a text file."""
    try:
        names = [line.strip() for line in data.decode("utf-8-sig").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise ModelFileError(f"{name} is not a UTF-8 text file of class names (one a line).") from None
    if not names:
        raise ModelFileError(f"{name} holds no class names (one a line expected).")
    return names


def program_digest(data: bytes, classes: Sequence[str] | None, preprocessing: Preprocessing) -> str:
    """The identity of a program with its class names and preprocessing (the cache key)."""
    sidecar = json.dumps([classes, dataclasses.astuple(preprocessing)]).encode()
    return hashlib.sha256(data + sidecar).hexdigest()


class ExportedModule(torch.nn.Module):
    """A torch.export program as a module. Its graph runs in the mode it was exported in (eval) and cannot
    switch, so eval()/train() stop here (the program's own module raises on them)."""

    def __init__(self, program: torch.nn.Module):
        super().__init__()
        self.program = program

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)

    def train(self, mode: bool = True) -> "ExportedModule":
        self.training = mode
        return self


# Where the graph of a program may call: tensor operators only (an archive names its targets as text, and
# the deserializer resolves any attribute of torch, operator or math, e.g. torch.os.system).
_SAFE_PYTHON_OPERATORS = {operator.getitem, operator.add, operator.sub, operator.mul, operator.floordiv,
                          operator.truediv, operator.mod, operator.neg, operator.pow, operator.eq, operator.ne,
                          operator.lt, operator.le, operator.gt, operator.ge}
# What a shape expression of the archive may hold (torch.export.save writes e.g. "Symbol('s77', positive=True,
# integer=True)"): the deserializer parses it with sympy.sympify, which evaluates Python, so every name in it
# (symbols aside) must be one of these sympy constructors, functions or assumptions.
_SHAPE_EXPRESSION = re.compile(r"[\w\s+\-*/%(),.<>=!&|~']*")
_SHAPE_NAMES = {"Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "positive", "negative",
                "nonnegative", "nonpositive", "integer", "real", "finite", "zero", "nonzero", "even", "odd", "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt",
                "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv",
                "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt",
                "RoundDecimal", "ToFloat", "Identity", "Max", "Min", "Abs", "floor", "ceiling", "oo", "Eq", "Ne",
                "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "True", "False"}


def _check_program_archive(data: bytes, name: str) -> None:
    """Refuse an archive that torch.export.load (torch 2.15) would let run code, before loading it.

    torch.export.load is not safe for untrusted files (its docstring: "uses pickle under the hood ...
    Never load data from an untrusted source"); reading torch/export/pt2_archive/_package.py and
    torch/_export/serde/serialize.py shows how: weights and constants saved with use_pickle are read with
    torch.load(weights_only=False), opaque constants with pickle.loads, custom objects with torch's own
    unpickler, sample inputs fall back to weights_only=False, data/aotinductor/ holds compiled libraries
    it loads, and shape expressions are parsed with sympy.sympify, which evaluates Python. What
    torch.export.save writes for a plain program needs none of these: weights and constants are raw
    tensor bytes described by JSON, sample inputs load with weights_only=True, shape expressions are
    arithmetic on symbols. So only such archives pass; the graph's targets are checked after loading
    (`_check_program_graph`), before the program runs."""
    if not data.startswith(b"PK\x03\x04"):
        raise ModelFileError(f"{name} is not an exported program (torch.export.save writes a zip archive; "
                             f"this is not one).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        roots = {member.split("/", 1)[0] for member in archive.namelist()}
        root = roots.pop() if len(roots) == 1 else ""
        files = {member[len(root) + 1:]: member for member in archive.namelist()}
        if files.get("archive_format") is None or archive.read(files["archive_format"]) != b"pt2":
            raise ModelFileError(f"{name} is a zip archive but not an exported program (torch.export.save); "
                                 f"a state_dict (.pth) goes with a torchvision architecture instead.")
        if any(info.compress_type != zipfile.ZIP_STORED for info in archive.infolist()):  # no zip bombs
            raise ModelFileError(f"{name} is a compressed zip archive; torch.export.save writes an uncompressed "
                                 f"one, so save the program with it.")
        if any(f.startswith(("data/aotinductor/", "data/executorch/", "data/mtia", "xl_model_weights/"))
               for f in files):
            raise ModelFileError(f"{name} holds compiled code (AOTInductor or another backend), which is never "
                                 f"run here; save the program with torch.export.save only.")
        for member in files:
            if member.startswith("models/") and member.endswith(".json"):
                model = member[len("models/"):-len(".json")]
                _check_payloads(archive, files, f"data/weights/{model}_weights_config.json", name)
                _check_payloads(archive, files, f"data/constants/{model}_constants_config.json", name)
                _check_shape_expressions(json.loads(archive.read(files[member])), name)
                torch.load(io.BytesIO(archive.read(files[f"data/sample_inputs/{model}.pt"])), weights_only=True)
    except ModelFileError:
        raise
    except pickle.UnpicklingError:
        raise _pickled(name) from None
    except Exception as exc:  # a damaged archive: bad zip, missing member, bad JSON
        raise ModelFileError(f"{name} is not a readable exported program ({type(exc).__name__}).") from None


def _check_payloads(archive: zipfile.ZipFile, files: Mapping[str, str], config: str, name: str) -> None:
    entries = json.loads(archive.read(files[config]))["config"].values()
    if any(entry["use_pickle"] or not entry["path_name"].startswith(("weight_", "tensor_")) for entry in entries):
        raise _pickled(name)


def _pickled(name: str) -> ModelFileError:
    return ModelFileError(f"{name} holds pickled Python objects, which could run code, so it is not loaded; "
                          f"export a plain tensor program.")


def _check_shape_expressions(node, name: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr_str" and not _is_shape_expression(value):
                raise ModelFileError(f"{name} has a shape expression that is not plain arithmetic; it is not "
                                     f"loaded.")
            _check_shape_expressions(value, name)
    elif isinstance(node, list):
        for value in node:
            _check_shape_expressions(value, name)


def _is_shape_expression(text) -> bool:
    if not isinstance(text, str) or not _SHAPE_EXPRESSION.fullmatch(text) or "__" in text:
        return False
    return all(re.fullmatch(r"[a-z]\d+", word) or word in _SHAPE_NAMES
               for word in re.findall(r"[A-Za-z_]\w*", text))


def _check_program_graph(program, name: str) -> None:
    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        for node in graph.nodes if graph is not None else ():
            target = node.target
            if node.op == "call_function" and not (
                    isinstance(target, (torch._ops.OpOverload, torch._ops.HigherOrderOperator))
                    or target in _SAFE_PYTHON_OPERATORS):
                raise ModelFileError(f"{name} calls {str(target)[:80]}, which is not a tensor operator; it is "
                                     f"not run.")


def _load_program(data: bytes, name: str, preprocessing: Preprocessing,
                  device: torch.device) -> torch.nn.Module:
    """The program of a checked archive as a module on `device`, after checking its input signature."""
    _check_program_archive(data, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(io.BytesIO(data))
    except Exception as exc:  # e.g. saved by another torch version
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ModelFileError(f"{name} could not be loaded as an exported program ({type(exc).__name__}: "
                             f"{detail}).") from None
    _check_program_graph(program, name)
    inputs = [node.meta.get("val") for node in program.graph.nodes
              if node.op == "placeholder" and node.name in program.graph_signature.user_inputs]
    if len(inputs) != 1 or not isinstance(inputs[0], torch.Tensor) or inputs[0].dim() != 4:
        raise ModelFileError(f"{name} does not take one image batch [N, 3, H, W] (its inputs: "
                             f"{[_shape(v) for v in inputs]}).")
    batch, channels, height, width = inputs[0].shape
    if channels != 3:
        raise ModelFileError(f"{name} takes {_shape(inputs[0])}: {channels} channels, not 3 (RGB).")
    if isinstance(batch, int):
        raise ModelFileError(f"{name} was exported for batches of exactly {batch} image(s); the explanations "
                             f"run batches of path points, so {DYNAMIC_BATCH_HINT}.")
    size = preprocessing.input_size
    if any(isinstance(side, int) and side != size for side in (height, width)):
        raise ModelFileError(f"{name} takes {_shape(inputs[0])} but the input size is {size} x {size}; set the "
                             f"input size to the program's.")
    if device.type != "cpu":
        program = torch.export.passes.move_to_device_pass(program, device)
    return ExportedModule(program.module())


def _shape(value) -> str:
    if not isinstance(value, torch.Tensor):
        return type(value).__name__
    return "[" + ", ".join(str(s) if isinstance(s, int) else "N" for s in value.shape) + "]"


def classifier_from_program(data: bytes, name: str, classes: Sequence[str] | None = None,
                            preprocessing: Preprocessing = Preprocessing(),
                            device: str | torch.device | None = None) -> ImageClassifier:
    """A classifier from the bytes of a torch.export program (`torch.export.save`, dynamic batch
    dimension) taking [N, 3, H, W] and returning [N, classes]. classes: its class names (None: ImageNet's
    for 1000 outputs, else "class i"). Raises ModelFileError, naming the file as `name`, for a file that
    is not such a program or that safe loading refuses (see `_check_program_archive`)."""
    device = _device(device)
    model = _load_program(data, name, preprocessing.checked(name), device)
    digest = program_digest(data, classes, preprocessing)
    return _custom_classifier(model, name, f"pt2:{digest}", f"exported program, sha256 {digest[:16]}...",
                              classes, preprocessing, device)


def factory_names() -> list[str]:
    """The factories the operator named in $IG_VISION_FACTORY ("package.module:function", comma-separated)."""
    return [spec.strip() for spec in os.environ.get(FACTORY_ENV, "").split(",") if spec.strip()]


def classifier_from_factory(spec: str, device: str | torch.device | None = None) -> ImageClassifier:
    """A classifier from an operator's factory "package.module:function" (named in $IG_VISION_FACTORY,
    never in the browser: it is the operator's code, imported and called). The function takes no arguments
    and returns an nn.Module with its weights, or a mapping {"model": module, "classes": [...],
    "input_size", "resize", "mean", "std"} (the sidecar's keys; absent ones as for a program)."""
    module_name, _, function_name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError, ValueError):
        raise ModelFileError(f"The factory {spec} cannot be found: {FACTORY_ENV} must name an importable "
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
    device = _device(device)
    return _custom_classifier(model.to(device), spec, f"factory:{spec}", f"factory {spec}",
                              None if classes is None else list(classes),
                              Preprocessing.from_settings(settings, f"The factory {spec}"), device)


def _custom_classifier(model: torch.nn.Module, name: str, key: str, source: str, classes: list[str] | None,
                       preprocessing: Preprocessing, device: torch.device) -> ImageClassifier:
    """Freeze `model`, check on a dummy batch of 2 that it maps [N, 3, H, W] to [N, classes] and that
    gradients reach its input (the explanations need them), and name its classes."""
    model = model.eval().requires_grad_(False)
    size = preprocessing.input_size
    dummy = torch.zeros(2, 3, size, size, device=device, requires_grad=True)
    try:
        output = model(dummy)
        if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[0] != 2:
            raise ModelFileError(f"{name} returns {_shape(output)} for a batch of 2 images; an image classifier "
                                 f"returns [N, classes].")
        torch.autograd.grad(output[:, 0].sum(), dummy)
    except ModelFileError:
        raise
    except Exception as exc:  # the program's guards or the operator's code: say what failed
        detail = str(exc).splitlines()[0][:200]
        if "Guard failed" in detail or "size()[0]" in detail:
            detail = f"it does not take a batch of 2; {DYNAMIC_BATCH_HINT}"
        raise ModelFileError(f"{name} fails on a batch of 2 images of {size} x {size} (with gradients): "
                             f"{detail}.") from None
    width = output.shape[1]
    if classes is None:
        classes = _imagenet_categories() if width == 1000 else [f"class {i}" for i in range(width)]
    elif len(classes) != width:
        raise ModelFileError(f"{name} has {width} outputs but {len(classes)} class names were given; give one "
                             f"name per output, in order.")
    return ImageClassifier(model=model, arch=name, key=key, categories=list(classes), weights_source=source,
                           resize_size=preprocessing.resize, crop_size=size, mean=tuple(preprocessing.mean),
                           std=tuple(preprocessing.std))


def _device(device: str | torch.device | None) -> torch.device:
    """`device`, or the GPU when there is one."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


# --- baselines ----------------------------------------------------------------------------------

BASELINES = {
    "black": "black image (all pixels zero; the paper's baseline)",
    "blurred": "the image blurred (Gaussian, sigma 10 px)",
    "grey": "uniform mid-grey image (all pixels 0.5)",
}


def make_baseline(classifier: ImageClassifier, name: str, image_tensor: torch.Tensor) -> torch.Tensor:
    """The baseline image for `image_tensor`, in the network's normalized input space.

    "black" is all-zero *pixels*, i.e. the normalized value of a black image ((0 - mean) / std per
    channel), not a normalized zero (which would be the mean colour).
    """
    x = image_tensor.detach().float().cpu()
    if name == "black":
        return classifier.normalize(torch.zeros_like(x))
    if name == "grey":
        return classifier.normalize(torch.full_like(x, 0.5))
    if name == "blurred":
        pixels = classifier.unnormalize(x).clamp(0, 1)
        return classifier.normalize(TF.gaussian_blur(pixels, kernel_size=61, sigma=10.0))
    raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")


# --- pixel importance -----------------------------------------------------------------------------

IMPORTANCE_MODES = ("abs", "sum", "positive", "negative")


def pixel_importance(attribution, mode: str = "abs"):
    """Aggregate an attribution (or gradient) [3, H, W] or [N, 3, H, W] over the colour channels to
    [H, W] or [N, H, W]; a torch tensor gives a tensor, anything else a numpy array.

    mode "abs" (default): the paper's Eq. 1, sum_c |a_ijc|; the evaluation ranks pixels by it.
    "sum": the signed sum_c a_ijc, whose total is what completeness speaks of.
    "positive" / "negative": max(+-sum_c a_ijc, 0), the evidence for / against the class only.
    The Vision page's polarities (dashboard.renderers.vision.importance_map) are these modes.
    """
    if mode not in IMPORTANCE_MODES:
        raise ValueError(f"mode must be one of {IMPORTANCE_MODES}, got {mode!r}")
    is_tensor = isinstance(attribution, torch.Tensor)
    a = attribution if is_tensor else np.asarray(attribution)
    if a.ndim not in (3, 4):
        raise ValueError(f"attribution must be [3, H, W] or [N, 3, H, W], got {tuple(a.shape)}")
    channel = a.ndim - 3
    if mode == "abs":
        return abs(a).sum(channel)
    total = a.sum(channel)
    if mode == "sum":
        return total
    if mode == "negative":
        total = -total
    return total.clamp_min(0) if is_tensor else np.maximum(total, 0)


# --- explanation ----------------------------------------------------------------------------------

def _as_input(classifier: ImageClassifier, image) -> tuple[Image.Image, torch.Tensor]:
    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu()
        if x.dim() == 3:
            x = x.unsqueeze(0)
        return classifier.to_pil(x), x[:1]
    if isinstance(image, Image.Image):
        cropped = classifier.crop(image)
        return cropped, classifier.to_tensor(cropped)
    raise TypeError(f"image must be a PIL image or a tensor [1, 3, H, W], got {type(image).__name__}")


@dataclass
class Prediction:
    """One image as the network sees it and the network's answer, computed once (the Vision page shows
    it before the scan and hands it to `explain`, so the image is not cropped and classified twice)."""

    image: Image.Image  # the cropped picture the network sees
    input: torch.Tensor  # [1, 3, H, W] normalized, CPU
    probabilities: np.ndarray  # [classes] softmax at the input


def predict_image(classifier: ImageClassifier, image) -> Prediction:
    """Crop, normalize and classify a PIL image (or a normalized tensor [1, 3, H, W])."""
    cropped, x = _as_input(classifier, image)
    return Prediction(image=cropped, input=x, probabilities=classifier.predict(x)[0].numpy())


# --- ablation (Figure 1) --------------------------------------------------------------------------

@dataclass
class AblationResult:
    top_index: int
    top_label: str
    top_probability: float
    target: int | None
    target_probability: float | None
    ablated: torch.Tensor  # [1, 3, H, W] normalized
    image: Image.Image
    fraction: float  # share of pixels blacked out


def ablate(classifier: ImageClassifier, image_tensor: torch.Tensor, mask: np.ndarray,
           target: int | None = None) -> AblationResult:
    """Black out (zero pixel intensity, as in Figure 1b) the pixels where mask is True and classify again."""
    x = image_tensor.detach().float().cpu()[:1]
    mask_t = torch.as_tensor(np.asarray(mask, dtype=bool))
    if tuple(mask_t.shape) != tuple(x.shape[-2:]):
        raise ValueError(f"mask shape {tuple(mask_t.shape)} does not match the image {tuple(x.shape[-2:])}")
    black = make_baseline(classifier, "black", x)
    ablated = torch.where(mask_t.view(1, 1, *mask_t.shape), black, x)
    probs = classifier.predict(ablated)[0]
    top = int(probs.argmax())
    return AblationResult(
        top_index=top, top_label=classifier.categories[top], top_probability=float(probs[top]),
        target=target, target_probability=None if target is None else float(probs[int(target)]),
        ablated=ablated, image=classifier.to_pil(ablated), fraction=float(mask_t.float().mean()),
    )


def top_fraction_mask(importance: np.ndarray, fraction: float) -> np.ndarray:
    """True for the `fraction` of pixels with the largest importance (ties broken by position)."""
    flat = np.asarray(importance, dtype=np.float64).ravel()
    count = int(round(np.clip(fraction, 0.0, 1.0) * flat.size))
    mask = np.zeros(flat.size, dtype=bool)
    if count:
        mask[np.argsort(-flat, kind="stable")[:count]] = True
    return mask.reshape(np.shape(importance))


def rectangle_mask(shape: tuple[int, int], left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """True inside the rectangle [left, right) x [top, bottom) (pixel coordinates of the crop)."""
    mask = np.zeros(shape, dtype=bool)
    mask[max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)] = True
    return mask
