"""How close a run's rows come to completeness: the distribution the command prints and the run pages show, and
which rows miss the run's tolerance (their attributions do not add up to F(input) - F(baseline), so what they say
about the input cannot be trusted, nor a comparison built on them)."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ig_core import ScanSettings

# a run whose manifest names no tolerance is held to the pages' (the default settings')
DEFAULT_TOLERANCE = ScanSettings.tolerance


def tolerance_of(manifest: Mapping | None) -> float:
    """The completeness tolerance a run's rows are held to: its settings' (every rule's, as the pages hold every
    explanation to it)."""
    settings = ((manifest or {}).get("job") or {}).get("settings") or {}
    return float(settings.get("tolerance", DEFAULT_TOLERANCE))


def over_tolerance(relative_delta, tolerance: float) -> np.ndarray:
    """Whether each row's relative completeness error exceeds the tolerance; NaN (a method with no completeness
    law, a row not explained) is not over it."""
    errors = np.asarray(relative_delta, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return errors > tolerance


def summary(rows: pd.DataFrame, tolerance: float) -> str:
    """One sentence on the explained rows' relative completeness errors: median, 90th percentile, the worst, and
    how many rows miss the tolerance."""
    explained = rows[rows["status"] == "explained"] if "status" in rows else rows
    errors = explained["relative_delta"].to_numpy(dtype=np.float64)
    errors = errors[~np.isnan(errors)]
    if not len(errors):
        return "completeness: no explained row has a completeness law to check"
    over = int(over_tolerance(errors, tolerance).sum())
    text = (f"completeness error of {len(errors):,} explained rows: median {np.median(errors):.2%}, 90th "
            f"percentile {np.quantile(errors, 0.9):.2%}, worst {errors.max():.2%}; ")
    if not over:
        return text + f"all within the {tolerance * 100:g}% tolerance"
    return (text + f"{over:,} ({over / len(errors):.0%}) over the {tolerance * 100:g}% tolerance: their attributions "
            "do not add up to F(input) - F(baseline); rerun them with the adaptive rule (the default) or more steps")
