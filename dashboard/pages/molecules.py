"""Molecules: which atoms and bonds drive a weave network's Tox21 activity prediction (paper Section 3.1).

Thin: forms for the inputs, the model through the molecules family (dashboard/pages/molecules_shared.py), calls into
families.molecules.attribution (one cached engine scan per molecule and task) and renderers from dashboard.renderers.molecules.
View-only controls live in fragments so they never recompute. Browsing Tox21's actives and the W1N2 vs W2N2
comparison are pages of their own (molecules_browse.py, molecules_debug.py).
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.pages.molecules_shared import BOOST_KEY, EXAMPLE, FAMILY, INPUT_KEY, MAX_LISTED, OPEN_TASK_KEY, choose_weave, saturation_row, settings, store_input, tox21
from families.config import DataNotFound
from families.molecules.family import loaded_weave
from families.molecules import MoleculeError, load_sdf, load_smiles_csv
from families.molecules import attribution as molecule_attribution
from dashboard.renderers import method_comparison
from dashboard.renderers import molecules as molecule_views
from dashboard.scaffold import compare_methods, run_page, straight_line
from dashboard.session import explain_refining, get_engine

TASK_KEY = "mol_task"


def input_forms(model) -> None:
    tab_smiles, tab_file, tab_data = st.tabs(["SMILES", "Upload SDF / CSV", "From Tox21"])
    with tab_smiles, st.form("mol_smiles_form"):
        smiles = st.text_input("SMILES", value=EXAMPLE, help="e.g. CCO; salts keep their largest fragment")
        if st.form_submit_button("Explain"):
            store_input("SMILES", [(smiles.strip() or "(empty)", smiles, [])])
    with tab_file, st.form("mol_file_form"):
        upload = st.file_uploader("SD file (.sdf) or CSV with a 'smiles' column", type=["sdf", "sd", "mol", "csv", "txt"])
        if st.form_submit_button("Load"):
            if upload is None:
                store_input("file", [], error="Choose a file first.")
            else:
                _load_upload(upload, model)
    with tab_data, st.form("mol_data_form"):
        try:
            frame = tox21()
        except DataNotFound as exc:
            st.warning(f"Tox21 is not available: {exc}")
            st.form_submit_button("Explain", disabled=True)
            return
        row = st.number_input(f"Tox21 row (0-{len(frame) - 1})", 0, len(frame) - 1, 0)
        if st.form_submit_button("Explain"):
            store_input("Tox21", [(f"Tox21 row {row}", str(frame.smiles.iloc[int(row)]), [])])


def _load_upload(upload, model) -> None:
    data = upload.getvalue()
    try:
        if upload.name.lower().endswith((".csv", ".txt")):
            report = load_smiles_csv(data, model.featurizer)
        else:
            report = load_sdf(data, model.featurizer)
    except MoleculeError as exc:
        store_input("file", [], error=str(exc))
        return
    mols = [(m.name or m.source or m.smiles, m.smiles, list(m.warnings)) for m in report.molecules]
    store_input(upload.name, mols, report.messages,
                error=None if mols else f"No molecule in {upload.name} could be read.")


def current_molecule(model):
    """(features, label) of the chosen input, or None after showing why not."""
    request = st.session_state.get(INPUT_KEY) or {"kind": "SMILES", "molecules": [(EXAMPLE, EXAMPLE, [])]}
    for msg in request.get("skipped", [])[:20]:
        st.warning(msg)
    if len(request.get("skipped", [])) > 20:
        st.warning(f"... and {len(request['skipped']) - 20} more records were skipped.")
    if request.get("error"):
        st.error(request["error"])
        return None
    molecules = request["molecules"]
    if request.get("truncated"):
        st.info(f"Only the first {MAX_LISTED} molecules are listed ({request['truncated']} more in the file).")
    if len(molecules) > 1:
        k = st.selectbox(f"Molecule ({len(molecules)} read from {request['kind']})", range(len(molecules)),
                         format_func=lambda i: f"{molecules[i][0]}: {molecules[i][1][:60]}", key="mol_pick")
    else:
        k = 0
    label, smiles, warnings = molecules[k]
    try:
        features = model.featurizer.from_smiles(smiles, name=label)
    except MoleculeError as exc:
        st.error(str(exc))
        return None
    for w in sorted(set(warnings) | set(features.warnings)):
        st.warning(w)
    return features, label


def choose_task(model, features, predictions: np.ndarray) -> int:
    """The task box. One widget per model and molecule (its key names both): Streamlit keeps a widget's state
    and shown label by key, so a shared key would keep the previous molecule's task and probabilities. It starts
    at the most likely task, or at the task Browse's Open button asked for."""
    names = list(model.task_names)
    key = f"{TASK_KEY}:{molecule_attribution.molecule_key(model, features)}"
    requested = st.session_state.pop(OPEN_TASK_KEY, None)
    if requested in names:
        st.session_state[key] = requested
    elif st.session_state.get(key) not in names:
        st.session_state[key] = names[int(np.argmax(predictions))]
    kinds = [molecule_attribution.quantity(molecule_attribution.is_regression(model, t)) for t in names]
    what = "predicted probability of active" if set(kinds) == {"P(active)"} else "prediction"
    name = st.selectbox(f"Task ({what})", names, key=key,
                        format_func=lambda t: f"{t}   {kinds[names.index(t)]} = {predictions[names.index(t)]:.3f}")
    return names.index(name)


# --- explain one molecule --------------------------------------------------------------------------

def explain_section(engine, model) -> None:
    input_forms(model)
    chosen = current_molecule(model)
    if chosen is None:
        return
    features, label = chosen
    predictions = molecule_attribution.predict(model, features)
    task = choose_task(model, features, predictions)
    chosen = settings(model, features)
    expl = explain_refining(
        method_comparison.chosen_method(chosen).label, "molecule",
        f"{loaded_weave(model).key}|{features.smiles}|{task}", chosen,
        lambda progress, partial: molecule_attribution.explain_molecule(engine, model, features, task, chosen, progress,
                                                                        partial),
        show=first_picture)
    completeness(expl)
    show_explanation(expl, label)
    compare_methods(FAMILY, loaded_weave(model), features, [task], chosen, key="mol_compare", show=side_by_side)


def side_by_side(runs) -> None:
    """The compared methods' drawings in columns (each on its own colour scale), then their scores per atom and
    bond."""
    for column, run in zip(st.columns(len(runs)), runs):
        e = run.explanation
        column.image(molecule_views.attribution_svg(e.mol, e.atom_scores, e.bond_scores, size=(300, 220),
                                                    label=run.label),
                     caption=f"{run.label}; {method_comparison.completeness_text(e)}")
    st.dataframe(method_comparison.scores_table(runs, list(runs[0].explanation.scores(0))), hide_index=True)


def completeness(expl) -> None:
    verdict = molecule_views.completeness(expl)
    getattr(st, verdict.level)(verdict.text)  # st.success, st.info, st.warning or st.error
    path_rule = method_comparison.chosen_method(expl.settings).uses_path_rule  # only then do more steps help
    if verdict.level == "warning" and path_rule and st.button("Recompute with 4x the steps"):
        st.session_state[BOOST_KEY] = st.session_state.get(BOOST_KEY, 1) * 4
        st.rerun()


@st.fragment
def first_picture(expl) -> None:
    """The molecule coloured by its scores: what the page shows while the scan refines."""
    st.image(molecule_views.attribution_svg(
        expl.mol, expl.atom_scores, expl.bond_scores,
        label=f"attribution to {molecule_attribution.quantity(expl.regression, expl.task_name)}"))


def show_explanation(expl, label: str) -> None:
    st.subheader(f"{label}: {expl.task_name}, {expl.quantity} = {expl.score_input:.3f}")
    what = molecule_attribution.quantity(expl.regression, expl.task_name)
    c1, c2, c3 = st.columns(3)
    style = c1.radio("Drawing", ["atoms and bonds (highlight)", "atom contours (similarity map)"],
                     key="mol_style", horizontal=False)
    indices = c2.checkbox("Atom indices", key="mol_indices")
    order = c3.selectbox("Sort tables by", molecule_views.SORT_ORDERS, key="mol_sort")
    left, right = st.columns([3, 2])
    with left:
        svg = molecule_views.attribution_svg(expl.mol, expl.atom_scores, expl.bond_scores, show_indices=indices,
                                             label=f"attribution to {what}")
        if style.startswith("atoms and bonds"):
            st.image(svg, caption=f"{expl.smiles}")
        else:
            st.image(molecule_views.similarity_map_png(expl.mol, expl.atom_scores, show_indices=indices),
                     caption="contours of the atom scores (bond and pair scores are not drawn)"
                     if molecule_views.draws_contours(expl.mol) else
                     "a single atom has no contours to draw: it is coloured by its score instead")
        d1, d2, d3 = st.columns(3)
        stem = molecule_views.download_stem(expl.task_name, expl.smiles)
        d1.download_button("Scores (CSV)", expl.scores_csv(), f"{stem}_scores.csv", "text/csv")
        d2.download_button("Drawing (SVG)", svg, f"{stem}.svg", "image/svg+xml")
        d3.download_button("Drawing (PNG)", molecule_views.attribution_png(expl.mol, expl.atom_scores, expl.bond_scores,
                                                                           show_indices=indices),
                           f"{stem}.png", "image/png")
    with right:
        if expl.attribution.completeness_defined:  # the accounting splits the completeness law's value
            st.markdown("**Accounting (Section 3.1)**")
            accounting = expl.accounting()
            st.altair_chart(molecule_views.accounting_chart(accounting), width="stretch")
            st.dataframe(accounting, hide_index=True, width="stretch")
        st.markdown("**Predictions for every task**")
        st.dataframe(molecule_views.predictions_table(expl.task_names, expl.predictions, expl.task,
                                                      expl.task_regression),
                     hide_index=True, width="stretch", height=250)
    t1, t2 = st.columns(2)
    t1.markdown("**Atoms** (score = sum over the atom's features)")
    t1.dataframe(molecule_views.sort_table(expl.atom_table(), order=order), hide_index=True, width="stretch")
    t2.markdown(f"**Bonds** (score = both ordered pairs); non-bonded pairs in total: {expl.nonbonded_total:+.4g}")
    t2.dataframe(molecule_views.sort_table(expl.bond_table(), order=order), hide_index=True, width="stretch")
    if not expl.mol.GetNumBonds():
        t2.caption("No bonds and no atom pairs (a single atom): the whole attribution is the atom's.")
    if straight_line(expl.settings, "Saturation (Figure 13)"):
        st.markdown("**Saturation (Figure 13)**")
        saturation_row([expl], task=expl.task_name, quantity=what)


# --- the page ----------------------------------------------------------------------------------------

def choose_requested_model() -> None:
    """The model another page asked for with the molecule it opened here (a run's page: the model that made the
    run's rows), chosen once before the sidebar's box is drawn; the user may change it afterwards."""
    request = st.session_state.get(INPUT_KEY) or {}
    if "model" not in request:
        return
    model = request.pop("model")
    if model in [source.name for source in FAMILY.sources()]:
        st.session_state[f"{FAMILY.name}_model"] = model
    else:
        st.info("The model that made the run is not among this page's models: the molecule is explained with the "
                "model chosen in the sidebar.")


def main() -> None:
    st.title("Molecules: which atoms and bonds drive the prediction")
    st.caption("Weave networks (Kearnes et al. 2016) trained on Tox21; integrated gradients scale the atom and "
               "pair features together down to all zeros (Section 3.1 of the paper). Other methods: the Home page; "
               "methods that draw baselines from other inputs do not apply (molecules differ in shape).")
    choose_requested_model()
    model = choose_weave()
    if model is not None:
        explain_section(get_engine(), model)


run_page(main)
