"""The completeness verdict every page shows (dashboard.renderers.completeness): one level and one sentence per scan."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dashboard.renderers.completeness import (
    Verdict,
    completeness_frame,
    completeness_verdict,
    evaluation_text,
    no_completeness_verdict,
)
from ig_core import ScanSettings, method


def test_attributions_within_the_tolerance_are_a_success():
    verdict = completeness_verdict(np.array([0.002, 0.004]), 0.01, "adaptive", 40, 512, what="text")
    assert verdict.level == "success"
    assert "F(text) - F(baseline)" in verdict.text and "1%" in verdict.text and "0.400%" in verdict.text


def test_adaptive_rule_that_misses_asks_for_a_larger_budget():
    verdict = completeness_verdict(0.05, 0.01, "adaptive", 512, 512, what="molecule")
    assert verdict.level == "warning"
    assert "5.00%" in verdict.text and "F(molecule)" in verdict.text
    assert "512 of its 512-point budget" in verdict.text and "step budget" in verdict.text


@pytest.mark.parametrize("rule", ["trapezoid", "gauss-legendre"])
def test_fixed_rule_that_misses_suggests_the_adaptive_rule_or_more_steps(rule):
    verdict = completeness_verdict([0.001, 0.2], 0.01, rule, 16, 512)
    assert verdict.level == "warning"
    assert "20.00%" in verdict.text  # the worst target decides
    assert f"{rule} rule used 16 steps" in verdict.text and "adaptive rule" in verdict.text and "64" in verdict.text


def test_input_that_scores_like_its_baseline_has_nothing_to_attribute():
    # the engine floors the relative error at rounding noise: a large number that means nothing here
    verdict = completeness_verdict(np.array([3.0]), 0.01, "adaptive", 512, 512, nothing_to_attribute=np.array([True]))
    assert verdict.level == "info" and "nothing to attribute" in verdict.text
    assert "another baseline" in verdict.text
    fixed = completeness_verdict(3.0, 0.01, "adaptive", 512, 512, nothing_to_attribute=True, what="molecule",
                                 baseline_choice=False)
    assert fixed.level == "info" and "F(molecule) = F(baseline)" in fixed.text and "another baseline" not in fixed.text


def test_targets_with_nothing_to_attribute_do_not_decide_the_verdict():
    verdict = completeness_verdict([3.0, 0.002], 0.01, "adaptive", 40, 512, nothing_to_attribute=[True, False])
    assert verdict.level == "success" and "0.200%" in verdict.text


def test_non_finite_scores_are_an_error():
    verdict = completeness_verdict(np.nan, 0.01, "adaptive", 40, 512, nonfinite=True,
                                   message="The model produced non-finite scores at alpha = 0.5.")
    assert verdict.level == "error" and "alpha = 0.5" in verdict.text  # the engine's message, as it is
    default = completeness_verdict(np.nan, 0.01, "adaptive", 40, 512, nonfinite=True)
    assert default.level == "error" and "non-finite" in default.text and "not trustworthy" in default.text


def test_the_verdict_states_the_methods_own_law():
    verdict = completeness_verdict([0.002], 0.01, "adaptive", 40, 512, what="photo", law="F(input) - mean F(reference)")
    assert verdict.level == "success" and "add up to F(photo) - mean F(reference) within 1%" in verdict.text
    nothing = completeness_verdict([3.0], 0.01, "adaptive", 40, 512, nothing_to_attribute=[True], what="photo",
                                   law="F(input) - mean F(reference)")
    assert nothing.text.startswith("F(photo) = mean F(reference): the photo scores exactly like the baseline")
    sampled = completeness_verdict([0.2], 0.01, "adaptive", 40, 512, law="mean F(noisy input) - F(baseline)",
                                   path_rule=False)
    assert sampled.level == "warning" and "miss mean F(noisy input) - F(baseline) by 20.00%" in sampled.text
    assert "raise its own samples" in sampled.text and "step budget" not in sampled.text


@pytest.mark.parametrize("name, options", [("gradient", {}), ("gradient_x_input", {}),
                                           ("smoothgrad", {"base": "integrated_gradients", "kind": "vargrad"})])
def test_a_method_without_a_law_gets_one_plain_line_saying_why(name, options):
    chosen = method(name, **options)
    verdict = no_completeness_verdict(ScanSettings().with_method(name, **options))
    assert verdict == Verdict("info", f"{chosen.label} defines no completeness: {chosen.no_completeness}")
    assert chosen.no_completeness and chosen.no_completeness in verdict.text


def test_the_table_names_both_sides_of_the_law():
    frame = completeness_frame(["cat"], [3], np.array([0.9]), np.array([0.2]), np.array([0.69]), np.array([0.0143]),
                               0.01, law="F(input) - mean F(reference)")
    assert list(frame.columns[:4]) == ["target", "F(input)", "mean F(reference)", "F(input) - mean F(reference)"]
    assert frame["F(input) - mean F(reference)"][0] == pytest.approx(0.7) and not frame["within tolerance"][0]



@pytest.mark.parametrize("points, extras, expected", [
    (101, {}, "Blur IG: 101 points evaluated"),
    (50, {"samples": 25}, "SmoothGrad: 50 points evaluated (25 noisy copies, 2 points each)"),
    (528, {"references": 16}, "Expected gradients: 528 points evaluated (16 references, 33 points each)"),
])
def test_the_points_evaluated_name_the_copies_or_references_they_were_spread_over(points, extras, expected):
    attribution = SimpleNamespace(points_evaluated=points, extras=extras)
    assert evaluation_text(attribution, expected.split(":")[0]) == expected


def test_a_refinement_the_user_stopped_says_so_and_asks_for_no_larger_budget():
    verdict = completeness_verdict(0.034, 0.01, "adaptive", 30, 512, stopped=True)
    assert verdict.level == "warning"
    assert "stopped" in verdict.text and "3.40%" in verdict.text and "30 path points" in verdict.text
    assert "budget" not in verdict.text and "Refine further" in verdict.text
    within = completeness_verdict(0.004, 0.01, "adaptive", 30, 512, stopped=True)
    assert within.level == "success"  # stopped or not, the attributions add up


def test_the_verdict_of_a_scan_stopped_early_says_it_was_stopped():
    import torch

    from dashboard.renderers.completeness import explanation_verdict
    from families.contract import Explanation
    from ig_core import AttributionEngine

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    settings = ScanSettings(rule="adaptive", steps=4, tolerance=1e-9, max_steps=512)
    result = AttributionEngine(device="cpu").attribute(
        net, torch.randn(1, 4), 0, steps=4, rule="adaptive", tolerance=1e-9, max_steps=512,
        partial_results=lambda partial: False)  # stopped at the first grid, far from the tolerance
    assert result.stopped_early
    verdict = explanation_verdict(Explanation(result, [0], ["a"], settings, "net"))
    assert verdict.level == "warning" and "stopped" in verdict.text and "budget" not in verdict.text
