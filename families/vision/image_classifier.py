"""The image classifier the Vision family explains: a frozen network with its preprocessing, what it sees of a photo
and its answer, and the check every model a user brings passes (a dummy batch with gradients).

Where classifiers come from: families.vision.torchvision_classifiers (torchvision architectures and state_dicts),
families.vision.exported_programs (torch.export programs) and families.vision.factories (the operator's code).
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from families.vision.errors import ModelFileError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DYNAMIC_BATCH_HINT = ("export it with a dynamic batch dimension: torch.export.export(model, (x,), "
                      "dynamic_shapes=({0: torch.export.Dim('batch')},))")


def imagenet_categories() -> list[str]:
    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def default_device(device: str | torch.device | None) -> torch.device:
    """`device`, or the GPU when there is one."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


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
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: InterpolationMode = InterpolationMode.BILINEAR
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __deepcopy__(self, memo) -> "ImageClassifier":
        """A copy with its own weights and its own lock (a lock cannot be copied; a sanity check's randomised
        twin must not wait on the original's)."""
        values = {f.name: copy.deepcopy(getattr(self, f.name), memo) for f in fields(self) if f.name != "lock"}
        twin = memo[id(self)] = ImageClassifier(**values)
        return twin

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def imagenet_classes(self) -> bool:
        """Whether the classes are ImageNet's (so ImageNet labels, e.g. the sample photos', apply)."""
        return self.categories == imagenet_categories()

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

    def get_layer(self, name: str) -> torch.nn.Module:
        modules = dict(self.model.named_modules())
        if name not in modules:
            raise KeyError(f"{self.arch} has no layer {name!r}; choose one of {', '.join(self.layer_names())}")
        return modules[name]


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


def shape_text(value) -> str:
    """A tensor's shape as the messages write it, the batch dimension of a program as N."""
    if not isinstance(value, torch.Tensor):
        return type(value).__name__
    return "[" + ", ".join(str(s) if isinstance(s, int) else "N" for s in value.shape) + "]"


def classifier_from_module(model: torch.nn.Module, name: str, key: str, source: str, classes: list[str] | None,
                           preprocessing: Preprocessing, device: torch.device) -> ImageClassifier:
    """A user's model (an exported program, a factory's module) as a classifier. Freeze `model`, check on a dummy
    batch of 2 that it maps [N, 3, H, W] to [N, classes] and that gradients reach its input (the explanations need
    them), and name its classes."""
    model = model.eval().requires_grad_(False)
    size = preprocessing.input_size
    dummy = torch.zeros(2, 3, size, size, device=device, requires_grad=True)
    try:
        output = model(dummy)
        if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[0] != 2:
            raise ModelFileError(f"{name} returns {shape_text(output)} for a batch of 2 images; an image classifier "
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
        classes = imagenet_categories() if width == 1000 else [f"class {i}" for i in range(width)]
    elif len(classes) != width:
        raise ModelFileError(f"{name} has {width} outputs but {len(classes)} class names were given; give one "
                             f"name per output, in order.")
    return ImageClassifier(model=model, arch=name, key=key, categories=list(classes), weights_source=source,
                           resize_size=preprocessing.resize, crop_size=size, mean=tuple(preprocessing.mean),
                           std=tuple(preprocessing.std))
