"""families.tabular.family, the smallest family, its training command (families.tabular.train) and its page: a
classifier trained here on a table built here."""
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest
from unsafe_files import RunsCode

from families.checkpoint import CheckpointError
from families.contract import InputError, ModelSource
from families.tabular import train as table_training
from families.tabular.family import TableClassifier, TabularFamily, save_table_classifier
from ig_core import AttributionEngine, ScanSettings

pytestmark = pytest.mark.numeric  # completeness and accuracy bounds: CI runs them on the portable kernels too

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["dose", "weight", "age", "noise"]
CLASSES = ["low", "medium", "high"]
FAMILY = TabularFamily()


def make_table(rows: int, seed: int):
    """The class is the tercile of dose - 0.5 * weight; age and noise play no part."""
    generator = np.random.default_rng(seed)
    x = generator.normal([5.0, 70.0, 40.0, 0.0], [2.0, 10.0, 12.0, 1.0], size=(rows, 4))
    risk = (x[:, 0] - 5.0) / 2.0 - 0.5 * (x[:, 1] - 70.0) / 10.0
    return torch.tensor(x, dtype=torch.float32), torch.tensor(np.digitize(risk, [-0.5, 0.5]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.manual_seed(0)
    x, y = make_table(1200, seed=0)
    model = TableClassifier(x.mean(0).tolist(), x.std(0).tolist(), [16], len(CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    test_x, test_y = make_table(400, seed=1)
    accuracy = float((model(test_x).argmax(1) == test_y).float().mean())
    folder = tmp_path_factory.mktemp("models")
    save_table_classifier(folder / "tabular" / "dosing.pt", model, COLUMNS, CLASSES, [16],
                          {"test accuracy": round(accuracy, 4), "rows": 1200}, reference_rows=x)
    return folder, accuracy


@pytest.fixture
def models_folder(trained, monkeypatch):
    monkeypatch.setenv("IG_MODELS_DIR", str(trained[0]))
    return trained[0]


def loaded(models_folder):
    (source,) = FAMILY.sources()
    return FAMILY.load(source, torch.device("cpu"))


def test_the_models_folder_is_listed_by_name_and_the_model_learned_the_rule(models_folder, trained):
    assert [s.name for s in FAMILY.sources()] == ["dosing.pt"]
    model = loaded(models_folder)
    assert model.target_names == CLASSES and model.extra == COLUMNS and model.card["rows"] == 1200
    assert trained[1] >= 0.9


def test_explanations_are_complete_and_credit_the_columns_that_matter(models_folder):
    model = loaded(models_folder)
    engine = AttributionEngine(device="cpu")
    row = FAMILY.parse(model, {"dose": 9.0, "weight": 50.0, "age": 30.0, "noise": 1.5})
    explanation = FAMILY.explain(engine, model, row, settings=ScanSettings())
    assert explanation.target_names == ["high"]
    scores = explanation.scores(0)
    gap = float(explanation.score_input[0] - explanation.score_baseline[0])
    # completeness: within the 1% tolerance, and the scores are the attributions summed exactly
    assert abs(sum(scores.values()) - gap) <= 0.01 * abs(gap) and explanation.completeness_ok
    assert min(scores["dose"], scores["weight"]) > 5 * max(abs(scores["age"]), abs(scores["noise"]))
    records = explanation.records("row-1", "9,50,30,1.5")
    assert records[0]["target_name"] == "high" and records[0]["scores"] == scores
    assert records[0]["model_key"] == model.key and records[0]["relative_delta"] <= 0.01


def test_the_mean_row_has_nothing_to_attribute(models_folder):
    model = loaded(models_folder)
    row = FAMILY.parse(model, model.module.mean.tolist())
    explanation = FAMILY.explain(AttributionEngine(device="cpu"), model, row, [0, 1, 2])
    assert explanation.nothing_per_target().all() and np.all(explanation.relative_delta == 0)


@pytest.mark.parametrize("values, message", [([1, 2, 3], "has 4 values"), ([1, 2, "x", 4], "must be a number"),
                                             ([1, 2, float("inf"), 4], "finite")])
def test_bad_rows_are_refused_clearly(models_folder, values, message):
    with pytest.raises(InputError, match=message):
        FAMILY.parse(loaded(models_folder), values)


@pytest.mark.parametrize("data, message", [
    (pickle.dumps(RunsCode()), "safe loading refuses"),
    (b"garbage bytes", "not a PyTorch weights file"),
    (None, "not a ig-dashboard/table-classifier checkpoint"),
])
def test_files_that_are_not_table_classifiers_get_clear_messages(data, message, tmp_path):
    if data is None:
        torch.save({"weight": torch.zeros(2)}, tmp_path / "bare.pt")
        data = (tmp_path / "bare.pt").read_bytes()
    with pytest.raises(CheckpointError, match=message) as error:
        FAMILY.load(ModelSource("upload: mine.pt", data=data), torch.device("cpu"))
    assert str(tmp_path) not in str(error.value) and "mine.pt" in str(error.value)


def test_the_page_explains_a_row_with_the_folders_model_and_an_upload(models_folder, shared_data):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("dashboard/pages/tabular.py").run()
    assert at.sidebar.selectbox[0].options == ["dosing.pt", "upload a model file..."]
    at.number_input(key="tabular_dose").set_value(9.0)
    at.number_input(key="tabular_weight").set_value(50.0)
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert any("add up to F(row) - F(baseline)" in s.value for s in at.success)
    at.sidebar.selectbox[0].set_value("upload a model file...").run()
    at.file_uploader(key="tabular_model_upload").set_value(("garbage.pt", b"garbage", "application/octet-stream")).run()
    assert any("garbage.pt cannot be used" in e.value and "not a PyTorch weights file" in e.value for e in at.error)
    data = (models_folder / "tabular" / "dosing.pt").read_bytes()
    at.file_uploader(key="tabular_model_upload").set_value(("mine.pt", data, "application/octet-stream")).run()
    assert not at.exception and not at.error
    assert any("add up to F(row) - F(baseline)" in s.value for s in at.success)


def test_the_shipped_training_rows_are_the_reference_set_of_expected_gradients(models_folder, tmp_path):
    model = loaded(models_folder)
    row = FAMILY.parse(model, [9.0, 50.0, 30.0, 1.5])
    (references,) = FAMILY.references(model, row)
    assert references.shape == (64, len(COLUMNS)) and "expected_gradients" in FAMILY.methods(model, row)
    explanation = FAMILY.explain(AttributionEngine(device="cpu"), model, row, [2],
                                 ScanSettings().with_method("expected_gradients"))
    with torch.no_grad():  # the law's baseline side: the mean class probability over the references
        logits = model.module(references)
        mean_reference = torch.softmax(logits, 1)[:, 2].double().mean().item()
    # the engine batches the rows differently: float32 logits may differ by a few roundings of the largest one,
    # and a probability moves by at most a quarter of its logit's change
    tolerance = 8 * 1.19e-7 * (1 + float(logits.abs().max()))
    assert explanation.score_baseline[0] == pytest.approx(mean_reference, abs=tolerance)
    assert explanation.attribution.completeness == "F(input) - mean F(reference)"
    # a checkpoint without rows has no references: the method is not offered, and explaining says why
    plain = tmp_path / "plain.pt"
    save_table_classifier(plain, model.module.cpu(), COLUMNS, CLASSES, [16], {})
    bare = FAMILY.load(ModelSource("plain.pt", path=plain), torch.device("cpu"))
    assert FAMILY.references(bare, row) is None and "expected_gradients" not in FAMILY.methods(bare, row)
    assert "ships no training rows" in FAMILY.refusal(bare, row, "expected_gradients")


def run_page(settings):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = settings
    at.run()
    at.switch_page("dashboard/pages/tabular.py").run()
    at.number_input(key="tabular_dose").set_value(9.0)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    return at


def test_the_page_runs_another_method_and_compares_methods(models_folder, shared_data):
    at = run_page(ScanSettings(rule="trapezoid", steps=8).with_method("gradient"))
    assert any("Gradient (saliency)" in s.value for s in at.subheader)
    assert any(i.value.startswith("Gradient (saliency) defines no completeness: the gradient is a local slope")
               for i in at.info)
    at.multiselect(key="tabular_compare_methods").set_value(["integrated_gradients", "gradient", "smoothgrad"])
    [compare] = [b for b in at.button if b.label == "Compare"]
    compare.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    side = next(t for columns, t in tables.items() if columns[0] == "feature")
    assert list(side.feature) == COLUMNS and list(side.columns[1:]) == ["Integrated gradients", "Gradient (saliency)",
                                                                         "SmoothGrad"]
    agreement = next(t for columns, t in tables.items() if "Spearman (all features)" in columns)
    assert len(agreement) == 3 and agreement["top-k overlap"].between(0, 1).all()
    completeness = next(t for columns, t in tables.items() if "relative error (%)" in columns)
    assert list(completeness.completeness) == ["F(input) - F(baseline)", "not defined", "not defined"]


def test_the_page_shows_the_expected_gradients_law(models_folder, shared_data):
    at = run_page(ScanSettings(rule="trapezoid", steps=8).with_method("expected_gradients", samples=8))
    frame = next(d.value for d in at.dataframe if "mean F(reference)" in d.value.columns)
    assert "F(input) - mean F(reference)" in frame.columns
    assert any("F(row) - mean F(reference)" in m.value for m in [*at.success, *at.warning])


def test_the_page_refuses_an_image_method_and_offers_those_that_apply(models_folder, shared_data):
    at = run_page(ScanSettings(rule="trapezoid", steps=8).with_method("xrai"))
    assert any(w.value.startswith("XRAI (regions) works on images only, and a row is no image.") for w in at.warning)
    offered = at.selectbox(key="tabular_method_here")
    assert "XRAI (regions)" not in offered.options and "Expected gradients" in offered.options  # rows shipped
    assert any("F(row) - F(baseline)" in m.value for m in [*at.success, *at.warning])  # integrated gradients here


def rule_table(rows: int, seed: int) -> pd.DataFrame:
    """The class is "high" where 2 x - y > 1, else "low" (a line with a margin-free boundary); z, whole numbers,
    plays no part."""
    generator = np.random.default_rng(seed)
    x, y = generator.normal(3.0, 2.0, rows), generator.normal(5.0, 4.0, rows)
    return pd.DataFrame({"x": x, "y": y, "z": generator.integers(0, 50, rows),
                         "risk": np.where(2 * x - y > 1, "high", "low")})


def test_the_training_command_learns_a_csv_s_rule_in_the_format_the_page_loads(tmp_path, monkeypatch):
    from dashboard.scaffold import load_model

    rule_table(300, seed=0).to_csv(tmp_path / "patients.csv", index=False)
    out = tmp_path / "models" / "tabular" / "patients.pt"
    assert table_training.main([str(tmp_path / "patients.csv"), "--target", "risk", "--out", str(out),
                                "--epochs", "60"]) == 0
    monkeypatch.setenv("IG_MODELS_DIR", str(tmp_path / "models"))
    [source] = FAMILY.sources()  # the page's list
    model = load_model(FAMILY, source)  # and its loader
    assert model.extra == ["x", "y", "z"] and model.target_names == ["high", "low"]
    trained_on = rule_table(300, seed=0).drop(columns="risk").to_numpy()
    held = model.card["held-out accuracy"]
    assert model.card["trained on"] == "patients.csv, 240 rows (60 more held out)" and held >= 0.85
    # standardised by the training rows' own means: within a few standard errors of the whole table's
    np.testing.assert_allclose(model.module.mean.cpu().numpy(), trained_on.mean(0), atol=0.5)
    fresh = rule_table(400, seed=1)
    with torch.no_grad():
        predicted = model.module(torch.tensor(fresh.drop(columns="risk").to_numpy(), dtype=torch.float32)).argmax(1)
    accuracy = float(np.mean(np.array(model.target_names)[predicted.cpu().numpy()] == fresh.risk.to_numpy()))
    assert accuracy >= 0.9  # a constant guess gets the larger class's share, about 0.6
    row = FAMILY.parse(model, {"x": 6.0, "y": 1.0, "z": 20})  # 2 x - y = 11: far on the "high" side
    explanation = FAMILY.explain(AttributionEngine(device="cpu"), model, row)
    assert explanation.target_names == ["high"] and explanation.completeness_ok
    scores = explanation.scores(0)
    # x above its mean and y below it both raise P(high): both positive, z (no part in the rule) far smaller
    assert min(scores["x"], scores["y"]) > 3 * abs(scores["z"])


@pytest.mark.parametrize("text, message", [
    ("", "is empty: it has no header and no rows"),
    ("x,y,risk\n", "has a header but no rows"),
    ("x,y,outcome\n1,2,a\n3,4,b\n", "has no column 'risk' to predict (--target); its columns are 'x', 'y', 'outcome'"),
    ("x,city,risk\n1,Oslo,a\n2,Rome,b\n", "1 column(s) of t.csv are not numbers: 'city' (e.g. 'Oslo')"),
    ("x,y,risk\n1,2,a\n3,,b\n", "Column(s) 'y' of t.csv have blank cells (first in data row 2)"),
    ("x,y,risk\n1,2,a\n3,4,a\n", "has one value only ('a'): a classifier needs at least two classes"),
    ("risk\na\nb\n", "has no column besides the target"),
])
def test_the_training_command_refuses_tables_it_cannot_use_and_says_why(tmp_path, text, message):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(SystemExit) as refusal:
        table_training.main([str(tmp_path / "t.csv"), "--target", "risk", "--out", str(tmp_path / "m.pt")])
    assert str(refusal.value).startswith("error: ") and message in str(refusal.value)
    assert not (tmp_path / "m.pt").exists()


def test_the_page_says_how_to_make_a_model_when_there_is_none(tmp_path, monkeypatch, shared_data):
    monkeypatch.setenv("IG_MODELS_DIR", str(tmp_path))  # no tabular models: the sidebar offers an upload only
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("dashboard/pages/tabular.py").run()
    assert not at.exception
    [how] = [e for e in at.expander if e.label == "How to make a model for this page"]
    text = how.markdown[0].value
    assert "python -m families.tabular.train data.csv --target COLUMN --out model.pt" in text
    assert "`.pt` checkpoint" in text and "`$IG_MODELS_DIR/tabular/`" in text
