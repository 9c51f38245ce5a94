"""ImageNet classifiers, image loading, baselines and the Vision page's one-scan explanation.

No Streamlit here: the page (app_pages/vision.py) and the evaluation (models/vision_eval.py) import this.

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

The app's default architecture (`default_architecture`) is ``$IG_VISION_ARCH`` if set, else googlenet
(the paper's network) when its weights are cached, else mobilenet_v2 when the shared file is present,
else googlenet (whose download may then fail with the clear error).
"""
from __future__ import annotations

import hashlib
import io
import os
import pathlib
import pickle
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torchvision
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from .data import MODELS_ENV, data_dir, models_dir

ARCH_ENV = "IG_VISION_ARCH"
WEIGHTS_ENV = "IG_VISION_WEIGHTS"
DEFAULT_ARCH = "googlenet"  # the paper's Inception (GoogLeNet, Szegedy et al. 2014)
# Known local state_dict files, relative to the data directory (see models/data.py).
LOCAL_WEIGHTS = {"mobilenet_v2": "models/mobilenet_v2_float/mobilenet_v2_imagenet_dequantized.pth"}
SUGGESTED_ARCHS = ("googlenet", "inception_v3", "resnet50", "mobilenet_v2")
WEIGHTS_SUFFIXES = (".pth", ".pt")
TORCH_FILE_STARTS = (b"PK\x03\x04", b"\x80")  # torch.save writes a zip archive (or, before 1.6, a pickle)

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif")
MIN_SIDE = 16  # pixels; smaller images carry nothing a 224x224 network can use
MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (decompression bombs)

PROBE_ALPHAS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)  # Figure 3


class VisionError(Exception):
    """Base of the errors the Vision page shows to the user as they are."""


class WeightsUnavailable(VisionError):
    """No pretrained weights could be found or downloaded (never falls back to random weights)."""


class WeightsError(VisionError):
    """A weights file exists but is not a state_dict for the chosen architecture."""


class ImageError(VisionError):
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
        return pathlib.Path(path).read_bytes()
    except FileNotFoundError:
        raise WeightsUnavailable(f"The weights file {name} does not exist.") from None
    except OSError as exc:
        raise WeightsUnavailable(f"The weights file {name} could not be read ({exc.strerror}).") from None


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
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
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
    if not data.startswith(TORCH_FILE_STARTS):
        raise WeightsError(f"{name} is not a PyTorch weights file (torch.save writes a zip archive or a pickle; "
                           f"this is neither).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle protocol notices for foreign pickles
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(f"{name} is not a plain state_dict: it holds Python objects or code that safe loading "
                           f"refuses (a whole pickled model?). Save model.state_dict() instead.") from None
    except Exception as exc:  # a damaged or truncated archive; the first line only (later ones may be C++ frames)
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise WeightsError(f"{name} is not a readable PyTorch weights file ({type(exc).__name__}: {detail}).") from None
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
    The Vision page's polarities (views.vision.importance_map) are these modes.
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

@dataclass
class VisionExplanation:
    """One scan's results for one image and several target classes."""

    image: Image.Image  # the cropped picture the network sees
    input: torch.Tensor  # [1, 3, H, W] normalized
    baseline_name: str
    baseline: torch.Tensor  # [1, 3, H, W] normalized
    targets: list[int]
    labels: list[str]
    probabilities: np.ndarray  # [classes] softmax at the input
    attribution: object  # ig_core.Attribution (targets as a list: leading target dim)
    layer_name: str | None
    tolerance: float

    def index(self, target: int) -> int:
        return self.targets.index(int(target))

    def attributions(self, t: int = 0) -> np.ndarray:
        """Integrated gradients for the t-th target, [3, H, W] (input space)."""
        return self.attribution.attributions_per_target[0][t, 0].numpy()

    def all_attributions(self) -> np.ndarray:
        return self.attribution.attributions_per_target[0][:, 0].numpy()  # [T, 3, H, W]

    def pixel_importance(self, t: int = 0, mode: str = "sum") -> np.ndarray:
        """The t-th target's attributions aggregated over the colour channels, [H, W] (see
        `pixel_importance`). Default "sum" (signed), so the pixels still add up to the attribution
        total (completeness); "abs" is Eq. 1."""
        return pixel_importance(self.attributions(t), mode)

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

    def relative_delta(self, t: int = 0) -> float:
        return float(self.attribution.relative_delta[0, t])

    @property
    def max_relative_delta(self) -> float:
        return float(np.max(self.attribution.relative_delta))

    @property
    def within_tolerance(self) -> bool:
        return self.max_relative_delta <= self.tolerance

    def baseline_image(self, classifier: ImageClassifier) -> Image.Image:
        return classifier.to_pil(self.baseline)


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


def explain(engine, classifier: ImageClassifier, image, targets: int | Sequence[int] | None = None,
            baseline: str = "black", settings=None, layer_name: str | None = None,
            progress: Callable[[float], None] | None = None) -> VisionExplanation:
    """Integrated gradients, interior gradients (Figure 3 alphas), the softmax/logit trend and the
    layer distances (Figure 12) for all targets from one scan of the path baseline -> image.

    image: a PIL image, a normalized tensor [1, 3, H, W], or a `Prediction` already made of it.
    targets: a class index or several (duplicates dropped); None: the top-1 prediction.
    settings: an ig_core.ScanSettings (None: its defaults, the adaptive rule to 1%).
    """
    from ig_core import ScanSettings  # ig_core does not depend on models; keep models importable alone

    settings = settings or ScanSettings()
    seen = image if isinstance(image, Prediction) else predict_image(classifier, image)
    cropped, x, probs = seen.image, seen.input, seen.probabilities
    if targets is None:
        targets = [int(np.argmax(probs))]
    elif isinstance(targets, (int, np.integer)):
        targets = [int(targets)]
    targets = list(dict.fromkeys(int(t) for t in targets))
    if not targets:
        raise ValueError("give at least one target class")
    for t in targets:
        if not 0 <= t < len(classifier.categories):
            raise ValueError(f"target {t} is out of range for {len(classifier.categories)} classes")
    b = make_baseline(classifier, baseline, x)
    layer = classifier.get_layer(layer_name) if layer_name else None
    result = engine.attribute(
        classifier.model, x, targets, b, probe_alphas=PROBE_ALPHAS, output="softmax", layer=layer,
        model_key=f"{classifier.key}", progress=progress, **settings.options(),
    )
    return VisionExplanation(
        image=cropped, input=x, baseline_name=baseline, baseline=b, targets=targets,
        labels=[classifier.categories[t] for t in targets], probabilities=probs, attribution=result,
        layer_name=layer_name, tolerance=float(settings.tolerance),
    )


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
