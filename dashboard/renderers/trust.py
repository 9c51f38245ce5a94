"""The Trust page's views (families.trust): each method's standing over the checks recorded for a model, each check's
own table with its source, and the commands that record more. Pure (no Streamlit): the pages draw what these return."""
from __future__ import annotations

import pandas as pd

from dashboard.renderers.vision import missing_as_text
from families.trust import REFERENCE, read_tables, standing, trust_dir

SANITY_COMMAND = ("python -m runs.sanity_checks --family {family} --input {sample} --model {model} --limit 20 "
                  "--out bench/RESULTS-sanity-{family}-{model}.md")
SAMPLES = {"vision": "$IG_DATA_DIR/imagenet_samples", "molecules": "$IG_DATA_DIR/molecules/tox21_moleculenet.csv",
           "language": "$IG_DATA_DIR/ptb/ptb.test.txt", "tabular": "my_table.csv"}


def standing_table(tables: pd.DataFrame) -> pd.DataFrame:
    """Methods by rows, each check's measures by columns, to three decimals; "n/a" where a check has no figure for
    the method."""
    return missing_as_text(standing(tables).round(3))


def reference_note(tables: pd.DataFrame) -> str:
    """What the rows named "reference: ..." are, where the tables have any ("" where not)."""
    if not tables["method"].astype(str).str.startswith(REFERENCE).any():
        return ""
    return (f"A row named \"{REFERENCE.strip()} ...\" is no method: it scores a known answer, to show how high the "
            "measure can go (the check's results file says how it is made).")


def check_tables(tables: pd.DataFrame) -> list[tuple[str, pd.DataFrame, str]]:
    """Per check, in the order recorded: its name, its rows (method, measure, value, items) and its source."""
    return [(check, rows[["method", "measure", "value", "items"]].round({"value": 3}).reset_index(drop=True),
             "; ".join(dict.fromkeys(rows["source"].astype(str))))
            for check, rows in tables.groupby("check", sort=False)]


def record_commands(family: str, model: str, trust_checks: dict[str, str]) -> dict[str, str]:
    """The commands that record the checks for this family: the sanity check every family has, then its own."""
    sample = SAMPLES.get(family, "SAMPLES")
    return {"sanity check": SANITY_COMMAND.format(family=family, sample=sample, model=model), **trust_checks}


def model_choices(family: str, source_folders: list[str]) -> list[str]:
    """The models to look at: those with recorded checks first, then the family's other models."""
    recorded = sorted(p.name for p in (trust_dir() / family).iterdir() if p.is_dir()) \
        if (trust_dir() / family).is_dir() else []
    return list(dict.fromkeys(recorded + source_folders))


def method_standing(tables: pd.DataFrame, method_label: str) -> str:
    """One method's figures over the checks, as one line ("" where no check names the method)."""
    rows = tables[tables["method"] == method_label]
    return "; ".join(f"{row.check}: {row.measure} {row.value:.3g} ({row.better} is better)"
                     for row in rows.itertuples())


def recorded_standings(method_label: str) -> list[tuple[str, str]]:
    """Where the method's standing is recorded ("vision: mobilenet_v2") and its figures there, every family's models
    with recorded checks in turn."""
    found = []
    families = sorted(p.name for p in trust_dir().iterdir() if p.is_dir()) if trust_dir().is_dir() else []
    for family in families:
        for model in model_choices(family, []):
            line = method_standing(read_tables(family, model), method_label)
            if line:
                found.append((f"{family}: {model}", line))
    return found
