"""Charts and tables of the vision evaluation (paper Section 2.5; deletion and insertion, Petsiuk et al. 2018): pure
functions, no Streamlit.

Input: the frames of families.vision.photo_evaluation.EvalResult (``table``: one row per photo; ``per_method``: one
row per photo and method; ``curves``: long, per photo, method, curve and step).
"""
from __future__ import annotations

import math

import altair as alt
import pandas as pd

from dashboard.renderers.vision import missing_as_text
from families.vision.evaluation_report import mean_curves, summarize, summarize_methods
from families.vision.evaluation_studies import FULL_STUDY, Study
from families.vision.photo_evaluation import RANDOM, SATURATION_ALPHA, SATURATION_LEVEL, EvalResult
from ig_core import METHODS

PALETTE = ["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#393b79", "#637939", "#843c39"]
RANDOM_COLOR = "#7f7f7f"
# per curve: the title, the line that says which way is better, the x field and title, the y field and title; axis
# titles stay shorter than the chart's height, which a vertical title cannot run past
CURVE_TITLES = {
    "aopc": ("AOPC (Samek et al.) by ablation step", "higher is better", "step", "perturbation steps", "aopc",
             "AOPC (mean drop in softmax)"),
    "deletion": ("Deletion: most important pixels removed first", "lower area is better", "fraction",
                 "fraction of pixels removed", "score", "softmax of the target"),
    "insertion": ("Insertion: most important pixels put back first", "higher area is better", "fraction",
                  "fraction of pixels inserted", "score", "softmax of the target"),
}
CURVE_HEIGHT = 300


def method_label(name: str) -> str:
    """What the dashboard calls a method (its registry label; the random order is the reference)."""
    return METHODS[name].label if name in METHODS else "random order (reference)" if name == RANDOM else name


def duration_text(seconds: float) -> str:
    """A wait as a person reads it, as precise as an estimate can be: "45 s", "3 min 20 s" (to 10 s), "13 min"."""
    if round(seconds) < 60:
        return f"{round(seconds)} s"
    if seconds < 600:
        minutes, rest = divmod(10 * round(seconds / 10), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def study_label(name: str, study: Study) -> str:
    """A size of evaluation as the page offers it: what it runs and how long it took on a 2-core CPU."""
    methods = "every method" if study.methods == FULL_STUDY.methods else f"{len(study.methods)} methods"
    return (f"{name}: {study.limit} photos, {methods} (about {duration_text(study.seconds_on_2_cores)} on a 2-core "
            "CPU)")


def progress_text(planned: int, so_far: EvalResult | None, seconds_now: float) -> str:
    """The progress bar's line, `seconds_now` into a run of `planned` photos with `so_far` its results after the
    last photo done (None before the first): the photos done and the time left, estimated from them."""
    left = so_far.seconds_left(seconds_now) if so_far is not None else None
    done = f"Evaluating {planned} photos: {so_far.photos_done if so_far is not None else 0} done"
    if left is None:
        return f"{done}; the time left is estimated once the first photo is done"
    return f"{done}, about {duration_text(left)} left"


def partial_note(result: EvalResult, running: bool) -> str:
    """What the results of an unfinished run cover: shown while it runs, or after it was stopped."""
    done, planned = result.photos_done, result.planned
    if running:
        return f"Results so far: the first {done} of {planned} photos, redrawn as the evaluation goes on."
    covered = "that photo" if done == 1 else f"those {done} photos"
    return (f"Partial results: the evaluation was stopped after {done} of {planned} photos. The tables, curves and "
            f"downloads below cover {covered} only; run it again for all {planned}.")


def options_text(options: dict[str, dict]) -> str:
    """The methods' options that differ from their defaults, as the page's caption lists them."""
    return "; ".join(f"{method_label(name)} " + ", ".join(f"{option}={value}" for option, value in chosen.items())
                     for name, chosen in options.items() if chosen)


def _labelled(data: pd.DataFrame) -> pd.DataFrame:
    """The rows with each method named as the tables name it."""
    return data.assign(method=data.method.map(method_label))


def _method_color(methods) -> alt.Color:
    """The same colour and label per method in every chart: registry order, the random order grey and last; every
    method in the legend, none of their labels cut."""
    present = set(methods)
    domain = [m for m in METHODS if m in present] + sorted(present - set(METHODS) - {RANDOM})
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(domain))]
    if RANDOM in present:
        domain, colors = domain + [RANDOM], colors + [RANDOM_COLOR]
    return alt.Color("method:N", scale=alt.Scale(domain=[method_label(m) for m in domain], range=colors),
                     title=None, legend=alt.Legend(symbolLimit=0, labelLimit=0))


def curve_chart(curves: pd.DataFrame, kind: str) -> alt.Chart:
    """One curve kind (aopc, deletion, insertion) averaged over the photos, one line per method, as wide as the
    page."""
    title, better, x, x_title, y, y_title = CURVE_TITLES[kind]
    data = mean_curves(curves)
    data = data[data.curve == kind]
    chart = alt.Chart(_labelled(data), title=alt.Title(title, subtitle=better)).mark_line(
        point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X(f"{x}:Q", title=x_title),
        y=alt.Y(f"{y}:Q", title=y_title),
        color=_method_color(data.method),
        tooltip=["method", "step", "pixels", alt.Tooltip(f"{y}:Q", format=".4f"), "n"],
    )
    # fit the width only: Streamlit's default fits the height too, which squeezes the plot and cuts the legend off
    return chart.properties(width="container", height=CURVE_HEIGHT,
                            autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def localization_chart(per_method: pd.DataFrame) -> alt.Chart:
    """Mean share of the attribution mass inside the boxes per method (boxed photos); the random order's is the
    boxes' share of the image."""
    data = summarize_methods(per_method).dropna(subset=["localization"])
    return alt.Chart(_labelled(data), title="Attribution mass inside the boxes (boxed photos)").mark_bar().encode(
        x=alt.X("localization:Q", title="share of |attribution| inside the box", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("method:N", sort=None, title=None),
        color=_method_color(data.method),
        tooltip=["method", alt.Tooltip("localization:Q", format=".3f"), "boxed_photos"],
    ).properties(height=24 * max(len(data), 1))


def completeness_chart(table: pd.DataFrame) -> alt.Chart:
    """Histogram of the integrated-gradients scan's relative completeness error per photo (in percent)."""
    data = pd.DataFrame({"error_pct": 100 * table.relative_delta.astype(float)})
    return alt.Chart(data, title="Relative completeness error of integrated gradients per photo").mark_bar().encode(
        x=alt.X("error_pct:Q", bin=alt.Bin(maxbins=30),
                title="|sum of attributions - (F(x) - F(baseline))| / |F(x) - F(baseline)|, %"),
        y=alt.Y("count():Q", title="photos"),
    ).properties(height=220)


def _pct(v: float, digits: int = 1) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.{digits}f}%"


def _num(v: float, digits: int = 4) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.{digits}f}"


def summary_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The headline figures of the photos as a two-column table (measure, value)."""
    s = summarize(table)
    if not s.get("photos"):
        return pd.DataFrame({"measure": ["photos"], "value": ["0"]})
    rows = [
        ("photos", str(s["photos"])),
        ("boxed photos", str(s["boxed_photos"])),
        ("integrated gradients: relative completeness error, median", _pct(s["relative_delta_median"], 2)),
        ("integrated gradients: relative completeness error, 90th percentile", _pct(s["relative_delta_p90"], 2)),
        ("integrated gradients: relative completeness error, max", _pct(s["relative_delta_max"], 2)),
        ("integrated gradients: path points used, median", f"{s['steps_used_median']:.0f}"),
        (f"saturating by alpha {SATURATION_ALPHA:g} (softmax >= {SATURATION_LEVEL:.0%} of final)",
         _pct(s["saturated_share"])),
    ]
    if "top1_accuracy" in s:
        rows.append(("top-1 accuracy (labelled photos)", _pct(s["top1_accuracy"])))
    rows += [("seconds per photo, all methods and scoring", f"{s['seconds_per_photo']:.2f}"),
             ("seconds per photo, scoring (forward passes)", f"{s['eval_seconds_per_photo']:.2f}")]
    return pd.DataFrame(rows, columns=["measure", "value"])


def method_frame(per_method: pd.DataFrame) -> pd.DataFrame:
    """The table per method, formatted for display."""
    s = summarize_methods(per_method)
    return pd.DataFrame({
        "method": s.method.map(method_label),
        "AOPC ↑ (± s.e.)": [f"{_num(a)} ± {_num(e)}" for a, e in zip(s.aopc, s.aopc_se)],
        "deletion AUC ↓": s.deletion_auc.map(_num),
        "insertion AUC ↑": s.insertion_auc.map(_num),
        "inside box ↑": s.localization.map(lambda v: _pct(v)),
        "boxed photos": s.boxed_photos,
        "completeness error, median": s.completeness_median.map(lambda v: _pct(v, 2)),
        "seconds per photo": s.seconds.map(lambda v: _num(v, 2)),
        "photos": s.photos,
    })


PHOTO_COLUMNS = ["file", "label_name", "predicted_name", "correct", "score", "relative_delta", "steps_used",
                 "alpha_90", "saturated", "has_box", "seconds"]


def photo_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Per-photo table for display, "n/a" where a value is missing (the CSV keeps every column)."""
    return missing_as_text(table[[c for c in PHOTO_COLUMNS if c in table.columns]])


def localization_frame(table: pd.DataFrame, per_method: pd.DataFrame) -> pd.DataFrame:
    """Boxed photos: share of |attribution| (Eq. 1) mass inside the box(es) per method (one column each), and the
    paper's two eligibility checks (box under 2/3 of the image; ablating the box drops the score); "n/a" where a
    method has no share for a photo."""
    boxed = table[table.has_box] if "has_box" in table else table.iloc[:0]
    inside = (per_method[per_method.file.isin(boxed.file)]
              .pivot_table(index="file", columns="method", values="localization", sort=False))
    out = pd.DataFrame({
        "file": boxed.file.values,
        "label": boxed.label_name.values,
        "box share of crop": boxed.box_fraction.values,
        "score drop when box blacked out": boxed.box_ablation_drop.values,
        "box < 2/3 of crop": (boxed.box_fraction < 2 / 3).values,
    })
    for name in inside.columns:
        out[f"inside box, {name}"] = inside[name].reindex(out.file).values
    return missing_as_text(out)


def csv_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False).encode()
