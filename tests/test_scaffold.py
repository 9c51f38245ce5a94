"""dashboard.scaffold: what every page shares. Unexpected errors reach the browser as a clear message without the
exception's text (it can name server paths) and the traceback goes to the server log."""
import logging
import tomllib
from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit_browser import browser_page, require_chromium, streamlit_server, wait_idle

ROOT = Path(__file__).resolve().parents[1]


def failing_page():
    from dashboard.scaffold import run_page

    def main():
        raise OSError("[Errno 13] Permission denied: '/srv/secret/weights.pth'")

    run_page(main)


def test_an_unexpected_error_shows_a_message_without_server_paths_and_logs_the_trace(caplog):
    at = AppTest.from_function(failing_page, default_timeout=30)
    with caplog.at_level(logging.ERROR, logger="ig_dashboard"):
        at.run()
    assert not at.exception
    (error,) = at.error
    assert "Something went wrong (OSError)" in error.value and "/srv/secret" not in error.value
    assert any("/srv/secret/weights.pth" in record.exc_text for record in caplog.records if record.exc_text)


def test_streamlit_shows_no_error_details_and_bounds_uploads():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert 0 < config["server"]["maxUploadSize"] <= 200


def test_streamlit_shows_no_deploy_button(tmp_path):
    from playwright.sync_api import expect

    require_chromium()
    with streamlit_server(tmp_path) as url, browser_page("no-deploy") as page:
        page.goto(url)
        expect(page.locator("[data-testid='stMain']").get_by_text("Integrated gradients debugger")).to_be_visible()
        wait_idle(page)
        assert page.get_by_role("button", name="Deploy").count() == 0
        assert page.get_by_text("Deploy", exact=True).count() == 0


def completeness_page():
    import streamlit as st
    import torch

    from dashboard.scaffold import completeness_panel
    from families.contract import LoadedModel
    from families.tabular.family import TableClassifier, TabularFamily
    from ig_core import AttributionEngine, ScanSettings

    torch.manual_seed(0)
    module = TableClassifier([0.0, 0.0], [1.0, 1.0], [], 2).eval().requires_grad_(False)
    model = LoadedModel(key="t", name="t", target_names=["a", "b"], module=module, extra=["x", "y"])
    family = TabularFamily()
    settings = ScanSettings().with_method(st.session_state["method"])
    row = family.parse(model, [1.0, 2.0])
    completeness_panel(family.explain(AttributionEngine(device="cpu"), model, row, [0], settings), what="row")


def test_the_completeness_panel_shows_the_table_for_a_law_and_one_line_without_one():
    at = AppTest.from_function(completeness_page, default_timeout=30)
    at.session_state["method"] = "integrated_gradients"
    at.run()
    assert not at.exception
    (table,) = at.dataframe
    assert "F(input) - F(baseline)" in table.value.columns and len(table.value) == 1
    assert any("add up to F(row) - F(baseline)" in s.value for s in at.success)
    assert at.caption[0].value.startswith("adaptive rule, ")
    at.session_state["method"] = "gradient"
    at.run()
    assert not at.exception and not at.dataframe and not at.success
    (info,) = at.info
    assert info.value.startswith("Gradient (saliency) defines no completeness: the gradient is a local slope")
    assert at.caption[0].value == "Gradient (saliency): 2 points evaluated."


def test_the_completeness_panel_counts_every_noisy_copys_points():
    at = AppTest.from_function(completeness_page, default_timeout=30)
    at.session_state["method"] = "smoothgrad"  # over the gradient by default: the input and the baseline per copy
    at.run()
    assert not at.exception
    assert at.caption[0].value == "SmoothGrad: 50 points evaluated (25 noisy copies, 2 points each)."


def model_choice_page():
    from dashboard.scaffold import choose_model
    from families.tabular.family import TabularFamily

    choose_model(TabularFamily())


def test_an_uploaded_model_that_cannot_be_used_is_named_once():
    at = AppTest.from_function(model_choice_page, default_timeout=30).run()
    at.selectbox(key="tabular_model").set_value("upload a model file...").run()
    at.file_uploader(key="tabular_model_upload").set_value(("mine.pt", b"random garbage", "application/octet-stream"))
    at.run()
    assert not at.exception
    (error,) = at.error
    assert error.value.count("mine.pt") == 1 and "is not a PyTorch weights file" in error.value, error.value


MARKDOWN_NAME = "my_*best*_[v2](x) :o:.pt"  # emphasis, a link and an emoji, were it read as Markdown


def test_a_model_name_is_shown_as_typed_in_the_error_and_the_sidebar(tmp_path):
    from dashboard.renderers.markdown import escape_markdown
    from families.tabular.family import TableClassifier, save_table_classifier

    at = AppTest.from_function(model_choice_page, default_timeout=30).run()
    at.selectbox(key="tabular_model").set_value("upload a model file...").run()
    at.file_uploader(key="tabular_model_upload").set_value((MARKDOWN_NAME, b"garbage", "application/octet-stream"))
    at.run()
    (error,) = at.error
    assert error.value.startswith(f"**{escape_markdown('upload: ' + MARKDOWN_NAME)} cannot be used.**"), error.value
    assert "[v2](x)" not in error.value
    model = TableClassifier([0.0, 0.0], [1.0, 1.0], [], 2)
    save_table_classifier(tmp_path / "model.pt", model, ["x", "y"], ["a", "b"], [], {})
    upload = (MARKDOWN_NAME, (tmp_path / "model.pt").read_bytes(), "application/octet-stream")
    at.file_uploader(key="tabular_model_upload").set_value(upload).run()
    assert not at.exception and not at.error
    [caption] = [c.value for c in at.sidebar.caption if "targets" in c.value]
    assert caption.startswith(f"{escape_markdown('upload: ' + MARKDOWN_NAME)}: 2 targets"), caption
