"""A language run's windows: the statistics (families.language.run_rows) on hand-made rows, a store of 60 Penn Treebank
windows made by the dataset command, the page in AppTest, and the page in a real browser down to a window opened
on the Language page."""
from __future__ import annotations

import math
import pathlib

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit_browser import (
    ARTIFACTS,
    browser_page,
    full_screenshot,
    open_page,
    require_chromium,
    streamlit_server,
    wait_idle,
)

from dashboard.renderers import language_runs as language_runs_views
from families.config import RUNS_DIR
from families.language import attribution as language_attribution
from families.language import load_language_model
from families.language import run_rows as language_runs
from families.language.collection import TextWindows
from families.language.explanation import word_columns
from families.language.next_words import tokenize_text
from families.language.ptb import Vocabulary, read_words, window_tokens
from families.registry import FAMILIES
from ig_core import AttributionEngine, ScanSettings
from runs import store
from runs.runner import main as run_dataset

ROOT = pathlib.Path(__file__).resolve().parents[1]

WINDOW, LIMIT = 20, 60
RUN_SETTINGS = ScanSettings(rule="gauss-legendre", steps=4)
# the run explained 16 windows per engine call, the Language page one: float32 reductions in another order, a few
# hundred operations of 2**-24 each relative to the terms (as tests/test_run_dataset.py)
BATCH_RTOL = 1e-5
EPS64 = np.finfo(np.float64).eps


def dataset_args(data: pathlib.Path, out: pathlib.Path, targets: str = "next_word", limit: int = LIMIT) -> list[str]:
    return ["--family", "language", "--input", str(data / "ptb" / "ptb.test.txt"), "--targets", targets,
            "--text-format", "tokens", "--window", str(WINDOW), "--limit", str(limit), "--rule", "gauss-legendre",
            "--steps", "4", "--quiet", "--out", str(out)]


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    """A runs folder: 60 windows explained for their next word, 20 for the model's top word, and a vision run's
    manifest (not a language run)."""
    folder = tmp_path_factory.mktemp("runs")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores: more threads than cores slow a scan ten-fold
    try:
        assert run_dataset(dataset_args(shared_data, folder / "ptb-next")) == 0
        assert run_dataset(dataset_args(shared_data, folder / "ptb-top", "predicted", 20)) == 0
    finally:
        torch.set_num_threads(before)
    vision = folder / "photos"
    store.open_run(vision, {"format": store.FORMAT, "version": store.VERSION, "job": {"family": "vision"}}, ())
    store.write_shard(vision, 0, [{"item_index": 0, "item_id": "a.jpg", "status": "refused", "error": "unreadable"}])
    return folder


@pytest.fixture
def contrast_run(shared_data, tmp_path, one_thread) -> pathlib.Path:
    """12 windows, each explained for the model's top word rather than the next word where they differ."""
    folder = tmp_path / "ptb-contrast"
    assert run_dataset(dataset_args(shared_data, folder, "contrast", 12)) == 0
    return folder


@pytest.fixture(scope="module")
def lm():
    return load_language_model()


def table_of(folder: pathlib.Path, vocabulary) -> pd.DataFrame:
    return language_runs.window_table(store.read(folder, columns=language_runs.COLUMNS).to_pandas(), vocabulary)


# --- the statistics on hand-made rows -------------------------------------------------------------------------

def test_surprise_is_minus_log2_of_the_probability():
    # exact powers of 2
    assert language_runs.surprise_bits([1.0, 0.5, 0.125, 2.0 ** -20]).tolist() == [0.0, 1.0, 3.0, 20.0]
    assert language_runs.surprise_bits([0.0])[0] == math.inf and math.isnan(language_runs.surprise_bits([math.nan])[0])


def test_last_word_shares():
    shares = language_runs.last_word_shares([[1.0, 2.0, 1.0], [0.5, -1.5, 3.0], [2.0, -1.0], [1.0, -1.0], [], None,
                                              [3.0, -2.9], [-2.0, 1.85]])
    assert list(shares[:3]) == [0.25, 1.5, -1.0]  # words pulling both ways: above 1, below 0
    assert np.isnan(shares[3:7]).all()  # a zero sum, no scores; a sum of 0.1 is under 2% of the words' 5.9
    assert shares[7] == pytest.approx(1.85 / -0.15)  # 0.15 is over 2% of 3.85: a share, however large


def test_disagreement_is_one_minus_spearman():
    got = language_runs.disagreements(
        [[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 2.0], [1.0, 2.0, 3.0],
         [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]],
        [[1.0, 5.0, 7.0, 9.0], [9.0, 7.0, 5.0, 1.0], [1.0, 3.0, 2.0, 4.0], [1.0, 2.0, 3.0], None, [1.0, 1.0, 1.0],
         [1.0, 2.0]])
    assert got[0] == 0.0 and got[1] == 2.0  # the same ranking; reversed
    # one swapped pair: rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 12 / 60
    assert got[2] == pytest.approx(0.2, abs=8 * EPS64)
    # ties share their mean rank: ranks (1.5, 1.5, 3) and (1, 2, 3), rho = 1.5 / sqrt(1.5 * 2)
    assert got[3] == pytest.approx(1 - math.sqrt(0.75), abs=8 * EPS64)
    assert np.isnan(got[4:]).all()  # none stored, constant, another length


def test_distance_profile_lines_windows_up_by_their_last_word():
    windows = [[1.0, 2.0, 3.0], [4.0, 5.0], [1.0, -1.0], None, []]
    profile = language_runs.distance_profile(windows)
    assert profile["distance"].tolist() == [1, 2, 3] and profile["windows"].tolist() == [3, 3, 1]
    # distance 1: 3, 5, -1; distance 2: 2, 4, 1; distance 3: 1
    np.testing.assert_allclose(profile["mean"], [7 / 3, 7 / 3, 1.0], rtol=4 * EPS64)
    # standard errors: sqrt(sum (x - mean)^2 / (n - 1) / n); one window has none
    np.testing.assert_allclose(profile["sem"][:2], [math.sqrt((4 + 64 + 100) / 9 / 2 / 3),
                                                    math.sqrt((1 + 25 + 16) / 9 / 2 / 3)], rtol=8 * EPS64)
    assert math.isnan(profile["sem"][2])
    shares = language_runs.distance_profile(windows, normalise=True)  # [1, -1] sums to 0: left out
    assert shares["windows"].tolist() == [2, 2, 1]
    np.testing.assert_allclose(shares["mean"], [(1 / 2 + 5 / 9) / 2, (1 / 3 + 4 / 9) / 2, 1 / 6], rtol=4 * EPS64)
    empty = language_runs.distance_profile([None])
    assert empty.empty and list(empty.columns) == ["distance", "mean", "sem", "windows"]
    language_runs_views.distance_chart(profile).to_dict()


VOCABULARY = ["<unk>", "<eos>", "N", "the", "cat", "sat", "on", "mat"]


def hand_made_rows() -> pd.DataFrame:
    """Three windows of two words: explained for the truth (twice) and refused once."""
    return pd.DataFrame({
        "item_index": [0, 1, 2], "item_id": ["tokens 0-2", "tokens 2-4", "tokens 4-6"],
        "source": ["the cat", "sat on", "<eos> N"], "status": ["explained", "explained", "refused"],
        "target": [5, 3, None], "target_name": ["sat", "the", None], "rather_than": [None, None, None],
        "chosen_as": ["next_word", "next_word", None],
        "truth": [5, 3, None], "predicted": [5, 7, None], "truth_rank": [1, 4, None],
        "probability": [0.5, 0.03125, None], "relative_delta": [0.002, 0.03, None],
        "scores": [np.array([0.1, 0.3]), np.array([0.4, -0.2]), None],
        "gradient_scores": [np.array([0.0, 0.1]), np.array([0.0, 0.2]), None]})


def test_window_table_of_hand_made_rows():
    rows = hand_made_rows()
    assert list(rows.columns) == language_runs.COLUMNS
    table = language_runs.window_table(rows, VOCABULARY)
    assert table["item_id"].tolist() == ["tokens 0-2", "tokens 2-4"]  # the refused window is left out
    assert table["next_word"].tolist() == ["sat", "the"] and table["top_word"].tolist() == ["sat", "mat"]
    assert table["surprise_bits"].tolist() == [1.0, 5.0]
    assert table["last_word_share"].tolist() == [0.3 / (0.1 + 0.3), -0.2 / (0.4 - 0.2)]
    assert table["disagreement"].tolist() == [0.0, 2.0]
    # without the vocabulary: the words the rows name, else the id
    assert language_runs.window_table(rows)["top_word"].tolist() == ["sat", "#7"]


def test_windows_sorted_and_filtered_by_word():
    table = language_runs.window_table(hand_made_rows(), VOCABULARY)
    assert language_runs.sort_windows(table, "surprise")["item_id"].tolist() == ["tokens 2-4", "tokens 0-2"]
    assert (language_runs.sort_windows(table, "surprise", ascending=True)["item_id"].tolist()
            == ["tokens 0-2", "tokens 2-4"])
    assert language_runs.sort_windows(table, "last word's share")["item_id"].tolist() == ["tokens 0-2", "tokens 2-4"]
    assert (language_runs.sort_windows(table, "IG vs gradient disagreement")["item_id"].tolist()
            == ["tokens 2-4", "tokens 0-2"])
    unknown = table.assign(disagreement=[math.nan, 2.0])  # no gradient stored: last, whichever the order
    assert (language_runs.sort_windows(unknown, "IG vs gradient disagreement", ascending=True)["item_id"].tolist()[-1]
            == "tokens 0-2")

    assert language_runs.with_word(table, " ON ")["item_id"].tolist() == ["tokens 2-4"]
    assert language_runs.with_word(table, "on", "as the next word").empty
    assert language_runs.with_word(table, "the", "as the next word")["item_id"].tolist() == ["tokens 2-4"]
    assert language_runs.with_word(table, "mat", "as the top word")["item_id"].tolist() == ["tokens 2-4"]
    assert len(language_runs.with_word(table, "  ")) == 2
    with pytest.raises(ValueError, match="place must be one of"):
        language_runs.with_word(table, "the", "anywhere")
    shown = language_runs_views.windows_frame(language_runs.sort_windows(table, "surprise"), 0.01)
    columns = list(language_runs_views.SHOWN_COLUMNS.values())
    assert list(shown.columns) == [columns[0], "adds up", *columns[1:]] and list(shown.index) == [0, 1]
    assert shown["adds up"].tolist() == ["NO", "yes"]  # tokens 2-4 is 3% off, tokens 0-2 0.2%
    assert language_runs_views.perplexity(table["surprise_bits"]) == 8.0  # 2 ** mean(1, 5)


def test_window_tokens_keep_eos_and_unk():
    vocab = Vocabulary(VOCABULARY)
    tokens = window_tokens(vocab, ["the", "<eos>", "dog", "N", "<unk>"])
    assert tokens.texts == ["the", "<eos>", "<unk>", "N", "<unk>"] and tokens.ids == [3, 1, 0, 2, 0]
    assert [w.text for w in tokens.words] == ["the", "<eos>", "dog", "N", "<unk>"] and not tokens.notices


def test_open_window_hands_over_the_words_and_both_words_to_compare():
    table = language_runs.window_table(hand_made_rows(), VOCABULARY)
    settings = {"method": "integrated_gradients", "rule": "gauss-legendre", "steps": 4}
    window = language_runs.open_window(table.iloc[1].to_dict(), "ptb", "small.pt (default)", settings)
    assert window.words == ("sat", "on") and window.text == "sat on" and window.target == "the"
    assert window.second == "mat" and window.origin == "tokens 2-4 of run ptb"  # the word the model expected
    assert window.settings == "integrated_gradients, gauss-legendre rule, 4 steps"
    assert language_runs.open_window(table.iloc[0].to_dict(), "ptb", None, settings).second is None  # the same word
    top = table.iloc[1].to_dict() | {"target_name": "mat"}  # a row explaining the top word: the word that came
    assert language_runs.open_window(top, "ptb", None, settings).second == "the"


# --- a store of 60 Penn Treebank windows ----------------------------------------------------------------------

def test_windows_of_a_dataset_run(runs, shared_data, lm):
    words = read_words(shared_data / "ptb" / "ptb.test.txt")
    vocab = lm.vocab
    table = table_of(runs / "ptb-next", vocab.words)
    assert len(table) == LIMIT and table["item_index"].tolist() == list(range(LIMIT))
    assert table["window"].tolist() == [" ".join(words[WINDOW * k:WINDOW * (k + 1)]) for k in range(LIMIT)]
    assert table["next_word"].tolist() == [vocab.words[vocab.id(words[WINDOW * (k + 1)])] for k in range(LIMIT)]
    assert table["next_word"].tolist() == table["target_name"].tolist()
    rows = store.read(runs / "ptb-next").to_pandas()
    assert table["top_word"].tolist() == [vocab.words[p] for p in rows["predicted"]]
    assert ((table["top_word"] == table["next_word"]) == (table["truth_rank"] == 1)).all()
    np.testing.assert_array_equal(table["surprise_bits"], -np.log2(rows["probability"]))
    np.testing.assert_array_equal(table["last_word_share"], [s[-1] / s.sum() for s in rows["scores"]])
    by_surprise = language_runs.sort_windows(table, "surprise")
    assert by_surprise["surprise_bits"].is_monotonic_decreasing and by_surprise["probability"].is_monotonic_increasing
    assert by_surprise["truth_rank"].iloc[0] > 1  # the most surprising next word is not the model's top word
    assert 0 <= table["disagreement"].min() and table["disagreement"].max() <= 2
    profile = language_runs.distance_profile(table["scores"])
    assert profile["distance"].tolist() == list(range(1, WINDOW + 1)) and (profile["windows"] == LIMIT).all()
    np.testing.assert_allclose(profile["mean"][0], np.mean([s[-1] for s in rows["scores"]]), rtol=LIMIT * EPS64)
    np.testing.assert_allclose(profile["mean"][WINDOW - 1], np.mean([s[0] for s in rows["scores"]]), rtol=LIMIT * EPS64)
    # the distance profile follows the windows with a word
    eos = language_runs.with_word(table, "<eos>")
    assert 0 < len(eos) < LIMIT and (language_runs.distance_profile(eos["scores"])["windows"] == len(eos)).all()


def test_the_top_word_run_explains_the_top_word(runs, lm):
    table = table_of(runs / "ptb-top", lm.vocab.words)
    assert len(table) == 20 and (table["target_name"] == table["top_word"]).all()
    assert ((table["next_word"] == table["top_word"]) == (table["truth_rank"] == 1)).all()
    assert table["next_word"].ne(table["top_word"]).any()


def test_a_window_explained_from_its_tokens_gives_the_run_s_scores(runs, shared_data, lm):
    """The Language page's path (window_tokens, explain_next_word) reads what the run read and gives its scores;
    the window's words tokenized as typed text do not (<eos> becomes <unk>)."""
    table = table_of(runs / "ptb-next", lm.vocab.words)
    rows = store.read(runs / "ptb-next").to_pandas()
    family, model = FAMILIES["language"], FAMILIES["language"].load(FAMILIES["language"].sources()[0],
                                                                    torch.device("cpu"))
    windows = TextWindows(shared_data / "ptb" / "ptb.test.txt", WINDOW, WINDOW, "tokens")
    for item, words in zip(windows.items()[:LIMIT], table["window"]):
        assert window_tokens(lm.vocab, words.split(" ")) == windows.parse(family, model, item)
    top = language_runs.sort_windows(language_runs.with_word(table, "<eos>"), "surprise").iloc[0]
    tokens = window_tokens(lm.vocab, top["window"].split(" "))
    assert "<eos>" in tokens.texts and tokenize_text(lm, top["window"]).texts != tokens.texts
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = language_attribution.explain_next_word(AttributionEngine("cpu"), lm, tokens, [top["target_name"]],
                                                        RUN_SETTINGS)
    finally:
        torch.set_num_threads(before)
    row = rows.iloc[int(top["item_index"])]
    assert word_columns(result.words) == list(row["score_names"])
    stored = np.asarray(row["scores"])
    assert np.abs(result.word_attributions[0] - stored).max() <= BATCH_RTOL * np.abs(stored).sum()
    assert result.probability[0] == pytest.approx(row["probability"], rel=BATCH_RTOL)


# --- the page in AppTest ----------------------------------------------------------------------------------------

def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def runs_page(monkeypatch, folder: pathlib.Path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(RUNS_DIR.name, str(folder))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("dashboard/pages/language_runs.py").run()
    return at


def test_page_lists_the_windows_by_surprise_and_filters_them(runs, monkeypatch, lm):
    at = runs_page(monkeypatch, runs)
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    # no vision run
    assert at.selectbox(key="language_runs_run").options == ["ptb-next (60 items: 60 explained; complete)",
                                                             "ptb-top (20 items: 20 explained; complete)"]
    shown = at.dataframe[0].value
    expected = language_runs_views.windows_frame(
        language_runs.sort_windows(table_of(runs / "ptb-next", lm.vocab.words), "surprise"), 0.01)
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), expected)
    assert len(at.get("vega_lite_chart")) == 1
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Windows explained"] == "60"
    assert metrics["Perplexity of the next words"] == f"{2 ** expected['surprise'].mean():,.1f}"
    assert any(c.startswith(f"Targets: next_word; windows of {WINDOW} tokens every {WINDOW} of ptb.test.txt; complete")
               for c in _texts(at.caption))
    at.radio(key="language_runs_sort").set_value("last word's share").run()
    assert at.dataframe[0].value["last share"].is_monotonic_decreasing
    at.text_input(key="language_runs_word").set_value("<eos>").run()
    words = at.dataframe[0].value["words"]
    assert 0 < len(words) < 60 and all("<eos>" in w.split(" ") for w in words)
    assert any(f"{len(words)} of {len(words)} windows with '<eos>'" in c for c in _texts(at.caption))
    assert any(c.startswith(f"Mean over the {len(words)} windows with '<eos>' in the window")
               for c in _texts(at.caption))
    at.text_input(key="language_runs_word").set_value("zebra").run()
    assert not at.exception and any("No window with 'zebra' in the window" in w for w in _texts(at.warning))
    at.text_input(key="language_runs_word").set_value("").run()
    at.selectbox(key="language_runs_run").set_value("ptb-top").run()
    assert not at.exception and not at.error
    assert any("explains the model's top word" in i for i in _texts(at.info))
    assert len(at.dataframe[0].value) == 20


def test_page_without_runs_or_windows_says_so(tmp_path, monkeypatch):
    at = runs_page(monkeypatch, tmp_path)
    assert not at.exception and any("No language runs" in i for i in _texts(at.info))
    refused = tmp_path / "refused"
    store.open_run(refused, {"format": store.FORMAT, "version": store.VERSION, "job": {"family": "language"}}, ())
    store.write_shard(refused, 0, [{"item_index": 0, "item_id": "tokens 0-20", "status": "refused", "error": "x"}])
    at = runs_page(monkeypatch, tmp_path)
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert any("no explained windows" in w for w in _texts(at.warning))


def test_a_contrast_run_names_its_contrasts_and_opens_them_as_contrasts(contrast_run, lm, monkeypatch):
    """--targets contrast: the top word rather than the next word, where they differ; the table says so and a window
    opens on the Language page with its "rather than" word."""
    from streamlit.testing.v1 import AppTest

    table = table_of(contrast_run, lm.vocab.words)
    assert len(table) > 0 and (table["target_name"] == table["top_word"]).all()
    assert (table["rather_than_name"] == table["next_word"]).all() and table["next_word"].ne(table["top_word"]).all()
    assert table["explained"].tolist() == [f"{top} rather than {next_word}"
                                           for top, next_word in zip(table["top_word"], table["next_word"])]
    assert "explained" in language_runs_views.windows_frame(table, 0.01)
    at = runs_page(monkeypatch, contrast_run.parent)
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert any("top word rather than the actual next word" in i for i in _texts(at.info))
    assert at.dataframe[0].value["explained"].str.contains(" rather than ").all()
    row = table.iloc[0].to_dict()
    window = language_runs.open_window(row, "ptb-contrast", "small.pt (default)",
                                       store.read_manifest(contrast_run)["job"]["settings"])
    assert window.rather_than == row["next_word"] and window.second is None
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = RUN_SETTINGS
    at.run()
    at.session_state[language_runs.OPEN_WINDOW_KEY] = window
    at.switch_page("dashboard/pages/language.py").run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert at.selectbox(key="lang_target").value == row["top_word"]
    assert at.selectbox(key="lang_rather_than").value == row["next_word"]
    assert any(f"{row['top_word']} rather than {row['next_word']}" in text
               for text in _texts(at.subheader) + _texts(at.markdown) + _texts(at.caption))


def test_language_page_explains_an_opened_window_from_its_exact_tokens(runs, lm):
    from streamlit.testing.v1 import AppTest

    table = table_of(runs / "ptb-next", lm.vocab.words)
    row = language_runs.sort_windows(language_runs.with_word(table, "<eos>"), "surprise").iloc[0].to_dict()
    window = language_runs.open_window(row, "ptb-next", "small.pt (default)",
                                       store.read_manifest(runs / "ptb-next")["job"]["settings"])
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = RUN_SETTINGS
    at.run()
    at.session_state[language_runs.OPEN_WINDOW_KEY] = window
    at.switch_page("dashboard/pages/language.py").run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    context = " ".join(f"`{word}`" for word in row["window"].split(" "))
    assert f"**Context ({WINDOW} tokens):** {context}" in _texts(at.markdown)
    assert at.selectbox(key="lang_target").value == row["next_word"]
    assert at.selectbox(key="lang_second").value == row["top_word"] != row["next_word"]
    assert any(c.startswith(f"From {row['item_id']} of run ptb-next: its exact tokens") for c in _texts(at.caption))
    # edited, the text is read as typed: <eos> is no word there
    at.text_area(key="lang_text").set_value(row["window"])
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and not at.error
    assert any(c.startswith(f"From {row['item_id']}") for c in _texts(at.caption))  # the same text: still the window
    at.text_area(key="lang_text").set_value(row["window"] + " the")
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and not at.error
    assert not any(c.startswith("From tokens") for c in _texts(at.caption))
    assert not any("`<eos>`" in m for m in _texts(at.markdown) if m.startswith("**Context"))


# --- the page in a real browser ----------------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path, runs, shared_data):
    require_chromium()
    with streamlit_server(tmp_path, IG_RUNS_DIR=str(runs), IG_DATA_DIR=str(shared_data)) as url:
        yield url


def test_browser_windows_by_surprise_distance_chart_and_a_window_opened(server, runs, lm):
    from playwright.sync_api import expect

    expected = language_runs.sort_windows(table_of(runs / "ptb-next", lm.vocab.words), "surprise")
    with browser_page("language-runs") as page:
        page.goto(server)
        main = page.locator("[data-testid='stMain']")
        expect(main.get_by_text("Quadrature rule")).to_be_visible()
        open_page(page, "Language: a corpus run")
        expect(main.get_by_text("Attribution by distance from the predicted word")).to_be_visible()
        wait_idle(page)
        # the table's order, as the browser has it: the page's CSV of the windows listed
        with page.expect_download() as download:
            main.get_by_role("button", name="Download these windows (CSV)").click()
        listed = pd.read_csv(download.value.path(), keep_default_na=False)
        assert listed["window"].tolist() == expected["item_id"].tolist()
        assert listed["surprise"].is_monotonic_decreasing
        chart = main.locator("[data-testid='stVegaLiteChart']")
        expect(chart).to_have_count(1)
        chart.scroll_into_view_if_needed()
        expect(chart.locator("canvas, svg").first).to_be_visible()
        assert main.locator("[data-testid='stException']").count() == 0
        full_screenshot(page, "language-runs.png")
        # a click on the first row (its selection cell: the grid is a canvas) opens it on the Language page
        grid = main.locator("[data-testid='stDataFrame'] [data-testid='data-grid-canvas']")
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 20, box["y"] + 36 + 17)  # below the 36-pixel header, in the first 35-pixel row
        expect(main.get_by_text("Language: which words drive the next word")).to_be_visible()
        expect(main.get_by_text("3. Word scores (Figures 9 and 10)")).to_be_visible(timeout=180_000)
        wait_idle(page)
        context = main.locator("[data-testid='stMarkdown']").filter(has_text="Context (")
        assert context.inner_text().split() == ["Context", f"({WINDOW}", "tokens):",
                                                *expected["window"].iloc[0].split()]
        expect(main.get_by_text(f"From {expected['item_id'].iloc[0]} of run ptb-next")).to_be_visible()
        assert main.locator("[data-testid='stException']").count() == 0
        assert main.locator("[data-testid='stAlertContentError']").count() == 0
        full_screenshot(page, "language-runs-window.png")
    assert (ARTIFACTS / "language-runs.png").stat().st_size > 30_000
    assert (ARTIFACTS / "language-runs-window.png").stat().st_size > 30_000


def test_a_corpus_run_of_the_shipped_transformer_on_the_page(shared_data, tmp_path, monkeypatch, one_thread):
    """The GPT-2 trained here on Penn Treebank, in a dataset run over the test text and on the corpus run page:
    its windows read as its word-level pieces, its perplexity from the rows' next-word surprise."""
    model = FAMILIES["language"].load(FAMILIES["language"].source_named("ptb_gpt2"), torch.device("cpu"))
    assert run_dataset(dataset_args(shared_data, tmp_path / "gpt2", limit=12)[:-2] + ["--model", "ptb_gpt2", "--out",
                                                                                     str(tmp_path / "gpt2")]) == 0
    rows = store.read(tmp_path / "gpt2", columns=language_runs.COLUMNS).to_pandas()
    assert (rows["status"] == "explained").all() and len(rows) == 12
    at = runs_page(monkeypatch, tmp_path)
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert at.selectbox(key="language_runs_run").options == ["gpt2 (12 items: 12 explained; complete)"]
    expected = language_runs_views.windows_frame(
        language_runs.sort_windows(language_runs.window_table(rows, model.target_names), "surprise"), 0.01)
    pd.testing.assert_frame_equal(at.dataframe[0].value.reset_index(drop=True), expected)
    assert {m.label: m.value for m in at.metric}["Windows explained"] == "12"
