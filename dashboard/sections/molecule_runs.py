"""The sections of the page "Molecules: a run's actives" beyond its table: the downloads of a selection and what its
agreement with a task's ground truth means."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from families.molecules import run_rows as molecule_runs
from families.molecules.ground_truth import BenchmarkTask


def exports(run: str, task, table: pd.DataFrame, task_name: str) -> None:
    stem = f"{run}_{task_name}_{len(table)}_molecules"
    positions = list(table.index)
    sdf, csv = st.columns(2)
    # made when clicked: an SD file of 50,000 molecules takes a while and is not needed on every rerun
    sdf.download_button("Selection (SDF, per-atom scores)",
                        lambda: molecule_runs.selection_sdf(task, positions, task_name), f"{stem}.sdf",
                        "chemical/x-mdl-sdfile", on_click="ignore",
                        help=f"Per-atom scores as the atom property {molecule_runs.ATOM_PROPERTY} (atom.dprop list), "
                             "bond scores in the record's bond order, the task, probability and delta as properties")
    csv.download_button("Selection (CSV)", lambda: molecule_runs.selection_csv(task, table, task_name), f"{stem}.csv",
                        "text/csv", on_click="ignore",
                        help="One line per row: its numbers and its attribution on every functional group")


def ground_truth_caption(truth: BenchmarkTask, agreement: pd.Series) -> None:
    """What the ground-truth column holds, with its mean over the selection."""
    known = agreement.dropna()
    what = ("Kendall tau-b of the atom scores against each atom's Crippen logP contribution (its hydrogens' added)"
            if truth.regression else f"attribution AUROC of the atom scores against the atoms of the best match of "
            f"the task's rule ({' and '.join(truth.patterns)})")
    mean = f"mean {known.mean():.3f} over {len(known)} molecules" if len(known) else "undefined for every molecule"
    st.caption(f"Ground truth: {what}, as the molecule attribution benchmark (Sanchez-Lengeling et al. 2020) scores "
               f"it: 1 ranks the atoms as the truth does, 0 (tau) or 0.5 (AUROC) as chance; {mean} of the selection.")
