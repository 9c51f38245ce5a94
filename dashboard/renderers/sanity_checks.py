"""The sanity check's views (families.sanity_checks): each method's similarity to its trained-model map along the
cascade of randomised blocks, and which methods it flags. Pure (no Streamlit): the pages draw what these return."""
from __future__ import annotations

import altair as alt
import pandas as pd

from families.sanity_checks import STILL_SIMILAR, SanityCheck, decidable

MEASURES = {"spearman_abs": "Spearman of |scores|", "spearman_signed": "Spearman of signed scores",
            "ssim": "SSIM of |scores|"}


def cascade_chart(check: SanityCheck, measure: str = "spearman_abs") -> alt.Chart:
    """One line per method: its map's similarity to the trained model's (1 at step 0) as the blocks from the output
    down are re-initialised; a dashed rule at the similarity above which a map is flagged."""
    data = check.table.assign(value=check.table[measure])
    order = list(dict.fromkeys(data["randomised"]))
    lines = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("randomised:N", sort=order, title="re-initialised so far, from the output down (cumulative)",
                axis=alt.Axis(labelAngle=-30, labelLimit=220)),
        y=alt.Y("value:Q", title=MEASURES[measure], scale=alt.Scale(domain=[-1, 1])),
        color=alt.Color("method:N", title="method"),
        tooltip=["method", "randomised", alt.Tooltip("value:Q", format=".3f", title=MEASURES[measure])])
    rule = alt.Chart(pd.DataFrame({"y": [STILL_SIMILAR]})).mark_rule(strokeDash=[4, 4], color="grey").encode(y="y:Q")
    return (lines + rule).properties(height=320)


def verdict_table(check: SanityCheck) -> pd.DataFrame:
    """Each method's similarity once every block is re-initialised, and the verdict in words."""
    final = check.final()
    table = pd.DataFrame({"method": final["method"]})
    for column, title in MEASURES.items():
        if column in final:
            table[title] = final[column].round(3)
    if not decidable(check.features):
        table["verdict"] = f"undecided: {check.features} features are too few to tell a map from chance"
    else:
        table["verdict"] = ["flagged: the map stays alike without the weights it explains" if flagged
                            else "passes: the map changes with the weights" for flagged in final["flagged"]]
    return table


def summary(check: SanityCheck) -> str:
    """One line for the page: which methods the check flags, the control's verdict beside them."""
    flagged = [name for name in check.flagged() if not name.endswith("(control)")]
    kept = f" The modules that make the input ({', '.join(check.kept)}) are kept." if check.kept else ""
    if not decidable(check.features):
        return (f"Undecided: with {check.features} features even the input itself cannot be told from a chance "
                f"ranking; explain a longer input.{kept}")
    if not flagged:
        return f"No method is flagged: every map changes once the model's weights are gone.{kept}"
    return (f"Flagged: {', '.join(flagged)}: these maps still rank the features as before once every weight is "
            f"re-initialised, so they show the input more than the model.{kept}")
