"""The Language page (paper Section 3.2): attributions, tables, the page in AppTest and in a real browser.

The checkpoint and its vocabulary are committed (families/language/checkpoints/small.pt): these tests
need no data directory. Scans use the CPU-friendly settings below except where completeness is the point.
"""
from __future__ import annotations

import copy
import dataclasses
import pathlib

import altair as alt
import numpy as np
import pytest
from streamlit_browser import (
    ARTIFACTS,
    browser_page,
    full_screenshot,
    open_page,
    require_chromium,
    streamlit_server,
    use_fast_settings,
    wait_idle,
)

from dashboard.renderers import colours
from dashboard.renderers import language as language_views
from dashboard.renderers.completeness import completeness_verdict
from dashboard.renderers.markdown import escape_markdown
from families.language import DEFAULT_CHECKPOINT, TextError, load_language_model, next_words
from families.language import attribution as language_attribution
from ig_core import AttributionEngine, ScanSettings

ROOT = pathlib.Path(__file__).resolve().parents[1]

FAST = ScanSettings(rule="trapezoid", steps=8)  # plumbing, not accuracy
PAPER_TEXT, PAPER_TARGET = "the shareholders claimed more", "than"


@pytest.fixture(scope="module")
def lm():
    return load_language_model(DEFAULT_CHECKPOINT)


@pytest.fixture(scope="module")
def engine():
    return AttributionEngine()


@pytest.fixture(scope="module")
def paper_result(engine, lm):
    return language_attribution.explain_next_word(engine, lm, PAPER_TEXT, [PAPER_TARGET], ScanSettings())


# --- attribution ----------------------------------------------------------------------------------------

def test_paper_example_is_complete_and_points_at_more(paper_result):
    r = paper_result
    assert r.words == ["the", "shareholders", "claimed", "more"] and r.target_names == ["than"]
    gap = r.probability[0] - r.baseline_probability[0]
    assert r.probability[0] > 0.5 and r.baseline_probability[0] < 1e-3
    assert abs(r.word_attributions[0].sum() - gap) <= 0.01 * abs(gap)  # completeness, within 1%
    assert r.relative_delta[0] <= 0.01 and r.completeness_ok
    # Figure 9: integrated gradients credit "more" most; the gradient at the text is tiny there (saturation)
    assert int(np.argmax(r.word_attributions[0])) == 3
    assert abs(r.gradient_x_input[0, 3]) < 0.05 * r.word_attributions[0, 3]
    # the saturation curve runs from F(baseline) to F(text); interior gradients at every alpha
    assert r.alphas[0] == 0 and r.alphas[-1] == 1
    assert (np.isclose(r.saturation[0, 0], r.baseline_probability[0])
            and np.isclose(r.saturation[-1, 0], r.probability[0]))
    assert r.interior_gradient_x_input.shape == (len(r.alphas), 1, 4)
    np.testing.assert_allclose(r.interior_gradient_x_input[-1], r.gradient_x_input, rtol=1e-6, atol=1e-9)


def test_several_targets_in_one_scan_equal_single_runs(engine, lm):
    engine.clear_cache()
    both = language_attribution.explain_next_word(engine, lm, PAPER_TEXT, ["than", "of"], FAST)
    assert both.target_names == ["than", "of"]
    for t, target in enumerate(both.target_names):
        one = language_attribution.explain_next_word(engine, lm, PAPER_TEXT, [target], FAST)
        np.testing.assert_allclose(both.word_attributions[t], one.word_attributions[0], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(both.gradient_x_input[t], one.gradient_x_input[0], rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(both.saturation[:, t], one.saturation[:, 0], rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(both.interior_gradient_sum[:, t], one.interior_gradient_sum[:, 0],
                                   rtol=1e-5, atol=1e-8)
        assert both.probability[t] == pytest.approx(one.probability[0], rel=1e-5)


def test_default_target_is_the_top_word(engine, lm):
    top = next_words.top_k_next_words(lm, PAPER_TEXT, 5)
    assert len(top) == 5 and top[0][0] == "than" and top[0][1] > top[1][1]
    assert sum(p for _, p in top) <= 1.0
    r = language_attribution.explain_next_word(engine, lm, PAPER_TEXT, None, FAST)
    assert r.target_names == ["than"] and r.probability[0] == pytest.approx(top[0][1], rel=1e-4)


def test_table_frame_has_a_column_per_word_and_both_rows(paper_result):
    frame = language_views.token_frame(paper_result)
    words = language_views.word_columns(paper_result.words)
    assert words == ["1 the", "2 shareholders", "3 claimed", "4 more"]
    assert list(frame["row"]) == [language_views.IG_ROW, language_views.GRADIENT_ROW]
    assert all(c in frame.columns for c in words)
    np.testing.assert_allclose(frame.loc[0, words].to_numpy(float), paper_result.word_attributions[0])
    np.testing.assert_allclose(frame.loc[1, words].to_numpy(float), paper_result.gradient_x_input[0])
    assert frame.loc[0, "F"] == "P(than | text)"
    assert frame.loc[0, "F(text)"] == pytest.approx(paper_result.probability[0])
    assert frame.loc[0, "sum over words"] == pytest.approx(paper_result.total_attribution[0])
    csv = frame.to_csv(index=False)
    assert csv.splitlines()[0].startswith("target,row,1 the,2 shareholders,3 claimed,4 more,")
    # the charts build (vega-lite specs) and carry the words and the caption of Figure 9
    spec = language_views.token_table_chart(paper_result, "than").to_dict()
    assert "Prediction for than: P(than | text) = " in str(spec) and "4 more" in str(spec)
    for chart in (language_views.token_table_chart(paper_result, "than", shared_scale=False),
                  language_views.saturation_chart(paper_result),
                  language_views.interior_gradient_heatmap(paper_result, "than", "gradient")):
        chart.to_dict()
    interior = language_views.interior_frame(paper_result, "than")
    assert len(interior) == len(paper_result.alphas) * 4 and (interior.alpha_hi >= interior.alpha_lo).all()


def vega_colour(scale: dict, value: float) -> np.ndarray:
    """The colour Vega gives a value on a piecewise scale interpolated in RGB, as RGB in [0, 1]."""
    assert scale["interpolate"] == "rgb" and scale["clamp"] is True
    rgb = np.array([[int(c[k:k + 2], 16) for k in (1, 3, 5)] for c in scale["range"]]) / 255
    return np.array([np.interp(value, scale["domain"], rgb[:, c]) for c in range(3)])


@pytest.mark.parametrize("shared_scale", [True, False])
def test_a_raising_word_is_red_as_in_the_molecule_drawings_with_its_legend(paper_result, shared_scale):
    chart = language_views.token_table_chart(paper_result, "than", shared_scale=shared_scale)
    cells = chart.to_dict()
    colour = cells["layer"][0]["encoding"]["color"]
    frame = chart.layer[0].data if chart.layer[0].data is not alt.Undefined else chart.data
    values = frame["colour"].to_numpy()
    vmax = float(np.abs(values).max())
    assert colour["scale"]["domain"] == pytest.approx([-vmax, 0.0, vmax])
    assert colour["legend"]["values"] == colour["scale"]["domain"]  # the legend's numbers are the scale
    assert f"+{vmax:.3g} raises F" in colour["legend"]["labelExpr"]
    raising, lowering = values.max(), values.min()
    assert raising > 0 > lowering  # "more" raises P(than); some word lowers it
    for value in (raising, lowering, 0.5 * raising):
        # the molecule drawings' colour of the same value on the same scale (dashboard.renderers.molecules)
        assert vega_colour(colour["scale"], value) == pytest.approx(colours.signed_colour(value, vmax), abs=1 / 255)
    red, blue = vega_colour(colour["scale"], raising), vega_colour(colour["scale"], lowering)
    assert red[0] > red[2] and blue[2] > blue[0]


def test_the_interior_heat_map_is_on_the_signed_scale(paper_result):
    chart = language_views.interior_gradient_heatmap(paper_result, "than", "gradient")
    colour = chart.to_dict()["encoding"]["color"]
    vmax = float(np.abs(chart.data["value"]).max())
    assert colour["scale"]["domain"] == pytest.approx([-vmax, 0.0, vmax])
    assert colour["scale"]["range"] == [colours.hex_colour(colours.NEGATIVE), "#ffffff",
                                        colours.hex_colour(colours.POSITIVE)]


def test_comparison_of_two_targets(engine, lm):
    r = language_attribution.explain_next_word(engine, lm, PAPER_TEXT, ["than", "of"], FAST)
    frame = language_views.comparison_frame(r, "than", "of")
    assert list(frame.columns) == ["word", "IG for 'than'", "IG for 'of'", "difference"] and len(frame) == 4
    language_views.comparison_chart(r, "than", "of").to_dict()
    assert len(language_views.token_frame(r)) == 4  # two rows per target


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("   \n ", "empty"), ("!!! ??? ...", "only punctuation"),
    ("qwzxv blorptastic", "None of the words"), ("Привет мир", "other languages or scripts"),
    ("\U0001F600 \U0001F389", "no letters or digits"),
])
def test_unusable_text_raises_a_clear_error(engine, lm, text, message):
    with pytest.raises(TextError, match=message):
        language_attribution.explain_next_word(engine, lm, text, None, FAST)


def test_tokenization_notices(lm):
    digits = next_words.tokenize_text(lm, "1990 2,000 3.5")
    assert digits.texts == ["N", "N", "N"] and not digits.notices
    assert all("number -> N" in w.notes for w in digits.words)
    mixed = next_words.tokenize_text(lm, "the 市场 rose sharply")
    assert mixed.texts == ["the", "<unk>", "rose", "sharply"]
    assert any("non-Latin" in n for n in mixed.notices) and mixed.unknown_words == ["市场"]
    long = next_words.tokenize_text(lm, " ".join(["the market fell"] * 3400))  # 10,200 words
    assert len(long) == next_words.MAX_CONTEXT
    assert long.dropped_tokens == 10_200 - next_words.MAX_CONTEXT
    assert any(f"only the last {next_words.MAX_CONTEXT}" in n for n in long.notices)
    assert next_words.top_k_next_words(lm, long, 3)[0][1] > 0
    paper = next_words.tokenize_text(lm, "and N minutes after the ual trading halt")
    assert paper.texts[1] == "N" and not paper.notices  # the Treebank's own N, as the paper types it


def text_verdict(r):
    """The verdict of the page's completeness panel (dashboard.scaffold.completeness_panel, what="text")."""
    a = r.attribution
    return completeness_verdict(r.relative_delta, r.settings.tolerance, a.rule, a.steps_used, r.settings.max_steps,
                                r.nothing_per_target(), a.nonfinite, a.message, what="text", baseline_choice=False)


def test_completeness_verdict_of_a_text(engine, lm, paper_result):
    assert text_verdict(paper_result).level == "success"
    missed = copy.copy(paper_result)
    missed.attribution = dataclasses.replace(paper_result.attribution, relative_delta=np.array([[0.2]]),
                                             rule="trapezoid", steps_used=8)
    verdict = text_verdict(missed)
    assert verdict.level == "warning" and "F(text) - F(baseline)" in verdict.text and "adaptive" in verdict.text
    flat = dataclasses.replace(lm, model=copy.deepcopy(lm.model))
    flat.model.decoder.weight.zero_()  # every next word's probability is the same for any context
    r = language_attribution.explain_next_word(engine, flat, PAPER_TEXT, ["than", "of"], FAST)
    assert r.nothing_to_attribute.tolist() == [True, True] and r.completeness_ok  # passed on from the engine
    verdict = text_verdict(r)
    assert verdict.level == "info" and "nothing to attribute" in verdict.text
    assert "another baseline" not in verdict.text  # the page has no baseline to choose


def test_unknown_target_word_is_rejected(engine, lm):
    with pytest.raises(TextError, match="not in the model's 10,000-word vocabulary"):
        language_attribution.explain_next_word(engine, lm, PAPER_TEXT, ["thanx"], FAST)
    assert next_words.resolve_targets(lm, ["Than", "than"]) == (["than"], [lm.vocab.index["than"]])


# --- the page in AppTest ----------------------------------------------------------------------------------

def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def test_page_from_text_to_table(tmp_path):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = FAST
    at.run()
    at.switch_page("dashboard/pages/language.py").run()
    assert not at.exception, _texts(at.exception)
    assert any("press Explain" in i for i in _texts(at.info))
    # the paper's first example, one click
    at.button(key="lang_example_0").click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    heads = _texts(at.subheader)
    for n in range(1, 7):
        assert any(h.startswith(f"{n}. ") for h in heads), heads
    assert any("`the` `shareholders` `claimed` `more`" in m for m in _texts(at.markdown))
    assert len(at.get("vega_lite_chart")) == 3  # table, saturation, interior gradients
    assert any(w.label.startswith("Download the table") for w in at.get("download_button"))
    assert at.warning or at.success  # completeness is always reported
    # own text with a second target: one scan, side-by-side comparison
    at.text_area(key="lang_text").set_value("the company said N of its shares rose")
    at.selectbox(key="lang_target").set_value("(most probable next word)")
    at.selectbox(key="lang_second").set_value("to")
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert any(h.startswith("7. ") for h in _texts(at.subheader))
    assert len(at.get("vega_lite_chart")) == 4
    # view controls rerun only their fragment
    at.toggle(key="lang_shared_scale").set_value(False).run()
    at.radio(key="lang_interior_quantity").set_value("gradient").run()
    assert not at.exception and len(at.get("vega_lite_chart")) == 4
    # the paper's second example, and a 10,000-word text (cut to the last words, with a notice)
    at.button(key="lang_example_1").click().run()
    assert not at.exception and not at.error
    assert any("`that` `the`" in m for m in _texts(at.markdown))
    assert not any(h.startswith("7. ") for h in _texts(at.subheader))  # one target: no comparison
    # the completeness row for "ual"
    assert any(str(t).startswith("ual (") for d in at.dataframe for t in d.value.get("target", []))
    at.text_area(key="lang_text").set_value(" ".join(["the market fell"] * 3400))
    at.selectbox(key="lang_second").set_value("(none)")
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and not at.error
    assert any(f"only the last {next_words.MAX_CONTEXT}" in w for w in _texts(at.warning))
    # bad input: a clear message, no traceback
    at.text_area(key="lang_text").set_value("!!! ???")
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception
    assert any("only punctuation" in e for e in _texts(at.error))
    at.text_area(key="lang_text").set_value("Привет мир")
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and any("other languages or scripts" in e for e in _texts(at.error))


def test_page_reports_emoji_and_the_completeness_verdict():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = FAST
    at.run()
    at.switch_page("dashboard/pages/language.py").run()
    at.button(key="lang_example_0").click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert any("F(text) - F(baseline)" in v for v in _texts(at.success) + _texts(at.warning))
    at.text_area(key="lang_text").set_value("\U0001F600 \U0001F389")
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception
    errors = _texts(at.error)
    assert any("no letters or digits" in e for e in errors) and not any("punctuation" in e for e in errors), errors


# --- the page in a real browser ------------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path, shared_data):
    require_chromium()
    with streamlit_server(tmp_path, IG_DATA_DIR=str(shared_data)) as url:
        yield url


def test_browser_text_to_table_and_charts(server):
    from playwright.sync_api import expect

    with browser_page("language") as page:
        page.goto(server)
        main = page.locator("[data-testid='stMain']")
        expect(main.get_by_text("Quadrature rule")).to_be_visible()
        open_page(page, "Language")
        expect(main.get_by_text("Language: which words drive the next word")).to_be_visible()
        box = main.get_by_role("textbox", name="Text: the words before the one to predict")
        box.fill(PAPER_TEXT)
        expect(box).to_have_value(PAPER_TEXT)
        main.get_by_role("button", name="Explain", exact=True).click()
        expect(main.get_by_text("3. Word scores (Figures 9 and 10)")).to_be_visible(timeout=180_000)
        expect(main.get_by_text("6. Interior gradients")).to_be_visible()
        page.wait_for_load_state("networkidle")
        charts = main.locator("[data-testid='stVegaLiteChart']")
        expect(charts).to_have_count(3)
        for i in range(charts.count()):
            charts.nth(i).scroll_into_view_if_needed()
            expect(charts.nth(i).locator("canvas, svg").first).to_be_visible()
        expect(main.get_by_text("Context (4 tokens):")).to_be_visible()
        # dashboard.renderers.completeness
        expect(main.get_by_text("add up to F(text) - F(baseline)", exact=False)).to_be_visible()
        assert main.locator("[data-testid='stException']").count() == 0
        assert main.locator("[data-testid='stAlertContentError']").count() == 0
        full_screenshot(page, "language.png")
    assert (ARTIFACTS / "language.png").stat().st_size > 30_000


# --- own checkpoints in the models folder -----------------------------------------------------------------

@pytest.fixture(scope="module")
def own_models(tmp_path_factory):
    """A models folder whose language/ holds a tiny model trained on an own corpus and a file that is not one."""
    import torch
    from test_language_train import write_corpus

    from families.language.train import train

    root = tmp_path_factory.mktemp("own_models")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    train(root / "language" / "animals.pt", config="tiny", epochs=2, train_file=write_corpus(root / "t.txt", 1000, 0),
          valid_file=write_corpus(root / "v.txt", 100, 1), vocab_size=30, log=lambda msg: None)
    torch.set_num_threads(before)
    (root / "language" / "notes.pt").write_text("not a checkpoint")
    return root


def test_page_offers_own_checkpoints_by_name(own_models, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IG_MODELS_DIR", str(own_models))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = FAST
    at.run()
    at.switch_page("dashboard/pages/language.py").run()
    assert not at.exception, _texts(at.exception)
    choice = at.selectbox(key="language_model")
    assert choice.options == ["small.pt (default)", "shipped: ptb_gpt2", "animals.pt", "notes.pt",
                              "upload a model file..."]  # names only
    assert any("10,000-word vocabulary" in c for c in _texts(at.sidebar.caption))
    # the own model: its vocabulary in the form and the sidebar, the paper's examples (PTB words) not offered
    choice.set_value("animals.pt").run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert any("the text t.txt; 23-word vocabulary" in c for c in _texts(at.sidebar.caption))
    assert len(at.selectbox(key="lang_target").options) == 24  # the top word, then the 23 words
    assert not any(b.key.startswith("lang_example") for b in at.button)
    at.text_area(key="lang_text").set_value("The big cat eats the")
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert any("`the` `big` `cat` `eats` `the`" in m for m in _texts(at.markdown))
    assert at.dataframe[1].value["word"][0] == "fish"  # top next words
    # a file that is not a checkpoint: a clear message naming the file only, and the choice stays
    at.selectbox(key="language_model").set_value("notes.pt").run()
    assert not at.exception
    errors = _texts(at.error)
    assert any("notes.pt cannot be used" in e and "is not a PyTorch" in e and "weights_only" in e
               for e in errors), errors
    assert not any(str(own_models) in e for e in errors + _texts(at.info))
    assert not any(h.startswith("1. ") for h in _texts(at.subheader))  # the other model's result is not shown
    # back to the default model: the paper's examples again, the own model's result gone
    at.selectbox(key="language_model").set_value("small.pt (default)").run()
    assert not at.exception and not at.error and at.button(key="lang_example_0")
    assert not any(h.startswith("1. ") for h in _texts(at.subheader))


def test_an_uploaded_checkpoint_explains(own_models):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = FAST
    at.run()
    at.switch_page("dashboard/pages/language.py").run()
    at.selectbox(key="language_model").set_value("upload a model file...").run()
    data = (own_models / "language" / "animals.pt").read_bytes()
    at.sidebar.file_uploader(key="language_model_upload").set_value(("mine.pt", data, "application/octet-stream")).run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert any("23-word vocabulary" in c for c in _texts(at.sidebar.caption))
    at.text_area(key="lang_text").set_value("The big cat eats the")
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert at.dataframe[1].value["word"][0] == "fish"


def test_page_runs_other_methods_offers_those_that_apply_and_compares_them():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = FAST.with_method("expected_gradients")  # no references for text
    at.run()
    at.switch_page("dashboard/pages/language.py").run()
    at.button(key="lang_example_0").click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert any("Expected gradients draws its baselines" in w and "ships no texts" in w for w in _texts(at.warning))
    offered = at.selectbox(key="language_method_here")
    assert "Expected gradients" not in offered.options and "XRAI (regions)" not in offered.options
    assert "Gradient (saliency)" in offered.options and offered.value == "integrated_gradients"
    assert any(h.startswith("3. Word scores (Figures") for h in _texts(at.subheader))
    offered.set_value("gradient").run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    heads = _texts(at.subheader)
    assert "3. Word scores: Gradient (saliency)" in heads and not any(h.startswith("5. ") for h in heads)
    assert any(i.startswith("Gradient (saliency) defines no completeness") for i in _texts(at.info))
    assert any("straight-line scan of integrated gradients" in c for c in _texts(at.caption))
    at.multiselect(key="lang_compare_methods").set_value(["integrated_gradients", "smoothgrad"])
    [compare] = [b for b in at.button if b.label == "Compare"]
    compare.click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    tables = [d.value for d in at.dataframe]
    side = next(t for t in tables if list(t.index) == ["Integrated gradients", "SmoothGrad"])
    assert [c.split(" ", 1)[1] for c in side.columns] == PAPER_TEXT.split()
    agreement = next(t for t in tables if "Spearman (all features)" in t.columns)
    assert len(agreement) == 1 and agreement["k"].iloc[0] == 3  # four words: the top three compared
    completeness = next(t for t in tables if "relative error (%)" in t.columns)
    assert list(completeness.completeness) == ["F(input) - F(baseline)", "not defined"]


# --- what the page shows after a change of text or model ------------------------------------------------------

def _language_page(settings: ScanSettings = FAST):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = settings
    at.run()
    at.switch_page("dashboard/pages/language.py").run()
    assert not at.exception, _texts(at.exception)
    return at


def _explain_text(at, text: str):
    at.text_area(key="lang_text").set_value(text)
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)


def _explained_targets(at) -> list[str]:
    """The words of the completeness table's rows ("than (55)" -> "than"): the targets the page explained."""
    [table] = [d.value for d in at.dataframe if "relative delta (%)" in d.value.columns]
    return [str(target).rsplit(" (", 1)[0] for target in table["target"]]


def test_a_new_text_explains_its_own_top_word_not_the_target_of_an_example():
    at = _language_page()
    at.button(key="lang_example_0").click().run()
    assert _explained_targets(at) == ["than"]
    third = "the company said it expects to report a loss for the third"
    _explain_text(at, third)
    assert _explained_targets(at) == ["quarter"]  # its most probable next word, not the example's "than"
    assert at.selectbox(key="lang_target").value == "(most probable next word)"
    # a target picked for this text stays with it; picked together with a new text, it is that text's
    at.selectbox(key="lang_target").set_value("year")
    _explain_text(at, third)
    assert _explained_targets(at) == ["year"]
    at.selectbox(key="lang_target").set_value("of")
    _explain_text(at, PAPER_TEXT)
    assert _explained_targets(at) == ["of"]
    # nor does a second word picked for another text
    at.selectbox(key="lang_second").set_value("to")
    _explain_text(at, PAPER_TEXT)
    assert _explained_targets(at) == ["of", "to"]
    _explain_text(at, third)
    assert _explained_targets(at) == ["quarter"]


def test_a_rather_than_word_explains_the_difference_of_two_log_probabilities():
    at = _language_page()
    at.text_area(key="lang_text").set_value("the company said the report")
    at.selectbox(key="lang_target").set_value("is")
    at.selectbox(key="lang_rather_than").set_value("are")
    _explain_text(at, "the company said the report")
    assert _explained_targets(at) == ["is rather than are"]
    f = escape_markdown("log P(is | text) - log P(are | text)")  # as the caption's markdown writes it
    assert any(f in caption for caption in _texts(at.caption))
    assert at.query_params["rather_than"] == "are"
    # compared methods explain the same contrast: integrated gradients' law is the page's F(text) - F(baseline)
    at.multiselect(key="lang_compare_methods").set_value(["integrated_gradients", "gradient"])
    [compare] = [b for b in at.button if b.label == "Compare"]
    compare.click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    [table] = [d.value for d in at.dataframe if "law's value" in d.value.columns]
    contrast = language_attribution.explain_next_word(AttributionEngine(), load_language_model(DEFAULT_CHECKPOINT),
                                                      "the company said the report", ["is"], FAST, rather_than="are")
    assert table["law's value"][0] == f"{contrast.probability[0] - contrast.baseline_probability[0]:.4g}"  # as shown
    # a word rather than itself: a clear message, no scan
    at.selectbox(key="lang_rather_than").set_value("is")
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and any("explains nothing" in e for e in _texts(at.error)), _texts(at.error)
    # a contrast picked for another text is not carried over to a new one
    at.selectbox(key="lang_rather_than").set_value("are")
    _explain_text(at, "the company said the report")
    _explain_text(at, PAPER_TEXT)
    assert _explained_targets(at) == ["than"] and at.selectbox(key="lang_rather_than").value == "(none)"
    assert "rather_than" not in at.query_params


def test_the_form_still_names_the_explained_text_after_another_page():
    at = _language_page()
    at.button(key="lang_example_0").click().run()
    at.switch_page("dashboard/pages/home.py").run()
    at.switch_page("dashboard/pages/language.py").run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert _explained_targets(at) == ["than"]
    assert at.text_area(key="lang_text").value == PAPER_TEXT and at.selectbox(key="lang_target").value == "than"


def test_a_scan_cut_short_is_not_finished_by_the_model_chosen_meanwhile(own_models, monkeypatch):
    """A click during a scan reruns the page and stops the scan: after a click on another model, that model must not
    read the previous model's tokens."""
    import streamlit as st

    monkeypatch.setenv("IG_MODELS_DIR", str(own_models))
    at = _language_page()
    explain_next_word = language_attribution.explain_next_word
    monkeypatch.setattr(language_attribution, "explain_next_word", lambda *args, **kwargs: st.stop())
    at.text_area(key="lang_text").set_value(PAPER_TEXT)
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    monkeypatch.setattr(language_attribution, "explain_next_word", explain_next_word)
    at.selectbox(key="language_model").set_value("animals.pt").run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert not any(h.startswith("1. ") for h in _texts(at.subheader))
    assert any("press Explain" in i for i in _texts(at.info))


def test_a_stopped_refinement_keeps_its_note_and_button_when_the_page_reruns(monkeypatch):
    import streamlit as st

    explain_next_word = language_attribution.explain_next_word

    def cut_after_the_first_round(*args, partial, **kwargs):  # as the rerun of a click during the scan cuts it
        def first_round(explanation):
            partial(explanation)
            st.stop()
        return explain_next_word(*args, partial=first_round, **kwargs)

    at = _language_page(ScanSettings(steps=4))
    monkeypatch.setattr(language_attribution, "explain_next_word", cut_after_the_first_round)
    at.button(key="lang_example_0").click().run()
    monkeypatch.setattr(language_attribution, "explain_next_word", explain_next_word)
    at.button(key="language_stop").click().run()
    for _ in range(2):  # the run of the click on Stop, then any later run
        assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
        assert any(i.startswith("Refinement stopped") for i in _texts(at.info)) and at.button(key="language_resume")
        assert _explained_targets(at) == ["than"]
        at.run()

def _main_position(at, label: str) -> int:
    """Where the expander sits among the page's elements: the browser keeps an element's state (an expander the
    user opened) while the element keeps its place from one run of the page to the next."""
    [position] = [i for i, node in at.main.children.items() if getattr(node, "label", None) == label]
    return position


def test_page_elements_keep_their_places_when_the_page_reruns_without_a_new_scan():
    at = _language_page(ScanSettings(steps=8))  # the adaptive rule: its Stop button and picture while it refines
    at.button(key="lang_example_0").click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    places = _main_position(at, "Compare methods")
    at.multiselect(key="lang_compare_methods").set_value(["integrated_gradients", "gradient"])
    [compare] = [b for b in at.button if b.label == "Compare"]
    compare.click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert any("Spearman (all features)" in d.value.columns for d in at.dataframe)
    assert _main_position(at, "Compare methods") == places


def test_browser_compare_methods_stays_open_with_the_comparison(server):
    from playwright.sync_api import expect

    with browser_page("language-compare") as page:
        page.goto(server)
        use_fast_settings(page)
        open_page(page, "Language")
        main = page.locator("[data-testid='stMain']")
        main.get_by_role("button").filter(has_text="Figure 9").click()
        expect(main.get_by_text("3. Word scores (Figures 9 and 10)")).to_be_visible()
        wait_idle(page)
        compare = main.locator("[data-testid='stExpander']").filter(has_text="Compare methods")
        compare.get_by_text("Compare methods").click()
        compare.get_by_role("button", name="Compare", exact=True).click()
        wait_idle(page)
        expect(compare.get_by_text("Rank agreement", exact=False)).to_be_visible()
        expect(compare.locator("[data-testid='stDataFrame']").first).to_be_visible()


def test_browser_the_shipped_transformer_explains_word_by_word(server):
    """The second shipped model, a GPT-2 trained here on Penn Treebank (a model folder read through its token
    embeddings): chosen in the sidebar, it explains the paper's text with the same sections and completeness."""
    from playwright.sync_api import expect

    with browser_page("language-transformer") as page:
        page.goto(server)
        main, sidebar = page.locator("[data-testid='stMain']"), page.locator("[data-testid='stSidebar']")
        expect(main.get_by_text("Quadrature rule")).to_be_visible()  # the default settings: the adaptive rule to 1%
        open_page(page, "Language")
        expect(main.get_by_text("Language: which words drive the next word")).to_be_visible()
        wait_idle(page)
        sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Model").click()
        page.get_by_role("option", name="shipped: ptb_gpt2", exact=True).click()
        wait_idle(page)
        expect(sidebar.get_by_text("shipped: ptb_gpt2: 10000 targets", exact=False)).to_be_visible()
        box = main.get_by_role("textbox", name="Text: the words before the one to predict")
        box.fill(PAPER_TEXT)
        expect(box).to_have_value(PAPER_TEXT)
        main.get_by_role("button", name="Explain", exact=True).click()
        expect(main.get_by_text("3. Word scores (Figures 9 and 10)")).to_be_visible(timeout=180_000)
        expect(main.get_by_text("Context (4 tokens):")).to_be_visible()
        expect(main.get_by_text("add up to F(text) - F(baseline)", exact=False)).to_be_visible()
        assert main.locator("[data-testid='stException']").count() == 0
        assert main.locator("[data-testid='stAlertContentError']").count() == 0
        full_screenshot(page, "language-transformer.png")
