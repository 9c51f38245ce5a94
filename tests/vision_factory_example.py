"""A tiny CNN for the tests of engineers' own vision models: the factory IG_VISION_FACTORY names
("vision_factory_example:tiny_cnn") and the torch.export program made of it."""
from __future__ import annotations

import io

import torch

CLASSES = ["apple", "banana", "cherry", "date", "elderberry"]
SIZE = 32


class TinyCNN(torch.nn.Module):
    """conv + pool + linear: [N, 3, 32, 32] -> [N, 5]."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


def tiny_model() -> TinyCNN:
    torch.manual_seed(0)  # fixed weights: the same model every time
    return TinyCNN().eval()


def tiny_cnn() -> dict:
    """The factory: the model with its class names and preprocessing."""
    return {"model": tiny_model(), "classes": CLASSES, "input_size": SIZE, "resize": 36}


def not_a_model():
    return "a string"


def broken():
    raise FileNotFoundError("/srv/secret/weights.pth")  # an operator's error may name a server path


def export_bytes(size: int = SIZE, channels: int = 3, dynamic_batch: bool = True) -> bytes:
    """The tiny CNN exported (torch.export.save) for inputs [N, channels, size, size]."""
    model = tiny_model()
    if channels != 3:
        model.conv = torch.nn.Conv2d(channels, 8, 3, padding=1)
    shapes = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamic_batch else {}
    program = torch.export.export(model, (torch.randn(2, channels, size, size),), **shapes)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()
