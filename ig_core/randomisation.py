"""Cascading model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps"): the model's
weights are re-initialised block by block from the output down, and a map that stays the same while the weights
it explains are gone does not explain the model.

Any torch module: its blocks are the submodules that hold parameters of their own, in registration order (the
order most models also run them), grouped into a few steps from the output side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from .agreement import spearman
from .methods import read_off_scan
from .result import Attribution


@dataclass(frozen=True)
class RandomisationStep:
    """The modules re-initialised at one step of the cascade: every block up to this one from the output."""

    label: str  # the block of this step, as "first .. last" of its modules' names
    modules: tuple[str, ...]  # every module re-initialised so far (the earlier steps' included)


def parameter_modules(module: torch.nn.Module) -> list[str]:
    """The names of the submodules that hold parameters of their own, in registration order."""
    return [name for name, sub in module.named_modules() if any(True for _ in sub.parameters(recurse=False))]


def cascade(module: torch.nn.Module, steps: int = 4, keep=()) -> list[RandomisationStep]:
    """The cascade from the output down in at most `steps` steps of about equal numbers of modules; the last
    step re-initialises every parameter but those of the modules in `keep` (the ones that make the input)."""
    names = [name for name in parameter_modules(module) if name not in set(keep)]
    if not names:
        raise ValueError("the model has no parameters to randomise besides those that make its input")
    size = math.ceil(len(names) / min(steps, len(names)))
    from_top = names[::-1]
    cascade_steps = []
    for start in range(0, len(names), size):
        block = from_top[start:start + size]
        label = block[0] if len(block) == 1 else f"{block[0]} .. {block[-1]}"
        cascade_steps.append(RandomisationStep(label, tuple(from_top[:start + len(block)])))
    return cascade_steps


def randomise(module: torch.nn.Module, names, seed: int = 0) -> None:
    """Re-initialise the named submodules' own parameters in place: their reset_parameters() (torch's default
    initialisation) where they have one, else a normal draw with each parameter's own spread, so that the scale a
    later layer sees stays about the same. Buffers a reset renews (batch-norm statistics) are renewed too."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        modules = dict(module.named_modules())
        with torch.no_grad():
            for name in names:
                sub = modules[name]
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()
                    continue
                for parameter in sub.parameters(recurse=False):
                    spread = float(parameter.float().std()) if parameter.numel() > 1 else 0.0
                    parameter.normal_(0.0, spread if math.isfinite(spread) and spread > 0 else 0.02)
    finally:
        torch.random.set_rng_state(generator_state)


def similarity(original, randomised) -> dict[str, float]:
    """How alike two maps of one input are: Spearman's rank correlation of their absolute and of their signed
    scores, and for 2-D maps (an image's pixels) the structural similarity (SSIM) of their absolute values, each
    scaled to [0, 1] by its own maximum (Adebayo et al.'s normalisation)."""
    a, b = np.asarray(original, np.float64), np.asarray(randomised, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"the two maps have shapes {a.shape} and {b.shape}")
    result = {"spearman_abs": spearman(np.abs(a), np.abs(b)), "spearman_signed": spearman(a, b)}
    if a.ndim == 2 and min(a.shape) >= 7:
        from skimage.metrics import structural_similarity

        scaled = [np.abs(m) / np.abs(m).max() if np.abs(m).max() > 0 else np.abs(m) for m in (a, b)]
        result["ssim"] = float(structural_similarity(scaled[0], scaled[1], data_range=1.0))
    return result


def input_itself(gradient_result: Attribution, inputs) -> Attribution:
    """A control that ignores the model: the input itself as its "attribution" (gradient x input with every
    gradient 1), shaped like `gradient_result`, a result that kept the gradient at the input. A sanity check must
    flag it, since no randomisation can change it."""
    ones = {1.0: tuple(torch.ones_like(g) for g in gradient_result.interior_gradients[1.0])}
    return read_off_scan(replace(gradient_result, interior_gradients=ones), inputs, "gradient_x_input")
