"""Molecules: the paper's W1N2 anomaly, atoms with identical attributions that symmetry does not explain."""
from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.renderers import method_comparison
from dashboard.renderers import molecules as molecule_views
from dashboard.renderers.markdown import escape_markdown
from dashboard.scaffold import load_model, run_page
from dashboard.sections.molecules_shared import DEFAULT_MODEL, FAMILY, settings, stored_molecules, with_progress
from dashboard.session import get_engine
from families.checkpoint import CheckpointError
from families.contract import FamilyError, ModelSource
from families.molecules.attribution import explain_molecule
from families.molecules.explanation import predict, quantity
from families.molecules.identical_attributions import anomaly_counts, groups_table, identical_attribution_groups

DEBUG_KEY = "mol_debug"


def compare_form(names: list[str]) -> None:
    with st.form("mol_debug_form"):
        c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
        smiles = c1.text_input("SMILES", value=stored_molecules()[0][1])
        first, second = "shipped: w1n2", DEFAULT_MODEL
        a = c2.selectbox("Model A", names, index=names.index(first) if first in names else 0)
        b = c3.selectbox("Model B", names, index=names.index(second) if second in names else len(names) - 1)
        decimals = c4.number_input("Digits", 2, 8, 5, help="scores are identical when they agree to this many "
                                   "digits of the largest |atom score|")
        if st.form_submit_button("Compare"):
            st.session_state[DEBUG_KEY] = {"smiles": smiles, "a": a, "b": b, "decimals": int(decimals)}


def model_column(source: ModelSource, smiles: str, task_name: str | None, decimals: int, chosen=None):
    """One model's drawing and identical-score groups; returns the task explained (model A's most likely one) and
    the scan settings (model A's column picks the method, model B's uses it)."""
    st.markdown(f"**{escape_markdown(source.name)}**")
    try:
        loaded = load_model(FAMILY, source)
        features = loaded.module.featurizer.from_smiles(smiles)
    except (FamilyError, CheckpointError) as exc:  # MoleculeError is a FamilyError: its message quotes the SMILES
        st.error(escape_markdown(exc))
        return task_name, chosen
    model = loaded.module
    chosen = chosen or settings(loaded, features)
    for warning in features.warnings:
        st.warning(escape_markdown(warning))
    task_name = task_name or model.task_names[int(np.argmax(predict(model, features)))]
    task = task_name if task_name in model.task_names else 0
    expl = with_progress(f"{escape_markdown(source.name)}: {method_comparison.chosen_method(chosen).label}",
                         explain_molecule, get_engine(), model, features, task, chosen)
    groups = identical_attribution_groups(expl, decimals)
    counts = anomaly_counts(groups)
    what = quantity(expl.regression, expl.task_name)
    st.image(molecule_views.attribution_svg(expl.mol, expl.atom_scores, expl.bond_scores, show_indices=True,
                                            label=f"{source.name}: attribution to {what}"))
    st.caption(f"{escape_markdown(what)} = {expl.task_score_input:.3f}; {method_comparison.completeness_text(expl)}")
    message = (f"{counts['groups']} groups of identical atom scores ({counts['atoms in groups']} atoms); "
               f"{counts['groups not explained by symmetry']} not explained by symmetry ({counts['atoms in those']} "
               "atoms).")
    (st.warning if counts["groups not explained by symmetry"] else st.success)(message)
    st.dataframe(groups_table(groups), hide_index=True, width="stretch")
    return task_name, chosen


def main() -> None:
    st.title("Molecules: W1N2 vs W2N2")
    st.markdown(
        "The paper found that in **W1N2** several atoms of a molecule get exactly the same attribution although "
        "their neighbourhoods differ: one weave layer sees only an atom's type and the multiset of its pair "
        "features, so such atoms contribute identically. The detector below groups atoms whose scores agree and "
        "says whether the molecule's symmetry explains the group (then any model gives equal scores).")
    sources = {source.name: source for source in FAMILY.sources()}
    if len(sources) < 2:
        st.warning(f"Two checkpoints are needed (found: {escape_markdown(', '.join(sources)) or 'none'}); train W1N2 "
                   "with `python -m families.molecules.train --weave 1 --out families/molecules/checkpoints/w1n2.pt`.")
    compare_form(list(sources))
    request = st.session_state.get(DEBUG_KEY)
    if request is None:
        return
    task_name, chosen = None, None  # model A's most likely task and method, explained in both models
    for column, name in zip(st.columns(2), (request["a"], request["b"])):
        with column:
            if name not in sources:  # the models folder changed since the comparison was asked for
                st.error(f"{escape_markdown(name)} is no longer available; choose the models again.")
                continue
            task_name, chosen = model_column(sources[name], request["smiles"], task_name, request["decimals"], chosen)


run_page(main)
