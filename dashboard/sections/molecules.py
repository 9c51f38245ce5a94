"""The Molecules page's sections for one explanation (not a page): the completeness verdict, the molecule coloured by
its scores with the accounting, predictions, atom and bond tables and saturation, and methods side by side. The view
controls (drawing, indices, table order) only redraw: the scan is cached in the engine."""
from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.renderers import colours, method_comparison
from dashboard.renderers import molecules as molecule_views
from dashboard.renderers.markdown import escape_markdown
from dashboard.scaffold import straight_line
from dashboard.sections.molecules_shared import BOOST_KEY, saturation_row


def completeness(expl) -> None:
    verdict = molecule_views.completeness(expl)
    getattr(st, verdict.level)(verdict.text)  # st.success, st.info, st.warning or st.error
    st.caption(f"Baseline: {expl.baseline.description}.")  # what F(baseline) is the prediction of
    path_rule = method_comparison.chosen_method(expl.settings).uses_path_rule  # only then do more steps help
    if verdict.level == "warning" and path_rule and st.button("Recompute with 4x the steps"):
        st.session_state[BOOST_KEY] = st.session_state.get(BOOST_KEY, 1) * 4
        st.rerun()


@st.fragment
def first_picture(expl) -> None:
    """The molecule coloured by its scores: what the page shows while the scan refines."""
    st.image(molecule_views.attribution_svg(expl.mol, expl.atom_scores, expl.bond_scores,
                                            label=f"attribution to {expl.explained_quantity}"))


def side_by_side(runs) -> None:
    """The compared methods' drawings in columns (each on its own colour scale), then their scores per atom and
    bond."""
    for column, run in zip(st.columns(len(runs)), runs):
        e = run.explanation
        column.image(molecule_views.attribution_svg(e.mol, e.atom_scores, e.bond_scores, size=(300, 220),
                                                    label=run.label),
                     caption=f"{run.label}; {method_comparison.completeness_text(e)}")
    st.dataframe(method_comparison.scores_table(runs, list(runs[0].explanation.scores(0))), hide_index=True)


ATOM_SCORES = ("own features", "own + half of each bond")


def drawing(expl, style: str, indices: bool, what: str, atom_view: str = ATOM_SCORES[0]) -> None:
    """The molecule coloured by its scores (highlights or contours) and its downloads; with the bonds' scores
    split to their atoms, the bonds are drawn uncoloured (their scores are in the atoms')."""
    atom_scores, bond_scores = expl.atom_scores, expl.bond_scores
    if atom_view == ATOM_SCORES[1]:
        atom_scores, bond_scores = expl.atom_scores_with_bonds, np.zeros_like(expl.bond_scores)
    svg = molecule_views.attribution_svg(expl.mol, atom_scores, bond_scores, show_indices=indices,
                                         label=f"attribution to {what}")
    if style.startswith("atoms and bonds"):
        st.image(svg, caption=escape_markdown(expl.smiles))  # captions are Markdown
    else:
        st.image(molecule_views.similarity_map_png(expl.mol, atom_scores, show_indices=indices),
                 caption="contours of the atom scores (bond and pair scores are not drawn)"
                 if molecule_views.draws_contours(expl.mol) else
                 "a single atom has no contours to draw: it is coloured by its score instead")
    d1, d2, d3 = st.columns(3)
    stem = molecule_views.download_stem(expl.explained_name, expl.smiles)
    d1.download_button("Scores (CSV)", expl.scores_csv(), f"{stem}_scores.csv", "text/csv")
    d2.download_button("Drawing (SVG)", svg, f"{stem}.svg", "image/svg+xml")
    d3.download_button("Drawing (PNG)", molecule_views.attribution_png(expl.mol, atom_scores, bond_scores,
                                                                       show_indices=indices,
                                                                       label=f"attribution to {what}"),
                       f"{stem}.png", "image/png")
    st.caption(colours.caption(escape_markdown(what)))


def accounting_and_predictions(expl) -> None:
    if expl.attribution.completeness_defined:  # the accounting splits the completeness law's value
        st.markdown("**Accounting (Section 3.1)**")
        note = molecule_views.accounting_note(expl)
        if note:
            st.warning(note)
        accounting = expl.accounting()
        st.altair_chart(molecule_views.accounting_chart(accounting), width="stretch")
        table = molecule_views.accounting_table(accounting)
        numbers_as_text = {name: st.column_config.TextColumn(alignment="right")  # "n/a" among them: aligned as numbers
                           for name in table.select_dtypes(exclude="number").columns if name != "part"}
        st.dataframe(table, hide_index=True, width="stretch", column_config=numbers_as_text)
        table_note = molecule_views.accounting_table_note(table)
        if table_note:
            st.caption(table_note)
    st.markdown("**Predictions for every task**")
    st.dataframe(molecule_views.predictions_table(expl.task_names, expl.predictions, expl.task, expl.task_regression),
                 hide_index=True, width="stretch", height=250)


def show_explanation(expl, label: str) -> None:
    probability = ("" if expl.regression or expl.contrasted
                   else f" (P(active) = {expl.predictions[expl.task]:.3f})")  # what the task box shows
    st.subheader(f"{escape_markdown(label)}: {escape_markdown(expl.explained_name)}, {expl.quantity} = "
                 f"{expl.task_score_input:.3f}{probability}")
    if expl.contrasted:
        st.caption(f"F: {escape_markdown(expl.explained_quantity)}. A contrast is a difference of the log-odds, as a "
                   "single task is explained on its log-odds: there a difference of two tasks' scores is a difference "
                   "of the model's evidence, while two probabilities also move with how saturated each is.")
    what = expl.explained_quantity
    c1, c2, c3 = st.columns(3)
    style = c1.radio("Drawing", ["atoms and bonds (highlight)", "atom contours (similarity map)"],
                     key="mol_style", horizontal=False)
    indices = c2.checkbox("Atom indices", key="mol_indices")
    atom_view = c2.radio("Atom scores", ATOM_SCORES, key="mol_atom_scores",
                         help="An atom's own features, or with half of each of its bonds' scores added, the bonds then "
                              "drawn uncoloured. On the molecule benchmark the second finds the atoms that decide the "
                              "output more often (benzene: attribution AUROC 0.997 against 0.926; README, Molecules).")
    order = c3.selectbox("Sort tables by", molecule_views.SORT_ORDERS, key="mol_sort")
    left, right = st.columns([3, 2])
    with left:
        drawing(expl, style, indices, what, atom_view)
    with right:
        accounting_and_predictions(expl)
    t1, t2 = st.columns(2)
    t1.markdown("**Atoms** (score = sum over the atom's features)")
    # the atoms' and bonds' shares of a difference the attributions explain little of would be meaningless too
    hidden = ["share"] if expl.explains_little else []
    t1.dataframe(molecule_views.sort_table(expl.atom_table(), order=order).drop(columns=hidden), hide_index=True,
                 width="stretch")
    t2.markdown(f"**Bonds** (score = both ordered pairs); non-bonded pairs in total: {expl.nonbonded_total:+.4g}")
    t2.dataframe(molecule_views.sort_table(expl.bond_table(), order=order).drop(columns=hidden), hide_index=True,
                 width="stretch")
    if not expl.mol.GetNumBonds():
        t2.caption("No bonds and no atom pairs (a single atom): the whole attribution is the atom's.")
    if straight_line(expl.settings, "Saturation (Figure 13)"):
        st.markdown("**Saturation (Figure 13)**")
        saturation_row([expl], task=expl.explained_name, quantity=what)
