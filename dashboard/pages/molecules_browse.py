"""Molecules: browse a Tox21 task's active molecules, each with its prediction and attribution heat map."""
from __future__ import annotations

import streamlit as st

from dashboard.renderers import method_comparison
from dashboard.renderers import molecules as molecule_views
from dashboard.renderers.markdown import escape_markdown
from dashboard.scaffold import run_page, straight_line
from dashboard.sections.molecules_shared import (
    EXPLAIN_PAGE,
    OPEN_TASK_KEY,
    choose_weave,
    saturation_row,
    settings,
    store_input,
    tox21,
    with_progress,
)
from dashboard.session import get_engine
from families.config import DataNotFound
from families.molecules.attribution import explain_many
from families.molecules.explanation import model_fingerprint
from families.molecules.functional_groups import mean_by_atom_type, mean_by_functional_group
from families.molecules.tox21 import featurize_actives
from families.molecules.weave import predict_batched

BROWSE_KEY, PAGE_KEY = "mol_browse", "mol_page"


@st.cache_resource(show_spinner="Featurizing the actives...")
def _actives(featurizer, task: str):
    return featurize_actives(tox21(), task, featurizer)


@st.cache_resource(show_spinner="Predicting the actives...")
def _active_predictions(weights: str, featurizer, task: str, _model):
    """[n, T] for _actives(featurizer, task); keyed by the model's weights (model_fingerprint)."""
    return predict_batched(_model, _actives(featurizer, task))


def main() -> None:
    st.title("Molecules: browse the actives of Tox21")
    st.caption("Each active molecule of a task with the weave model's prediction and its attribution heat map; "
               "Open explains one on the Molecules page.")
    loaded = choose_weave()
    if loaded is None:
        return
    model = loaded.module
    engine = get_engine()
    try:
        tox21()
    except DataNotFound as exc:
        st.error(f"Tox21 is not available, so there is nothing to browse: {escape_markdown(exc)}")
        return
    names = list(model.task_names)
    request = st.session_state.get(BROWSE_KEY)
    if request is not None and request["task"] not in names:  # asked of another model
        request = None
    with st.form("mol_browse_form"):
        c1, c2, c3 = st.columns(3)
        task = c1.selectbox("Task", names, index=names.index(request["task"]) if request else 0)
        sort = c2.selectbox("Order", molecule_views.BROWSE_ORDERS)
        size = c3.selectbox("Per page", [8, 12, 16, 24], index=1)
        if st.form_submit_button("Show actives"):
            st.session_state[BROWSE_KEY] = {"task": task, "sort": sort, "size": size}
            st.session_state[PAGE_KEY] = 1
            request = st.session_state[BROWSE_KEY]
    if request is None:
        st.info("Choose a task and press **Show actives**: the dataset's actives for that task, each with its "
                "prediction and attribution heat map.")
        return
    task = request["task"]
    features = _actives(model.featurizer, task)
    if not features:
        st.warning(f"No active molecule for {escape_markdown(task)} could be featurized.")
        return
    preds = _active_predictions(model_fingerprint(model), model.featurizer, task, model)[:, names.index(task)]
    order = molecule_views.browse_order(preds, request["sort"])
    pages = max((len(order) + request["size"] - 1) // request["size"], 1)
    page = st.number_input(f"Page (of {pages}; {len(order)} actives for {escape_markdown(task)})", 1, pages,
                           key=PAGE_KEY)
    chosen = order[(page - 1) * request["size"]: page * request["size"]]
    method_settings = settings(loaded, features[chosen[0]])
    explanations, failed = with_progress(f"Attributing {len(chosen)} molecules", explain_many,
                                         engine, model, [features[i] for i in chosen], task, method_settings)
    for k, msg in failed:
        st.warning(escape_markdown(f"{features[chosen[k]].name}: {msg}"))  # messages quote the SMILES
    grid(explanations, [features[i].name for i in chosen], [preds[i] for i in chosen], task)
    across_molecules(explanations, [features[i].name for i in chosen], task)


def grid(explanations, labels, preds, task, columns: int = 4) -> None:
    for start in range(0, len(explanations), columns):
        cols = st.columns(columns)
        for col, e, label, p in zip(cols, explanations[start:start + columns], labels[start:start + columns],
                                     preds[start:start + columns]):
            with col.container(border=True):
                st.image(molecule_views.thumbnail_svg(e.mol, e.atom_scores, e.bond_scores), width="stretch")
                shown = escape_markdown(label)
                if e.attribution.completeness_defined:
                    flag = "" if e.completeness_ok else " ⚠"
                    st.caption(f"{shown} · P(active) = {p:.3f} · error {100 * e.task_relative_delta:.1f}%{flag}")
                else:
                    st.caption(f"{shown} · P(active) = {p:.3f} · {method_comparison.completeness_text(e)}")
                if st.button("Open", key=f"open_{label}_{task}"):
                    store_input("Tox21", [(label, e.smiles, [])])
                    st.session_state[OPEN_TASK_KEY] = task
                    st.switch_page(EXPLAIN_PAGE)


def across_molecules(explanations, labels, task) -> None:
    if not explanations:
        return
    st.subheader(f"Across the {len(explanations)} molecules on this page")
    st.caption("Mean attribution to log-odds(active: " + escape_markdown(task) + ") per atom type (lower case: "
               "aromatic) and per functional group (a match's score is its atoms' plus its internal bonds' scores; "
               "the SMARTS list is families.molecules.functional_groups.FUNCTIONAL_GROUPS).")
    atoms = mean_by_atom_type(explanations)
    groups = mean_by_functional_group(explanations)
    c1, c2 = st.columns(2)
    c1.altair_chart(molecule_views.means_chart(atoms, "atom type"), width="stretch")
    c1.dataframe(atoms, hide_index=True, width="stretch")
    if groups.empty:
        c2.info("None of the listed functional groups occurs in these molecules.")
    else:
        c2.altair_chart(molecule_views.means_chart(groups, "group"), width="stretch")
        c2.dataframe(groups, hide_index=True, width="stretch")
    if straight_line(explanations[0].settings, "Saturation (Figure 13)"):
        saturation_row(explanations, labels, task)


run_page(main)
