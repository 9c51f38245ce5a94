"""Pure renderers for the molecules page (no Streamlit): RDKit drawings, tables and altair charts.

Colours: the signed scale of dashboard.renderers.colours (red raises F, white 0, blue lowers F), one scale shared by
atoms and bonds (both are contributions to the same prediction), so their colours compare; every drawing carries
that scale's colour bar. Highlight drawings are SVG (small, crisp); contour maps are PNG (Cairo).
"""
from __future__ import annotations

import hashlib
import io
import re
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image
from rdkit import Chem
from rdkit.Chem import rdDepictor
from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

from dashboard.renderers import colours
from dashboard.renderers.completeness import Verdict, explanation_verdict
from dashboard.renderers.vision import MISSING, missing_as_text
from families.contract import NEAR_EQUAL_FRACTION
from families.molecules.explanation import PERCENT_OF_DIFFERENCE

ACCOUNTING_PARTS = ("atoms", "bonded pairs", "non-bonded pairs", "completeness gap")


def _prepared(mol: Chem.Mol) -> Chem.Mol:
    m = Chem.Mol(mol)
    if not m.GetNumConformers():
        rdDepictor.Compute2DCoords(m)
    return m


def _highlights(mol, atom_scores, bond_scores, vmax):
    atom_scores = np.asarray(atom_scores, dtype=float)
    atoms = list(range(mol.GetNumAtoms()))
    atom_colors = {i: colours.signed_colour(atom_scores[i], vmax) for i in atoms}
    radii = {i: 0.25 + 0.25 * min(abs(atom_scores[i]) / vmax, 1.0) for i in atoms}
    bonds, bond_colors = [], {}
    if bond_scores is not None:
        bond_scores = np.asarray(bond_scores, dtype=float)
        bonds = list(range(mol.GetNumBonds()))
        bond_colors = {b: colours.signed_colour(bond_scores[b], vmax) for b in bonds}
    return atoms, atom_colors, radii, bonds, bond_colors


def _draw(drawer, mol, atom_scores, bond_scores, vmax, show_indices):
    opts = drawer.drawOptions()
    opts.useBWAtomPalette()
    opts.addAtomIndices = bool(show_indices)
    opts.fillHighlights = True
    opts.highlightBondWidthMultiplier = 12
    opts.clearBackground = True
    atoms, atom_colors, radii, bonds, bond_colors = _highlights(mol, atom_scores, bond_scores, vmax)
    drawer.DrawMolecule(mol, highlightAtoms=atoms, highlightAtomColors=atom_colors, highlightAtomRadii=radii,
                        highlightBonds=bonds, highlightBondColors=bond_colors)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def _strip_xml(svg: str) -> str:
    return re.sub(r"^<\?xml[^>]*>\s*", "", svg)


# -- drawings ----------------------------------------------------------------------------------------

def attribution_svg(mol: Chem.Mol, atom_scores, bond_scores=None, size=(460, 340), show_indices=False,
                    vmax: float | None = None, label: str = "attribution") -> str:
    """Atoms and bonds coloured by attribution (highlight map) with the signed scale's colour bar below, as SVG."""
    mol = _prepared(mol)
    vmax = vmax or colours.scale_max(atom_scores, bond_scores)
    w, h = size
    drawer = rdMolDraw2D.MolDraw2DSVG(w, h)
    body = _strip_xml(_draw(drawer, mol, atom_scores, bond_scores, vmax, show_indices))
    return _with_legend_svg(body, w, h, colours.legend_svg(vmax, w, label), colours.legend_height(label))


def _with_legend_svg(body: str, w: int, h: int, legend: str, legend_h: int) -> str:
    """An RDKit SVG drawing of w x h pixels with a legend (an SVG element) below it, as one SVG document."""
    return (f"<svg xmlns='http://www.w3.org/2000/svg' version='1.1' width='{w}px' height='{h + legend_h}px' "
            f"viewBox='0 0 {w} {h + legend_h}'>"
            f"<rect width='{w}' height='{h + legend_h}' fill='white'/>"
            f"<svg x='0' y='0' width='{w}' height='{h}'>{_inner(body)}</svg>"
            f"<g transform='translate(0,{h})'>{legend}</g></svg>")


def _inner(svg: str) -> str:
    """The children of an RDKit SVG document (to nest it in another)."""
    start = svg.find(">", svg.find("<svg")) + 1
    end = svg.rfind("</svg>")
    return svg[start:end]


def _png_with_legend(png: bytes, legend: Image.Image) -> bytes:
    picture = colours.stack(Image.open(io.BytesIO(png)), legend)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def attribution_png(mol: Chem.Mol, atom_scores, bond_scores=None, size=(460, 340), show_indices=False,
                    vmax: float | None = None, label: str = "attribution") -> bytes:
    """The same highlight map as PNG (Cairo), with the same colour bar below."""
    mol = _prepared(mol)
    vmax = vmax or colours.scale_max(atom_scores, bond_scores)
    drawer = rdMolDraw2D.MolDraw2DCairo(*size)
    png = _draw(drawer, mol, atom_scores, bond_scores, vmax, show_indices)
    return _png_with_legend(png, colours.legend_image(vmax, size[0], label))


def draws_contours(mol: Chem.Mol) -> bool:
    """RDKit's similarity map needs at least two atoms to lay out its contours."""
    return mol.GetNumAtoms() >= 2


CONTOUR_LABEL = "atom scores spread as contours"


def similarity_map_png(mol: Chem.Mol, atom_scores, size=(460, 340), show_indices=False) -> bytes:
    """Contour map of the atom scores (RDKit similarity map; atoms only, bonds are not drawn as scores) in the
    signed scale's colours, with its colour bar below. The bar has no numbers: RDKit colours the sum of a Gaussian
    per atom, scaled to its own largest |value|, not the scores themselves.

    A single atom has no contours to draw (see draws_contours): it gets the highlight drawing instead."""
    if not draws_contours(mol):
        return attribution_png(mol, atom_scores, size=size, show_indices=show_indices)
    mol = _prepared(mol)
    drawer = rdMolDraw2D.MolDraw2DCairo(*size)
    drawer.drawOptions().addAtomIndices = bool(show_indices)
    weights = [float(s) for s in np.asarray(atom_scores, dtype=float)]
    SimilarityMaps.GetSimilarityMapFromWeights(mol, weights, draw2d=drawer, contourLines=8,
                                               colorMap=[colours.NEGATIVE, colours.WHITE, colours.POSITIVE])
    drawer.FinishDrawing()
    return _png_with_legend(drawer.GetDrawingText(), colours.legend_image(None, size[0], CONTOUR_LABEL))


def thumbnail_svg(mol: Chem.Mol, atom_scores, bond_scores=None, size=(180, 140)) -> str:
    """A small heat-map drawing for a grid (no labels beyond element symbols), with its own colour bar below."""
    mol = _prepared(mol)
    vmax = colours.scale_max(atom_scores, bond_scores)
    drawer = rdMolDraw2D.MolDraw2DSVG(*size)
    drawer.drawOptions().minFontSize = 7
    body = _strip_xml(_draw(drawer, mol, atom_scores, bond_scores, vmax, False))
    return _with_legend_svg(body, *size, colours.legend_svg(vmax, size[0]), colours.legend_height())


# -- tables ------------------------------------------------------------------------------------------

def sort_table(df: pd.DataFrame, by: str = "score", order: str = "|score| descending") -> pd.DataFrame:
    """Sort an atom or bond table: by |score| (default), score, or index."""
    if df.empty:
        return df
    if order == "|score| descending":
        return df.reindex(df[by].abs().sort_values(ascending=False).index).reset_index(drop=True)
    if order == "score descending":
        return df.sort_values(by, ascending=False, ignore_index=True)
    if order == "score ascending":
        return df.sort_values(by, ascending=True, ignore_index=True)
    return df.sort_values(df.columns[0], ignore_index=True)


SORT_ORDERS = ("|score| descending", "score descending", "score ascending", "index")
BROWSE_ORDERS = ("prediction, high to low", "prediction, low to high", "dataset order")


def browse_order(predictions, order: str = BROWSE_ORDERS[0]) -> np.ndarray:
    """Positions of the browsed molecules in display order (a stable sort by prediction, or as listed)."""
    p = np.asarray(predictions, dtype=float)
    if order == "dataset order":
        return np.arange(len(p))
    return np.argsort(-p if order.endswith("high to low") else p, kind="stable")


def completeness(expl) -> Verdict:
    """The shared completeness verdict for one explanation, by its method's own law (the family's baseline is
    fixed: the page offers no other)."""
    return explanation_verdict(expl, what="molecule", baseline_choice=False)


def model_summary(model) -> str:
    """One line on a loaded weave model (families.molecules.weave_model): its architecture, featurizer and test
    score."""
    test_mean = (model.metrics or {}).get("test", {}).get("mean")
    test_metric = "ROC-AUC" if "regression" not in model.task_kinds else "mean of ROC-AUC and R²"
    return (f"W{model.config['n_weave']}N{model.featurizer.max_distance}, featurizer {model.featurizer.kind}"
            + (f", test {test_metric} {test_mean:.3f}" if test_mean else ""))


def download_stem(task_name: str, smiles: str) -> str:
    """File name stem for an explanation's downloads: the same on every server and run (unlike hash())."""
    return f"{task_name.replace(' ', '_')}_{hashlib.sha256(smiles.encode()).hexdigest()[:10]}"


def predictions_table(task_names: Sequence[str], predictions, chosen: int | None = None,
                      regression: Sequence[bool] = ()) -> pd.DataFrame:
    """One row per task; with regression tasks the column is "prediction" (P(active) or the value) with its kind."""
    values = np.asarray(predictions, dtype=float)
    if any(regression):
        df = pd.DataFrame({"task": list(task_names), "prediction": values,
                           "kind": ["predicted value" if r else "P(active)" for r in regression]})
    else:
        df = pd.DataFrame({"task": list(task_names), "P(active)": values})
    if chosen is not None:
        df["explained"] = [i == chosen for i in range(len(df))]
    return df


# -- charts ------------------------------------------------------------------------------------------

def accounting_chart(accounting: pd.DataFrame) -> alt.Chart:
    """Bars for atoms, bonded pairs, non-bonded pairs and the completeness gap: their percent of F(molecule) -
    F(baseline), or their attributions where the accounting gives no percent (the attributions explain little).

    A bar's colour is its attribution's sign, as in the drawing (red raises F, blue lowers it): a share's sign also
    flips with F(molecule) - F(baseline)."""
    df = accounting[accounting["part"].isin(ACCOUNTING_PARTS)].copy()
    df["effect"] = colours.effects(df["attribution"])
    shares = bool(df[PERCENT_OF_DIFFERENCE].notna().all())
    value = PERCENT_OF_DIFFERENCE if shares else "attribution"
    return alt.Chart(df).mark_bar().encode(
        x=alt.X(field=value, type="quantitative", title=value),
        # Streamlit's theme drops overlapping labels: with thin bars every other part went unnamed
        y=alt.Y("part:N", sort=None, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=200)),
        color=colours.effect_colour(),  # its legend below: the bars keep the width
        tooltip=["part", alt.Tooltip("attribution:Q", format=".4g"),
                 alt.Tooltip(field=PERCENT_OF_DIFFERENCE, type="quantitative", format=".1f")],
    ).properties(height=alt.Step(28))


def accounting_note(expl) -> str | None:
    """Why the accounting shows attributions rather than percentages, when it does (MoleculeExplanation
    .explains_little); None otherwise."""
    if not expl.explains_little:
        return None
    return (f"The baseline scores like the molecule: F(molecule) - F(baseline) = {expl.difference:+.3g} is at most "
            f"{NEAR_EQUAL_FRACTION:.0%} of the parts' total size (|atoms| + |bonded pairs| + |non-bonded pairs| = "
            f"{expl.parts_size:.3g}), so the attributions explain little of it: they mostly cancel. The accounting "
            "shows the attributions themselves, not shares of so small a difference.")


def accounting_table(accounting: pd.DataFrame) -> pd.DataFrame:
    """The accounting as the page shows it: a column with no value at all left out (accounting_note says why), and
    MISSING in a cell with none (accounting_table_note says why), where Streamlit would show "None"."""
    return missing_as_text(accounting.dropna(axis="columns", how="all"))


def accounting_table_note(table: pd.DataFrame) -> str | None:
    """Why accounting_table's cells say MISSING, when some do: only F(baseline) and F(molecule) lack a percent of
    F(molecule) - F(baseline) once the all-empty columns are gone."""
    if not table.isin([MISSING]).any().any():
        return None
    return (f"{MISSING}: F(baseline) and F(molecule) are not parts of F(molecule) - F(baseline), so they have no "
            "percent of it.")


def saturation_frame(explanations, labels: Sequence[str] | None = None) -> pd.DataFrame:
    rows = []
    for k, e in enumerate(explanations):
        label = labels[k] if labels is not None else e.smiles
        for a, f, g in zip(e.alphas, e.trend, e.grad_sum):
            rows.append({"alpha": float(a), "F": float(f), "sum of gradients": float(g), "molecule": label})
    return pd.DataFrame(rows, columns=["alpha", "F", "sum of gradients", "molecule"])


def saturation_charts(explanations, labels: Sequence[str] | None = None, task: str = "",
                      quantity: str | None = None) -> tuple[alt.Chart, alt.Chart]:
    """Figure 13: (a) F against alpha, (b) the sum of the feature gradients against alpha; a line per molecule.

    `quantity`: what F is, the y axis title (default the log-odds of active of `task`)."""
    df = saturation_frame(explanations, labels)
    many = df["molecule"].nunique() > 1
    color = alt.Color("molecule:N", legend=None) if many else alt.value(colours.hex_colour(colours.POSITIVE))
    base = alt.Chart(df).mark_line(point=not many, opacity=0.8 if many else 1.0)
    f = base.encode(x=alt.X("alpha:Q", title="alpha (scale of the features)"),
                    y=alt.Y("F:Q", title=quantity or f"log-odds(active{': ' + task if task else ''})"), color=color,
                    tooltip=["molecule", alt.Tooltip("alpha:Q", format=".3f"), alt.Tooltip("F:Q", format=".4f")]
                    ).properties(title="(a) prediction along the path", height=240)
    g = base.encode(x=alt.X("alpha:Q", title="alpha (scale of the features)"),
                    y=alt.Y("sum of gradients:Q", title="sum of feature gradients"), color=color,
                    tooltip=["molecule", alt.Tooltip("alpha:Q", format=".3f"),
                             alt.Tooltip("sum of gradients:Q", format=".4g")]
                    ).properties(title="(b) sum of the feature gradients", height=240)
    return f, g


def means_chart(df: pd.DataFrame, category: str, value: str = "mean score") -> alt.Chart:
    """Horizontal bars of an across-molecule mean (per atom type or functional group), coloured by its sign."""
    d = df.copy()
    d["effect"] = colours.effects(d[value])
    return alt.Chart(d).mark_bar().encode(
        x=alt.X(f"{value}:Q"), y=alt.Y(f"{category}:N", sort="-x", title=None, axis=alt.Axis(labelLimit=220)),
        color=colours.effect_colour(value), tooltip=list(df.columns),
    ).properties(height=alt.Step(22))
