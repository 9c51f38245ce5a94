"""Cascading model-parameter randomisation: ig_core.randomisation, families.sanity_checks, its views
(dashboard.renderers.sanity_checks), the pages' section and the command over a sample set (runs.sanity_checks)."""
from __future__ import annotations

import copy
import pathlib

import numpy as np
import pandas as pd
import pytest
import torch

from dashboard.renderers import sanity_checks as sanity_views
from families.language.family import FAMILY as LANGUAGE
from families.molecules.family import FAMILY as MOLECULES
from families.sanity_checks import (
    CONTROL,
    decidable,
    input_modules,
    randomised_model,
    sanity_check,
    still_similar,
)
from ig_core import AttributionEngine, ScanSettings
from ig_core.randomisation import cascade, parameter_modules, randomise, similarity

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXED = ScanSettings(rule="trapezoid", steps=8)


def small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, 3))


def test_the_cascade_goes_from_the_output_down_and_ends_with_every_module():
    net = small_net()
    assert parameter_modules(net) == ["0", "2", "4"]
    steps = cascade(net, steps=2)
    assert [step.modules for step in steps] == [("4", "2"), ("4", "2", "0")]
    assert [step.label for step in steps] == ["4 .. 2", "0"]
    assert [step.modules for step in cascade(net, steps=10)] == [("4",), ("4", "2"), ("4", "2", "0")]
    assert cascade(net, steps=3, keep=["0"])[-1].modules == ("4", "2")
    with pytest.raises(ValueError, match="no parameters"):
        cascade(torch.nn.ReLU())


def test_randomise_changes_the_named_modules_only_and_leaves_the_random_stream_alone():
    net, before = small_net(), copy.deepcopy(small_net().state_dict())
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    randomise(net, ["4"], seed=1)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's random stream is untouched
    after = net.state_dict()
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):  # untouched: the very values, no arithmetic
        assert torch.equal(after[name], before[name])
    assert not torch.equal(after["4.weight"], before["4.weight"])
    again = small_net()
    randomise(again, ["4"], seed=1)
    assert torch.equal(again.state_dict()["4.weight"], after["4.weight"])  # the seed decides the draw


def test_similarity_against_exact_values():
    a = np.array([1.0, -2.0, 3.0, -4.0])
    assert similarity(a, a) == {"spearman_abs": 1.0, "spearman_signed": 1.0}
    # |a| ranks 1 2 3 4; |-a| the same; signed a against -a reverses every rank
    flipped = similarity(a, -a)
    assert flipped["spearman_abs"] == 1.0 and flipped["spearman_signed"] == -1.0
    # |b| = 4 3 2 1 against 1 2 3 4: rank correlation -1
    assert similarity(a, np.array([4.0, 3.0, -2.0, 1.0]))["spearman_abs"] == -1.0
    image = np.arange(64.0).reshape(8, 8)
    assert similarity(image, image)["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert similarity(image, image[::-1].copy())["ssim"] < 0.5
    with pytest.raises(ValueError, match="shapes"):
        similarity(a, image)


def test_still_similar_needs_more_than_chance_over_few_features():
    assert still_similar(0.6, 10_000) and not still_similar(0.49, 10_000)
    # 10 words: z(0.99) / sqrt(9) = 0.775
    assert not still_similar(0.7, 10) and still_similar(0.8, 10)
    # 6 words: 2.326 / sqrt(5) = 1.04, beyond any correlation; 7: 0.95
    assert not decidable(6) and not still_similar(1.0, 6) and decidable(7) and still_similar(1.0, 7)


@pytest.fixture(scope="module")
def engine():
    return AttributionEngine(device="cpu")


@pytest.fixture(scope="module")
def weave():
    return MOLECULES.load(MOLECULES.sources()[0], torch.device("cpu"))


def test_the_control_is_flagged_and_the_gradient_is_not_on_the_shipped_weave(engine, weave):
    item = MOLECULES.parse(weave, "CC(=O)Oc1ccccc1C(=O)O")
    check = sanity_check(MOLECULES, engine, weave, item, None, FIXED, ["gradient", "integrated_gradients"], steps=3)
    final = check.final().set_index("method")
    assert final.loc[CONTROL, "spearman_abs"] == 1.0 and final.loc[CONTROL, "flagged"]
    assert not final.loc["Gradient (saliency)", "flagged"]
    assert check.flagged() == [CONTROL]
    assert len(check.steps) == 3 and check.kept == []
    assert check.features == item.n_atoms  # atoms ranked with half of each bond (MoleculeExplanation.compared_map)
    # step 0 compares each map with itself
    assert (check.table.loc[check.table["step"] == 0, ["spearman_abs", "spearman_signed"]] == 1.0).all().all()
    # the trained model is untouched and its randomised copies are keyed apart from it
    twin = randomised_model(weave, check.steps[-1], seed=0)
    assert twin.key != weave.key and twin.module is not weave.module
    assert all(torch.equal(a, b) for a, b in zip(weave.module.state_dict().values(),
                                                 MOLECULES.load(MOLECULES.sources()[0], "cpu").module.state_dict()
                                                 .values()))


def test_a_randomised_copy_is_scanned_with_at_most_the_trained_maps_points(engine, weave, monkeypatch):
    """The adaptive rule: each copy's scan may take no more path points than the trained model's map took."""
    calls = []
    attribute = MOLECULES.attribute

    def recording(engine_, model, item_, request, targets, settings, **options):
        result = attribute(engine_, model, item_, request, targets, settings, **options)
        calls.append((model.key, settings.method, settings.max_steps, int(result.points_evaluated)))
        return result

    monkeypatch.setattr(MOLECULES, "attribute", recording)
    item = MOLECULES.parse(weave, "CC(=O)Oc1ccccc1C(=O)O")
    sanity_check(MOLECULES, engine, weave, item, None, ScanSettings(steps=4), ["integrated_gradients"], steps=3)
    scans = [call for call in calls if call[1] == "integrated_gradients"]
    (trained_key, _, budget, trained_points), copies = scans[0], scans[1:]
    assert trained_key == weave.key and budget == ScanSettings().max_steps > trained_points and len(copies) == 3
    assert all(key != weave.key and max_steps == trained_points and points <= trained_points
               for key, _, max_steps, points in copies)


def test_a_language_models_embedding_makes_the_input_and_is_kept(engine):
    model = LANGUAGE.load(LANGUAGE.sources()[0], torch.device("cpu"))
    item = LANGUAGE.parse(model, "the shareholders of the company claimed")
    assert input_modules(LANGUAGE, model, item) == ["embed"]
    check = sanity_check(LANGUAGE, engine, model, item, None, FIXED, ["gradient"], steps=2)
    assert check.kept == ["embed"] and all("embed" not in step.modules for step in check.steps)
    assert check.final().set_index("method").loc[CONTROL, "spearman_abs"] == 1.0


def test_views_say_which_methods_are_flagged(engine, weave):
    item = MOLECULES.parse(weave, "c1ccccc1O")
    check = sanity_check(MOLECULES, engine, weave, item, None, FIXED, ["gradient"], steps=2)
    table = sanity_views.verdict_table(check)
    assert list(table.columns) == ["method", "Spearman of |scores|", "Spearman of signed scores", "verdict"]
    verdicts = dict(zip(table["method"], table["verdict"]))
    assert verdicts[CONTROL].startswith("flagged") and verdicts["Gradient (saliency)"].startswith("passes")
    assert sanity_views.summary(check).startswith("No method is flagged")
    chart = sanity_views.cascade_chart(check).to_dict()
    assert len(chart["layer"]) == 2


def test_the_molecules_page_runs_the_sanity_check(monkeypatch):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.session_state["scan_settings"] = FIXED
    at.run()
    at.switch_page("dashboard/pages/molecules.py").run()
    at.text_input[0].input("CC(=O)Oc1ccccc1C(=O)O")
    [b for b in at.button if b.label == "Explain"][0].click().run()
    at.multiselect(key="mol_sanity_methods").set_value(["integrated_gradients", "gradient"])
    at.slider(key="mol_sanity_steps").set_value(2)
    [run] = [b for b in at.button if b.label == "Run the sanity check"]
    run.click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    verdicts = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert isinstance(verdicts, pd.DataFrame) and set(verdicts["method"]) == {
        CONTROL, "Integrated gradients", "Gradient (saliency)"}
    assert verdicts.set_index("method").loc[CONTROL, "verdict"].startswith("flagged")


def test_the_command_writes_the_cascade_over_a_sample_set(shared_data, tmp_path):
    from runs.sanity_checks import main

    out = tmp_path / "sanity.md"
    assert main(["--family", "molecules", "--input", str(shared_data / "molecules" / "tox21_moleculenet.csv"),
                 "--limit", "2", "--methods", "gradient", "integrated_gradients", "--cascade-steps", "2",
                 "--rule", "trapezoid", "--steps", "8", "--out", str(out)]) == 0
    rows = pd.read_csv(out.with_suffix(".csv"))
    assert rows["item"].nunique() == 2 and set(rows["step"]) == {0, 1, 2}
    assert set(rows["method"]) == {CONTROL, "Gradient (saliency)", "Integrated gradients"}
    text = out.read_text()
    assert "| Input itself (control) | 1.000 | 100% |" in text and "python -m runs.sanity_checks" in text
    last = rows[rows["step"] == 2].groupby("method")["spearman_abs"].mean()
    assert f"| Gradient (saliency) | {last['Gradient (saliency)']:.3f} |" in text


def test_on_mobilenet_v2_the_gradient_changes_with_the_weights_and_the_input_itself_does_not(shared_data, engine):
    from families.vision.family import FAMILY as VISION

    model = VISION.load(VISION.source_named("mobilenet_v2"), torch.device("cpu"))
    photo = VISION.parse(model, (shared_data / "imagenet_samples" / "images" / "n01440764_tench.JPEG").read_bytes())
    check = sanity_check(VISION, engine, model, photo, None, FIXED, ["gradient"], steps=2)
    final = check.final().set_index("method")
    assert final.loc[CONTROL, "flagged"] and final.loc[CONTROL, "ssim"] == pytest.approx(1.0, abs=1e-12)
    assert not final.loc["Gradient (saliency)", "flagged"]
    assert final.loc["Gradient (saliency)", "spearman_abs"] < 0.5
    assert check.features == 224 * 224 and check.kept == []


def test_the_language_page_runs_the_sanity_check_and_keeps_the_embeddings():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.session_state["scan_settings"] = FIXED
    at.run()
    at.switch_page("dashboard/pages/language.py").run()
    [b for b in at.button if b.label.startswith("Figure 9")][0].click().run()  # the paper's example text
    at.multiselect(key="lang_sanity_methods").set_value(["gradient"])
    at.slider(key="lang_sanity_steps").set_value(2)
    [b for b in at.button if b.label == "Run the sanity check"][0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    # four words: no ranking of them can be told from chance, the control's neither
    verdicts = next(d.value for d in at.dataframe if "verdict" in d.value.columns).set_index("method")
    assert verdicts.loc[CONTROL, "verdict"] == "undecided: 4 features are too few to tell a map from chance"
    assert any(m.value.startswith("Undecided") and "with 4 features" in m.value and "embed" in m.value
               for m in at.markdown)  # Markdown source: escaped
    [b for b in at.button if b.label.startswith("Figure 10")][0].click().run()  # a longer text
    [b for b in at.button if b.label == "Run the sanity check"][0].click().run()
    assert not at.exception and not at.error
    verdicts = next(d.value for d in at.dataframe if "verdict" in d.value.columns).set_index("method")
    assert verdicts.loc[CONTROL, "verdict"].startswith("flagged")
