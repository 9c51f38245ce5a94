"""The completeness verdict every page shows: do the attributions add up to what the method's law says
(F(input) - F(baseline) for integrated gradients), or does the method define no such law?"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ig_core import RULES, ScanSettings, method

IG_LAW = "F(input) - F(baseline)"


@dataclass(frozen=True)
class Verdict:
    level: str  # "success", "info", "warning" or "error": the Streamlit call that shows it
    text: str


def completeness_verdict(relative_delta, tolerance: float, rule: str, steps_used: int, max_steps: int,
                         nothing_to_attribute=None, nonfinite: bool = False, message: str = "",
                         what: str = "input", baseline_choice: bool = True, law: str = IG_LAW,
                         path_rule: bool = True, stopped: bool = False) -> Verdict:
    """One verdict for all targets of a scan. relative_delta and nothing_to_attribute: arrays (or scalars) over
    the targets; `what` names the input in the text ("input", "text", "molecule"); `baseline_choice`: whether
    the page lets the user pick another baseline (only then is that suggested); `law`: what the method's
    attributions add up to; `path_rule`: whether the scan's rule and steps decide how closely they do; `stopped`:
    whether the user stopped the adaptive rule's refinement (its budget then says nothing)."""
    law = law.replace("F(input)", f"F({what})")
    total, baseline = law.split(" - ", 1)
    if nonfinite:
        return Verdict("error", message or "The model produced non-finite scores or gradients: the attributions "
                                           "are not trustworthy.")
    relative = np.atleast_1d(np.asarray(relative_delta, dtype=float))
    nothing = (np.zeros(relative.shape, bool) if nothing_to_attribute is None
               else np.broadcast_to(np.atleast_1d(np.asarray(nothing_to_attribute, bool)), relative.shape))
    if nothing.all():
        advice = (f" Choose another baseline to see what the {what} adds." if baseline_choice
                  else " The relative error is measured against rounding noise, so it says nothing here.")
        return Verdict("info", f"{total} = {baseline}: the {what} scores exactly like the baseline, so there is "
                               "nothing to attribute and every attribution is (close to) zero." + advice)
    worst = float(relative[~nothing].max())
    if worst <= tolerance:
        return Verdict("success", f"The attributions add up to {law} within {100 * tolerance:g}% "
                                  f"(worst: {100 * worst:.3f}%).")
    head = (f"The attributions miss {law} by {100 * worst:.2f}% (tolerance {100 * tolerance:g}%), "
            "so they do not account for the whole score. ")
    if stopped:
        return Verdict("warning", head + f"The refinement was stopped after {steps_used} path points, before it "
                                         "reached the tolerance: press Refine further to run it to the end.")
    if not path_rule:
        return Verdict("warning", head + "This method does not follow the scan's rule: raise its own samples or "
                                         "steps on the Home page and run again.")
    if rule == "adaptive":
        return Verdict("warning", head + f"The adaptive rule used {steps_used} of its {max_steps}-point budget: raise "
                                         "the step budget on the Home page (e.g. to 1024 or 2048) and run again.")
    return Verdict("warning", head + f"The {rule} rule used {steps_used} steps: switch to the adaptive rule on the "
                                     "Home page (it adds points where the error is) or raise the steps (e.g. to "
                                     f"{min(4 * steps_used, 4096)}).")


def no_completeness_verdict(settings: ScanSettings) -> Verdict:
    """The plain line for a method without a completeness law, and why it has none."""
    chosen = method(settings.method, **dict(settings.method_options))
    return Verdict("info", f"{chosen.label} defines no completeness: {chosen.no_completeness}")


def explanation_verdict(explanation, what: str = "input", baseline_choice: bool = True) -> Verdict:
    """The verdict for a family's explanation (families.contract.Explanation): its method's own law, all targets."""
    a, settings = explanation.attribution, explanation.settings
    if not a.completeness_defined:
        return no_completeness_verdict(settings)
    path_rule = method(settings.method, **dict(settings.method_options)).uses_path_rule
    rule = a.rule if a.rule in RULES else settings.rule  # a method's own result names the method, not the rule
    return completeness_verdict(explanation.per_target("relative_delta"), settings.tolerance, rule, a.steps_used,
                                settings.max_steps, explanation.nothing_per_target(), a.nonfinite, a.message, what,
                                baseline_choice, law=a.completeness, path_rule=path_rule, stopped=a.stopped_early)


def evaluation_text(attribution, label: str) -> str:
    """How many points a method other than the straight-line scan evaluated, and over how many noisy copies
    (SmoothGrad) or references (expected gradients) they were spread."""
    text = f"{label}: {attribution.points_evaluated} points evaluated"
    for key, what in (("samples", "noisy copies"), ("references", "references")):
        if key in attribution.extras:
            copies = attribution.extras[key]
            text += f" ({copies} {what}, {attribution.points_evaluated // copies} points each)"
    return text


def completeness_frame(labels: Sequence[str], targets: Sequence[int], score_input: np.ndarray,
                       score_baseline: np.ndarray, attribution_sum: np.ndarray, relative_delta: np.ndarray,
                       tolerance: float, law: str = IG_LAW) -> pd.DataFrame:
    """Proposition 1 per target: sum of attributions against the method's law (F(input) - F(baseline) for
    integrated gradients; its two sides name the columns)."""
    total, baseline = law.split(" - ", 1)
    rows = []
    for t, (label, index) in enumerate(zip(labels, targets)):
        diff = float(score_input[t] - score_baseline[t])
        rows.append({
            "target": f"{label} ({index})", total: float(score_input[t]), baseline: float(score_baseline[t]),
            law: diff, "sum of attributions": float(attribution_sum[t]),
            "delta": float(attribution_sum[t]) - diff, "relative delta (%)": 100 * float(relative_delta[t]),
            "within tolerance": bool(relative_delta[t] <= tolerance),
        })
    return pd.DataFrame(rows)


ADDS_UP = "adds up"  # the column of a run's listed rows that says whether each row meets the run's tolerance


def adds_up(relative_delta, tolerance: float) -> list[str]:
    """Per listed row of a run: "yes" within the run's completeness tolerance, "NO" over it (its attributions do not
    add up to F(input) - F(baseline): what it says cannot be trusted), "n/a" for a method with no completeness law."""
    errors = np.asarray(relative_delta, dtype=np.float64)
    return ["n/a" if np.isnan(error) else "yes" if error <= tolerance else "NO" for error in errors]


def with_adds_up(listed: pd.DataFrame, relative_delta, tolerance: float, position: int = 1) -> pd.DataFrame:
    """A run's listed rows with the ADDS_UP column at `position` (after the row's name)."""
    flagged = listed.copy()
    flagged.insert(position, ADDS_UP, adds_up(relative_delta, tolerance))
    return flagged
