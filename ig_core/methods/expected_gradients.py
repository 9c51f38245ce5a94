"""Expected gradients (Erion et al. 2021): integrated gradients averaged over baselines drawn from a reference
set (other photos, say), so that no single baseline decides what counts as "absent". Every pairing of an example
with a reference is one example of one straight-line scan, so all of them share its batches and its rule."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import AttributionMethod, MethodContext
from .integrated_gradients import scan_path


class ExpectedGradients(AttributionMethod):
    name = "expected_gradients"
    label = "Expected gradients"
    completeness = "F(input) - mean F(reference)"
    reference_set = True
    uses_path_rule = True

    @dataclass(frozen=True)
    class Options:
        samples: int = 0  # references drawn per example, with replacement; 0: every reference once each
        seed: int = 0

    def __init__(self, **options):
        super().__init__(**options)
        if self.options.samples < 0:
            raise ValueError(f"expected gradients needs samples >= 0 (0: every reference), got {self.options.samples}")

    def check(self, problem):
        super().check(problem)
        if problem.baselines[0].shape[0] == 0:
            raise ValueError("expected gradients needs at least one reference; the reference set is empty")

    def drawn(self, n_examples: int, n_references: int) -> torch.Tensor:
        """Reference indices [N, S]: every reference in order, or `samples` drawn with replacement per example."""
        if self.options.samples == 0:
            return torch.arange(n_references).repeat(n_examples, 1)
        generator = torch.Generator().manual_seed(self.options.seed)
        return torch.randint(n_references, (n_examples, self.options.samples), generator=generator)

    def compute(self, context: MethodContext):
        problem = context.problem
        n = problem.n_examples
        chosen = self.drawn(n, problem.baselines[0].shape[0])  # [N, S]
        per_example = chosen.shape[1]
        rows = torch.arange(n).repeat_interleave(per_example)  # example-major, like the references in `chosen`
        inputs = tuple(x.repeat_interleave(per_example, 0) for x in problem.inputs)
        baselines = tuple(r.index_select(0, chosen.flatten().to(r.device)) for r in problem.baselines)
        scan = scan_path(context.on(problem.with_examples(inputs, baselines, rows)))

        def mean_over_references(values, dim):  # the dim that runs over N * S, split and averaged over S
            split = values.reshape(*values.shape[:dim], n, per_example, *values.shape[dim + 1:])
            return split.mean(dim + 1)

        maps = [mean_over_references(a.double(), 1).to(a.dtype) for a in scan.attributions_per_target]
        gradient_at_input = [g.unflatten(1, (n, per_example))[:, :, 0] for g in scan.interior_gradients[1.0]]
        return self.result(context, maps, mean_over_references(scan.score_input, 0),
                           mean_over_references(scan.score_baseline, 0), per_example * scan.points_evaluated,
                           steps_used=scan.steps_used, path_alphas=scan.alphas,
                           path_scores=mean_over_references(scan.scores, 1), gradient_at_input=gradient_at_input,
                           extras={"references": per_example})
