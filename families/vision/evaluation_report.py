"""What an evaluation of image attribution methods (families.vision.photo_evaluation) comes to: its headline figures,
one row per method, the mean curves (Figure 5), the printed summary and the Markdown results file."""
from __future__ import annotations

import dataclasses
import math

import pandas as pd

from families.vision.curves import aopc_curve
from families.vision.photo_evaluation import SATURATION_ALPHA, SATURATION_LEVEL, EvalResult
from ig_core import method

SUMMARY_COLUMNS = ["method", "photos", "aopc", "aopc_se", "deletion_auc", "insertion_auc", "boxed_photos",
                   "localization", "completeness_median", "seconds"]


def summarize(table: pd.DataFrame) -> dict:
    """The headline figures of the photos: the IG scan's completeness and saturation, accuracy, time."""
    if table.empty:
        return {"photos": 0}
    out = {
        "photos": int(len(table)),
        "relative_delta_median": float(table.relative_delta.median()),
        "relative_delta_p90": float(table.relative_delta.quantile(0.9)),
        "relative_delta_max": float(table.relative_delta.max()),
        "steps_used_median": float(table.steps_used.median()),
        "saturated_share": float(table.saturated.mean()),
        "boxed_photos": int(table.has_box.sum()),
        "seconds_per_photo": float(table.seconds.mean()),
        "eval_seconds_per_photo": float(table.eval_seconds.mean()),
    }
    if table.correct.notna().any():
        out["top1_accuracy"] = float(table.correct.dropna().astype(bool).mean())
    return out


def summarize_methods(per_method: pd.DataFrame) -> pd.DataFrame:
    """One row per method (in the order they appear): photos, mean AOPC and its standard error, mean deletion AUC
    (lower is better), mean insertion AUC (higher is better), mean localization over the boxed photos, median
    relative completeness error where the method defines completeness (NaN where not), mean seconds per photo."""
    rows = []
    for name, g in per_method.groupby("method", sort=False):
        boxed, complete = g.localization.dropna(), g.relative_delta.dropna()
        rows.append({
            "method": name, "photos": len(g),
            "aopc": g.aopc.mean(), "aopc_se": g.aopc.std(ddof=1) / math.sqrt(len(g)),
            "deletion_auc": g.deletion_auc.mean(), "insertion_auc": g.insertion_auc.mean(),
            "boxed_photos": len(boxed), "localization": boxed.mean() if len(boxed) else float("nan"),
            "completeness_median": complete.median() if len(complete) else float("nan"),
            "seconds": g.seconds.mean(),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def trust_rows(per_method: pd.DataFrame) -> pd.DataFrame:
    """Each method's mean AOPC, insertion and deletion AUC and localization, for the Trust page."""
    summary = summarize_methods(per_method)
    measures = (("aopc", "AOPC", "higher"), ("insertion_auc", "insertion AUC", "higher"),
                ("deletion_auc", "deletion AUC", "lower"), ("localization", "localization (boxed photos)", "higher"))
    return pd.DataFrame([{"method": row["method"], "measure": title, "value": row[column], "better": better,
                          "items": row["boxed_photos"] if column == "localization" else row["photos"]}
                         for _, row in summary.iterrows() for column, title, better in measures])


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """The curves averaged over photos, per method, curve and step (columns method, curve, step, pixels, fraction,
    score, n, aopc). aopc: on the AOPC rows, Figure 5's AOPC after each step; AOPC is linear in the scores, so the
    AOPC of the mean scores is the mean of the photos' AOPC."""
    columns = ["method", "curve", "step", "pixels", "fraction", "score", "n", "aopc"]
    if curves.empty:
        return pd.DataFrame(columns=columns)
    out = (curves.groupby(["method", "curve", "step"], as_index=False)
           .agg(pixels=("pixels", "mean"), fraction=("fraction", "mean"), score=("score", "mean"),
                n=("score", "size")))
    out["aopc"] = float("nan")
    for _, g in out[out.curve == "aopc"].groupby("method"):
        out.loc[g.index, "aopc"] = aopc_curve(g.score.to_numpy())
    return out[columns]


def _number(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def results_markdown(result: EvalResult, command: str, machine: str, date: str) -> str:
    """The results file: the command, the date, the machine, the table per method and the settings."""
    s = result.settings
    summary = summarize(result.table)
    per = summarize_methods(result.per_method)
    lines = [
        "# Attribution methods on ImageNet photos: AOPC, deletion, insertion, localization",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {date}. Machine: {machine}. Model: {s['model']} on {s['device']}.",
        "",
        f"Photos: {summary['photos']} ({summary.get('boxed_photos', 0)} with boxes), {len(result.skipped)} skipped; "
        f"target: the {s['target']} class; scores: the target's softmax.",
        "",
        "| method | AOPC (± s.e.) ↑ | deletion AUC ↓ | insertion AUC ↑ | localization ↑ (boxed photos) | "
        "completeness error, median | seconds per photo |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in per.itertuples():
        lines.append(f"| {r.method} | {_number(r.aopc)} ± {_number(r.aopc_se)} | {_number(r.deletion_auc)} | "
                     f"{_number(r.insertion_auc)} | {_number(r.localization, 3)} ({r.boxed_photos}) | "
                     f"{'n/a' if math.isnan(r.completeness_median) else f'{100 * r.completeness_median:.2f}%'} | "
                     f"{_number(r.seconds, 2)} |")
    lines += [
        "",
        "How to read it: AOPC (Samek et al. 2015) is the mean drop of the score as the most important pixels are "
        f"ablated, {s['pixels_per_step']} pixels a step for {s['ablation_steps']} steps (larger is better). "
        "Deletion and insertion (Petsiuk et al. 2018) are areas under the score as the most important pixels are "
        f"removed, or put back into a {'blurred' if s['insertion_start'] == 'blur' else 'black'} copy, over all "
        f"pixels in {s['curve_steps']} steps (x axis: fraction of pixels, 0 to 1). Localization: the share of the "
        "attribution mass (sum over channels of |attribution|) inside the human boxes; the random order's is the "
        "box's share of the image. Completeness error: |sum of attributions - score difference| relative to that "
        "difference, where the method defines one. random: the pixels in a random order, the reference.",
        "",
        "## Settings",
        "",
        f"- Path methods (integrated gradients and the methods on its path): rule {s['rule']}, steps {s['steps']}"
        + (f", tolerance {s['tolerance']:g}, budget {s['max_steps']} points" if s['rule'] == "adaptive" else "")
        + f"; the IG scan used a median of {summary.get('steps_used_median', float('nan')):.0f} points.",
        f"- Baseline: the black image; reference-set methods: up to {s['references']} other photos of the "
        f"evaluation (a fixed random choice, seed {s['seed']}), never the photo itself.",
        f"- AOPC and deletion fill: {s['fill']}; pixel ranking: {s['importance_mode']} (sum over channels); AOPC "
        f"regions: {s['region']} x {s['region']}.",
        "- Gradient and gradient x input are read off the IG scan (its point at the photo): their time is the "
        "read-off only.",
        f"- Scoring (forward passes only) took {summary.get('eval_seconds_per_photo', float('nan')):.2f} s per "
        f"photo; the whole run {s['seconds'] / 60:.1f} min.",
        "- Method options:",
    ]
    for name in s["methods"]:
        chosen = dataclasses.asdict(method(name, **s["options"][name]).options)
        lines.append(f"  - {name}: " + (", ".join(f"{k}={v}" for k, v in chosen.items()) or "none"))
    return "\n".join(lines) + "\n"


def format_summary(summary: dict, per_method: pd.DataFrame) -> str:
    """The summary the command line prints: the integrated-gradients scan's figures, then a line per method."""
    lines = [f"photos: {summary.get('photos', 0)}"]
    if not summary.get("photos"):
        return lines[0]
    lines += [
        f"IG relative completeness error: median {100 * summary['relative_delta_median']:.2f}%, "
        f"90th percentile {100 * summary['relative_delta_p90']:.2f}%, max {100 * summary['relative_delta_max']:.2f}% "
        f"(median steps used {summary['steps_used_median']:.0f})",
        f"saturating by alpha {SATURATION_ALPHA:g} (softmax >= {SATURATION_LEVEL:.0%} of final): "
        f"{100 * summary['saturated_share']:.1f}%",
    ]
    if "top1_accuracy" in summary:
        lines.append(f"top-1 accuracy: {100 * summary['top1_accuracy']:.1f}%")
    lines.append(f"{'method':<22} {'AOPC':>14} {'deletion':>9} {'insertion':>9} {'local.':>7} {'s/photo':>8}")
    for r in summarize_methods(per_method).itertuples():
        lines.append(f"{r.method:<22} {_number(r.aopc)} ± {_number(r.aopc_se)} {_number(r.deletion_auc):>9} "
                     f"{_number(r.insertion_auc):>9} {_number(r.localization, 3):>7} {_number(r.seconds, 2):>8}")
    lines.append(f"time: {summary['seconds_per_photo']:.2f} s per photo")
    return "\n".join(lines)
