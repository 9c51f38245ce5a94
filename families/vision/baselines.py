"""The baseline images the path starts from, in the network's normalized input space."""
from __future__ import annotations

import torch
from torchvision.transforms import functional as TF

from families.vision.image_classifier import ImageClassifier

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


def image_method_options(classifier: ImageClassifier, name: str, options: dict) -> dict:
    """XRAI's second baseline is white, as in PAIR: 1.0 for pixels in [0, 1] is (1 - mean) / std per channel in the
    classifier's normalised units."""
    if name == "xrai" and options.get("second_baseline", 1.0) == 1.0:
        white = classifier.normalize(torch.ones(1, 3, 1, 1)).flatten()
        return {**options, "second_baseline": tuple(float(v) for v in white)}
    return options
