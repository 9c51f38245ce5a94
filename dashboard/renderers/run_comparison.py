"""Tables, drawings and charts of the run comparison page (runs.comparison), as pure functions.

The two attributions of a pair are drawn in the family's units with the family's own renderers: atom and bond
highlights (dashboard.renderers.molecules), a row per run over the context words (dashboard.renderers.language's
word axis, the signed colours of dashboard.renderers.colours), heat maps of |score| per pixel with their colour bar
(dashboard.renderers.vision). Each attribution keeps its own
colour scale: two models' attributions of different sizes would otherwise hide one pattern; the rank correlation
compares patterns, not sizes.
"""
from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image

from dashboard.renderers import colours
from dashboard.renderers import molecules as molecule_views
from dashboard.renderers.language import PAD, view_width, word_axis
from dashboard.renderers.markdown import escape_markdown
from dashboard.renderers.vision import LEGEND_WIDTH, clip_normalize, heatmap, map_legend, saturation_value
from families.molecules.run_rows import largest_fragment
from runs import store
from runs.comparison import Joined, named_pair


def join_summary(joined: Joined, name_a: str, name_b: str) -> str:
    """What was compared and what each run has that the other lacks, in a sentence or three."""
    name_a, name_b = escape_markdown(name_a), escape_markdown(name_b)  # folder names, inside Markdown
    text = (f"**{len(joined.pairs):,}** (item, target) pairs explained by both runs. Items in one input only: "
            f"{joined.items_only_a} in A ({name_a}), {joined.items_only_b} in B ({name_b}). Explained pairs in one "
            f"run only: {joined.rows_only_a} in A, {joined.rows_only_b} in B (a target one model predicted and the "
            "other did not, an item one run refused).")
    if joined.other_input:
        text += (f" {joined.other_input} pairs have an id both runs use for different inputs (the runs read "
                 "different files): left out.")
    return text


def incomplete_summary(ranked: pd.DataFrame, tolerance_a: float, tolerance_b: float) -> str:
    """Why some pairs are listed last and marked: a row of theirs misses its run's completeness tolerance."""
    count = int(ranked["incomplete"].sum())
    return (f"{count:,} of {len(ranked):,} pairs have a row whose attributions miss its run's completeness tolerance "
            f"(A: {tolerance_a * 100:g}%, B: {tolerance_b * 100:g}%): they are listed last and marked "
            "\"does not add up\", since their disagreement may be the path sum's error rather than the models'. "
            "Rerun those runs with the adaptive rule (the default) to compare them.")


def pairs_table(ranked: pd.DataFrame) -> pd.DataFrame:
    """The ranked pairs (runs.comparison.most_disagreeing) with the columns a person reads."""
    return pd.DataFrame({
        "item": ranked["item_id"], "target": ranked["target_name"],
        "completeness": np.where(ranked["incomplete"], "does not add up", "adds up"), "Spearman": ranked["spearman"],
        "top-10% overlap": ranked["top_overlap"], "P A": ranked["probability_a"], "P B": ranked["probability_b"],
        "completeness error A": ranked["relative_delta_a"], "completeness error B": ranked["relative_delta_b"],
        "units": ranked["units"], "input": ranked["source"]})


def molecule_parts(mol, names: Sequence[str], scores) -> tuple[np.ndarray, np.ndarray]:
    """Atom and bond scores [A], [B] of a molecule from a row's named scores ("C1", "C1-O2 single"); ValueError
    when the names are not this molecule's atoms and bonds."""
    by_name = dict(zip(names, np.asarray(scores, np.float64)))
    atoms = [f"{atom.GetSymbol()}{atom.GetIdx()}" for atom in mol.GetAtoms()]
    bonds = [f"{bond.GetBeginAtom().GetSymbol()}{bond.GetBeginAtomIdx()}-{bond.GetEndAtom().GetSymbol()}"
             f"{bond.GetEndAtomIdx()} {str(bond.GetBondType()).lower()}" for bond in mol.GetBonds()]
    missing = [name for name in atoms + bonds if name not in by_name]
    if missing:
        raise ValueError(f"the stored scores do not name {len(missing)} of the molecule's atoms and bonds "
                         f"({', '.join(missing[:3])}...)")
    return np.array([by_name[name] for name in atoms]), np.array([by_name[name] for name in bonds])


def molecule_svg(smiles: str, names: Sequence[str], scores, label: str) -> str:
    """The molecule as the run's model saw it (hydrogens removed, the largest fragment) with its atoms and bonds
    coloured by a row's scores; ValueError when RDKit cannot read the SMILES or the scores do not fit it."""
    mol = largest_fragment(smiles)
    atom_scores, bond_scores = molecule_parts(mol, names, scores)
    return molecule_views.attribution_svg(mol, atom_scores, bond_scores, show_indices=True, label=label)


def word_rows_chart(names_a: Sequence[str], scores_a, names_b: Sequence[str], scores_b, label_a: str,
                    label_b: str) -> alt.Chart:
    """A row of attributions per run over the context words both name ("1 the", ...), each row coloured on its own
    scale (value / the row's largest |value|), values in the tooltips."""
    words, a, b = named_pair(names_a, scores_a, names_b, scores_b)
    frame = pd.DataFrame({"word": words * 2, "run": [label_a] * len(words) + [label_b] * len(words),
                          "value": np.concatenate([a, b])})
    frame["colour"] = frame.groupby("run")["value"].transform(lambda v: v / (np.abs(v).max() or 1.0))
    return alt.Chart(frame).mark_rect(stroke="white").encode(
        x=alt.X("word:N", sort=words, title=None, axis=word_axis(len(words))),
        y=alt.Y("run:N", sort=[label_a, label_b], title=None, axis=alt.Axis(labelLimit=260)),
        color=colours.altair_colour("colour", 1.0, "score / row max"),
        tooltip=["run", "word", alt.Tooltip("value:Q", format=".4g")],
    ).properties(width=view_width(len(words)), height=70, autosize=PAD)


def map_picture(row) -> Image.Image:
    """A photo row's |score| per pixel as a heat map (the 99th percentile and above at full colour), with the legend
    of its colours below it."""
    scores = np.abs(store.pixel_map(row))
    picture = heatmap(clip_normalize(scores))
    legend = map_legend("absolute", saturation_value(scores), "overlay", max(picture.width, LEGEND_WIDTH))
    return colours.stack(picture, legend)
