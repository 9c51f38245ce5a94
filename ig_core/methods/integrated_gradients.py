"""Integrated gradients (the paper's Eq. 6) along the straight line from the baseline, by the request's path rule:
one scan gives the attributions, the interior gradients, the trend (saturation), the gradient at the input and the
completeness check. Expected gradients and XRAI run this scan on their own examples (`scan_path`)."""
from __future__ import annotations

import numpy as np
import torch

from ..path.adaptive import coarse_grid, refine_adaptively
from ..path.options import PathOptions
from ..path.quadrature import path_points, trapezoid_weights
from ..path.scan import PathScan
from ..result import NOTHING_TO_ATTRIBUTE, Attribution, completeness_scale
from .base import AttributionMethod, MethodContext


class IntegratedGradients(AttributionMethod):
    name = "integrated_gradients"
    label = "Integrated gradients"
    uses_path_rule = True
    global_attribution = True
    refines = True
    stackable = True  # an example's points do not depend on the others' (the adaptive rule refines each on its own)

    def compute(self, context: MethodContext) -> Attribution:
        return scan_path(context)


def scan_path(context: MethodContext) -> Attribution:
    """Integrated gradients of context.problem by context.path's rule, with interior gradients, the trend and
    completeness; the adaptive rule shows its partial results to context.partial_results and refines each example
    on its own grid unless context.shared_grid."""
    path = context.path
    adaptive = path.rule == "adaptive"
    if adaptive and path.steps < 2:
        raise ValueError(f"the adaptive rule starts from at least 2 points, got steps={path.steps}")
    nodes = None if adaptive else path_points(path.rule, path.steps, path.probe_alphas)
    planned = max(path.max_steps, path.steps) if adaptive else len(nodes[0])
    scan = PathScan(context.evaluator(planned), keep_alphas=set(path.probe_alphas) | {1.0},
                    keep_all=path.keep_all_gradients, store_gradients=adaptive)
    try:
        if adaptive:
            return _refined(scan, path, context.partial_results, context.shared_grid)
        alphas, weights = nodes
        scan.evaluate(alphas, weights)
        node_weights = dict(zip(map(float, alphas[:path.steps]), weights[:path.steps]))
        return _assemble(scan, path, [node_weights] * context.problem.n_examples, path.steps)
    finally:
        scan.close()


def _refined(scan: PathScan, path: PathOptions, partial_results, shared: bool) -> Attribution:
    """The adaptive rule's trapezoid sums on the grids it refined to; partial_results, where given, sees the sums
    on every grid before the last and stops the refinement by returning False."""

    def on_grids(grids: list[np.ndarray]) -> Attribution:
        weights = [trapezoid_weights(grid) for grid in grids]
        scan.weigh(grids, weights)
        return _assemble(scan, path, [dict(zip(map(float, g), w)) for g, w in zip(grids, weights)],
                         max(len(grid) for grid in grids))

    go_on = None if partial_results is None else (lambda grids: partial_results(on_grids(grids)) is not False)
    uniform = np.linspace(0, 1, path.steps)
    # a caller waiting for pictures gets the first one from a coarse part of the starting grid
    coarse = coarse_grid(uniform) if go_on is not None else None
    grids, stopped = refine_adaptively(scan, np.unique(np.concatenate([uniform, path.probe_alphas])), path.tolerance,
                                       path.max_steps, go_on, coarse, shared)
    result = on_grids(grids)
    result.stopped_early = stopped
    return result


def _assemble(scan: PathScan, path: PathOptions, node_weights: list[dict], steps_used: int) -> Attribution:
    """The result of the scan's integral as it stands, with every point's record and what the scan cost;
    node_weights[n]: example n's quadrature weight per alpha. Every evaluated alpha is a row of the arrays, NaN for
    the examples not evaluated there (`evaluated` says which were)."""
    kept = set(path.probe_alphas) | {1.0} | (set(scan.records) if path.keep_all_gradients else set())
    grid = np.array(sorted(scan.records))
    records = [scan.records[a] for a in grid]
    stack = lambda name: np.stack([getattr(r, name) for r in records])
    evaluated = stack("examples")  # [K, N]
    attributions = tuple((d.unsqueeze(0) * integral if path.multiply_by_inputs else integral).cpu()
                         for d, integral in zip(scan.differences, scan.integral))
    total = sum(a.reshape(*a.shape[:2], -1).double().sum(-1) for a in attributions).T.numpy()  # [N, T]
    score_input, score_baseline = scan.records[1.0].score, scan.records[0.0].score
    scores = stack("score")
    with np.errstate(invalid="ignore"):  # non-finite scores are reported below, not warned about
        if path.multiply_by_inputs:
            delta = total - (score_input - score_baseline)
            relative = np.abs(delta) / completeness_scale(score_input, score_baseline, scores)
        else:  # a mean gradient adds up to no difference of scores
            delta = relative = np.full_like(total, np.nan)
        nothing = np.abs(score_input - score_baseline) <= NOTHING_TO_ATTRIBUTE * np.nanmax(np.abs(scores), axis=0)
    result = Attribution(
        attributions_per_target=attributions,
        interior_gradients={a: tuple(g.cpu() for g in scan.records[a].gradients) for a in grid if a in kept},
        alphas=grid,
        weights=np.array([[weights.get(a, 0.0) for weights in node_weights] for a in grid]),
        scores=scores, raw_scores=stack("raw_score"), path_derivative=stack("path_derivative"),
        grad_abs_mean=stack("grad_abs_mean"), grad_sum=stack("grad_sum"),
        score_input=score_input, score_baseline=score_baseline, delta=delta, relative_delta=relative,
        targets=scan.problem.targets.cpu().numpy(), rather_than=scan.problem.rather_than_array(), rule=path.rule,
        steps_used=steps_used,
        points_evaluated=int(evaluated.sum(0).max()), tuple_inputs=True, single_target=False,
        nothing_to_attribute=nothing, completeness="F(input) - F(baseline)" if path.multiply_by_inputs else None,
        extras=_scan_costs(scan), evaluated=None if evaluated.all() else evaluated,
    )
    if records[0].activation is not None:
        acts = torch.stack([r.activation for r in records])  # [K, N, D]
        reference = scan.records[1.0].activation.unsqueeze(0)
        result.layer_l2 = (acts - reference).norm(dim=-1).cpu().double().numpy()
        cosine = torch.nn.functional.cosine_similarity(acts, reference, dim=-1)
        result.layer_cosine = (1 - cosine).cpu().double().numpy()
    if scan.nonfinite_alphas or not np.all(np.isfinite(total)):
        bad = ", ".join(f"{a:g}" for a in sorted(scan.nonfinite_alphas)) or "the final sum"
        result.nonfinite = True
        result.message = (f"The model produced non-finite scores or gradients at alpha = {bad}; the attributions "
                          "are not trustworthy. Check the input for NaN/inf values or the model for overflow "
                          "(try turning mixed precision off).")
    return result


def _scan_costs(scan: PathScan) -> dict:
    """What the scan took: its batch size after any halving, the memory it measured per point (None: not
    measured), how often it handed freed host memory back, and the bytes of gradients it kept on disk."""
    evaluator = scan.evaluator
    return {"max_batch": evaluator.max_batch, "bytes_per_point": evaluator.bytes_per_point,
            "memory_returns": evaluator.ceiling.returns if evaluator.ceiling is not None else 0,
            "stored_gradient_bytes": scan.stored.nbytes if scan.stored is not None else 0}
