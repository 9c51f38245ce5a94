"""Molecules: every row of one task of a molecules run, which substructures carry the attribution across them.

Thin: a molecules run of the runs folder (made with --targets actives, or predicted for all molecules), its
listing (no scores) cached per run, one task's scores read and matched to molecules once per run and task
(families.molecules.run_rows), a SMARTS filter, the selection sorted, its functional-group and atom-type statistics,
its exports, and a click that opens a molecule on the Molecules page.
"""
from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import streamlit as st

from dashboard.renderers import molecules as molecule_views
from dashboard.renderers.completeness import with_adds_up
from dashboard.renderers.markdown import escape_markdown
from dashboard.scaffold import run_page
from dashboard.sections import molecule_runs as run_sections
from dashboard.sections.molecules_shared import EXPLAIN_PAGE, FAMILY, INPUT_KEY, OPEN_TASK_KEY, store_input
from dashboard.session import choose_run
from families.molecules import run_rows as molecule_runs
from runs import completeness, store

SORT_LABELS = {"prediction": "prediction", "completeness error": "completeness error (relative)",
               "group attribution": "attribution on the functional group"}
TABLE_KEY = "molecule_runs_table"
CHOICES = ("molecule_runs_run", "molecule_runs_task", "molecule_runs_smarts", "molecule_runs_group",
           "molecule_runs_sort", "molecule_runs_order")
ORDERS = ("high first", "low first")


@st.cache_data(show_spinner="Reading the run's listing...", max_entries=8)
def _listing(folder: str, stamp: tuple) -> pd.DataFrame:
    return store.listing(pathlib.Path(folder))


def task_scores(folder: pathlib.Path, target: int) -> pd.DataFrame:
    """item_index, score_names and scores of one task's explained rows: only these columns, only its rows."""
    where = (ds.field("status") == "explained") & (ds.field("target") == int(target))
    return store.read(folder, ["item_index", "score_names", "scores"], where).to_pandas()


# a resource, not data: its RDKit molecules are shared read-only, where st.cache_data would unpickle tens of
# thousands of them on every rerun
@st.cache_resource(show_spinner="Reading the task's scores and finding the functional groups of its molecules...",
                   max_entries=4)
def _task(folder: str, stamp: tuple, target: int):
    rows = molecule_runs.explained(_listing(folder, stamp))
    return molecule_runs.task_rows(rows[rows["target"] == target], task_scores(pathlib.Path(folder), target))


@st.cache_data(show_spinner="Filtering...", max_entries=16)
def _matching(folder: str, stamp: tuple, target: int, smarts: str) -> np.ndarray:
    return molecule_runs.matching(_task(folder, stamp, target), molecule_runs.smarts_pattern(smarts))


@st.cache_data(show_spinner="Comparing the atom scores with the task's ground truth...", max_entries=8)
def _agreement(folder: str, stamp: tuple, target: int, task_name: str) -> np.ndarray:
    truth = molecule_runs.known_ground_truth(task_name)
    return molecule_runs.ground_truth_agreement(_task(folder, stamp, target), truth)


def open_on_molecules_page(run: str, row: pd.Series, task_name: str) -> None:
    """The Molecules page with this molecule and task, and the model that made the row when it is one of the
    family's models (the page explains it again with its own settings)."""
    store_input(f"run {run}", [(f"{run}: {row['item_id']}", row["source"], [])])
    st.session_state[OPEN_TASK_KEY] = task_name
    st.session_state[INPUT_KEY]["model"] = molecule_runs.model_source_name(row["model_key"], FAMILY.sources())
    st.switch_page(EXPLAIN_PAGE)


def remember_choices() -> None:
    """Streamlit drops a page's widget values while another page runs: kept under keys of their own, they are put
    back when the user returns (to the run, task, filter and order left for the Molecules page)."""
    for key in CHOICES:
        kept = f"{key}:kept"
        if key in st.session_state:
            st.session_state[kept] = st.session_state[key]
        elif kept in st.session_state:
            st.session_state[key] = st.session_state[kept]


def choose_task(listing: pd.DataFrame) -> tuple[int, str] | None:
    counts = molecule_runs.task_counts(listing)
    if counts.empty:
        statuses = listing["status"].value_counts()
        st.warning(f"This run has no explained rows ({', '.join(f'{n} {s}' for s, n in statuses.items())}): "
                   "nothing to show. Runs made with --targets actives skip the molecules active on no task.")
        return None
    counts = counts.set_index("task")
    name = st.selectbox("Task", list(counts.index), key="molecule_runs_task",
                        format_func=lambda name: f"{name} ({counts.rows[name]} rows)")
    return int(counts.target[name]), name


def selection_form() -> tuple[str, str, str, bool]:
    with st.form("molecule_runs_form"):
        c1, c2, c3, c4 = st.columns([3, 2, 2, 1])
        smarts = c1.text_input("SMARTS filter", key="molecule_runs_smarts",
                               help="Only the molecules that contain this substructure (RDKit SMARTS), e.g. "
                                    "`c1ccccc1` or `[N+](=O)[O-]`. Empty: every row of the task.")
        group = c2.selectbox("Functional group", molecule_runs.GROUPS, key="molecule_runs_group",
                             help="Its attribution in a molecule: the scores of its matched atoms and of the bonds "
                                  "inside a match, each once (families.molecules.functional_groups.FUNCTIONAL_GROUPS)")
        sort_by = c3.selectbox("Sort by", molecule_runs.SORT_KEYS, format_func=SORT_LABELS.get,
                               key="molecule_runs_sort")
        order = c4.selectbox("Order", ORDERS, key="molecule_runs_order")
        st.form_submit_button("Apply")
    return smarts, group, sort_by, order == ORDERS[0]


def rows_table(run: str, task, table: pd.DataFrame, task_name: str, group: str, tolerance: float) -> None:
    numbers = {column: st.column_config.NumberColumn(format="%.4f") for column in table.columns
               if column not in ("item", "SMILES", "label", f"{group}: matches")}
    numbers["completeness error"] = st.column_config.NumberColumn(format="percent")
    numbers["label"] = st.column_config.NumberColumn(help="1: active in the input's labels, 0: inactive, "
                                                          "empty: unknown")
    event = st.dataframe(with_adds_up(table, table["completeness error"], tolerance), hide_index=True,
                         on_select="rerun", selection_mode="single-row", key=TABLE_KEY, column_config=numbers)
    st.caption(f"Click a row to explain its molecule on the Molecules page. {task.prediction_name}: the model's "
               "prediction when the run was made; completeness error: |attributions - (F(molecule) - F(baseline))| "
               f"relative to F(molecule) - F(baseline); adds up: within the run's {tolerance * 100:g}% tolerance "
               "(NO: the row's attributions cannot be trusted).")
    if event.selection.rows:
        position = table.index[event.selection.rows[0]]
        open_on_molecules_page(run, task.rows.iloc[position], task_name)


def statistics(task, positions: np.ndarray, task_name: str) -> None:
    st.subheader(f"Across the {len(positions)} molecules of the selection")
    st.caption(f"Mean attribution to {task.prediction_name} of {escape_markdown(task_name)}: per match of each "
               "functional group (its atoms and the bonds inside it), and per atom type (lower case: aromatic); share: "
               "of F(molecule) - F(baseline); molecules: how many of the selection contain it.")
    groups, atoms = molecule_runs.group_statistics(task, positions), molecule_runs.atom_type_statistics(task, positions)
    left, right = st.columns(2)
    left.markdown("**Functional groups**")
    if groups.empty:
        left.info("None of the functional groups occurs in these molecules.")
    else:
        left.altair_chart(molecule_views.means_chart(groups, "group"), width="stretch")
        left.dataframe(groups, hide_index=True, width="stretch")
    right.markdown("**Atom types**")
    right.altair_chart(molecule_views.means_chart(atoms, "atom type"), width="stretch")
    right.dataframe(atoms, hide_index=True, width="stretch")


def main() -> None:
    st.title("Molecules: a run's actives")
    st.caption("The rows of a molecules dataset run (python -m runs, one row per molecule and task it "
               "explains) for one task: which substructures carry the attribution across all of them.")
    remember_choices()
    chosen = choose_run("molecules", key="molecule_runs_run")
    if chosen is None:
        return
    run, folder, manifest = chosen
    stamp = store.stamp(folder)
    task_choice = choose_task(_listing(str(folder), stamp))
    if task_choice is None:
        return
    target, task_name = task_choice
    task = _task(str(folder), stamp, target)
    if task.left_out:
        st.warning(f"{len(task.left_out)} rows are left out, their molecules do not match their scores: "
                   + escape_markdown("; ".join(task.left_out[:3])) + ("; ..." if len(task.left_out) > 3 else ""))
    if not task.molecules:
        st.warning(f"No row of {escape_markdown(task_name)} could be read back as a molecule.")
        return
    smarts, group, sort_by, descending = selection_form()
    try:
        positions = _matching(str(folder), stamp, target, smarts)
    except ValueError as exc:  # a SMARTS RDKit cannot read
        st.error(escape_markdown(exc))
        return
    if not len(positions):
        st.info(f"No molecule of the {len(task.rows)} rows of {escape_markdown(task_name)} contains "
                f"{escape_markdown(smarts.strip())}.")
        return
    st.subheader(f"{len(positions)} of {len(task.rows)} rows of {escape_markdown(task_name)}"
                 + (f" containing {escape_markdown(smarts.strip())}" if smarts.strip() else ""))
    truth = molecule_runs.known_ground_truth(task_name)
    agreement = _agreement(str(folder), stamp, target, task_name) if truth else None
    table = molecule_runs.selection_table(task, positions, group, sort_by, descending, truth, agreement)
    rows_table(run, task, table, task_name, group, completeness.tolerance_of(manifest))
    if truth:
        run_sections.ground_truth_caption(truth, table[molecule_runs.agreement_column(truth)])
    run_sections.exports(run, task, table, task_name)
    statistics(task, positions, task_name)


run_page(main)
