"""SmoothGrad over any method (Smilkov et al. 2017; Captum's NoiseTunnel): the method's attributions averaged
over noisy copies of the input. The copies are extra examples of one request, so they share its batches."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import AttributionMethod, MethodContext
from .registry import method

KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")


class SmoothGrad(AttributionMethod):
    name = "smoothgrad"
    label = "SmoothGrad"
    completeness = "mean F(noisy input) - F(baseline)"

    @dataclass(frozen=True)
    class Options:
        base: str = "gradient"  # any registered method
        samples: int = 25
        noise: float = 0.15  # standard deviation as a fraction of each example's value range (PAIR's stdev_spread)
        kind: str = "smoothgrad"  # mean; smoothgrad_sq: mean of squares; vargrad: variance
        seed: int = 0

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        if o.kind not in KINDS:
            raise ValueError(f"SmoothGrad kind must be one of {', '.join(KINDS)}, got {o.kind!r}")
        if o.samples < 1 or o.noise < 0:
            raise ValueError(f"SmoothGrad needs samples >= 1 and noise >= 0, got {o.samples} and {o.noise}")
        if o.base == self.name:
            raise ValueError("SmoothGrad cannot smooth itself; choose another base method")
        self.base = method(o.base)
        # the mean of complete attributions adds up to the mean noisy score; squares and variances add up to nothing
        if o.kind != "smoothgrad" or self.base.completeness is None:
            self.completeness = None
            self.no_completeness = (f"{o.kind} of {self.base.label}: squares and variances add up to no difference "
                                    "of scores" if o.kind != "smoothgrad" else self.base.no_completeness)
        self.uses_path_rule = self.base.uses_path_rule
        self.images_only, self.reference_set = self.base.images_only, self.base.reference_set

    def check(self, problem):
        self.base.check(problem)

    def noisy_inputs(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Copies [N * samples, ...], example-major, noise drawn per input in turn from a generator seeded with
        `seed` (the order of Captum's NoiseTunnel under torch.manual_seed(seed))."""
        o = self.options
        generator = torch.Generator().manual_seed(o.seed)
        noisy = []
        for x in inputs:
            flat = x.reshape(x.shape[0], -1)
            spread = (flat.max(1).values - flat.min(1).values) * o.noise  # [N]
            copies = x.repeat_interleave(o.samples, dim=0)
            z = torch.randn(copies.shape, generator=generator, dtype=x.dtype).to(x.device)
            noisy.append(copies + z * spread.repeat_interleave(o.samples).view(-1, *(1,) * (x.dim() - 1)))
        return tuple(noisy)

    def compute(self, context: MethodContext):
        problem, samples = context.problem, self.options.samples
        rows = torch.arange(problem.n_examples, device=problem.targets.device).repeat_interleave(samples)
        baselines = problem.baselines if self.reference_set else tuple(b.repeat_interleave(samples, 0)
                                                                       for b in problem.baselines)
        noisy = problem.with_examples(self.noisy_inputs(problem.inputs), baselines, rows)
        inner = self.base.compute(context.on(noisy))
        n, t = problem.n_examples, problem.n_targets

        def per_sample(values):  # [N * samples, T] -> [N, samples, T]
            return values.reshape(n, samples, t)

        maps = []
        for per_copy in inner.attributions_per_target:  # [T, N * samples, ...]
            a = per_copy.reshape(t, n, samples, *per_copy.shape[2:]).double()
            if self.options.kind == "smoothgrad":
                reduced = a.mean(2)
            elif self.options.kind == "smoothgrad_sq":
                reduced = (a ** 2).mean(2)
            else:
                reduced = (a ** 2).mean(2) - a.mean(2) ** 2
            maps.append(reduced.to(per_copy.dtype))
        score_input = per_sample(inner.score_input).mean(1)
        score_baseline = per_sample(inner.score_baseline).mean(1)
        path_scores = inner.scores.reshape(len(inner.alphas), n, samples, t).mean(2)
        return self.result(context, maps, score_input, score_baseline, samples * inner.points_evaluated,
                           steps_used=inner.steps_used, path_alphas=inner.alphas, path_scores=path_scores,
                           extras={"base": inner.method, "samples": samples})
