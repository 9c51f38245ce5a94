"""Two runs compared (runs.comparison, dashboard.renderers.run_comparison, the Compare two runs page) and the
store-browsing benchmark's synthetic store (bench.store_browse)."""
from __future__ import annotations

import math
import pathlib

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr
from streamlit_browser import browser_page, full_screenshot, open_page, require_chromium, streamlit_server, wait_idle

from bench.store_browse import build_store
from dashboard.renderers import colours
from dashboard.renderers import run_comparison as run_comparison_views
from dashboard.renderers import vision as vision_views
from families.config import RUNS_DIR
from families.molecules import Featurizer
from runs import comparison as run_comparison
from runs import completeness, store
from runs.runner import main as run_dataset

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "dashboard" / "pages" / "runs_compare.py")
# Spearman's coefficient from ranks 1..n in float64 (sums of n products of size n): rounding ~ n * 1e-16
RANK_ATOL = 1e-12


# --- pure functions on hand-made rows ---------------------------------------------------------------------

def listing_rows(*rows) -> pd.DataFrame:
    """A listing (results_store.listing's columns that join reads) from (item_index, item_id, source, status,
    target, probability) tuples."""
    frame = pd.DataFrame(rows, columns=["item_index", "item_id", "source", "status", "target", "probability"])
    return frame.assign(target_name=[None if row[4] is None else f"task{row[4]}" for row in rows],
                        relative_delta=frame["probability"] / 10)


def test_join_pairs_rows_on_item_and_target_and_counts_what_each_run_lacks():
    run_a = listing_rows((0, "row 0", "CCO", "explained", 1, 0.1), (0, "row 0", "CCO", "explained", 2, 0.2),
                         (1, "row 1", "CCN", "explained", 1, 0.3), (2, "row 2", "CCC", "skipped", None, None),
                         (3, "row 3", "c1ccccc1", "explained", 0, 0.4))
    run_b = listing_rows((0, "row 0", "CCO", "explained", 1, 0.5), (1, "row 1", "CCN", "explained", 1, 0.6),
                         (1, "row 1", "CCN", "explained", 3, 0.7), (2, "row 3", "CCCl", "explained", 0, 0.8),
                         (3, "row 4", "O", "explained", 2, 0.9))
    joined = run_comparison.join(run_a, run_b)
    assert joined.pairs[["item_id", "target", "target_name", "source"]].values.tolist() == [
        ["row 0", 1, "task1", "CCO"], ["row 1", 1, "task1", "CCN"]]
    assert joined.pairs["probability_a"].tolist() == [0.1, 0.3] and joined.pairs["probability_b"].tolist() == [0.5, 0.6]
    assert joined.pairs["relative_delta_b"].tolist() == [0.05, 0.06]
    assert joined.pairs["item_index_b"].tolist() == [0, 1] and joined.pairs["target"].dtype == np.int64
    assert (joined.items_only_a, joined.items_only_b) == (1, 1)  # row 2 (skipped in A), row 4
    assert (joined.rows_only_a, joined.rows_only_b) == (1, 2)  # (row 0, 2); (row 1, 3) and (row 4, 2)
    assert joined.other_input == 1  # "row 3" is c1ccccc1 in A and CCCl in B
    text = run_comparison_views.join_summary(joined, "first", "second")
    assert "**2** (item, target) pairs" in text and "1 in A (first), 1 in B (second)" in text and "left out" in text


def test_runs_of_two_families_or_one_run_twice_are_refused():
    molecules, language = {"job": {"family": "molecules"}}, {"job": {"family": "language"}}
    assert run_comparison.refusal("w1n2", molecules, "w2n2", dict(molecules)) is None
    assert "only runs of one family" in run_comparison.refusal("w1n2", molecules, "ptb", language)
    assert "two different runs" in run_comparison.refusal("w1n2", molecules, "w1n2", molecules)


def test_scores_are_matched_by_name_not_by_position():
    names, a, b = run_comparison.named_pair(["C0", "C1", "O2", "C0-C1 single"], [1.0, 2.0, 3.0, 4.0],
                                ["C1", "non-bonded pairs", "C0-C1 single", "C0", "O2"], [20.0, 99.0, 40.0, 10.0, 30.0])
    assert names == ["C0", "C1", "O2", "C0-C1 single"]
    assert a.tolist() == [1.0, 2.0, 3.0, 4.0] and b.tolist() == [10.0, 20.0, 30.0, 40.0]
    names, a, b = run_comparison.named_pair(["1 the", "2 cat"], [0.5, 0.25], ["1 the", "2 cat"], [0.125, 1.0])
    assert names == ["1 the", "2 cat"] and a.tolist() == [0.5, 0.25] and b.tolist() == [0.125, 1.0]


def named_row(item_id: str, names, scores) -> dict:
    return {"item_id": item_id, "target": 0, "score_names": list(names), "scores": list(scores), "pixel_map": None}


def test_spearman_per_item_equals_scipy_and_a_hand_computation():
    # hand: ranks (1, 2, 3, 4) against (1, 3, 2, 4): rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 12/60
    hand = run_comparison.row_agreement(named_row("x", "abcd", [0.1, 0.2, 0.3, 0.4]),
                                        named_row("x", "dcab", [4, 2, 1, 3]))
    assert hand["spearman"] == pytest.approx(0.8, abs=RANK_ATOL) and hand["units"] == 4
    rng = np.random.default_rng(3)
    names = [f"C{k}" for k in range(30)] + [f"C{k}-C{k + 1} single" for k in range(29)]
    for _ in range(5):
        a = rng.normal(size=len(names)).round(1)  # rounded: ties, which Spearman ranks by their mean
        b = 0.5 * a + rng.normal(size=len(names)).round(1)
        order = rng.permutation(len(names))  # run B lists the units in another order
        measured = run_comparison.row_agreement(named_row("x", names, a),
                                                named_row("x", [names[k] for k in order], b[order]))
        assert measured["spearman"] == pytest.approx(spearmanr(a, b).statistic, abs=RANK_ATOL)
        top = round(0.1 * len(names))
        expected_top = len(set(np.argsort(-np.abs(a), kind="stable")[:top])
                           & set(np.argsort(-np.abs(b), kind="stable")[:top])) / top
        assert measured["top_overlap"] == expected_top and measured["units"] == len(names)


def test_no_common_unit_or_a_constant_attribution_has_no_correlation():
    assert math.isnan(run_comparison.row_agreement(named_row("x", ["a"], [1.0]),
                                                   named_row("x", ["b"], [1.0]))["spearman"])
    assert math.isnan(run_comparison.row_agreement(named_row("x", "ab", [1.0, 1.0]),
                                                   named_row("x", "ab", [1.0, 2.0]))["spearman"])


def pixel_row(item_id: str, scores: np.ndarray, target: int = 0) -> dict:
    return {"item_id": item_id, "target": target, "score_names": None, "scores": None,
            **store.encode_pixel_map(scores)}


def test_pixel_maps_of_two_sizes_compare_on_one_grid():
    assert run_comparison.downsampled(np.arange(16.0).reshape(4, 4), (2, 2)).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    rng = np.random.default_rng(0)
    # integers up to 1024 with 1024 present: divided by the map's scale they are exact in float16
    small = rng.integers(-1024, 1025, size=(64, 64)).astype(np.float64)
    small[0, 0] = 1024
    large = np.kron(small, np.ones((2, 2)))  # the same map at twice the size (another architecture's input)
    same = run_comparison.row_agreement(pixel_row("p", small), pixel_row("p", large))
    assert same["spearman"] == pytest.approx(1.0, abs=RANK_ATOL) and same["units"] == run_comparison.MAP_GRID ** 2
    assert same["top_overlap"] == 1.0
    opposite = run_comparison.row_agreement(pixel_row("p", small), pixel_row("p", -large))
    assert opposite["spearman"] == pytest.approx(-1.0, abs=RANK_ATOL)
    a, b = run_comparison.map_pair(small, rng.normal(size=(10, 12)))
    assert a.shape == b.shape == (120,)
    with pytest.raises(ValueError, match="one run stored named scores and the other a pixel map"):
        run_comparison.row_agreement(named_row("p", "ab", [1, 2]), pixel_row("p", small))


def test_agreements_follow_the_pairs_and_the_most_disagreeing_come_first():
    pairs = pd.DataFrame({"item_id": ["i1", "i2", "i3"], "target": [0, 0, 0], "relative_delta_a": [0.001] * 3,
                          "relative_delta_b": [0.002] * 3})
    run_a = pd.DataFrame([named_row("i3", "abc", [1, 2, 3]), named_row("i1", "abc", [1, 2, 3]),
                          named_row("i2", "abc", [1, 2, 3])])
    run_b = pd.DataFrame([named_row("i2", "abc", [3, 2, 1]), named_row("i3", "abc", [5, 5, 5]),
                          named_row("i1", "cba", [3, 2, 1])])
    measured = run_comparison.agreements(pairs, run_a, run_b)
    assert measured["spearman"].tolist()[:2] == [pytest.approx(1.0), pytest.approx(-1.0)]
    assert math.isnan(measured["spearman"].iloc[2])
    ranked = run_comparison.most_disagreeing(pd.concat([pairs, measured], axis=1), 0.01, 0.01)
    assert ranked["item_id"].tolist() == ["i2", "i1", "i3"] and not ranked["incomplete"].any()


def test_pairs_whose_attributions_do_not_add_up_are_flagged_and_ranked_last():
    """The most disagreeing pair of two models must not be one whose attributions miss completeness by 90%."""
    pairs = pd.DataFrame({"item_id": ["i1", "i2", "i3", "i4"], "target": [0] * 4, "spearman": [-0.9, 0.5, 0.1, -1.0],
                          "relative_delta_a": [0.9, 0.005, 0.001, 0.004], "relative_delta_b": [0.001, 0.003, 0.02,
                                                                                               float("nan")]})
    ranked = run_comparison.most_disagreeing(pairs, 0.01, 0.05)  # each run's own tolerance
    assert ranked["item_id"].tolist() == ["i4", "i3", "i2", "i1"]
    assert ranked["incomplete"].tolist() == [False, False, False, True]
    strict = run_comparison.most_disagreeing(pairs, 0.01, 0.01)
    assert strict["item_id"].tolist() == ["i4", "i2", "i1", "i3"] and strict["incomplete"].sum() == 2


def test_the_table_marks_pairs_that_do_not_add_up_and_the_warning_counts_them():
    ranked = run_comparison.most_disagreeing(pd.DataFrame({
        "item_id": ["i1", "i2"], "target": [0, 0], "target_name": ["t", "t"], "source": ["C", "CC"],
        "spearman": [0.2, 0.9], "top_overlap": [0.5, 1.0], "units": [3, 4], "probability_a": [0.5, 0.6],
        "probability_b": [0.4, 0.7], "relative_delta_a": [0.5, 0.001], "relative_delta_b": [0.0, 0.002]}), 0.01, 0.02)
    table = run_comparison_views.pairs_table(ranked)
    assert table["item"].tolist() == ["i2", "i1"] and table["completeness"].tolist() == ["adds up", "does not add up"]
    text = run_comparison_views.incomplete_summary(ranked, 0.01, 0.02)
    assert text.startswith("1 of 2 pairs") and "A: 1%, B: 2%" in text


def test_unit_table_puts_the_units_whose_ranks_differ_most_first():
    table = run_comparison.unit_table(["a", "b", "c", "d"], [4.0, 3.0, 2.0, 1.0],
                                      ["d", "c", "b", "a"], [4.0, 3.0, 2.0, 1.0])
    assert table["unit"].tolist()[:2] == ["a", "d"] and table["rank difference"].abs().tolist() == [3, 3, 1, 1]
    row_a = table.set_index("unit").loc["a"]
    assert (row_a["score A"], row_a["score B"], row_a["rank A"], row_a["rank B"]) == (4.0, 1.0, 1.0, 4.0)


# --- renderers ----------------------------------------------------------------------------------------------

def test_a_molecule_is_drawn_from_its_named_scores_in_any_order():
    mol = Featurizer().from_smiles("CC(=O)O").mol
    names = ["C0", "C1", "O2", "O3", "C0-C1 single", "C1-O2 double", "C1-O3 single", "non-bonded pairs"]
    scores = [0.1, 0.2, 0.3, 0.4, 1.0, 2.0, 3.0, 9.0]
    atoms, bonds = run_comparison_views.molecule_parts(mol, names[::-1], scores[::-1])
    assert atoms.tolist() == [0.1, 0.2, 0.3, 0.4] and bonds.tolist() == [1.0, 2.0, 3.0]
    assert run_comparison_views.molecule_svg("CC(=O)O", names, scores, "run A").startswith("<svg")
    with pytest.raises(ValueError, match="do not name 1 of the molecule's atoms and bonds"):
        run_comparison_views.molecule_parts(mol, names[1:], scores[1:])


def test_word_rows_and_pixel_maps_render():
    chart = run_comparison_views.word_rows_chart(["1 the", "2 cat", "3 sat"], [0.5, -1.0, 0.25],
                                                 ["3 sat", "1 the", "2 cat"], [2.0, 4.0, -8.0], "A", "B")
    frame = chart.data
    assert frame["word"].tolist() == ["1 the", "2 cat", "3 sat"] * 2 and frame["run"].tolist() == ["A"] * 3 + ["B"] * 3
    assert frame["value"].tolist() == [0.5, -1.0, 0.25, 4.0, -8.0, 2.0]
    assert frame["colour"].tolist() == [0.5, -1.0, 0.25, 0.5, -1.0, 0.25]  # each row over its largest |value|
    colour = chart.to_dict()["encoding"]["color"]  # each row on the signed scale of every family, -1 to 1
    assert colour["scale"]["domain"] == [-1.0, 0.0, 1.0] and colour["legend"]["values"] == [-1.0, 0.0, 1.0]
    assert colour["scale"]["range"][-1] == colours.hex_colour(colours.POSITIVE)
    scores = np.outer(np.arange(1.0, 8.0), np.ones(5))
    picture = run_comparison_views.map_picture(pixel_row("p", scores))
    legend = vision_views.map_legend("absolute", vision_views.saturation_value(scores), "overlay",
                                     vision_views.LEGEND_WIDTH)
    assert picture.size == (vision_views.LEGEND_WIDTH, 7 + legend.height) and picture.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(picture)[7:], np.asarray(legend))  # the map's legend below it


# --- the benchmark's synthetic store ------------------------------------------------------------------------

def test_the_benchmark_builds_a_store_with_the_stores_schema(tmp_path):
    manifest = build_store(tmp_path / "synthetic", 300)
    table = store.read(tmp_path / "synthetic")
    assert table.schema == store.SCHEMA and table.num_rows == 300
    rows = table.to_pandas()
    assert manifest["counts"]["rows"] == 300 and store.read_manifest(tmp_path / "synthetic") == manifest
    assert len(store.finished_shards(tmp_path / "synthetic")) == manifest["shards"] == -(-manifest["items"] // 64)
    explained = rows[rows["status"] == "explained"]
    assert 0 < len(explained) < 300 and (rows[rows["status"] == "skipped"]["target"].isna()).all()
    assert not explained.duplicated(["item_id", "target"]).any()
    assert all(20 <= len(names) <= 60 and len(names) == len(scores) == len(set(names))
               for names, scores in zip(explained["score_names"], explained["scores"]))
    # the attributions add up as integrated gradients' do: sum = F(input) - F(baseline) + delta
    np.testing.assert_allclose([sum(s) for s in explained["scores"]],
                               explained["score_input"] - explained["score_baseline"] + explained["delta"],
                               rtol=1e-12, atol=1e-15)
    again = build_store(tmp_path / "again", 300, score_seed=7)
    other = store.read(tmp_path / "again").to_pandas()
    assert other["item_id"].tolist() == rows["item_id"].tolist() and other["source"].tolist() == rows["source"].tolist()
    assert other["probability"].dropna().tolist() != rows["probability"].dropna().tolist()
    assert again["items"] == manifest["items"]


# --- two real runs: W1N2 and W2N2 on the same Tox21 molecules -----------------------------------------------

@pytest.fixture(scope="module")
def runs_folder(shared_data, tmp_path_factory):
    """Two stores of the first 30 Tox21 molecules, explained by W1N2 and by W2N2 with the adaptive rule to 1% within
    24 points (rows that miss it are flagged)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # this machine's two cores are shared
    folder = tmp_path_factory.mktemp("runs")
    try:
        for model in ("w1n2", "w2n2"):
            assert run_dataset(["--family", "molecules", "--input",
                                str(shared_data / "molecules" / "tox21_moleculenet.csv"), "--model", model,
                                "--targets", "actives", "--limit", "30", "--steps", "4", "--max-steps", "24",
                                "--quiet", "--out", str(folder / f"tox21-{model}")]) == 0
    finally:
        torch.set_num_threads(before)
    return folder


def ranked_pairs(folder: pathlib.Path) -> pd.DataFrame:
    """The pairs as the page ranks them, from the two stores."""
    first, second = folder / "tox21-w1n2", folder / "tox21-w2n2"
    joined = run_comparison.join(store.listing(first), store.listing(second))
    scores = [store.read(path, run_comparison.SCORE_COLUMNS).to_pandas() for path in (first, second)]
    return run_comparison.most_disagreeing(
        pd.concat([joined.pairs, run_comparison.agreements(joined.pairs, *scores)], axis=1),
        *(completeness.tolerance_of(store.read_manifest(path)) for path in (first, second)))


def ranked_units(folder: pathlib.Path, pair) -> list[str]:
    """The units of a pair whose ranks differ most between the runs (all of them when tied)."""
    rows = [store.item_rows(folder / name, [pair[f"item_index_{run}"]]) for name, run in (("tox21-w1n2", "a"),
                                                                                           ("tox21-w2n2", "b"))]
    rows = [frame[frame["target"] == pair["target"]].iloc[0] for frame in rows]
    ranks = [pd.Series(row["scores"], index=row["score_names"]).rank(ascending=False) for row in rows]
    difference = (ranks[1] - ranks[0]).abs()
    return difference.index[difference == difference.max()].tolist()


def test_w1n2_and_w2n2_runs_compared_item_by_item(runs_folder):
    first, second = (store.read(runs_folder / name).to_pandas() for name in ("tox21-w1n2", "tox21-w2n2"))
    joined = run_comparison.join(store.listing(runs_folder / "tox21-w1n2"), store.listing(runs_folder / "tox21-w2n2"))
    explained = first[first["status"] == "explained"]
    # one input, targets from its labels: every explained row of either run is a pair
    assert len(joined.pairs) == len(explained) == (second["status"] == "explained").sum() > 0
    assert (joined.items_only_a, joined.items_only_b, joined.rows_only_a, joined.rows_only_b,
            joined.other_input) == (0, 0, 0, 0, 0)
    ranked = ranked_pairs(runs_folder)
    assert ranked["incomplete"].is_monotonic_increasing  # the pairs that do not add up come last
    for _, group in ranked.groupby("incomplete"):
        assert group["spearman"].is_monotonic_increasing and group["spearman"].notna().all()
    assert ranked["spearman"].iloc[0] < 0.9  # the two models differ somewhere
    rows_b = second.set_index(["item_id", "target"])
    for pair in ranked.itertuples():
        row_a = explained.set_index(["item_id", "target"]).loc[(pair.item_id, pair.target)]
        row_b = rows_b.loc[(pair.item_id, pair.target)]
        by_name = dict(zip(row_b["score_names"], row_b["scores"]))
        expected = spearmanr(row_a["scores"], [by_name[name] for name in row_a["score_names"]]).statistic
        assert pair.spearman == pytest.approx(expected, abs=RANK_ATOL)
        assert pair.units == len(row_a["score_names"]) == len(row_b["score_names"])
        assert (pair.probability_a, pair.probability_b) == (row_a["probability"], row_b["probability"])


def app_test(monkeypatch, folder: pathlib.Path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(RUNS_DIR.name, str(folder))
    return AppTest.from_file(PAGE, default_timeout=120)


def test_page_lists_the_most_disagreeing_pairs_and_refuses_what_cannot_be_compared(runs_folder, tmp_path,
                                                                                 monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    for name in ("tox21-w1n2", "tox21-w2n2"):
        (folder / name).symlink_to(runs_folder / name)
    build_store(folder / "another-input", 40)  # molecules too, but its "row 3" is another molecule
    page = app_test(monkeypatch, folder)
    page.run()
    assert not page.exception
    assert page.selectbox(key="compare_molecules_a").value == "another-input"
    assert page.selectbox(key="compare_molecules_b").value == "tox21-w1n2"
    assert "no explained item and target in common" in page.warning[-1].value
    assert any("left out" in markdown.value for markdown in page.markdown)

    page.selectbox(key="compare_molecules_b").set_value("tox21-w2n2")
    page.selectbox(key="compare_molecules_a").set_value("tox21-w1n2").run()
    ranked = ranked_pairs(runs_folder)
    table = page.dataframe[0].value
    assert table["item"].tolist() == ranked["item_id"].tolist()
    assert table["Spearman"].tolist() == pytest.approx(ranked["spearman"].tolist(), abs=RANK_ATOL)
    first = ranked.iloc[0]
    assert page.subheader[0].value == f"{first['item_id']}, {first['target_name']}: Spearman {first['spearman']:.3f}"
    # rows the 24-point budget left over 1%: each run's picker says how many, the table's note which pairs
    warnings = [w.value for w in page.warning]
    assert not page.error
    if ranked["incomplete"].any():
        assert warnings[-1] == run_comparison_views.incomplete_summary(ranked, 0.01, 0.01)
        assert len(warnings) in (2, 3) and all("over the 1% tolerance" in text for text in warnings[:-1])
    else:
        assert not warnings
    assert table["completeness"].tolist() == ["does not add up" if flag else "adds up" for flag in ranked["incomplete"]]
    assert len(page.get("image")) == 2  # the molecule drawn with each run's atom and bond scores
    assert page.dataframe[1].value["unit"].tolist()[0] in ranked_units(runs_folder, first)

    page.selectbox(key="compare_molecules_a").set_value("tox21-w2n2").run()
    assert "two different runs" in page.warning[-1].value and not page.dataframe


def test_page_with_one_run_or_none_says_what_to_make(runs_folder, tmp_path, monkeypatch):
    page = app_test(monkeypatch, tmp_path / "empty")
    page.run()
    assert not page.exception and "There are no runs" in page.info[0].value
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "tox21-w1n2").symlink_to(runs_folder / "tox21-w1n2")
    page = app_test(monkeypatch, tmp_path / "one")
    page.run()
    assert not page.exception and "There is one molecules run (tox21-w1n2)" in page.info[0].value


def test_browser_shows_the_most_disagreeing_pairs_and_one_side_by_side(runs_folder, tmp_path):
    from playwright.sync_api import expect

    require_chromium()
    ranked = ranked_pairs(runs_folder)
    with streamlit_server(tmp_path, IG_RUNS_DIR=str(runs_folder)) as url, browser_page("runs-compare") as page:
        page.goto(url)
        open_page(page, "Compare two runs")
        main = page.locator("[data-testid='stMain']")
        expect(main.get_by_text("pairs explained by both runs", exact=False)).to_be_visible()
        first = ranked.iloc[0]
        expect(main.get_by_text(f"{first['item_id']}, {first['target_name']}: Spearman {first['spearman']:.3f}",
                                exact=True)).to_be_visible()
        expect(main.get_by_text("The most disagreeing pair", exact=False)).to_be_visible()
        drawings = main.locator("[data-testid='stImage'] img")
        expect(drawings).to_have_count(2)
        for k in range(2):
            expect(drawings.nth(k)).to_be_visible()
        assert main.locator("[data-testid='stException']").count() == 0
        full_screenshot(page, "runs-compare.png")

        # a click on the table's third row shows that pair instead
        grid = main.locator("[data-testid='stDataFrame']").first
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        row_height = 35  # Streamlit's default row height, the header's too
        page.mouse.click(box["x"] + 18, box["y"] + row_height * 3 + row_height / 2)
        wait_idle(page)
        third = ranked.iloc[2]
        expect(main.get_by_text(f"{third['item_id']}, {third['target_name']}: Spearman {third['spearman']:.3f}",
                                exact=True)).to_be_visible()
        expect(main.get_by_text("The most disagreeing pair", exact=False)).to_have_count(0)
        full_screenshot(page, "runs-compare-selected.png")


# --- the other families' pictures: two runs of one model with two rules (the page's plumbing) ---------------

@pytest.fixture(scope="module")
def other_families(shared_data, tmp_path_factory):
    """Two runs of 6 Penn Treebank windows (the small LSTM) and two of 3 photos (MobileNet v2), each pair with
    two quadrature rules."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("other-runs")
    inputs = {"ptb": ["--family", "language", "--input", str(shared_data / "ptb" / "ptb.test.txt"), "--text-format",
                      "tokens", "--targets", "next_word", "--limit", "6"],
              "photos": ["--family", "vision", "--input", str(shared_data / "imagenet_samples"), "--model",
                         "mobilenet_v2", "--targets", "predicted", "--limit", "3"]}
    try:
        for name, options in inputs.items():
            for rule in ("gauss-legendre", "trapezoid"):
                assert run_dataset([*options, "--rule", rule, "--steps", "4", "--quiet", "--out",
                                    str(folder / f"{name}-{rule}")]) == 0
    finally:
        torch.set_num_threads(before)
    return folder


@pytest.mark.parametrize("family, pictures, charts", [("language", 0, 1), ("vision", 2, 0)])
def test_page_draws_words_and_pixel_maps_side_by_side(other_families, monkeypatch, family, pictures, charts):
    page = app_test(monkeypatch, other_families)
    page.run()
    page.radio(key="compare_family").set_value(family).run()
    assert not page.exception and not page.error
    # four points of a fixed rule leave some rows over 1%: the only warning says so
    assert all("over the 1% tolerance" in warning.value or "miss its run's completeness tolerance" in warning.value
               for warning in page.warning)
    names = {"language": ("ptb-gauss-legendre", "ptb-trapezoid"), "vision": ("photos-gauss-legendre",
                                                                            "photos-trapezoid")}[family]
    assert (page.selectbox(key=f"compare_{family}_a").value, page.selectbox(key=f"compare_{family}_b").value) == names
    joined = run_comparison.join(*(store.listing(other_families / name) for name in names))
    assert len(page.dataframe[0].value) == len(joined.pairs) == {"language": 6, "vision": 3}[family]
    # one model, two rules: the same ranking of units almost everywhere
    assert (page.dataframe[0].value["Spearman"] > 0.5).all()
    assert len(page.get("image")) == pictures and len(page.get("vega_lite_chart")) == charts
    assert len(page.dataframe) == (2 if family == "language" else 1)  # the words' table of ranks
