"""Molecules: which atoms and bonds drive a weave network's Tox21 activity prediction (paper Section 3.1).

Thin: forms for the inputs, calls into models.molecules.attribution (one cached engine scan per molecule
and task) and renderers from views.molecules. View-only controls live in fragments so they never recompute.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np
import streamlit as st

from models.data import DataNotFound, models_dir
from models.molecules import (CHECKPOINT_DIR, CheckpointError, Featurizer, MoleculeError, load_sdf, load_smiles_csv,
                              load_weave)
from models.molecules import attribution as ma
from views import molecules as vm
from views.session import get_engine, progress_reporter, scan_settings

CHECKPOINTS_ENV = "IG_WEAVE_CHECKPOINTS"  # a folder of .pt checkpoints to use instead of the bundled ones
MODES = ("Explain a molecule", "Browse actives", "Debug: W1N2 vs W2N2")
EXAMPLE = "CC(=O)Oc1ccccc1C(=O)O"
MAX_LISTED = 2000
INPUT_KEY, TASK_KEY, OPEN_TASK_KEY, MODE_KEY, BOOST_KEY, BROWSE_KEY, PAGE_KEY = (
    "mol_input", "mol_task", "mol_open_task", "mol_mode", "mol_boost", "mol_browse", "mol_page")


# --- cached resources ------------------------------------------------------------------------------

def _checkpoint_dir() -> pathlib.Path:
    env = os.environ.get(CHECKPOINTS_ENV, "").strip()
    return pathlib.Path(env).expanduser() if env else CHECKPOINT_DIR


def _checkpoints() -> dict[str, pathlib.Path]:
    """Shown name -> file: the checkpoint folder's, then the user's own (<models folder>/molecules/*.pt, as
    `python -m models.molecules.train --csv ...` writes them). Only the names reach the browser."""
    found = {}
    for folder, suffix in ((_checkpoint_dir(), "bundled"), (models_dir() / "molecules", "yours")):
        for path in sorted(folder.glob("*.pt")) if folder.is_dir() else ():
            found[path.stem if path.stem not in found else f"{path.stem} ({suffix})"] = path
    return found


@st.cache_resource(show_spinner="Loading the weave model...")
def _model(path: str, mtime: float):
    return load_weave(path)


def load_model(path: pathlib.Path):
    return _model(str(path), path.stat().st_mtime)


@st.cache_resource(show_spinner="Reading Tox21...")  # shared and read-only: no copy per rerun
def _tox21():
    return ma.tox21_frame()


@st.cache_resource(show_spinner="Featurizing the actives...")
def _actives(featurizer: Featurizer, task: str):
    return ma.featurize_actives(_tox21(), task, featurizer)


@st.cache_resource(show_spinner="Predicting the actives...")
def _active_predictions(weights: str, featurizer: Featurizer, task: str, _model):
    """[n, T] for _actives(featurizer, task); keyed by the model's weights (ma.model_fingerprint)."""
    return ma.predict_many(_model, _actives(featurizer, task))


# --- inputs ----------------------------------------------------------------------------------------

def _request(kind: str, molecules: list[tuple[str, str, list[str]]], skipped: list[str] = (),
             error: str | None = None) -> dict:
    """The stored input: (label, SMILES, warnings) per molecule (featurized with the current model's
    featurizer when shown), the skipped records' messages, and an error to show instead."""
    request = {"kind": kind, "molecules": molecules[:MAX_LISTED], "skipped": list(skipped),
               "truncated": max(len(molecules) - MAX_LISTED, 0)}
    if error:
        request["error"] = error
    return request


def _store_input(kind: str, molecules: list[tuple[str, str, list[str]]], skipped: list[str] = (),
                 error: str | None = None) -> None:
    st.session_state[INPUT_KEY] = _request(kind, molecules, skipped, error)
    st.session_state.pop(BOOST_KEY, None)


def input_forms(model) -> None:
    tab_smiles, tab_file, tab_data = st.tabs(["SMILES", "Upload SDF / CSV", "From Tox21"])
    with tab_smiles, st.form("mol_smiles_form"):
        smiles = st.text_input("SMILES", value=EXAMPLE, help="e.g. CCO; salts keep their largest fragment")
        if st.form_submit_button("Explain"):
            _store_input("SMILES", [(smiles.strip() or "(empty)", smiles, [])])
    with tab_file, st.form("mol_file_form"):
        upload = st.file_uploader("SD file (.sdf) or CSV with a 'smiles' column", type=["sdf", "sd", "mol", "csv", "txt"])
        if st.form_submit_button("Load"):
            if upload is None:
                _store_input("file", [], error="Choose a file first.")
            else:
                _load_upload(upload, model)
    with tab_data, st.form("mol_data_form"):
        try:
            frame = _tox21()
        except DataNotFound as exc:
            st.warning(f"Tox21 is not available: {exc}")
            st.form_submit_button("Explain", disabled=True)
            return
        row = st.number_input(f"Tox21 row (0-{len(frame) - 1})", 0, len(frame) - 1, 0)
        if st.form_submit_button("Explain"):
            _store_input("Tox21", [(f"Tox21 row {row}", str(frame.smiles.iloc[int(row)]), [])])


def _load_upload(upload, model) -> None:
    data = upload.getvalue()
    try:
        if upload.name.lower().endswith((".csv", ".txt")):
            report = load_smiles_csv(data, model.featurizer)
        else:
            report = load_sdf(data, model.featurizer)
    except MoleculeError as exc:
        _store_input("file", [], error=str(exc))
        return
    mols = [(m.name or m.source or m.smiles, m.smiles, list(m.warnings)) for m in report.molecules]
    _store_input(upload.name, mols, report.messages,
                 error=None if mols else f"No molecule in {upload.name} could be read.")


def current_molecule(model):
    """(features, label) of the chosen input, or None after showing why not."""
    request = st.session_state.get(INPUT_KEY) or _request("SMILES", [(EXAMPLE, EXAMPLE, [])])
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
    key = f"{TASK_KEY}:{ma.molecule_key(model, features)}"
    requested = st.session_state.pop(OPEN_TASK_KEY, None)
    if requested in names:
        st.session_state[key] = requested
    elif st.session_state.get(key) not in names:
        st.session_state[key] = names[int(np.argmax(predictions))]
    kinds = [ma.quantity(ma.is_regression(model, t)) for t in names]
    what = "predicted probability of active" if set(kinds) == {"P(active)"} else "prediction"
    name = st.selectbox(f"Task ({what})", names, key=key,
                        format_func=lambda t: f"{t}   {kinds[names.index(t)]} = {predictions[names.index(t)]:.3f}")
    return names.index(name)


def _settings():
    return ma.boosted_settings(scan_settings(), st.session_state.get(BOOST_KEY, 1))


def _with_progress(label: str, scan, *args, **kwargs):
    """scan(*args, **kwargs, progress=...) under a progress bar that is removed afterwards."""
    holder = st.empty()
    with holder.container():
        progress = progress_reporter(label)
    try:
        return scan(*args, progress=progress, **kwargs)
    finally:
        holder.empty()


# --- explain one molecule --------------------------------------------------------------------------

def explain_section(engine, model) -> None:
    input_forms(model)
    chosen = current_molecule(model)
    if chosen is None:
        return
    features, label = chosen
    predictions = ma.predict(engine.prepare(model), features)
    task = choose_task(model, features, predictions)
    expl = _with_progress("Integrated gradients", ma.explain_molecule, engine, model, features, task, _settings(),
                          predictions=predictions)
    completeness(expl)
    show_explanation(expl, label)


def completeness(expl) -> None:
    verdict = vm.completeness(expl)
    getattr(st, verdict.level)(verdict.text)  # st.success, st.info, st.warning or st.error
    if verdict.level == "warning" and st.button("Recompute with 4x the steps"):
        st.session_state[BOOST_KEY] = st.session_state.get(BOOST_KEY, 1) * 4
        st.rerun()


@st.fragment
def show_explanation(expl, label: str) -> None:
    st.subheader(f"{label}: {expl.task_name}, {expl.quantity} = {expl.score_input:.3f}")
    what = ma.quantity(expl.regression, expl.task_name)
    c1, c2, c3 = st.columns(3)
    style = c1.radio("Drawing", ["atoms and bonds (highlight)", "atom contours (similarity map)"],
                     key="mol_style", horizontal=False)
    indices = c2.checkbox("Atom indices", key="mol_indices")
    order = c3.selectbox("Sort tables by", vm.SORT_ORDERS, key="mol_sort")
    left, right = st.columns([3, 2])
    with left:
        svg = vm.attribution_svg(expl.mol, expl.atom_scores, expl.bond_scores, show_indices=indices,
                                 label=f"attribution to {what}")
        if style.startswith("atoms and bonds"):
            st.image(svg, caption=f"{expl.smiles}")
        else:
            st.image(vm.similarity_map_png(expl.mol, expl.atom_scores, show_indices=indices),
                     caption="contours of the atom scores (bond and pair scores are not drawn)"
                     if vm.draws_contours(expl.mol) else
                     "a single atom has no contours to draw: it is coloured by its score instead")
        d1, d2, d3 = st.columns(3)
        stem = vm.download_stem(expl.task_name, expl.smiles)
        d1.download_button("Scores (CSV)", expl.scores_csv(), f"{stem}_scores.csv", "text/csv")
        d2.download_button("Drawing (SVG)", svg, f"{stem}.svg", "image/svg+xml")
        d3.download_button("Drawing (PNG)", vm.attribution_png(expl.mol, expl.atom_scores, expl.bond_scores,
                                                               show_indices=indices), f"{stem}.png", "image/png")
    with right:
        st.markdown("**Accounting (Section 3.1)**")
        accounting = expl.accounting()
        st.altair_chart(vm.accounting_chart(accounting), width="stretch")
        st.dataframe(accounting, hide_index=True, width="stretch")
        st.markdown("**Predictions for every task**")
        st.dataframe(vm.predictions_table(expl.task_names, expl.predictions, expl.task, expl.task_regression),
                     hide_index=True, width="stretch", height=250)
    t1, t2 = st.columns(2)
    t1.markdown("**Atoms** (score = sum over the atom's features)")
    t1.dataframe(vm.sort_table(expl.atom_table(), order=order), hide_index=True, width="stretch")
    t2.markdown(f"**Bonds** (score = both ordered pairs); non-bonded pairs in total: {expl.nonbonded_total:+.4g}")
    t2.dataframe(vm.sort_table(expl.bond_table(), order=order), hide_index=True, width="stretch")
    if not expl.mol.GetNumBonds():
        t2.caption("No bonds and no atom pairs (a single atom): the whole attribution is the atom's.")
    st.markdown("**Saturation (Figure 13)**")
    fa, fb = vm.saturation_charts([expl], task=expl.task_name, quantity=what)
    s1, s2 = st.columns(2)
    s1.altair_chart(fa, width="stretch")
    s2.altair_chart(fb, width="stretch")


# --- browse actives ---------------------------------------------------------------------------------

def _open(smiles: str, label: str, task: str) -> None:
    _store_input("Tox21", [(label, smiles, [])])
    st.session_state[OPEN_TASK_KEY] = task
    st.session_state[MODE_KEY] = MODES[0]


def browse_section(engine, model) -> None:
    try:
        _tox21()
    except DataNotFound as exc:
        st.error(f"Tox21 is not available, so there is nothing to browse: {exc}")
        return
    names = list(model.task_names)
    with st.form("mol_browse_form"):
        c1, c2, c3 = st.columns(3)
        task = c1.selectbox("Task", names, index=names.index(st.session_state.get(BROWSE_KEY, {}).get("task", names[0])))
        sort = c2.selectbox("Order", vm.BROWSE_ORDERS)
        size = c3.selectbox("Per page", [8, 12, 16, 24], index=1)
        if st.form_submit_button("Show actives"):
            st.session_state[BROWSE_KEY] = {"task": task, "sort": sort, "size": size}
            st.session_state[PAGE_KEY] = 1
    request = st.session_state.get(BROWSE_KEY)
    if request is None:
        st.info("Choose a task and press **Show actives**: the dataset's actives for that task, each with its "
                "prediction and attribution heat map.")
        return
    task = request["task"]
    features = _actives(model.featurizer, task)
    if not features:
        st.warning(f"No active molecule for {task} could be featurized.")
        return
    model = engine.prepare(model)
    preds = _active_predictions(ma.model_fingerprint(model), model.featurizer, task, model)[:, names.index(task)]
    order = vm.browse_order(preds, request["sort"])
    pages = max((len(order) + request["size"] - 1) // request["size"], 1)
    page = st.number_input(f"Page (of {pages}; {len(order)} actives for {task})", 1, pages, key=PAGE_KEY)
    chosen = order[(page - 1) * request["size"]: page * request["size"]]
    explanations, failed = _with_progress(f"Attributing {len(chosen)} molecules", ma.explain_many, engine, model,
                                          [features[i] for i in chosen], task, _settings())
    for k, msg in failed:
        st.warning(f"{features[chosen[k]].name}: {msg}")
    grid(explanations, [features[i].name for i in chosen], [preds[i] for i in chosen], task)
    across_molecules(explanations, [features[i].name for i in chosen], task)


def grid(explanations, labels, preds, task, columns: int = 4) -> None:
    for start in range(0, len(explanations), columns):
        cols = st.columns(columns)
        for col, e, label, p in zip(cols, explanations[start:start + columns], labels[start:start + columns],
                                     preds[start:start + columns]):
            with col.container(border=True):
                st.image(vm.thumbnail_svg(e.mol, e.atom_scores, e.bond_scores), width="stretch")
                flag = "" if e.converged else " ⚠"
                st.caption(f"{label} · P(active) = {p:.3f} · error {100 * e.relative_delta:.1f}%{flag}")
                st.button("Open", key=f"open_{label}_{task}", on_click=_open, args=(e.smiles, label, task))


def across_molecules(explanations, labels, task) -> None:
    if not explanations:
        return
    st.subheader(f"Across the {len(explanations)} molecules on this page")
    st.caption("Mean attribution to P(active: " + task + ") per atom type (lower case: aromatic) and per "
               "functional group (a match's score is its atoms' plus its internal bonds' scores; the SMARTS "
               "list is models.molecules.attribution.FUNCTIONAL_GROUPS).")
    atoms, groups = ma.mean_by_atom_type(explanations), ma.mean_by_functional_group(explanations)
    c1, c2 = st.columns(2)
    c1.altair_chart(vm.means_chart(atoms, "atom type"), width="stretch")
    c1.dataframe(atoms, hide_index=True, width="stretch")
    if groups.empty:
        c2.info("None of the listed functional groups occurs in these molecules.")
    else:
        c2.altair_chart(vm.means_chart(groups, "group"), width="stretch")
        c2.dataframe(groups, hide_index=True, width="stretch")
    fa, fb = vm.saturation_charts(explanations, labels, task)
    s1, s2 = st.columns(2)
    s1.altair_chart(fa, width="stretch")
    s2.altair_chart(fb, width="stretch")


# --- model debugging ---------------------------------------------------------------------------------

def debug_section(engine, checkpoints) -> None:
    st.markdown(
        "The paper found that in **W1N2** several atoms of a molecule get exactly the same attribution although "
        "their neighbourhoods differ: one weave layer sees only an atom's type and the multiset of its pair "
        "features, so such atoms contribute identically. The detector below groups atoms whose scores agree and "
        "says whether the molecule's symmetry explains the group (then any model gives equal scores).")
    names = list(checkpoints)
    if len(names) < 2:
        st.warning(f"Two checkpoints are needed (found: {', '.join(names) or 'none'}); train W1N2 with "
                   "`python -m models.molecules.train --weave 1 --out models/molecules/checkpoints/w1n2.pt`.")
    with st.form("mol_debug_form"):
        c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
        current = st.session_state.get(INPUT_KEY, {}).get("molecules") or [(EXAMPLE, EXAMPLE, [])]
        smiles = c1.text_input("SMILES", value=current[0][1])
        a = c2.selectbox("Model A", names, index=names.index("w1n2") if "w1n2" in names else 0)
        b = c3.selectbox("Model B", names, index=names.index("w2n2") if "w2n2" in names else len(names) - 1)
        decimals = c4.number_input("Digits", 2, 8, 5, help="scores are identical when they agree to this many "
                                   "digits of the largest |atom score|")
        submitted = st.form_submit_button("Compare")
    if submitted:
        st.session_state["mol_debug"] = {"smiles": smiles, "a": a, "b": b, "decimals": int(decimals)}
    request = st.session_state.get("mol_debug")
    if request is None:
        return
    task_name = None
    cols = st.columns(2)
    for col, name in zip(cols, (request["a"], request["b"])):
        with col:
            st.markdown(f"**{name}**")
            try:
                model = engine.prepare(load_model(checkpoints[name]))
                features = model.featurizer.from_smiles(request["smiles"])
            except (MoleculeError, CheckpointError, KeyError) as exc:
                st.error(str(exc))
                continue
            for w in features.warnings:
                st.warning(w)
            predictions = ma.predict(model, features)
            if task_name is None:  # model A's most likely task, explained in both models
                task_name = model.task_names[int(np.argmax(predictions))]
            task = task_name if task_name in model.task_names else 0
            expl = _with_progress(f"{name}: integrated gradients", ma.explain_molecule, engine, model, features, task,
                                  _settings(), predictions=predictions)
            groups = ma.identical_attribution_groups(expl, request["decimals"])
            counts = ma.anomaly_counts(groups)
            what = ma.quantity(expl.regression, expl.task_name)
            st.image(vm.attribution_svg(expl.mol, expl.atom_scores, expl.bond_scores, show_indices=True,
                                        label=f"{name}: attribution to {what}"))
            st.caption(f"{what} = {expl.score_input:.3f}; completeness error "
                       f"{100 * expl.relative_delta:.2f}%")
            msg = (f"{counts['groups']} groups of identical atom scores ({counts['atoms in groups']} atoms); "
                   f"{counts['groups not explained by symmetry']} not explained by symmetry "
                   f"({counts['atoms in those']} atoms).")
            (st.warning if counts["groups not explained by symmetry"] else st.success)(msg)
            st.dataframe(ma.groups_table(groups), hide_index=True, width="stretch")


# --- the page ----------------------------------------------------------------------------------------

st.title("Molecules: which atoms and bonds drive the prediction")
st.caption("Weave networks (Kearnes et al. 2016) trained on Tox21; integrated gradients scale the atom and "
           "pair features together down to all zeros (Section 3.1 of the paper).")
engine = get_engine()
checkpoints = _checkpoints()
if not checkpoints:
    st.error(f"No weave checkpoint in {_checkpoint_dir()}. Train one with "
             "`python -m models.molecules.train --weave 2 --out models/molecules/checkpoints/w2n2.pt`.")
    st.stop()
names = list(checkpoints)
model_name = st.sidebar.selectbox("Model", names, index=names.index("w2n2") if "w2n2" in names else 0,
                                  key="mol_model")
try:
    model = load_model(checkpoints[model_name])
except CheckpointError as exc:
    st.error(str(exc))
    st.stop()
test_mean = (getattr(model, "metrics", {}) or {}).get("test", {}).get("mean")
test_metric = "ROC-AUC" if "regression" not in model.task_kinds else "mean of ROC-AUC and R²"
st.sidebar.caption(f"W{model.config['n_weave']}N{model.featurizer.max_distance}, featurizer "
                   f"{model.featurizer.kind}" + (f", test {test_metric} {test_mean:.3f}" if test_mean else "") +
                   f"; {engine.device_name}")
mode = st.radio("View", MODES, horizontal=True, key=MODE_KEY, label_visibility="collapsed")
try:
    if mode == MODES[0]:
        explain_section(engine, model)
    elif mode == MODES[1]:
        browse_section(engine, model)
    else:
        debug_section(engine, checkpoints)
except (MoleculeError, CheckpointError, DataNotFound, ValueError) as exc:  # Streamlit's rerun/stop are BaseException
    st.error(f"{exc}")
