"""Pure renderers for the molecules page (no Streamlit): RDKit drawings, tables and altair charts.

Colours: one diverging palette for atoms and bonds (blue = negative, white = 0, red = positive), one
scale shared by atoms and bonds (both are contributions to the same prediction), so their colours
compare. Highlight drawings are SVG (small, crisp); contour maps are PNG (Cairo).
"""
from __future__ import annotations

import hashlib
import re
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem import rdDepictor
from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

from dashboard.renderers.completeness import Verdict, explanation_verdict
from families.molecules.explanation import NEAR_EQUAL_FRACTION, PERCENT_OF_DIFFERENCE

NEGATIVE = (0.129, 0.400, 0.675)  # RdBu blue
POSITIVE = (0.698, 0.094, 0.169)  # RdBu red
WHITE = (1.0, 1.0, 1.0)
ACCOUNTING_PARTS = ("atoms", "bonded pairs", "non-bonded pairs", "completeness gap")


# -- colours -----------------------------------------------------------------------------------------

def scale_max(*arrays) -> float:
    """The colour scale: the largest |value| over atoms and bonds (never 0)."""
    values = [np.abs(np.asarray(a, dtype=float)).max() for a in arrays if a is not None and np.size(a)]
    return float(max(values + [1e-12]))


def diverging_color(value: float, vmax: float) -> tuple[float, float, float]:
    """White at 0, red for positive, blue for negative, full colour at |value| = vmax."""
    t = float(np.clip(abs(value) / vmax, 0.0, 1.0)) if vmax > 0 else 0.0
    end = POSITIVE if value >= 0 else NEGATIVE
    return tuple(w + t * (e - w) for w, e in zip(WHITE, end))


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in rgb)


def _prepared(mol: Chem.Mol) -> Chem.Mol:
    m = Chem.Mol(mol)
    if not m.GetNumConformers():
        rdDepictor.Compute2DCoords(m)
    return m


def _highlights(mol, atom_scores, bond_scores, vmax):
    atom_scores = np.asarray(atom_scores, dtype=float)
    atoms = list(range(mol.GetNumAtoms()))
    atom_colors = {i: diverging_color(atom_scores[i], vmax) for i in atoms}
    radii = {i: 0.25 + 0.25 * min(abs(atom_scores[i]) / vmax, 1.0) for i in atoms}
    bonds, bond_colors = [], {}
    if bond_scores is not None:
        bond_scores = np.asarray(bond_scores, dtype=float)
        bonds = list(range(mol.GetNumBonds()))
        bond_colors = {b: diverging_color(bond_scores[b], vmax) for b in bonds}
    return atoms, atom_colors, radii, bonds, bond_colors


def _draw(drawer, mol, atom_scores, bond_scores, vmax, show_indices, legend=""):
    opts = drawer.drawOptions()
    opts.useBWAtomPalette()
    opts.addAtomIndices = bool(show_indices)
    opts.fillHighlights = True
    opts.highlightBondWidthMultiplier = 12
    opts.clearBackground = True
    atoms, atom_colors, radii, bonds, bond_colors = _highlights(mol, atom_scores, bond_scores, vmax)
    drawer.DrawMolecule(mol, highlightAtoms=atoms, highlightAtomColors=atom_colors, highlightAtomRadii=radii,
                        highlightBonds=bonds, highlightBondColors=bond_colors, legend=legend)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def _strip_xml(svg: str) -> str:
    return re.sub(r"^<\?xml[^>]*>\s*", "", svg)


# -- drawings ----------------------------------------------------------------------------------------

def attribution_svg(mol: Chem.Mol, atom_scores, bond_scores=None, size=(460, 340), show_indices=False,
                    legend=True, vmax: float | None = None, label: str = "attribution") -> str:
    """Atoms and bonds coloured by attribution (highlight map) with a colour-bar legend below, as SVG."""
    mol = _prepared(mol)
    vmax = vmax or scale_max(atom_scores, bond_scores)
    w, h = size
    drawer = rdMolDraw2D.MolDraw2DSVG(w, h)
    body = _strip_xml(_draw(drawer, mol, atom_scores, bond_scores, vmax, show_indices))
    if not legend:
        return body
    bar_h = 46
    return (f"<svg xmlns='http://www.w3.org/2000/svg' version='1.1' width='{w}px' height='{h + bar_h}px' "
            f"viewBox='0 0 {w} {h + bar_h}'>"
            f"<rect width='{w}' height='{h + bar_h}' fill='white'/>"
            f"<svg x='0' y='0' width='{w}' height='{h}'>{_inner(body)}</svg>"
            f"<g transform='translate(0,{h})'>{legend_svg_fragment(vmax, w, label)}</g></svg>")


def _inner(svg: str) -> str:
    """The children of an RDKit SVG document (to nest it in another)."""
    start = svg.find(">", svg.find("<svg")) + 1
    end = svg.rfind("</svg>")
    return svg[start:end]


def legend_svg_fragment(vmax: float, width: int, label: str = "attribution") -> str:
    """A horizontal colour bar from -vmax (blue) through 0 (white) to +vmax (red), with labels."""
    x0, x1 = 40, width - 40
    stops = "".join(f"<stop offset='{o}' stop-color='{_hex(c)}'/>" for o, c in
                    ((0, NEGATIVE), (0.5, WHITE), (1, POSITIVE)))
    font = "font-family='sans-serif' font-size='11' fill='#333'"
    return (f"<defs><linearGradient id='igbar' x1='0' x2='1' y1='0' y2='0'>{stops}</linearGradient></defs>"
            f"<rect x='{x0}' y='6' width='{x1 - x0}' height='12' fill='url(#igbar)' stroke='#999' stroke-width='0.5'/>"
            f"<text x='{x0}' y='32' {font} text-anchor='middle'>{-vmax:.3g}</text>"
            f"<text x='{(x0 + x1) / 2}' y='32' {font} text-anchor='middle'>0</text>"
            f"<text x='{x1}' y='32' {font} text-anchor='middle'>+{vmax:.3g}</text>"
            f"<text x='{(x0 + x1) / 2}' y='44' {font} text-anchor='middle'>{_escape(label)}: "
            "blue lowers, red raises</text>")


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attribution_png(mol: Chem.Mol, atom_scores, bond_scores=None, size=(460, 340), show_indices=False,
                    vmax: float | None = None) -> bytes:
    """The same highlight map as PNG (Cairo); the colour scale is written as the drawing's legend."""
    mol = _prepared(mol)
    vmax = vmax or scale_max(atom_scores, bond_scores)
    drawer = rdMolDraw2D.MolDraw2DCairo(*size)
    return _draw(drawer, mol, atom_scores, bond_scores, vmax, show_indices,
                 legend=f"red raises, blue lowers; full colour at |score| = {vmax:.3g}")


def draws_contours(mol: Chem.Mol) -> bool:
    """RDKit's similarity map needs at least two atoms to lay out its contours."""
    return mol.GetNumAtoms() >= 2


def similarity_map_png(mol: Chem.Mol, atom_scores, size=(460, 340), show_indices=False) -> bytes:
    """Contour map of the atom scores (RDKit similarity map; atoms only, bonds are not drawn as scores).

    A single atom has no contours to draw (see draws_contours): it gets the highlight drawing instead."""
    if not draws_contours(mol):
        return attribution_png(mol, atom_scores, size=size, show_indices=show_indices)
    mol = _prepared(mol)
    drawer = rdMolDraw2D.MolDraw2DCairo(*size)
    drawer.drawOptions().addAtomIndices = bool(show_indices)
    weights = [float(s) for s in np.asarray(atom_scores, dtype=float)]
    if max(abs(w) for w in weights) == 0:
        weights = [0.0] * len(weights)
    SimilarityMaps.GetSimilarityMapFromWeights(mol, weights, draw2d=drawer, colorMap="bwr", contourLines=8)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def thumbnail_svg(mol: Chem.Mol, atom_scores, bond_scores=None, size=(180, 140)) -> str:
    """A small heat-map drawing for a grid (no legend, no labels beyond element symbols)."""
    mol = _prepared(mol)
    vmax = scale_max(atom_scores, bond_scores)
    drawer = rdMolDraw2D.MolDraw2DSVG(*size)
    drawer.drawOptions().minFontSize = 7
    return _strip_xml(_draw(drawer, mol, atom_scores, bond_scores, vmax, False))


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
    """The shared completeness verdict for one explanation, by its method's own law (the baseline, all-zero
    features, is fixed)."""
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
    return f"{task_name}_{hashlib.sha256(smiles.encode()).hexdigest()[:10]}"


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
    df["effect"] = np.where(df["attribution"] >= 0, "raises", "lowers")
    shares = bool(df[PERCENT_OF_DIFFERENCE].notna().all())
    value = PERCENT_OF_DIFFERENCE if shares else "attribution"
    return alt.Chart(df).mark_bar().encode(
        x=alt.X(field=value, type="quantitative", title=value),
        # Streamlit's theme drops overlapping labels: with thin bars every other part went unnamed
        y=alt.Y("part:N", sort=None, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=200)),
        color=alt.Color("effect:N", title="attribution", legend=alt.Legend(orient="bottom"),  # the bars keep the width
                        scale=alt.Scale(domain=["raises", "lowers"], range=[_hex(POSITIVE), _hex(NEGATIVE)])),
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

    `quantity`: what F is, the y axis title (default P(active) of `task`)."""
    df = saturation_frame(explanations, labels)
    many = df["molecule"].nunique() > 1
    color = alt.Color("molecule:N", legend=None) if many else alt.value(_hex(POSITIVE))
    base = alt.Chart(df).mark_line(point=not many, opacity=0.8 if many else 1.0)
    f = base.encode(x=alt.X("alpha:Q", title="alpha (scale of the features)"),
                    y=alt.Y("F:Q", title=quantity or f"P(active{': ' + task if task else ''})"), color=color,
                    tooltip=["molecule", alt.Tooltip("alpha:Q", format=".3f"), alt.Tooltip("F:Q", format=".4f")]
                    ).properties(title="(a) prediction along the path", height=240)
    g = base.encode(x=alt.X("alpha:Q", title="alpha (scale of the features)"),
                    y=alt.Y("sum of gradients:Q", title="sum of feature gradients"), color=color,
                    tooltip=["molecule", alt.Tooltip("alpha:Q", format=".3f"),
                             alt.Tooltip("sum of gradients:Q", format=".4g")]
                    ).properties(title="(b) sum of the feature gradients", height=240)
    return f, g


def means_chart(df: pd.DataFrame, category: str, value: str = "mean score") -> alt.Chart:
    """Horizontal bars of an across-molecule mean (per atom type or functional group)."""
    d = df.copy()
    return alt.Chart(d).mark_bar().encode(
        x=alt.X(f"{value}:Q"), y=alt.Y(f"{category}:N", sort="-x", title=None, axis=alt.Axis(labelLimit=220)),
        color=alt.condition(f"datum['{value}'] >= 0", alt.value(_hex(POSITIVE)), alt.value(_hex(NEGATIVE))),
        tooltip=list(d.columns),
    ).properties(height=alt.Step(22))
