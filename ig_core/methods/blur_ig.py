"""Blur IG (Xu et al. 2020; PAIR's saliency BlurIG): integrated gradients along the path from a heavily blurred
image to the image, blurring with a Gaussian of shrinking sigma. The blurred image is the baseline, so the path
removes information (detail at finer and finer scales) rather than adding a colour that was never there."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .base import AttributionMethod, MethodContext

TRUNCATE = 4.0  # the kernel reaches this many sigmas each way: scipy.ndimage.gaussian_filter's default, PAIR's


class BlurIG(AttributionMethod):
    name = "blur_ig"
    label = "Blur IG"
    completeness = "F(input) - F(blurred input)"
    images_only = True

    @dataclass(frozen=True)
    class Options:
        steps: int = 100
        max_sigma: float = 50.0  # the baseline's blur, in pixels (with sqrt: sqrt(max_sigma), as in PAIR)
        grad_step: float = 0.01  # the sigma step of the finite difference d(blurred image)/d(sigma)
        sqrt: bool = False  # sigmas sqrt(k * max_sigma / steps): more points at small blurs

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        if o.steps < 1 or o.max_sigma <= 0 or o.grad_step <= 0:
            raise ValueError(f"Blur IG needs steps >= 1, max_sigma > 0 and grad_step > 0; got {o.steps}, "
                             f"{o.max_sigma} and {o.grad_step}")

    def sigmas(self) -> np.ndarray:
        """The path's blurs, from the image (0) to the baseline."""
        o = self.options
        sigmas = np.arange(o.steps + 1) * o.max_sigma / o.steps
        return np.sqrt(sigmas) if o.sqrt else sigmas

    def compute(self, context: MethodContext):
        problem, steps = context.problem, self.options.steps
        sigmas = self.sigmas()
        points, slopes = zip(*(self.blur_path(x, sigmas) for x in problem.inputs))
        passed = context.evaluator(planned_points=steps + 1).evaluate(points)
        # a left Riemann sum of dF/dsigma along the path, from the image out to the baseline: minus it adds up to
        # F(input) - F(blurred input) only up to the sums' error (and the finite difference's)
        widths = -torch.as_tensor(np.diff(sigmas), dtype=problem.inputs[0].dtype, device=problem.inputs[0].device)
        maps = [torch.einsum("k,knchw,tknchw->tnchw", widths, slope, gradient[:, :steps])
                for slope, gradient in zip(slopes, passed.gradients)]
        return self.result(context, maps, passed.score[0], passed.score[steps], len(sigmas),
                           path_alphas=1 - sigmas[::-1] / sigmas[-1], path_scores=passed.score[::-1],
                           gradient_at_input=[g[:, 0] for g in passed.gradients])

    def blur_path(self, images: torch.Tensor, sigmas: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The images blurred at every sigma [K, N, C, H, W], and the finite differences
        (blur(sigma + grad_step) - blur(sigma)) / grad_step at all but the last [K - 1, N, C, H, W]."""
        height, width = images.shape[-2:]
        step = self.options.grad_step
        further = sigmas[:-1] + step

        def on_images(matrices):  # built in float64 on the CPU
            return matrices.to(images.device, images.dtype)

        def blur(rows, columns):  # rows @ image @ columns^T for every sigma: along the height, then the width
            along_height = torch.einsum("kih,nchw->knciw", on_images(rows), images)
            return torch.einsum("knciw,kjw->kncij", along_height, on_images(columns))

        rows, columns = blur_matrices(height, sigmas), blur_matrices(width, sigmas)
        rows_further, columns_further = blur_matrices(height, further), blur_matrices(width, further)
        # blur is linear: B1 X C1' - B0 X C0' = (B1 - B0) X C1' + B0 X (C1 - C0)', with the differences of the
        # matrices taken in float64, so that the float32 images are never subtracted (and the rounding divided by
        # grad_step)
        slopes = (blur((rows_further - rows[:-1]) / step, columns_further)
                  + blur(rows[:-1], (columns_further - columns[:-1]) / step))
        return blur(rows, columns), slopes


def blur_matrices(size: int, sigmas) -> torch.Tensor:
    """[K, size, size]: blur_matrix for every sigma."""
    return torch.stack([blur_matrix(size, float(sigma)) for sigma in sigmas])


def blur_matrix(size: int, sigma: float) -> torch.Tensor:
    """B [size, size] float64 with B @ v = scipy.ndimage.gaussian_filter1d(v, sigma, mode="constant"), as PAIR blurs:
    the truncated kernel normalised over its full width, zeros beyond the edges; sigma with no reach: identity."""
    radius = int(TRUNCATE * sigma + 0.5)
    if radius == 0:
        return torch.eye(size, dtype=torch.float64)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 / (sigma * sigma) * offsets ** 2)
    kernel /= kernel.sum()
    index = torch.arange(size)
    offset = index[None, :] - index[:, None]  # B[i, j] weighs input j for output i
    inside = offset.abs() <= radius
    return torch.where(inside, kernel[(offset + radius).clamp(0, 2 * radius)], 0.0)
