"""The molecule attribution benchmark's results file (families.molecules.attribution_benchmark): the command, the date,
the machine, our table per method and the published figures beside it."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from families.contract import LoadedModel
from families.molecules.baseline import MoleculeBaseline
from families.molecules.ground_truth import ATOM_VIEWS, TaskData, mean_score
from families.trust import REFERENCE
from ig_core import ScanSettings

PUBLISHED_MODELS = "GCN / MPNN / GraphNets / GAT"
# Sanchez-Lengeling et al. 2020, recomputed from the authors' result files (means over about 20 hyper-parameter runs
# per model), as the data README gives them; keyed by our method names where we have the method
PUBLISHED = {
    "crippen": {"integrated_gradients": ".31 / .24 / .24 / .27 (best single run .43)",
                "CAM": ".20 / .37 / .28 / .23 (best single run .46)",
                "gradient_x_input": ".12 / .09 / .13 / .10", "random": ".13"},
    "benzene": {"integrated_gradients": ".97 / .89 / .94 / .95", "random": ".61"},
    "logic7": {"integrated_gradients": ".77 / .76 / .76 / .74", "random": ".42"},
    "logic8": {"integrated_gradients": ".82 / .78 / .77 / .68", "random": ".50"},
    "logic10": {"integrated_gradients": ".69 / .59 / .72 / .54", "random": ".50"},
}


def _figure(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _completeness(rows: pd.DataFrame) -> str:
    """The median relative completeness error of a method with a completeness law."""
    if not rows["completeness_defined"].all():
        return "no law"
    return f"{100 * rows['relative_delta'].median():.2f}%"


def _parts(rows: pd.DataFrame) -> str:
    """Median shares of the attribution's total in atoms / bonded pairs / other pairs."""
    parts = rows[["atoms part", "bonded pairs part", "other pairs part"]].to_numpy()
    total = parts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.nanmedian(np.where(total != 0, parts / total, np.nan), axis=0)
    return " / ".join("n/a" if math.isnan(s) else f"{100 * s:.0f}%" for s in shares)


def method_table(rows: pd.DataFrame, task: str, metric: str) -> list[str]:
    published = PUBLISHED.get(task, {})
    lines = [f"| method | molecules (left out) | {metric}: " + " | ".join(ATOM_VIEWS) + " | completeness error, "
             "median | share: atoms / bonds / other pairs, median | points, median | s per molecule | published "
             f"({PUBLISHED_MODELS}) |",
             "| --- " * (7 + len(ATOM_VIEWS)) + "|"]
    for method, group in rows.groupby("method", sort=False):
        scores = {view: mean_score(group[view]) for view in ATOM_VIEWS}
        counts = scores[ATOM_VIEWS[0]]
        cells = [f"{_figure(s.mean)} ± {_figure(s.standard_error)}" for s in scores.values()]
        lines.append(f"| {method} | {counts.molecules} ({counts.left_out}) | " + " | ".join(cells) + " | "
                     f"{_completeness(group)} | {_parts(group)} | {group['points'].median():.0f} | "
                     f"{group['seconds'].mean():.2f} | {published.get(method, '')} |")
    return lines


def trust_rows(rows: pd.DataFrame, task: str, metric: str, moved_truth: dict[float, float] | None = None
               ) -> pd.DataFrame:
    """Each method's mean metric per atom view, for the Trust page (higher is better), and where given the tau of
    Crippen's contributions moved along bonds (the labels' ceiling) as reference rows."""
    table = []
    for method, group in rows.groupby("method", sort=False):
        for view in ATOM_VIEWS:
            score = mean_score(group[view])
            table.append({"method": method, "measure": f"{task} {metric} ({view})", "value": score.mean,
                          "better": "higher", "items": score.molecules})
    molecules = rows["row"].nunique()
    for share, tau in (moved_truth or {}).items():
        table += [{"method": f"{REFERENCE}Crippen, {share:g} moved", "value": tau, "better": "higher",
                   "measure": f"{task} {metric} ({view})", "items": molecules} for view in ATOM_VIEWS]
    return pd.DataFrame(table)


def model_fit(rows: pd.DataFrame, regression: bool) -> str:
    """How well the model predicts the explained molecules: attributions of a model that has not learned the task
    cannot find its atoms."""
    first = rows[rows["F(x)"].notna()].drop_duplicates("row")
    if first.empty:
        return "no method gave predictions"
    if regression:
        error = first["F(x)"] - first["target"]
        r2 = 1 - float((error ** 2).sum()) / float(((first["target"] - first["target"].mean()) ** 2).sum())
        return f"RMSE {float(np.sqrt((error ** 2).mean())):.3f}, R² {r2:.3f} on these {len(first)} molecules"
    return (f"P(active) > 0.5 for {int((first['F(x)'] > 0).sum())} of these {len(first)} molecules "
            f"({int(first['target'].sum())} labelled active)")


def _moved_truth_lines(moved_truth: dict[float, float]) -> list[str]:
    """What an attribution that is exact in another way scores: Crippen's own contributions with a share moved
    across each carbon-heteroatom bond, the same sum for every molecule."""
    if not moved_truth:
        return []
    return ["How high the labels let tau go: Crippen's contributions with a share of logP moved from each "
            "heteroatom to every carbon bonded to it add up to the same logP for every molecule, so the labels give "
            "a model no reason to prefer Crippen's split to these. An attribution that is exact for a model that "
            "learnt one of them scores:", "",
            "| share moved per carbon-heteroatom bond | " + " | ".join(f"{share:g}" for share in moved_truth) + " |",
            "| --- " * (len(moved_truth) + 1) + "|",
            "| Kendall tau-b against Crippen's | " + " | ".join(_figure(tau) for tau in moved_truth.values()) + " |",
            ""]


def results_markdown(rows: pd.DataFrame, data: TaskData, model: LoadedModel, counts: dict[str, int],
                     settings: ScanSettings, baseline: MoleculeBaseline, command: str, machine: str, day: str,
                     minutes: float, moved_truth: dict[float, float] | None = None) -> str:
    task = data.task
    card = model.card.get("metrics", {})
    test_metric = card.get("test", {}).get("mean", float("nan"))
    lines = [
        f"# Molecule attribution benchmark: {task.name} (Sanchez-Lengeling et al. 2020)", "",
        f"Command: `{command}`", "",
        f"Date: {day}. Machine: {machine}. Explaining took {minutes:.1f} min.", "",
        f"Model: `{model.name}`, task `{model.target_names[0]}` ("
        f"{'the predicted value' if task.regression else 'its log-odds'} explained); its card's test "
        f"{'R²' if task.regression else 'ROC-AUC'}: {_figure(test_metric)}. Its fit here: "
        f"{model_fit(rows, task.regression)}.", "",
        f"Molecules: {counts['explained']} of the {counts['test split']} test molecules, the first in the split's "
        f"order; {counts['refused']} refused by the featurizer"
        + (f", {counts['without a true atom']} passed over without a true atom" if not task.regression else "")
        + (f"; the rule and the label column disagree on {counts['label disagrees']} of the molecules read"
           if not task.regression else "") + ".", "",
        f"Scan settings: rule {settings.rule}, steps {settings.steps}"
        + (f", tolerance {settings.tolerance:g}, budget {settings.max_steps} points" if settings.rule == "adaptive"
           else "") + f"; baseline `{baseline.name}`: {baseline.description}.", "",
        f"Mean {task.metric} per molecule (± standard error); molecules where it is undefined are left out.", "",
        *method_table(rows, task.name, task.metric), "",
        *_moved_truth_lines(moved_truth or {}),
        f"Published ({PUBLISHED_MODELS}), {task.metric}:", "",
        "| method | published |", "| --- | --- |",
        *[f"| {method} | {figure} |" for method, figure in PUBLISHED.get(task.name, {}).items()], "",
        "How the two differ:",
        "- Their graphs carry every hydrogen as a node; ours hold the heavy atoms (hydrogens implicit): Crippen's "
        "hydrogen contributions are folded into their heavy atoms here, and the binary tasks' AUROC ranks heavy "
        "atoms only.",
        "- Their integrated gradients: 200 points from a \"null\" graph of the same connectivity whose atoms and "
        "bonds have unknown types; ours: the scan settings above from the baseline above.",
        "- They add each edge's attribution to both its atoms; here a pair's score is split half to each atom, so "
        "that the atoms' scores add up to what they split. The weave model also has distance-2 pairs (the last view).",
        "- Their figures are means over about 20 hyper-parameter runs of four graph networks; ours, one weave "
        "model.",
    ]
    return "\n".join(lines) + "\n"
