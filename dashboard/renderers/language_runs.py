"""Tables and charts of a language run's windows (families.language.run_rows). Pure: pandas and altair, no Streamlit."""
from __future__ import annotations

import altair as alt
import pandas as pd

from dashboard.renderers.completeness import with_adds_up

# the window table's columns as the page shows them: short names (the page's help says more), the statistics
# before the words, which take the room left
SHOWN_COLUMNS = {
    "item_id": "window", "next_word": "next word", "top_word": "top word", "surprise_bits": "surprise",
    "last_word_share": "last share", "disagreement": "disagreement", "truth_rank": "rank", "explained": "explained",
    "probability": "P(explained)", "window": "words",
}


def windows_frame(table: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """The windows as the page lists them: readable column names, whether each adds up within the run's
    completeness tolerance, in the table's order, index 0..n-1 (a row selection's position is the row's position
    here)."""
    listed = table[list(SHOWN_COLUMNS)].rename(columns=SHOWN_COLUMNS).reset_index(drop=True)
    return with_adds_up(listed, table["relative_delta"], tolerance)


def perplexity(surprise_bits: pd.Series) -> float:
    """2 to the mean surprise: the corpus perplexity over these windows' next words (NaN for none)."""
    return float(2.0 ** surprise_bits.mean()) if len(surprise_bits) else float("nan")


def distance_chart(profile: pd.DataFrame, normalised: bool = False) -> alt.VConcatChart:
    """Mean attribution by distance from the predicted word (families.language.run_rows.distance_profile) as bars
    with a 95% interval of the mean (+-1.96 standard errors), and beneath them how many windows reach each
    distance. Distance 1, the window's last word, is on the right, next to the word predicted."""
    frame = profile.assign(low=profile["mean"] - 1.96 * profile["sem"], high=profile["mean"] + 1.96 * profile["sem"])
    quantity = "share of the window's total" if normalised else "attribution"
    x = alt.X("distance:O", sort="descending", title="distance from the predicted word (1 = the last word)")
    tooltip = [alt.Tooltip("distance:O"), alt.Tooltip("mean:Q", format=".4g", title=f"mean {quantity}"),
               alt.Tooltip("sem:Q", format=".2g", title="standard error"), alt.Tooltip("windows:Q")]
    base = alt.Chart(frame).encode(x=x, tooltip=tooltip)
    means = base.mark_bar(color="#4c78a8").encode(y=alt.Y("mean:Q", title=f"mean {quantity}"))
    intervals = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    counts = base.mark_bar(color="#bab0ac").encode(y=alt.Y("windows:Q", title="windows"))
    return alt.vconcat(
        (means + intervals).properties(height=240, width=640,
                                       title=f"Mean {quantity} by distance from the predicted word"),
        counts.properties(height=70, width=640),
    )
