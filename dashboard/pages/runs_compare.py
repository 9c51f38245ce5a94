"""Compare two runs: the same inputs explained by two models into two stores, the pairs whose attributions disagree
most first, and one pair's two attributions side by side in the family's units."""
from __future__ import annotations

import pathlib

import pandas as pd
import pyarrow.dataset as ds
import streamlit as st

from dashboard.renderers import run_comparison as run_comparison_views
from dashboard.renderers.markdown import escape_markdown
from dashboard.scaffold import run_page
from dashboard.session import choose_run
from runs import comparison as run_comparison
from runs import completeness, store

ALL_TARGETS = "all targets"
TABLE_KEY, TARGET_KEY = "compare_table", "compare_target"


@st.cache_data(show_spinner="Reading the run...", max_entries=8)
def _listing(folder: str, stamp: tuple) -> pd.DataFrame:
    return store.listing(pathlib.Path(folder))


@st.cache_data(show_spinner="Comparing the two runs' attributions pair by pair...", max_entries=4)
def _compared(folder_a: str, stamp_a: tuple, folder_b: str, stamp_b: tuple
              ) -> tuple[run_comparison.Joined, pd.DataFrame]:
    """The join of the two runs and its pairs with their agreement, the most disagreeing first and the pairs over a
    run's completeness tolerance last."""
    joined = run_comparison.join(_listing(folder_a, stamp_a), _listing(folder_b, stamp_b))
    if joined.pairs.empty:
        return joined, joined.pairs
    explained = ds.field("status") == "explained"
    scores = [store.read(pathlib.Path(folder), run_comparison.SCORE_COLUMNS, explained).to_pandas()
              for folder in (folder_a, folder_b)]
    agreements = run_comparison.agreements(joined.pairs, *scores)
    tolerances = [completeness.tolerance_of(store.read_manifest(pathlib.Path(folder)))
                  for folder in (folder_a, folder_b)]
    return joined, run_comparison.most_disagreeing(pd.concat([joined.pairs, agreements], axis=1), *tolerances)


def chosen_runs():
    """Two runs of one family, chosen by name: ((name, folder, manifest) A, B), or None after saying why not."""
    families = sorted({manifest.get("job", {}).get("family") for manifest in store.list_runs().values()} - {None})
    if not families:
        st.info(f"There are no runs in the runs folder. Make two of the same inputs with two models, e.g. "
                f"`python -m runs --family molecules --model w1n2 ... --out {store.runs_folder()}/"
                "tox21-w1n2` and the same with `--model w2n2`.")
        return None
    family = st.radio("Family", families, horizontal=True, key="compare_family")
    names = list(store.list_runs(family))
    if len(names) < 2:
        st.info(f"There is one {family} run ({escape_markdown(names[0])}): make a second of the same inputs with "
                "another model.")
        return None
    st.session_state.setdefault(f"compare_{family}_b", names[1])  # two different runs to start with
    column_a, column_b = st.columns(2)
    with column_a:
        first = choose_run(family, "Run A", key=f"compare_{family}_a")
    with column_b:
        second = choose_run(family, "Run B", key=f"compare_{family}_b")
    problem = run_comparison.refusal(first[0], first[2], second[0], second[2])
    if problem:
        st.warning(escape_markdown(problem))  # it names the runs
        return None
    return first, second


def run_caption(name: str, manifest: dict, row) -> str:
    return (f"**{escape_markdown(name)}**: {escape_markdown(manifest.get('model_key', '?'))}; "
            f"P = {row['probability']:.4g}, completeness error {row['relative_delta']:.3g}")


def molecule_picture(column, pair, row, run: str) -> None:
    try:
        column.image(run_comparison_views.molecule_svg(pair["source"], row["score_names"], row["scores"],
                                      f"run {run}: attribution to P({pair['target_name']})"))
    except ValueError as exc:  # an unreadable SMILES or another molecule's names: the table below still shows
        column.warning(f"Run {run}'s scores cannot be drawn on the molecule: {escape_markdown(exc)}")


def side_by_side(family: str, pair, rows: list, captions: list[str]) -> None:
    """The pair's two attributions in the family's units: a picture per run, or a row per run over the words."""
    if family == "language":
        for caption in captions:
            st.markdown(caption)
        st.altair_chart(run_comparison_views.word_rows_chart(rows[0]["score_names"], rows[0]["scores"],
                                                             rows[1]["score_names"], rows[1]["scores"], "A", "B"))
    else:
        for column, row, caption, run in zip(st.columns(2), rows, captions, "AB"):
            column.markdown(caption)
            if family == "vision":
                column.image(run_comparison_views.map_picture(row), caption="|attribution| per pixel", width="stretch")
            else:
                molecule_picture(column, pair, row, run)
    if family != "vision":
        st.markdown("Units whose ranks differ most (rank 1 = the most positive score):")
        st.dataframe(run_comparison.unit_table(rows[0]["score_names"], rows[0]["scores"], rows[1]["score_names"],
                                   rows[1]["scores"]), hide_index=True, width="stretch", height=280)


def main() -> None:
    st.title("Compare two runs")
    st.markdown("Two runs of the same inputs explained by two models (W1N2 and W2N2, two vision architectures, "
                "two language models). Each pair of rows (an item and a target both runs explained) gets the rank "
                "correlation of its two attributions (Spearman; named units matched by name, pixel maps on a "
                f"{run_comparison.MAP_GRID}x{run_comparison.MAP_GRID} grid); the pairs where the models disagree most "
                "come first.")
    chosen = chosen_runs()
    if chosen is None:
        return
    (name_a, folder_a, manifest_a), (name_b, folder_b, manifest_b) = chosen
    family = manifest_a["job"]["family"]
    if manifest_a.get("input_fingerprint") != manifest_b.get("input_fingerprint"):
        st.caption("The runs read different inputs (or different versions of one): pairs are joined by item id and "
                   "kept only where the input itself is the same.")
    joined, ranked = _compared(str(folder_a), store.stamp(folder_a), str(folder_b), store.stamp(folder_b))
    st.markdown(run_comparison_views.join_summary(joined, name_a, name_b))
    if ranked.get("incomplete", pd.Series(dtype=bool)).any():
        st.warning(run_comparison_views.incomplete_summary(ranked, completeness.tolerance_of(manifest_a),
                                                           completeness.tolerance_of(manifest_b)))
    if ranked.empty:
        st.warning(f"{escape_markdown(name_a)} and {escape_markdown(name_b)} have no explained item and target in "
                   "common: nothing to compare. Compare runs of the same input (and, for predicted targets, models "
                   "that agree on some).")
        return
    targets = [ALL_TARGETS, *sorted(ranked["target_name"].unique())]
    if st.session_state.get(TARGET_KEY, ALL_TARGETS) not in targets:  # chosen among another pair of runs' targets
        del st.session_state[TARGET_KEY]
    target = st.selectbox("Target", targets, key=TARGET_KEY)
    shown = ranked if target == ALL_TARGETS else ranked[ranked["target_name"] == target].reset_index(drop=True)
    event = st.dataframe(run_comparison_views.pairs_table(shown), key=TABLE_KEY, on_select="rerun",
                         selection_mode="single-row", hide_index=True, width="stretch", height=360)
    chosen_rows = [k for k in event.selection.rows if k < len(shown)]  # a row of another target's table: none
    pair = shown.iloc[chosen_rows[0] if chosen_rows else 0]
    st.subheader(f"{escape_markdown(pair['item_id'])}, {escape_markdown(pair['target_name'])}: "
                 f"Spearman {pair['spearman']:.3f}")
    if not chosen_rows:
        st.caption("The most disagreeing pair; choose a row of the table to see another.")
    rows = []
    for folder, run in ((folder_a, "a"), (folder_b, "b")):
        item = store.item_rows(folder, [int(pair[f"item_index_{run}"])])
        rows.append(item[item["target"] == pair["target"]].iloc[0])
    side_by_side(family, pair, rows, [run_caption(f"A: {name_a}", manifest_a, rows[0]),
                                      run_caption(f"B: {name_b}", manifest_b, rows[1])])


run_page(main)
