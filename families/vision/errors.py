"""The Vision family's refusals: each says, in words the user can act on, why a model or an image cannot be used."""
from __future__ import annotations

from families.contract import FamilyError, InputError


class VisionError(FamilyError):
    """Base of the errors the Vision pages show to the user as they are."""


class WeightsUnavailable(VisionError):
    """No pretrained weights could be found or downloaded (never falls back to random weights)."""


class WeightsError(VisionError):
    """A weights file exists but is not a state_dict for the chosen architecture."""


class ImageError(VisionError, InputError):
    """The input is not an image the pages can use."""


class ModelFileError(VisionError):
    """An exported program, its class names or preprocessing, or a factory does not give a usable classifier."""
