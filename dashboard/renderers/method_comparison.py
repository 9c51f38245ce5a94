"""Attribution methods side by side: one engine run per method through a model family, each one's completeness,
and how far the methods agree on which features matter. Pure (no Streamlit): the pages draw what these return."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from dashboard.renderers.vision import MISSING, missing_as_text
from families.contract import Explanation, FamilyError, LoadedModel, ModelFamily
from ig_core import METHODS, Contrast, ScanSettings, method, read_off_scan
from ig_core.agreement import agreement

DEFAULT_METHODS = ("integrated_gradients", "gradient", "smoothgrad")
SCAN = "integrated_gradients"
AGREEMENT_COLUMNS = ["first", "second", "Spearman (all features)", "Spearman (top features)", "top-k overlap", "k"]
EQUAL_SCORES = f"{MISSING}: equal scores"  # a rank correlation with a map whose scores are all equal is undefined


def label(name: str) -> str:
    return METHODS[name].label


def method_settings(settings: ScanSettings, name: str) -> ScanSettings:
    """The shared settings running `name`: with the user's options where it is the chosen method, else its
    defaults."""
    return settings if name == settings.method else settings.with_method(name)


@dataclass
class MethodRun:
    """One method's explanation of the item, or why there is none."""

    name: str
    explanation: Explanation | None = None
    refusal: str = ""

    @property
    def label(self) -> str:
        return label(self.name)


def run_methods(family: ModelFamily, engine, model: LoadedModel, item, targets: Sequence[int | Contrast] | None,
                settings: ScanSettings, names: Sequence[str],
                progress: Callable[[float], None] | None = None) -> list[MethodRun]:
    """One engine run per method, in the order asked (the engine caches each result). The gradient and gradient
    x input are read off the integrated-gradients scan when it is among them; a method that does not apply to the
    item, or fails on it, comes back with the reason."""
    scan_first = sorted(names, key=lambda name: name != SCAN)
    runs: dict[str, MethodRun] = {}
    scan = None
    for k, name in enumerate(scan_first):
        wanted = method_settings(settings, name)
        options = dict(wanted.method_options)
        refusal = family.refusal(model, item, name, **options)
        if refusal:
            runs[name] = MethodRun(name, refusal=refusal)
            continue
        step = None if progress is None else (lambda f, k=k: progress((k + min(max(f, 0.0), 1.0)) / len(names)))
        try:
            if scan is not None and METHODS[name].reads_off_scan:  # free: the scan evaluated the input already
                inputs = tuple(x.detach().cpu() for x in family.engine_input(model, item).inputs)
                result = read_off_scan(scan.attribution, inputs, name, **options)
                explanation = family.explanation(model, item, scan.engine_targets, result, wanted)
            else:
                explanation = family.explain(engine, model, item, targets, wanted, progress=step)
        except (FamilyError, ValueError, RuntimeError) as exc:
            runs[name] = MethodRun(name, refusal=str(exc))
            continue
        if name == SCAN:
            scan, targets = explanation, explanation.engine_targets  # the others explain the targets the scan did
        runs[name] = MethodRun(name, explanation)
    if progress is not None:
        progress(1.0)
    return [runs[name] for name in names]


def feature_scores(explanation: Explanation, t: int = 0) -> np.ndarray:
    """The t-th target's scores in the family's units (pixels, atoms and bonds, words, columns), flat."""
    scores = explanation.scores(t)
    values = list(scores.values()) if isinstance(scores, dict) else scores
    return np.asarray(values, dtype=np.float64).ravel()


def default_top(features: int) -> int:
    """The top features compared: a tenth of them, at least three (a few words or columns), at most all."""
    return min(features, max(3, features // 10))


def agreement_table(maps: dict[str, np.ndarray], top: int | None = None) -> pd.DataFrame:
    """Pairwise rank agreement of the maps (method label -> feature scores): Spearman over all features,
    Spearman of |score| over the union of both top sets, and the share of top features both pick; EQUAL_SCORES
    where a correlation is undefined, where Streamlit would show "None"."""
    rows = []
    for (first, a), (second, b) in combinations(maps.items(), 2):
        k = top or default_top(a.size)
        measured = agreement(a, b, k)
        rows.append({"first": first, "second": second, "Spearman (all features)": measured["spearman"],
                     "Spearman (top features)": measured["spearman_top"], "top-k overlap": measured["top_overlap"],
                     "k": measured["top"]})
    return missing_as_text(pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)).replace({MISSING: EQUAL_SCORES})


def completeness_text(explanation: Explanation, t: int = 0) -> str:
    """One line: how closely the t-th target's attributions add up to the method's law, or that it has none."""
    a = explanation.attribution
    if not a.completeness_defined:
        return "completeness: not defined"
    if explanation.nothing_per_target()[t]:
        return f"completeness: nothing to attribute ({a.completeness} is zero)"
    return f"completeness: {100 * float(a.relative_delta[0, t]):.2f}% off {a.completeness}"


def completeness_table(runs: Sequence[MethodRun], t: int = 0) -> pd.DataFrame:
    """Per method that ran: its law, the sum of its attributions, the law's value and the relative error; for a
    method without a law "not defined" and "n/a" (vision's MISSING) in its numbers, where Streamlit would show
    "None"."""
    rows = []
    for run in runs:
        if run.explanation is None:
            continue
        a = run.explanation.attribution
        defined = a.completeness_defined
        total = float(feature_scores(run.explanation, t).sum())
        law_value = float(a.score_input[0, t] - a.score_baseline[0, t])
        rows.append({"method": run.label, "completeness": a.completeness if defined else "not defined",
                     "sum of attributions": total, "law's value": law_value if defined else np.nan,
                     "relative error (%)": 100 * float(a.relative_delta[0, t]) if defined else np.nan,
                     "points evaluated": int(a.points_evaluated)})
    return missing_as_text(pd.DataFrame(rows, columns=["method", "completeness", "sum of attributions", "law's value",
                                                       "relative error (%)", "points evaluated"]))


def scores_table(runs: Sequence[MethodRun], features: Sequence[str], t: int = 0) -> pd.DataFrame:
    """One row per feature (word, column, atom or bond), one column of scores per method that ran."""
    columns = {run.label: feature_scores(run.explanation, t) for run in runs if run.explanation is not None}
    return pd.DataFrame({"feature": list(features), **columns})


def method_choices(settings: ScanSettings, applicable: Sequence[str]) -> list[str]:
    """The comparison's default methods among those that apply, with the user's chosen method."""
    chosen = [name for name in (*DEFAULT_METHODS, settings.method) if name in applicable]
    return list(dict.fromkeys(chosen))


def chosen_method(settings: ScanSettings):
    """The settings' method object (its label, completeness law, nature)."""
    return method(settings.method, **dict(settings.method_options))
