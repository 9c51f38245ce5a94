"""What the Molecules pages share (not a page): the model choice, Tox21, the stored input and the scan helpers."""
from __future__ import annotations

import streamlit as st

from dashboard.renderers import molecules as molecule_views
from dashboard.scaffold import choose_model, page_settings
from dashboard.session import progress_bar
from families.contract import LoadedModel
from families.molecules.attribution import boosted_settings
from families.molecules.tox21 import tox21_frame
from families.registry import FAMILIES

FAMILY = FAMILIES["molecules"]
DEFAULT_MODEL = "shipped: w2n2"  # the paper's model first
EXAMPLE = "CC(=O)Oc1ccccc1C(=O)O"
MAX_LISTED = 2000
INPUT_KEY, OPEN_TASK_KEY, BOOST_KEY = "mol_input", "mol_open_task", "mol_boost"
EXPLAIN_PAGE = "dashboard/pages/molecules.py"


def choose_weave() -> LoadedModel | None:
    """The sidebar's weave model through the family's sources (its `module` is the weave network), or None after
    saying why there is none."""
    if DEFAULT_MODEL in [source.name for source in FAMILY.sources()]:
        st.session_state.setdefault(f"{FAMILY.name}_model", DEFAULT_MODEL)
    loaded = choose_model(FAMILY)
    if loaded is None:
        return None
    st.sidebar.caption(molecule_views.model_summary(loaded.module))
    return loaded


@st.cache_resource(show_spinner="Reading Tox21...")  # shared and read-only: no copy per rerun
def tox21():
    return tox21_frame()


def store_input(kind: str, molecules: list[tuple[str, str, list[str]]], skipped: list[str] = (),
                error: str | None = None) -> None:
    """The Molecules page's input: (label, SMILES, warnings) per molecule (featurized with the current model's
    featurizer when shown), the skipped records' messages, and an error to show instead."""
    st.session_state[INPUT_KEY] = {"kind": kind, "molecules": molecules[:MAX_LISTED], "skipped": list(skipped),
                                   "truncated": max(len(molecules) - MAX_LISTED, 0), "error": error}
    st.session_state.pop(BOOST_KEY, None)


def stored_molecules() -> list[tuple[str, str, list[str]]]:
    return (st.session_state.get(INPUT_KEY) or {}).get("molecules") or [(EXAMPLE, EXAMPLE, [])]


def settings(model: LoadedModel, features):
    """The shared scan settings with a method that applies to molecules (see dashboard.scaffold.page_settings) and
    the extra path points the user asked for on a missed completeness."""
    return boosted_settings(page_settings(FAMILY, model, features), st.session_state.get(BOOST_KEY, 1))


def with_progress(label: str, scan, *args, **kwargs):
    """scan(*args, **kwargs, progress=...) under a progress bar that is removed afterwards."""
    with progress_bar(label) as progress:
        return scan(*args, progress=progress, **kwargs)


def saturation_row(explanations, labels=None, task: str = "", quantity: str | None = None) -> None:
    """Figure 13's two saturation charts side by side."""
    for column, chart in zip(st.columns(2), molecule_views.saturation_charts(explanations, labels, task, quantity)):
        column.altair_chart(chart, width="stretch")
