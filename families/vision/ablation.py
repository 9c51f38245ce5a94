"""The ablation check (Figure 1): black out some pixels and classify again."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from families.vision.baselines import make_baseline
from families.vision.image_classifier import ImageClassifier


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


def rectangle_mask(shape: tuple[int, int], left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """True inside the rectangle [left, right) x [top, bottom) (pixel coordinates of the crop)."""
    mask = np.zeros(shape, dtype=bool)
    mask[max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)] = True
    return mask
