"""Language: a corpus run. Where in a corpus the language model is most surprised, and which words drive it there.

Thin: a language run of the runs folder (dashboard.session.choose_run); the columns of its windows, scores included,
read in one read per run and state of its shards (cached); the statistics of families.language.run_rows; the table and
the chart of dashboard.renderers.language_runs. A click on a window hands it to the Language page
(families.language.run_rows.OpenWindow in the session), which explains the window's exact tokens.
"""
from __future__ import annotations

import functools
import pathlib

import pandas as pd
import streamlit as st

from dashboard.renderers import language_runs as language_runs_views
from dashboard.scaffold import load_model, run_page
from dashboard.session import choose_run
from families.checkpoint import CheckpointError
from families.contract import NEAR_EQUAL_FRACTION, FamilyError
from families.language import run_rows as language_runs
from families.registry import FAMILIES
from runs import completeness, store

FAMILY = FAMILIES["language"]
LANGUAGE_PAGE = "dashboard/pages/language.py"
MAX_SHOWN = 1000  # rows of the window table; the sorting and filtering see every window
TABLE_KEY, SWITCH_KEY = "language_runs_table", "language_runs_switch"
TRUTH_TARGETS = ("next_word", "truth", "predicted+truth")  # rows whose probability is that of the actual next word
NUMBER, TEXT = st.column_config.NumberColumn, st.column_config.TextColumn
COLUMNS = {  # narrow, so that the window's words get the room left
    "window": TEXT(width=120), "next word": TEXT(width=90), "top word": TEXT(width=80),
    "surprise": NUMBER(format="%.2f", width=75, help="-log2 P(explained word | window), in bits"),
    "last share": NUMBER(format="%.2f", width=80, help="The last word's attribution over the sum of the window's; "
                         "empty where the words all but cancel (the baseline scores like the window)"),
    "disagreement": NUMBER(format="%.2f", width=95, help="1 - Spearman's rank correlation of integrated gradients "
                                                         "and gradient x input (0: same ranking, 2: reversed)"),
    "rank": NUMBER(width=60, help="The next word's rank among the model's words (1: its top word)"),
    "explained": TEXT(width=85, help="The target word of the window's attributions"),
    "P(explained)": NUMBER(format="%.2g", width=90),
}


@st.cache_resource(show_spinner=False, max_entries=8)
def _run_model(model_key: str) -> tuple[str | None, list[str] | None]:
    """The name among the Language family's models and the vocabulary of the model a run used; (None, None) when
    the models folder no longer holds those bytes."""
    source = language_runs.run_model_source(FAMILY.sources(), model_key)
    if source is None:
        return None, None
    try:
        return source.name, load_model(FAMILY, source).target_names
    except (FamilyError, CheckpointError):
        return None, None


# a resource, not data: st.cache_data would copy the frame (pickled) on every rerun, 0.8 s for 50,000 windows with
# their scores; the page only reads it (sorting and filtering make new frames)
@st.cache_resource(show_spinner="Reading the run...", max_entries=8)
def _windows(folder: str, stamp: tuple, model_key: str) -> pd.DataFrame:
    """The run's window table (families.language.run_rows.window_table), once per run and shard state (`stamp`)."""
    rows = store.read(folder, columns=language_runs.COLUMNS).to_pandas()
    return language_runs.window_table(rows, _run_model(model_key)[1])


def _open(shown: pd.DataFrame, run_name: str, model_name: str | None, job_settings: dict) -> None:
    """The row clicked in the window table goes to the Language page (switched to at the start of the rerun)."""
    rows = st.session_state[TABLE_KEY].selection.rows
    if rows:
        st.session_state[language_runs.OPEN_WINDOW_KEY] = language_runs.open_window(
            shown.iloc[rows[0]].to_dict(), run_name, model_name, job_settings)
        st.session_state[SWITCH_KEY] = True


def _summary(table: pd.DataFrame, manifest: dict, model_name: str | None) -> None:
    job = manifest.get("job", {})
    counts = manifest.get("counts") or {}
    truth_rows = table[table["chosen_as"].isin(TRUTH_TARGETS)]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Windows explained", f"{table['item_index'].nunique():,}")
    c2.metric("Perplexity of the next words", f"{language_runs_views.perplexity(truth_rows['surprise_bits']):,.1f}"
              if len(truth_rows) else "-", help="2 to the mean surprise at the actual next word, over the windows")
    c3.metric("Median last word's share", f"{table['last_word_share'].median():.2f}")
    c4.metric("Mean IG vs gradient disagreement", f"{table['disagreement'].mean():.2f}"
              if table["disagreement"].notna().any() else "-")
    not_explained = counts.get("refused", 0) + counts.get("skipped", 0)
    options = job.get("input_options") or {}
    window = options.get("window")
    st.caption(f"Targets: {job.get('targets')}; windows of {window} tokens every {options.get('stride') or window} of "
               f"{pathlib.Path(str(job.get('input'))).name}; {manifest.get('status')}"
               + (f"; {not_explained} windows not explained" if not_explained else "")
               + f". Model: {model_name or manifest.get('model_key', '?') + ' (not in the models folder now)'}.")
    if table["rather_than_name"].notna().any():
        st.info("This run explains the model's top word rather than the actual next word, where they differ: F is "
                "log P(top word) - log P(next word), so a word's attribution says how far it pushed the model "
                "towards its own guess and away from the word that came. The windows where the model's top word was "
                "the next word are not explained (nothing to contrast); the surprise is at the top word.")
    elif not len(truth_rows):
        st.info("This run explains the model's top word: the surprise is at that word (low: confident), and the "
                "rank of the actual next word says how far the model was from it.")
    cancelling = language_runs.cancelling_windows(table)
    if cancelling:
        st.caption(f"{cancelling:,} windows have no last word's share: their words' attributions all but cancel "
                   f"(their sum, F(window) - F(baseline), is at most {NEAR_EQUAL_FRACTION:.0%} of their total size), "
                   "so the baseline scores like the window and a share of that sum would be meaningless.")
    if table["disagreement"].isna().all():
        st.info("The run stored no gradient x input (a method other than integrated gradients): no disagreement.")


def _window_table(table: pd.DataFrame, run_name: str, model_name: str | None,
                  manifest: dict) -> tuple[pd.DataFrame, str]:
    """The sorted, filtered windows, the first MAX_SHOWN listed; returns all those that pass the filter and what
    the filter is, for people ("" for none)."""
    st.subheader("Windows")
    c1, c2, c3, c4 = st.columns([2, 1, 2, 2])
    by = c1.radio("Sort by", list(language_runs.SORTS), horizontal=True, key="language_runs_sort",
                  help="surprise: -log2 P(next word | window). Last word's share: its attribution over the "
                       "sum of the window's. Disagreement: 1 - Spearman's rank correlation of integrated "
                       "gradients and gradient x input (0: same ranking, 2: reversed).")
    ascending = c2.toggle("Smallest first", key="language_runs_ascending")
    word = c3.text_input("Word", key="language_runs_word", placeholder="e.g. stock, N, <eos>",
                         help="Only the windows with this token (any case)")
    place = c4.radio("Where", language_runs.WORD_PLACES, horizontal=True, key="language_runs_word_place")
    chosen = language_runs.with_word(table, word, place)
    having = f" with {word.strip()!r} {place}" if word.strip() else ""
    if chosen.empty:
        st.warning(f"No window{having}.")
        return chosen, having
    shown = language_runs.sort_windows(chosen, by, ascending).head(MAX_SHOWN)
    listed = language_runs_views.windows_frame(shown, completeness.tolerance_of(manifest))
    opener = functools.partial(_open, shown.reset_index(drop=True), run_name, model_name,
                               manifest.get("job", {}).get("settings", {}))
    st.dataframe(listed, key=TABLE_KEY, on_select=opener, selection_mode="single-row",
                 hide_index=True, width="stretch", column_config=COLUMNS)
    st.caption(f"{len(shown):,} of {len(chosen):,} windows{having}. Click a row to explain its window on the "
               "Language page (the window's exact tokens).")
    st.download_button("Download these windows (CSV)", listed.to_csv(index=False), file_name=f"{run_name}_windows.csv",
                       mime="text/csv")
    return chosen, having


def _distance(chosen: pd.DataFrame, having: str) -> None:
    st.subheader("Attribution by distance from the predicted word")
    normalise = st.toggle("As a share of each window's total", key="language_runs_normalise",
                          help="Each window's scores divided by their sum first, so that every window weighs "
                               "alike; words that pull in opposite directions give shares below 0 or above 1.")
    profile = language_runs.distance_profile(chosen["scores"], normalise)
    st.altair_chart(language_runs_views.distance_chart(profile, normalise), width="content")
    st.caption(f"Mean over the {len(chosen):,} windows{having or ' of the run'}, with a 95% "
               "interval (1.96 standard errors); below, how many windows reach each distance.")


def main() -> None:
    if st.session_state.pop(SWITCH_KEY, False):  # a window was clicked: explain it on the Language page
        st.switch_page(LANGUAGE_PAGE)
    st.title("Language: a corpus run")
    st.markdown("The windows of a text explained by `python -m runs --family language`: where the "
                "language model is most surprised by the next word, and which context words carry the attribution.")
    choice = choose_run(FAMILY.name, "Run", key="language_runs_run")
    if choice is None:
        return
    name, folder, manifest = choice
    model_name, _ = _run_model(manifest.get("model_key", ""))
    table = _windows(str(folder), store.stamp(folder), manifest.get("model_key", ""))
    if table.empty:
        st.warning(f"Run {name} has no explained windows yet (refused or skipped ones only, or none written).")
        return
    _summary(table, manifest, model_name)
    chosen, having = _window_table(table, name, model_name, manifest)
    if not chosen.empty:
        _distance(chosen, having)


run_page(main)
