"""What the benchmarks run on: real MobileNetV2 + sample photos, GoogLeNet, and a tiny model for tests."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from families.config import data_dir
from families.vision.photos import list_photos

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MOBILENET_WEIGHTS = "models/mobilenet_v2_float/mobilenet_v2_imagenet_dequantized.pth"
GOOGLENET_CANDIDATES = ("models/googlenet/googlenet.pth", "models/googlenet_float/googlenet.pth",
                        "models/googlenet-1378be20.pth")


@dataclass
class Workload:
    """A vision model with photos: inputs are [3, H, W] normalised tensors, labels are class indices."""

    name: str
    model: nn.Module
    photos: list[torch.Tensor]
    labels: list[int]
    baseline: torch.Tensor  # [3, H, W]: the black image after normalisation
    note: str = ""
    names: list[str] = field(default_factory=list)

    def photo(self, i: int) -> torch.Tensor:
        return self.photos[i].unsqueeze(0)

    def example(self, i: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Photo i and the baseline as batches of one [1, 3, H, W] on `device`."""
        return self.photo(i).to(device), self.baseline.unsqueeze(0).to(device)

    def stacked(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n photos (cycling through them), their labels and baselines as batches [n, ...] on `device`."""
        xs = torch.stack([self.photos[i % len(self.photos)] for i in range(n)]).to(device)
        ts = torch.tensor([self.labels[i % len(self.labels)] for i in range(n)], device=device)
        return xs, ts, self.baseline.unsqueeze(0).expand_as(xs).contiguous().to(device)


def _black(size: int) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((torch.zeros(3, size, size) - mean) / std).contiguous()


def load_photos(limit: int | None = None, every: int = 1, size: int = 224) -> tuple[list, list, list]:
    """The sample photos, resized 256 / centre-cropped 224 / normalised; picks every `every`-th."""
    from PIL import Image
    from torchvision import transforms

    rows = list_photos(data_dir() / "imagenet_samples")
    rows = rows[::every][:limit] if limit else rows[::every]
    tf = transforms.Compose([transforms.Resize(round(size * 256 / 224)), transforms.CenterCrop(size),
                             transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    photos, labels, names = [], [], []
    for photo in rows:
        with Image.open(photo.path) as im:
            photos.append(tf(im.convert("RGB")))
        labels.append(photo.label)
        names.append(photo.label_name)
    return photos, labels, names


def mobilenet_v2(device: torch.device) -> nn.Module:
    import torchvision

    path = data_dir() / MOBILENET_WEIGHTS
    if not path.exists():
        raise FileNotFoundError(f"MobileNetV2 weights not found at {path} (set IG_DATA_DIR)")
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval().requires_grad_(False).to(device)


def googlenet(device: torch.device) -> tuple[nn.Module, str]:
    """GoogLeNet (Inception v1, the paper's network) with real weights if present, else random init."""
    import torchvision

    for rel in GOOGLENET_CANDIDATES:
        path = data_dir() / rel
        if path.exists():
            model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False,
                                                 transform_input=True)
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict({k: v for k, v in state.items() if not k.startswith("aux")}, strict=False)
            return model.eval().requires_grad_(False).to(device), f"pretrained weights from {path}"
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    return (model.eval().requires_grad_(False).to(device),
            "RANDOM INIT (no GoogLeNet weights here): timing only, deltas meaningless")


def vision_workload(device: torch.device, n_photos: int | None = None, size: int = 224) -> Workload:
    """MobileNetV2 with the sample photos; size < 224 (CPU --quick) scales resize and crop alike."""
    every = max(250 // n_photos, 1) if n_photos else 1
    photos, labels, names = load_photos(limit=n_photos, every=every, size=size)
    return Workload(f"MobileNetV2 (pretrained), {size}x{size}", mobilenet_v2(device), photos, labels, _black(size),
                    names=names)


class TinyNet(nn.Module):
    """A few-kilobyte conv net on 3x16x16 inputs with softmax-able logits (for tests of the bench)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Softplus(), nn.Conv2d(8, 8, 3, stride=2),
                                  nn.Softplus(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes))

    def forward(self, x):
        return self.body(x) * 4.0


def tiny_workload(device: torch.device, n_photos: int = 6) -> Workload:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)  # before building the net: its weights are the same every run
    model = TinyNet().eval().requires_grad_(False).to(device)
    photos = [torch.rand(3, 16, 16, generator=g) * 2 for _ in range(n_photos)]
    labels = [int(i % 10) for i in range(n_photos)]
    return Workload("TinyNet (random), 16x16", model, photos, labels, torch.zeros(3, 16, 16),
                    names=[f"noise{i}" for i in range(n_photos)])
