"""Charts and tables of the vision evaluation (paper Section 2.5): pure functions, no Streamlit.

Input: the frames of models.vision_eval.EvalResult (``table``: one row per photo; ``curves``: long,
per photo, method and ablation step).
"""
from __future__ import annotations

import math

import altair as alt
import pandas as pd

from models.vision_eval import SATURATION_ALPHA, SATURATION_LEVEL, mean_curves, summarize

METHOD_ORDER = ["integrated gradients", "gradient", "random"]
METHOD_COLORS = ["#d62728", "#1f77b4", "#7f7f7f"]


def _method_color(methods) -> alt.Color:
    """The same colour per method in every chart (unknown methods green, after the known ones)."""
    present = [m for m in METHOD_ORDER if m in set(methods)] + sorted(set(methods) - set(METHOD_ORDER))
    colors = [METHOD_COLORS[METHOD_ORDER.index(m)] if m in METHOD_ORDER else "#2ca02c" for m in present]
    return alt.Color("method:N", scale=alt.Scale(domain=present, range=colors), title=None)


def aopc_chart(curves: pd.DataFrame, title: str = "AOPC (Samek et al.) by ablation step") -> alt.Chart:
    """Figure 5: AOPC after each ablation step, averaged over the photos, one line per method."""
    data = mean_curves(curves)
    return alt.Chart(data, title=title).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("step:Q", title="perturbation steps"),
        y=alt.Y("aopc:Q", title="AOPC (mean drop in softmax score)"),
        color=_method_color(data.method),
        tooltip=["method", "step", "pixels", alt.Tooltip("aopc:Q", format=".4f"), "n"],
    ).properties(height=320)


def score_chart(curves: pd.DataFrame) -> alt.Chart:
    """The mean target score after each ablation step (the perturbation curve AOPC is computed from)."""
    data = mean_curves(curves)
    return alt.Chart(data, title="Mean target softmax after ablating the top pixels").mark_line().encode(
        x=alt.X("pixels:Q", title="pixels ablated (most important first)"),
        y=alt.Y("score:Q", title="softmax of the target"),
        color=_method_color(data.method),
        tooltip=["method", "pixels", alt.Tooltip("score:Q", format=".4f")],
    ).properties(height=320)


def completeness_chart(table: pd.DataFrame) -> alt.Chart:
    """Histogram of the relative completeness error per photo (in percent)."""
    data = pd.DataFrame({"error_pct": 100 * table.relative_delta.astype(float)})
    return alt.Chart(data, title="Relative completeness error per photo").mark_bar().encode(
        x=alt.X("error_pct:Q", bin=alt.Bin(maxbins=30), title="|sum of attributions - (F(x) - F(baseline))| / |F(x) - F(baseline)|, %"),
        y=alt.Y("count():Q", title="photos"),
    ).properties(height=220)


def _pct(v: float, digits: int = 1) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.{digits}f}%"


def summary_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The headline figures as a two-column table (measure, value)."""
    s = summarize(table)
    if not s.get("photos"):
        return pd.DataFrame({"measure": ["photos"], "value": ["0"]})
    rows = [
        ("photos", str(s["photos"])),
        ("relative completeness error, median", _pct(s["relative_delta_median"], 2)),
        ("relative completeness error, 90th percentile", _pct(s["relative_delta_p90"], 2)),
        ("relative completeness error, max", _pct(s["relative_delta_max"], 2)),
        ("path points used, median", f"{s['steps_used_median']:.0f}"),
        (f"saturating by alpha {SATURATION_ALPHA:g} (softmax >= {SATURATION_LEVEL:.0%} of final)",
         _pct(s["saturated_share"])),
        ("mean AOPC, integrated gradients", f"{s['aopc_ig_mean']:.4f}"),
        ("mean AOPC, gradient at the image", f"{s['aopc_gradient_mean']:.4f}"),
    ]
    if not math.isnan(s["aopc_random_mean"]):
        rows.append(("mean AOPC, random order (reference)", f"{s['aopc_random_mean']:.4f}"))
    rows.append(("photos where IG's AOPC is larger", _pct(s["aopc_ig_wins_share"])))
    if "top1_accuracy" in s:
        rows.append(("top-1 accuracy (labelled photos)", _pct(s["top1_accuracy"])))
    if "boxed_photos" in s:
        rows += [
            ("boxed photos", str(s["boxed_photos"])),
            ("mean attribution mass inside the box, IG", _pct(s["loc_ig_mean"])),
            ("mean attribution mass inside the box, gradient", _pct(s["loc_gradient_mean"])),
            ("boxed photos where IG has more mass inside", _pct(s["loc_ig_wins_share"], 0)),
        ]
    rows.append(("seconds per photo", f"{s['seconds_per_photo']:.2f}"))
    return pd.DataFrame(rows, columns=["measure", "value"])


PHOTO_COLUMNS = ["file", "label_name", "predicted_name", "correct", "score", "relative_delta", "steps_used",
                 "alpha_90", "saturated", "aopc_ig", "aopc_gradient", "aopc_random"]


def photo_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Per-photo table for display (the CSV keeps every column)."""
    return table[[c for c in PHOTO_COLUMNS if c in table.columns]].copy()


def localization_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Boxed photos: share of |attribution| (Eq. 1) mass inside the box(es), IG against gradient, and the
    paper's two eligibility checks (box under 2/3 of the image; ablating the box drops the score)."""
    boxed = table[table.has_box] if "has_box" in table else table.iloc[:0]
    out = pd.DataFrame({
        "file": boxed.file,
        "label": boxed.label_name,
        "box share of crop": boxed.box_fraction,
        "inside box, IG": boxed.loc_ig,
        "inside box, gradient": boxed.loc_gradient,
        "IG - gradient": boxed.loc_ig - boxed.loc_gradient,
        "inside box, IG (positive)": boxed.loc_ig_positive,
        "inside box, gradient (positive)": boxed.loc_gradient_positive,
        "score drop when box blacked out": boxed.box_ablation_drop,
        "box < 2/3 of crop": boxed.box_fraction < 2 / 3,
    })
    return out.reset_index(drop=True)


def csv_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False).encode()
