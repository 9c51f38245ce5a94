"""The trust tables (families.trust), their views (dashboard.renderers.trust), the Trust page and Home's standing."""
from __future__ import annotations

import pathlib

import pandas as pd
import pytest
from streamlit_browser import browser_page, full_screenshot, open_page, require_chromium, streamlit_server, wait_idle

from dashboard.renderers import trust as trust_views
from families.trust import COLUMNS, model_folder_name, read_tables, standing, write_table

ROOT = pathlib.Path(__file__).resolve().parents[1]
# small tables for each family, as the commands write them (method names or labels, measures, better, items)
TABLES = {
    ("vision", "torchvision: mobilenet_v2", "evaluation"): [
        ("integrated_gradients", "AOPC", 0.25, "higher", 20), ("gradient", "AOPC", 0.125, "higher", 20),
        ("random", "AOPC", 0.0625, "higher", 20)],
    ("vision", "torchvision: mobilenet_v2", "sanity check"): [
        ("Integrated gradients", "share of items flagged", 0.0, "lower", 20),
        ("Input itself (control)", "share of items flagged", 1.0, "lower", 20)],
    ("molecules", "shipped: w2n2", "ground truth: crippen"): [
        ("integrated_gradients", "crippen Kendall tau (atoms)", 0.5, "higher", 226),
        ("random", "crippen Kendall tau (atoms)", 0.0, "higher", 226),
        ("reference: Crippen, 0.1 moved", "crippen Kendall tau (atoms)", 0.85, "higher", 226)],
    ("language", "small.pt (default)", "number agreement"): [
        ("integrated_gradients", "pass rate", 0.875, "higher", 1448), ("random", "pass rate", 0.5, "higher", 1448)],
    ("tabular", "iris.pt", "sanity check"): [("gradient", "share of items flagged", 0.0, "lower", 50)],
}


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["method", "measure", "value", "better", "items"])


@pytest.fixture
def trust_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("IG_TRUST_DIR", str(tmp_path / "trust"))
    for (family, model, check), rows in TABLES.items():
        write_table(family, model, check, frame(rows), f"python -m test {check}")
    return tmp_path / "trust"


def test_model_names_become_folder_names():
    assert model_folder_name("shipped: w2n2") == "w2n2"
    assert model_folder_name("small.pt (default)") == "small"
    assert model_folder_name("torchvision: mobilenet_v2") == "mobilenet_v2"
    assert model_folder_name("my models/odd name!.pt") == "my_models_odd_name"


def test_tables_read_back_as_written_with_method_labels(trust_folder):
    tables = read_tables("vision", "mobilenet_v2")
    assert list(tables.columns) == COLUMNS and len(tables) == 5
    evaluation = tables[tables["check"] == "evaluation"]
    assert list(evaluation["method"]) == ["Integrated gradients", "Gradient (saliency)", "random"]
    assert list(evaluation["value"]) == [0.25, 0.125, 0.0625]
    assert evaluation["source"].iloc[0].startswith("python -m test evaluation (")
    assert read_tables("vision", "googlenet").empty


def test_a_table_without_its_columns_or_with_another_better_is_refused(tmp_path):
    with pytest.raises(ValueError, match="items"):
        write_table("vision", "m", "c", frame([("gradient", "AOPC", 1.0, "higher", 1)]).drop(columns="items"), "x",
                    folder=tmp_path)
    with pytest.raises(ValueError, match="better"):
        write_table("vision", "m", "c", frame([("gradient", "AOPC", 1.0, "more", 1)]), "x", folder=tmp_path)


def test_standing_puts_each_check_and_measure_in_a_column(trust_folder):
    table = standing(read_tables("vision", "mobilenet_v2"))
    assert list(table["method"]) == ["Integrated gradients", "Gradient (saliency)", "random",
                                     "Input itself (control)"]
    aopc = "evaluation: AOPC (higher is better)"
    flagged = "sanity check: share of items flagged (lower is better)"
    assert set(table.columns) == {"method", aopc, flagged}
    row = table.set_index("method")
    assert row.loc["Integrated gradients", aopc] == 0.25 and row.loc["Integrated gradients", flagged] == 0.0
    assert pd.isna(row.loc["random", flagged])
    shown = trust_views.standing_table(read_tables("vision", "mobilenet_v2")).set_index("method")
    assert shown.loc["random", flagged] == "n/a" and shown.loc["Integrated gradients", flagged] == "0"
    assert trust_views.method_standing(read_tables("vision", "mobilenet_v2"), "Gradient (saliency)") == \
        "evaluation: AOPC 0.125 (higher is better)"


def test_views_list_checks_models_and_commands(trust_folder):
    checks = trust_views.check_tables(read_tables("vision", "mobilenet_v2"))
    assert [check for check, _, _ in checks] == ["evaluation", "sanity check"]
    assert list(checks[0][1].columns) == ["method", "measure", "value", "items"]
    assert trust_views.model_choices("vision", ["googlenet", "mobilenet_v2"]) == ["mobilenet_v2", "googlenet"]
    commands = trust_views.record_commands("molecules", "w2n2", {"ground truth: crippen": "python -m x"})
    assert list(commands) == ["sanity check", "ground truth: crippen"]
    assert "--family molecules" in commands["sanity check"] and "--model w2n2" in commands["sanity check"]
    assert "is no method" in trust_views.reference_note(read_tables("molecules", "w2n2"))
    assert trust_views.reference_note(read_tables("vision", "mobilenet_v2")) == ""
    standings = dict(trust_views.recorded_standings("Integrated gradients"))
    assert set(standings) == {"vision: mobilenet_v2", "molecules: w2n2", "language: small"}
    assert standings["language: small"] == "number agreement: pass rate 0.875 (higher is better)"


def test_the_trust_page_and_home_show_the_tables(trust_folder):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    # Home: the chosen method's figures, model by model (Markdown source, escaped)
    assert any(m.value.startswith("- **vision") and r"mobilenet\_v2**" in m.value
               and "AOPC 0.25 (higher is better)" in m.value for m in at.markdown), [m.value for m in at.markdown]
    at.switch_page("dashboard/pages/trust.py").run()
    assert not at.exception and not at.error
    for family, model, value in (("vision", "mobilenet_v2", 0.25), ("molecules", "w2n2", 0.5),
                                 ("language", "small", 0.875)):
        at.selectbox(key="trust_family").set_value(family).run()
        at.selectbox(key="trust_model").set_value(model).run()
        assert not at.exception and not at.error
        first = at.dataframe[0].value
        assert float(first.set_index("method").iloc[0, 0]) == value
        assert any("python -m runs.sanity_checks" in c.value for c in at.code)
        assert any("is no method" in c.value for c in at.caption) == (family == "molecules")
    at.selectbox(key="trust_family").set_value("tabular").run()
    assert at.selectbox(key="trust_model").value == "iris"


def test_the_trust_page_in_a_browser_for_each_family(trust_folder, tmp_path):
    from playwright.sync_api import expect

    require_chromium()
    with streamlit_server(tmp_path, IG_TRUST_DIR=str(trust_folder)) as url, browser_page("trust") as page:
        page.goto(url)
        main = page.locator("[data-testid='stMain']")
        open_page(page, "Trust: can I trust this map?")
        expect(main.get_by_text("Can I trust this map?")).to_be_visible()
        for family, model, heading in (("Vision", "mobilenet_v2", "Evaluation"),
                                       ("Molecules", "w2n2", "Ground truth: crippen"),
                                       ("Language", "small", "Number agreement"), ("Tabular", "iris", "Sanity check")):
            wait_idle(page)
            main.locator("[data-testid='stSelectbox']").filter(has_text="Family").click()
            page.get_by_role("option", name=family, exact=True).click()
            wait_idle(page)
            main.locator("[data-testid='stSelectbox']").filter(has_text="Model").click()
            page.get_by_role("option", name=model, exact=True).click()
            wait_idle(page)
            expect(main.get_by_text("Each method's standing")).to_be_visible()
            expect(main.get_by_role("heading", name=heading, exact=True)).to_be_visible()
            assert main.locator("[data-testid='stDataFrame']").count() >= 2
            assert main.locator("[data-testid='stException']").count() == 0
            full_screenshot(page, f"trust-{family.lower()}.png")
