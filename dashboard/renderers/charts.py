"""Charts any family can use: named scores as bars."""
from __future__ import annotations

from typing import Mapping

import altair as alt
import pandas as pd


def scores_frame(scores_per_target: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Long table: target, feature, attribution (features in their given order)."""
    return pd.DataFrame([{"target": target, "feature": feature, "attribution": value}
                         for target, scores in scores_per_target.items() for feature, value in scores.items()])


def feature_bars(scores_per_target: Mapping[str, Mapping[str, float]]) -> alt.Chart:
    """One row of bars per feature, one colour per target: positive bars push the target up."""
    frame = scores_frame(scores_per_target)
    order = list(dict.fromkeys(frame["feature"]))
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("attribution:Q", title="attribution (adds up to F(input) - F(baseline))"),
        y=alt.Y("feature:N", sort=order, title=None),
        yOffset="target:N", color=alt.Color("target:N", title="target"),
        tooltip=["target", "feature", alt.Tooltip("attribution:Q", format=".4g")],
    ).properties(height=alt.Step(14))
