"""The sanity check (families.sanity_checks) over a sample set: each method's similarity to its trained-model map
along the cascade of randomised blocks, averaged over the items, and how often each method is flagged.

    python -m runs.sanity_checks --family vision --input $IG_DATA_DIR/imagenet_samples --model mobilenet_v2 \\
        --limit 20 --out bench/RESULTS-sanity-vision-mobilenet_v2.md

Writes a Markdown table (the command, date and machine with it) and a CSV of every item's rows beside it.
"""
from __future__ import annotations

import argparse
import datetime
import pathlib
import shlex
import sys
import time
from typing import Sequence

import pandas as pd
import torch
from tqdm import tqdm

from families.machine import machine_description
from families.registry import FAMILIES
from families.sanity_checks import STILL_SIMILAR, sanity_check
from families.trust import write_table
from ig_core import METHODS, AttributionEngine, ScanSettings
from runs.runner import input_options_parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m runs.sanity_checks", description=__doc__.split("\n\n")[0],
                                     parents=[input_options_parser()])
    parser.add_argument("--family", required=True,
                        choices=sorted(name for name, family in FAMILIES.items() if family.collections))
    parser.add_argument("--input", required=True, type=pathlib.Path, help="the sample set, as dataset runs read it")
    parser.add_argument("--model", help="a model's name as the dashboard lists it (default: the family's first)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, help="default: every method that applies")
    parser.add_argument("--cascade-steps", type=int, default=4,
                        help="randomisation steps from the output down (default 4)")
    parser.add_argument("--limit", type=int, default=20, help="the first LIMIT items (default 20)")
    parser.add_argument("--out", required=True, type=pathlib.Path, help="the Markdown file; the CSV goes beside it")
    parser.add_argument("--threads", type=int, help="torch's CPU threads")
    parser.add_argument("--device", default="cpu")
    ScanSettings.add_arguments(parser)
    return parser.parse_args(argv)


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method and step: the mean similarities over the items; at the last step, the share of items flagged."""
    measures = [column for column in ("spearman_abs", "spearman_signed", "ssim") if column in rows]
    table = rows.groupby(["method", "step", "randomised"], sort=False)[measures].mean().reset_index()
    last = rows[rows["step"] == rows["step"].max()].groupby("method", sort=False)["flagged"].mean()
    table["items flagged"] = [last[method] if step == rows["step"].max() else float("nan")
                              for method, step in zip(table["method"], table["step"])]
    return table


def trust_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Each method's figures after the last step, for the Trust page: the mean Spearman of |scores| with the trained
    model's map and the share of items flagged (lower is better for both)."""
    last = rows[rows["step"] == rows["step"].max()].groupby("method", sort=False)
    items = last["item"].nunique()
    return pd.concat([
        pd.DataFrame({"method": means.index, "measure": measure, "value": means.to_numpy(), "better": "lower",
                      "items": items.to_numpy()})
        for measure, means in (("Spearman of |scores| after randomisation", last["spearman_abs"].mean()),
                               ("share of items flagged", last["flagged"].mean()))], ignore_index=True)


def markdown_table(table: pd.DataFrame) -> str:
    """A frame as a Markdown table, numbers to three decimals (NaN: blank)."""
    def cell(value) -> str:
        return "" if pd.isna(value) else f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + " --- |" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)])


def results_markdown(table: pd.DataFrame, command: str, machine: str, model: str, items: int, seconds: float) -> str:
    last = table[table["step"] == table["step"].max()]
    verdicts = "\n".join(f"| {row.method} | {row.spearman_abs:.3f} | {row['items flagged']:.0%} |"
                         for _, row in last.iterrows())
    return f"""# Sanity check: cascading randomisation of {model}

`{command}`

Date: {datetime.date.today().isoformat()}. Machine: {machine}. {items} items, {seconds / 60:.1f} min.

Each method explains the same target (the trained model's top class, task or next word; on the scores before the
softmax where the family has them) on copies of the model whose parameter modules are re-initialised from the output
down, and its map is compared with the trained model's. A map is flagged where the Spearman correlation of its
|scores| stays at least {STILL_SIMILAR} (and above chance for its number of features) once every block is
re-initialised. The input itself, offered as an "attribution", is the control that must be flagged.

## After the last step
| method | Spearman of abs scores (mean) | items flagged |
| --- | --- | --- |
{verdicts}

## The cascade (means over the items)
{markdown_table(table)}
"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    family = FAMILIES[args.family]
    engine = AttributionEngine(device=args.device)
    settings = ScanSettings.from_arguments(args, ScanSettings.method)
    input_options = {name: getattr(args, name) for name in vars(input_options_parser().parse_args([]))}
    try:
        source = family.source_named(args.model)
        model = family.load(source, engine.device)
        collection = family.open_collection(args.input.expanduser(), input_options)
    except ValueError as exc:  # FamilyError is a ValueError
        print(f"python -m runs.sanity_checks: {exc}", file=sys.stderr)
        return 2
    frames, start = [], time.perf_counter()
    for item in tqdm(collection.items()[:args.limit], desc="sanity checks", unit="item"):
        parsed = collection.parse(family, model, item)
        methods = args.methods or family.methods(model, parsed)
        check = sanity_check(family, engine, model, parsed, None, settings, methods, args.cascade_steps)
        flagged = check.final().set_index("method")["flagged"]
        frames.append(check.table.assign(item=item.id, flagged=check.table["method"].map(flagged)))
    rows = pd.concat(frames, ignore_index=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(args.out.with_suffix(".csv"), index=False)
    command = shlex.join(["python", "-m", "runs.sanity_checks", *argv])
    args.out.write_text(results_markdown(summary_table(rows), command, machine_description(engine.device),
                                         source.name, len(frames), time.perf_counter() - start), encoding="utf-8")
    trust = write_table(args.family, source.name, "sanity check", trust_rows(rows), command)
    print(f"{args.out}: {len(frames)} items; the summary in the trust table {trust}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
