"""dashboard.renderers.method_comparison (several methods through a family, their agreement and completeness) and the
Home page's method settings, whose option widgets are made from each method's Options."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from dashboard.renderers import method_comparison
from families.contract import LoadedModel
from families.tabular.family import TableClassifier, TabularFamily
from ig_core import METHODS, AttributionEngine, ScanSettings

pytestmark = pytest.mark.numeric

ROOT = Path(__file__).resolve().parents[1]
EPS = float(np.finfo(np.float32).eps)


def test_agreement_table_on_maps_with_known_ranks():
    a = np.arange(1.0, 31.0)  # 30 features: the top three by |score| are compared
    swapped = a.copy()
    swapped[[0, 29]] = swapped[[29, 0]]  # the largest and the smallest change places
    table = method_comparison.agreement_table({"a": a, "doubled": 2 * a, "swapped": swapped})
    assert list(zip(table["first"], table["second"])) == [("a", "doubled"), ("a", "swapped"), ("doubled", "swapped")]
    assert (table.k == 3).all()
    first, second, third = table.to_dict("records")
    assert first["Spearman (all features)"] == pytest.approx(1.0, abs=1e-15) and first["top-k overlap"] == 1.0
    # Spearman's closed form without ties: 1 - 6 sum d^2 / (n (n^2 - 1)); two ranks moved by 29
    assert second["Spearman (all features)"] == pytest.approx(1 - 6 * 2 * 29 ** 2 / (30 * (30 ** 2 - 1)), abs=1e-14)
    assert second["top-k overlap"] == pytest.approx(2 / 3) and third["top-k overlap"] == pytest.approx(2 / 3)
    assert method_comparison.agreement_table({"only": a}).empty


def test_an_undefined_correlation_says_why_never_none():
    a = np.arange(1.0, 31.0)
    table = method_comparison.agreement_table({"a": a, "flat": np.ones(30), "b": -a})
    assert "None" not in table.to_string() and not table.isna().any().any()
    by_pair = table.set_index(["first", "second"])
    assert by_pair.loc[("a", "flat"), "Spearman (all features)"] == method_comparison.EQUAL_SCORES
    assert by_pair.loc[("a", "flat"), "Spearman (all features)"].startswith("n/a")
    assert float(by_pair.loc[("a", "b"), "Spearman (all features)"]) == pytest.approx(-1.0)
    assert by_pair["top-k overlap"].dtype.kind == "f"  # never missing: stays numbers


def test_default_top_is_a_tenth_of_the_features_but_at_least_three():
    assert [method_comparison.default_top(n) for n in (2, 4, 30, 50176)] == [2, 3, 3, 5017]


@pytest.fixture(scope="module")
def table_model():
    """A two-column softmax classifier with no hidden layer and no reference rows."""
    torch.manual_seed(0)
    module = TableClassifier([0.0, 0.0], [1.0, 1.0], [], 3).eval().requires_grad_(False)
    return LoadedModel(key="tabular:test", name="test", target_names=["a", "b", "c"], module=module,
                       extra=["x", "y"])


def test_run_methods_reads_the_gradients_off_the_scan_and_says_why_a_method_does_not_apply(table_model):
    family, engine = TabularFamily(), AttributionEngine(device="cpu")
    row = family.parse(table_model, [1.5, -0.5])
    names = ["gradient", "expected_gradients", "integrated_gradients", "gradient_x_input", "smoothgrad"]
    runs = method_comparison.run_methods(family, engine, table_model, row, None, ScanSettings(), names)
    assert [run.name for run in runs] == names  # in the order asked
    refused = runs[1]
    assert refused.explanation is None and "ships no training rows" in refused.refusal
    gradient, scan, times_input = runs[0].explanation, runs[2].explanation, runs[3].explanation
    assert gradient.attribution.points_evaluated == 0 and times_input.attribution.points_evaluated == 0  # free
    assert gradient.targets == scan.targets == [int(table_model.module(row).argmax())]
    x = row.clone().requires_grad_(True)
    torch.softmax(table_model.module(x), 1)[0, scan.targets[0]].backward()
    expected = x.grad[0].double().numpy()
    # float32 backward through a 2x3 layer and a softmax: a few roundings of the largest term
    assert np.allclose(method_comparison.feature_scores(gradient), expected, rtol=0,
                       atol=8 * EPS * np.abs(expected).max())
    assert np.allclose(method_comparison.feature_scores(times_input), expected * row[0].double().numpy(), rtol=0,
                       atol=8 * EPS * np.abs(expected * row[0].double().numpy()).max())

    ran = [run for run in runs if run.explanation is not None]
    table = method_comparison.completeness_table(ran)
    assert list(table.method) == ["Gradient (saliency)", "Integrated gradients", "Gradient x input", "SmoothGrad"]
    assert list(table.completeness) == ["not defined", "F(input) - F(baseline)", "not defined", "not defined"]
    ig_row = table.iloc[1]
    # a column with a method without a law is text (4 significant digits), "n/a" for that method, never "None"
    assert float(ig_row["relative error (%)"]) == pytest.approx(100 * scan.relative_delta[0], rel=1e-3, abs=1e-6)
    assert ig_row["sum of attributions"] == pytest.approx(sum(scan.scores(0).values()))
    assert table.iloc[0]["relative error (%)"] == "n/a" and table.iloc[0]["law's value"] == "n/a"
    assert "None" not in table.to_string() and not table.isna().any().any()
    assert method_comparison.completeness_text(gradient) == "completeness: not defined"
    assert method_comparison.completeness_text(scan).startswith("completeness: ") and \
        "% off F(input) - F(baseline)" in method_comparison.completeness_text(scan)
    scores = method_comparison.scores_table(ran, ["x", "y"])
    assert list(scores.columns) == ["feature", *table.method] and list(scores.feature) == ["x", "y"]
    assert np.array_equal(scores["Integrated gradients"], method_comparison.feature_scores(scan))


def test_method_choices_are_the_defaults_that_apply_and_the_chosen_method():
    settings = ScanSettings().with_method("gradient_x_input")
    assert method_comparison.method_choices(settings, list(METHODS)) == [*method_comparison.DEFAULT_METHODS,
                                                                         "gradient_x_input"]
    assert method_comparison.method_choices(ScanSettings(), ["integrated_gradients", "gradient"]) == [
        "integrated_gradients", "gradient"]


def home():
    at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / "home.py"), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def test_the_settings_form_offers_every_method_with_widgets_made_from_its_options():
    at = home()
    box = at.radio(key="settings_method")
    assert box.options == [METHODS[name].label for name in METHODS] and box.value == "integrated_gradients"
    assert any(m.value == "Integrated gradients has no options." for m in at.markdown)
    assert any("applies to path methods" in m.value for m in at.markdown)
    box.set_value("smoothgrad").run()
    base = at.selectbox(key="option_smoothgrad_base")
    assert base.value == "gradient" and "smoothgrad" not in base.options and len(base.options) == len(METHODS) - 1
    assert at.number_input(key="option_smoothgrad_samples").value == 25
    assert at.number_input(key="option_smoothgrad_noise").value == pytest.approx(0.15)
    assert at.text_input(key="option_smoothgrad_kind").value == "smoothgrad"
    at.number_input(key="option_smoothgrad_samples").set_value(5)
    base.set_value("integrated_gradients")
    at.run()  # a change takes effect at once: no button to press
    assert not at.exception and not at.error
    settings = at.session_state["scan_settings"]
    assert settings.method == "smoothgrad" and dict(settings.method_options) == {
        "base": "integrated_gradients", "kind": "smoothgrad", "noise": 0.15, "samples": 5, "seed": 0}
    assert any("method: SmoothGrad (base integrated_gradients" in c.value for c in at.caption)
    # the form starts from the settings in force; a value the method refuses is explained, not applied
    assert at.number_input(key="option_smoothgrad_samples").value == 5
    at.text_input(key="option_smoothgrad_kind").set_value("bogus")
    at.run()
    assert any("SmoothGrad kind must be one of" in e.value for e in at.error)
    assert at.session_state["scan_settings"] == settings
    at.radio(key="settings_method").set_value("gradient").run()
    at.checkbox(key="option_gradient_absolute").check()
    at.run()
    assert at.session_state["scan_settings"].method_options == (("absolute", True),)


def test_tuples_and_none_are_typed_as_literals_and_checked():
    at = home()
    at.radio(key="settings_method").set_value("xrai").run()
    scales, second = at.text_input(key="option_xrai_scales"), at.text_input(key="option_xrai_second_baseline")
    assert scales.value == "(50, 100, 150, 250, 500, 1200)" and second.value == "1.0"
    scales.set_value("(60, 120)")
    second.set_value("None")
    at.run()
    assert not at.exception and not at.error
    options = dict(at.session_state["scan_settings"].method_options)
    assert options["scales"] == (60, 120) and options["second_baseline"] is None
    at.text_input(key="option_xrai_scales").set_value("big")
    at.run()
    assert any("scales: 'big' is not a number, a tuple of numbers or None" in e.value for e in at.error)
    assert dict(at.session_state["scan_settings"].method_options)["scales"] == (60, 120)
