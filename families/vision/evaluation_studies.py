"""The two sizes of an evaluation of image attribution methods (families.vision.photo_evaluation) that the Vision
evaluation page offers: a quick look that finishes within a minute on a laptop CPU, and the full study of the
paper's settings (Section 2.5: 100 pixels a step for 50 steps) over every method."""
from __future__ import annotations

import dataclasses

from families.vision.photo_evaluation import IG, image_methods
from ig_core import ScanSettings


@dataclasses.dataclass(frozen=True)
class Study:
    """The settings of one size of evaluation, and what a run of it took on a 2-core CPU (MobileNetV2, the first
    photos of imagenet_samples, the default scan settings), for the choice's label. These cores are often shared,
    which slows torch several-fold: the quick look took 11 s on quiet cores and 31 s beside another busy process (the
    label gives the slower); the full study took 12.8 min in all, and 32 s a photo on quiet cores (its first two
    photos)."""

    limit: int  # photos
    methods: tuple[str, ...]
    pixels_per_step: int
    ablation_steps: int
    curve_steps: int
    path_points: int  # at most, per photo and path method: the adaptive rule's budget, a fixed rule's steps
    seconds_on_2_cores: float

    def form_values(self) -> dict:
        """The page form's fields this study sets, by name."""
        values = {**dataclasses.asdict(self), "methods": list(self.methods)}
        del values["seconds_on_2_cores"]
        return values


# the gradient and gradient x input are read off the integrated-gradients scan: two more methods to score, no more
# path points; 500 pixels a step for 10 steps ablate as many pixels (5,000) as the paper's 100 for 50
QUICK_LOOK = Study(limit=3, methods=(IG, "gradient", "gradient_x_input"), pixels_per_step=500, ablation_steps=10,
                   curve_steps=8, path_points=64, seconds_on_2_cores=30)
FULL_STUDY = Study(limit=20, methods=tuple(image_methods()), pixels_per_step=100, ablation_steps=50, curve_steps=16,
                   path_points=ScanSettings().max_steps, seconds_on_2_cores=12.8 * 60)
STUDIES = {"quick look": QUICK_LOOK, "full study": FULL_STUDY}


def capped_scan(scan: ScanSettings, path_points: int) -> ScanSettings:
    """The scan settings with at most `path_points` path points per photo: the adaptive rule's budget (and its
    starting grid where that is larger), a fixed rule's steps."""
    if scan.rule == "adaptive":
        return dataclasses.replace(scan, steps=min(scan.steps, path_points), max_steps=path_points)
    return dataclasses.replace(scan, steps=min(scan.steps, path_points))
