"""Human bounding boxes (ImageNet's, in the original photo's pixels) mapped through a classifier's resize and centre
crop, as masks, and the share of an attribution map inside them (localization, the paper's Section 2.5)."""
from __future__ import annotations

from typing import Sequence

import torch

from families.vision.importance import pixel_importance

RESIZE, CROP = 256, 224  # the standard ImageNet preprocessing: defaults of map_box / box_mask


def resize_for(crop: int) -> int:
    """The shorter side a photo is resized to before its centre crop: ImageNet's ratio (256 for 224), as the
    torchvision classifiers have it (342 for Inception v3's 299)."""
    return round(crop * RESIZE / CROP)


def map_box(box: Sequence[float], width: int, height: int, resize: int = RESIZE, crop: int = CROP) -> tuple:
    """Map an ImageNet box (xmin, ymin, xmax, ymax; inclusive pixel indices of the original image)
    through torchvision's Resize(resize) (shorter side to ``resize``, the longer one truncated to
    int(resize * long / short)) and CenterCrop(crop) (offset int(round((size - crop) / 2))).

    Returns continuous edges (x0, y0, x1, y1) in crop pixel units, clipped to [0, crop]; the box
    covers original pixels xmin..xmax, i.e. the interval [xmin, xmax + 1).
    """
    xmin, ymin, xmax, ymax = map(float, box)
    if width <= height:
        new_w, new_h = resize, int(resize * height / width)
    else:
        new_w, new_h = int(resize * width / height), resize
    left, top = int(round((new_w - crop) / 2.0)), int(round((new_h - crop) / 2.0))
    sx, sy = new_w / width, new_h / height
    clip = lambda v: min(max(v, 0.0), float(crop))
    return (clip(xmin * sx - left), clip(ymin * sy - top), clip((xmax + 1) * sx - left), clip((ymax + 1) * sy - top))


def box_mask(boxes: Sequence[Sequence[float]], width: int, height: int, resize: int = RESIZE,
             crop: int = CROP) -> torch.Tensor:
    """Union of the mapped boxes as a bool [crop, crop] mask: a pixel is inside when its centre is."""
    mask = torch.zeros(crop, crop, dtype=torch.bool)
    centres = torch.arange(crop, dtype=torch.float64) + 0.5
    for box in boxes:
        x0, y0, x1, y1 = map_box(box, width, height, resize, crop)
        rows = (centres >= y0) & (centres < y1)
        cols = (centres >= x0) & (centres < x1)
        mask |= rows.view(-1, 1) & cols.view(1, -1)
    return mask


def mass_inside(importance: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of a non-negative [H, W] importance map inside the bool mask (nan if the map is all zero)."""
    importance = torch.as_tensor(importance, dtype=torch.float64)
    if bool((importance < 0).any()):
        raise ValueError("mass_inside needs a non-negative map; use pixel_importance(mode='abs' or 'positive')")
    total = float(importance.sum())
    return float(importance[mask.to(importance.device)].sum()) / total if total > 0 else float("nan")


def localization(attribution: torch.Tensor, mask: torch.Tensor, mode: str = "abs") -> float:
    """Fraction of the [3, H, W] attribution's pixel mass inside the box mask (mode: "abs" = Eq. 1, or "positive")."""
    if mode not in ("abs", "positive"):
        raise ValueError("localization mass must be non-negative: mode 'abs' or 'positive'")
    return mass_inside(pixel_importance(attribution, mode), mask)
