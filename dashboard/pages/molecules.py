"""Molecules: which atoms and bonds drive a weave network's Tox21 activity prediction (paper Section 3.1).

Thin: forms for the inputs, the model through the molecules family (dashboard/sections/molecules_shared.py), one scan of
the family per molecule and task (cached in the engine) and the sections of dashboard/sections/molecules.py.
Browsing Tox21's actives and the W1N2 vs W2N2 comparison are pages of their own (molecules_browse.py,
molecules_debug.py).
"""
from __future__ import annotations

import streamlit as st

from dashboard.renderers import method_comparison
from dashboard.renderers.markdown import escape_markdown
from dashboard.scaffold import compare_methods, run_page, sanity_check
from dashboard.sections.molecule_targets import RATHER_THAN_KEY, choose_contrast, choose_task
from dashboard.sections.molecules import completeness, first_picture, show_explanation, side_by_side
from dashboard.sections.molecules_shared import (
    EXAMPLE,
    FAMILY,
    INPUT_KEY,
    MAX_LISTED,
    OPEN_TASK_KEY,
    choose_weave,
    settings,
    store_input,
    stored_molecules,
    tox21,
)
from dashboard.session import explain_refining, get_engine
from dashboard.url_state import accepted_by, among, link, linked, settings_in_url
from families.config import DataNotFound
from families.contract import InputError
from families.molecules import load_sdf, load_smiles_csv
from families.molecules.explanation import predict
from ig_core import Contrast

SMILES_KEY = "mol_smiles"


def input_forms(model) -> None:
    tab_smiles, tab_file, tab_data = st.tabs(["SMILES", "Upload SDF / CSV", "From Tox21"])
    with tab_smiles, st.form("mol_smiles_form"):
        # Streamlit forgets the box's text when another page runs, so the box starts anew from the page's molecule,
        # also one another page opened here; a fixed key keeps what is typed while the page stays
        smiles = st.text_input("SMILES", value=stored_molecules()[0][1], key=SMILES_KEY,
                               help="e.g. CCO; salts keep their largest fragment")
        if st.form_submit_button("Explain"):
            store_input("SMILES", [(smiles.strip() or "(empty)", smiles, [])])
    with tab_file, st.form("mol_file_form"):
        upload = st.file_uploader("SD file (.sdf) or CSV with a 'smiles' column",
                                  type=["sdf", "sd", "mol", "csv", "txt"])
        if st.form_submit_button("Load"):
            if upload is None:
                store_input("file", [], error="Choose a file first.")
            else:
                _load_upload(upload, model)
    with tab_data, st.form("mol_data_form"):
        try:
            frame = tox21()
        except DataNotFound as exc:
            st.warning(f"Tox21 is not available: {escape_markdown(exc)}")
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
    except InputError as exc:
        store_input("file", [], error=str(exc))
        return
    mols = [(m.name or m.source or m.smiles, m.smiles, list(m.warnings)) for m in report.molecules]
    store_input(upload.name, mols, report.messages,
                error=None if mols else f"No molecule in {upload.name} could be read.")


def current_molecule(model):
    """(features, label) of the chosen input, or None after showing why not."""
    request = st.session_state.get(INPUT_KEY) or {"kind": "SMILES", "molecules": [(EXAMPLE, EXAMPLE, [])]}
    for msg in request.get("skipped", [])[:20]:  # messages that quote the records' SMILES
        st.warning(escape_markdown(msg))
    if len(request.get("skipped", [])) > 20:
        st.warning(f"... and {len(request['skipped']) - 20} more records were skipped.")
    if request.get("error"):
        st.error(escape_markdown(request["error"]))
        return None
    molecules = request["molecules"]
    if request.get("truncated"):
        st.info(f"Only the first {MAX_LISTED} molecules are listed ({request['truncated']} more in the file).")
    if len(molecules) > 1:
        k = st.selectbox(f"Molecule ({len(molecules)} read from {escape_markdown(request['kind'])})",
                         range(len(molecules)), format_func=lambda i: f"{molecules[i][0]}: {molecules[i][1][:60]}",
                         key="mol_pick")
    else:
        k = 0
    label, smiles, warnings = molecules[k]
    try:
        features = model.featurizer.from_smiles(smiles, name=label)
    except InputError as exc:
        st.error(escape_markdown(exc))
        return None
    for w in sorted(set(warnings) | set(features.warnings)):
        st.warning(escape_markdown(w))
    link(smiles=smiles)
    return features, label


def molecule_from_link(model) -> None:
    """The scan settings, the molecule and the task that the URL which opened the page names: the SMILES as if typed and
    explained, the task the one shown. The SMILES and task shown are written into the URL (current_molecule,
    explain_section)."""
    settings_in_url(FAMILY.name)
    chosen = linked(FAMILY.name, smiles=accepted_by(model.featurizer.from_smiles),  # its InputError says why not
                    task=among(model.task_names, "one of the model's tasks"),
                    rather_than=among(model.task_names, "one of the model's tasks"))
    if "smiles" in chosen:
        store_input("SMILES", [(chosen["smiles"].strip(), chosen["smiles"], [])])
    if "task" in chosen:
        st.session_state[OPEN_TASK_KEY] = chosen["task"]
    if "rather_than" in chosen:
        st.session_state[RATHER_THAN_KEY] = chosen["rather_than"]


def explain_section(engine, loaded) -> None:
    model = loaded.module
    molecule_from_link(model)
    input_forms(model)
    current = current_molecule(model)
    if current is None:
        return
    features, label = current
    task = choose_task(model, features, predict(model, features))
    other = choose_contrast(model, task)
    link(task=model.task_names[task], rather_than=None if other is None else model.task_names[other])
    target = task if other is None else Contrast(task, other)
    scan = settings(loaded, features)
    expl = explain_refining(
        method_comparison.chosen_method(scan).label, "molecule", f"{loaded.key}|{features.smiles}|{task}|{other}", scan,
        lambda progress, partial: FAMILY.explain(engine, loaded, features, [target], scan, progress, partial),
        show=first_picture)
    completeness(expl)
    show_explanation(expl, label)
    compare_methods(FAMILY, loaded, features, [target], scan, key="mol_compare", show=side_by_side)
    sanity_check(FAMILY, loaded, features, [target], scan, key="mol_sanity")


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
               "pair features together from a baseline to the molecule (Section 3.1 of the paper; the baseline is "
               "named under the completeness verdict). F is a task's log-odds of active, not its probability: "
               "a probability saturates, and the atoms that push an active molecule further would get almost "
               "nothing. Other methods: the Home page; "
               "methods that draw baselines from other inputs do not apply (molecules differ in shape).")
    choose_requested_model()
    loaded = choose_weave()
    if loaded is not None:
        explain_section(get_engine(), loaded)


run_page(main)
