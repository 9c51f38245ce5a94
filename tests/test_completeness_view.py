"""The completeness verdict every page shows (dashboard.renderers.completeness): one level and one sentence per scan."""
from __future__ import annotations

import numpy as np
import pytest

from dashboard.renderers.completeness import Verdict, completeness_frame, completeness_verdict, no_completeness_verdict
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
