"""Train a table classifier for the Tables page from a CSV of numeric columns.

    python -m families.tabular.train data.csv --target COLUMN --out model.pt

Every column but the target is a feature and must hold numbers; the target's distinct values are the classes. The
model is families.tabular.family.TableClassifier: the columns standardised by their training means and standard
deviations, then a small multilayer perceptron, saved with the column names, the class names, a card and the first
training rows (the reference set of expected gradients) in the checkpoint format the Tables page loads. A fifth of
the rows (of tables of 10 rows or more) is held out to measure the accuracy the card reports.
"""
from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from families.config import MODELS_DIR
from families.tabular.family import TableClassifier, save_table_classifier

HELD_OUT_SHARE, SMALLEST_SPLIT = 0.2, 10  # smaller tables are all training rows: a held-out row or two says nothing


class TableError(ValueError):
    """A table that cannot be trained on; the message says why in words a user can act on."""


def read_table(path: pathlib.Path, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """The feature columns (numbers, no blanks) and the target column of the CSV."""
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path.name} is empty: it has no header and no rows.") from None
    except FileNotFoundError:
        raise TableError(f"{path.name} does not exist.") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TableError(f"{path.name} cannot be read as a CSV table ({exc}).") from None
    if table.empty:
        raise TableError(f"{path.name} has a header but no rows.")
    if target not in table.columns:
        raise TableError(f"{path.name} has no column {target!r} to predict (--target); its columns are "
                         f"{', '.join(map(repr, table.columns))}.")
    features, labels = table.drop(columns=[target]), table[target]
    if features.columns.empty:
        raise TableError(f"{path.name} has no column besides the target {target!r}: there is nothing to predict from.")
    text = [column for column in features.columns if not pd.api.types.is_numeric_dtype(features[column])]
    if text:
        examples = ", ".join(f"{column!r} (e.g. {features[column].dropna().iloc[0]!r})" for column in text[:3])
        raise TableError(f"{len(text)} column(s) of {path.name} are not numbers: {examples}. The model reads numeric "
                         "columns only: drop those columns or encode them as numbers first.")
    blank = [column for column in features.columns if features[column].isna().any()]
    if blank:
        raise TableError(f"Column(s) {', '.join(map(repr, blank))} of {path.name} have blank cells (first in data row "
                         f"{int(features[blank].isna().any(axis=1).to_numpy().argmax()) + 1}): fill them or drop "
                         "those rows first.")
    infinite = [column for column in features.columns if np.isinf(features[column].astype(float)).any()]
    if infinite:
        raise TableError(f"Column(s) {', '.join(map(repr, infinite))} of {path.name} hold infinite values: the "
                         "columns are standardised, which needs finite numbers.")
    if labels.isna().any():
        raise TableError(f"The target {target!r} is blank in {int(labels.isna().sum())} row(s) of {path.name}: "
                         "drop them or give them a class.")
    if labels.nunique() < 2:
        raise TableError(f"The target {target!r} has one value only ({labels.iloc[0]!r}): a classifier needs at "
                         "least two classes.")
    return features.astype("float32"), labels


def held_out_split(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row indices: a random fifth held out, none of a table under SMALLEST_SPLIT rows."""
    order = np.random.default_rng(seed).permutation(rows)
    held = int(round(HELD_OUT_SHARE * rows)) if rows >= SMALLEST_SPLIT else 0
    return np.sort(order[held:]), np.sort(order[:held])


def accuracy(model: TableClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def fit(x: torch.Tensor, y: torch.Tensor, classes: int, hidden: Sequence[int], epochs: int, batch_size: int,
        lr: float, seed: int) -> TableClassifier:
    """A TableClassifier trained on rows x [N, columns] and class indices y [N] by Adam on the cross-entropy; a
    column that never varies is scaled by 1 (its standardised value is 0 everywhere)."""
    torch.manual_seed(seed)
    std = x.std(0, correction=0)
    model = TableClassifier(x.mean(0).tolist(), torch.where(std > 0, std, torch.ones_like(std)).tolist(), hidden,
                            classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(batch_size):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def train(args: argparse.Namespace) -> dict:
    """Read the table, train, save the checkpoint and its card; returns the card."""
    features, labels = read_table(args.csv, args.target)
    classes = sorted(labels.unique())  # in the values' own order: 2 before 10
    x = torch.tensor(features.to_numpy())
    y = torch.tensor(labels.map({value: index for index, value in enumerate(classes)}).to_numpy())
    training, held_out = held_out_split(len(x), args.seed)
    model = fit(x[training], y[training], len(classes), args.hidden, args.epochs, args.batch_size, args.lr,
                args.seed)
    card = {"trained on": f"{args.csv.name}, {len(training)} rows ({len(held_out)} more held out)",
            "target": args.target, "training accuracy": round(accuracy(model, x[training], y[training]), 4),
            "held-out accuracy": (round(accuracy(model, x[held_out], y[held_out]), 4) if len(held_out)
                                  else "n/a (under 10 rows: none held out)"),
            "hidden layers": list(args.hidden), "epochs": args.epochs,
            "command": "python -m families.tabular.train " + " ".join(shlex.quote(a) for a in args.argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_table_classifier(args.out, model, list(features.columns), [str(c) for c in classes], args.hidden, card,
                          reference_rows=x[training])
    return card


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m families.tabular.train", description=__doc__.split("\n")[0])
    parser.add_argument("csv", type=pathlib.Path, help="the table: a header row, then one row per example")
    parser.add_argument("--target", required=True, help="the column to predict; every other column is a feature")
    parser.add_argument("--out", type=pathlib.Path, required=True,
                        help=f"the checkpoint (.pt); in ${MODELS_DIR.name}/tabular/ the Tables page lists it")
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 32], help="hidden layer sizes")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0, help="the held-out rows, the initialisation, the batch order")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # for the card's command line
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        card = train(args)
    except TableError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"{card['trained on']}: training accuracy {card['training accuracy']}, held-out accuracy "
          f"{card['held-out accuracy']}; wrote {args.out} and its card. In ${MODELS_DIR.name}/tabular/ the Tables "
          "page lists it; anywhere else, upload it there.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
