"""How far each method can be trusted on a model: the figures of the checks that say so, in one table per check.

A check (the sanity check, a ground-truth benchmark, an evaluation) writes its summary with `write_table`: one row
per method and measure, whether higher or lower is better, over how many items, and where the figure comes from
(the command and date). The tables live in the trust folder (IG_TRUST_DIR; by default bench/trust/ in the project,
where the figures measured here ship), one folder per family and model; the Trust page and Home read them back
with `read_tables` and `standing`.
"""
from __future__ import annotations

import datetime
import pathlib
import re

import pandas as pd

from families.config import TRUST_DIR
from ig_core import METHODS

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = ["check", "method", "measure", "value", "better", "items", "source"]
BETTER = ("higher", "lower")
REFERENCE = "reference: "  # a row so named scores a known answer, not a method: how high the measure can go


def trust_dir() -> pathlib.Path:
    return TRUST_DIR.path() or ROOT / "bench" / "trust"


def model_folder_name(model_name: str) -> str:
    """A model's name as a folder name: "shipped: w2n2" -> "w2n2", "small.pt (default)" -> "small"."""
    short = model_name.split(": ", 1)[-1].removesuffix(" (default)").strip()
    return file_name(re.sub(r"\.(pt|pt2|pth)$", "", short))


def file_name(text: str) -> str:
    """Text as a portable file or folder name: letters, digits, "_", "." and "-" only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "unnamed"


def write_table(family: str, model_name: str, check: str, rows: pd.DataFrame, command: str,
                folder: pathlib.Path | None = None) -> pathlib.Path:
    """Keep a check's summary for a model: rows with method (a name of ig_core.METHODS, written as its label, or
    another name: "random", or REFERENCE and what it scores), measure, value, better ("higher" or "lower") and
    items. A check's table replaces its earlier one."""
    missing = {"method", "measure", "value", "better", "items"} - set(rows.columns)
    if missing:
        raise ValueError(f"a trust table needs the columns {sorted(missing)}")
    if not rows["better"].isin(BETTER).all():
        raise ValueError(f"'better' is one of {BETTER}")
    labels = rows["method"].map(lambda name: METHODS[name].label if name in METHODS else name)  # as pages name them
    table = rows.assign(method=labels, check=check, source=f"{command} ({datetime.date.today().isoformat()})")[COLUMNS]
    path = (folder or trust_dir()) / family / model_folder_name(model_name) / f"{file_name(check)}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


def read_tables(family: str, model_name: str, folder: pathlib.Path | None = None) -> pd.DataFrame:
    """Every check's rows for a model (none: an empty frame with the columns); unreadable tables are left out."""
    where = (folder or trust_dir()) / family / model_folder_name(model_name)
    frames = []
    for path in sorted(where.glob("*.csv")) if where.is_dir() else []:
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.ParserError):
            continue
        if set(COLUMNS) <= set(frame.columns):
            frames.append(frame[COLUMNS])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def standing(tables: pd.DataFrame) -> pd.DataFrame:
    """One row per method, one column per check and measure ("sanity: items flagged (lower is better)"); the
    methods in the order the checks first name them."""
    if tables.empty:
        return pd.DataFrame(columns=["method"])
    column = tables["check"] + ": " + tables["measure"] + " (" + tables["better"] + " is better)"
    wide = tables.assign(column=column).pivot_table(index="method", columns="column", values="value",
                                                    aggfunc="first", sort=False)
    order = list(dict.fromkeys(tables["method"]))
    return wide.reindex(order).reset_index().rename_axis(columns=None)
