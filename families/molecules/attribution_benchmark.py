"""Do a weave model's atom attributions land on the atoms that truly drive its prediction? The molecule benchmark of
Sanchez-Lengeling et al. 2020 as a command (tasks, ground truth and metrics: families.molecules.ground_truth).

    python -m families.molecules.attribution_benchmark --task crippen --model PATH_OR_NAME \
        --methods integrated_gradients gradient_x_input random --limit 50
    python -m families.molecules.attribution_benchmark --task crippen --train 12 --checkpoint crippen.pt ...

Each of the first --limit test molecules of the task's split (in the split's order; the binary tasks skip molecules
without a true atom, which the metric leaves out) is explained through the molecules family from its --baseline
(families.molecules.baseline; the model's first task; its log-odds for a classification, the value for a regression)
with each method, and "random" gives the floor (seeded uniform scores). The metric is computed on three atom scores:
the atoms' own, with bonded pairs' scores split half to each atom, and with every pair's so split. Beside each
method: completeness (median relative error) where the method defines it. --train EPOCHS first trains a weave on the
task's train split with the project's trainer (families.molecules.train; a tenth of the chosen training molecules kept
for early stopping) and saves it at --checkpoint. --out ending in .md writes the results file (with the published
figures beside ours), else a CSV of the per-molecule rows.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from families.contract import LoadedModel
from families.machine import machine_description
from families.molecules.baseline import BASELINES, DEFAULT_BASELINE
from families.molecules.benchmark_report import results_markdown, trust_rows
from families.molecules.family import FAMILY, MoleculeFamily
from families.molecules.featurize import Featurizer, MoleculeError, MoleculeFeatures
from families.molecules.ground_truth import (
    ATOM_VIEWS,
    TASKS,
    TaskData,
    atom_views,
    crippen_moved_along_bonds,
    ground_truth,
    has_true_atom,
    load_task,
    mean_score,
    random_attributions,
    score_atoms,
)
from families.molecules.train import featurize_rows, train_on_splits
from families.molecules.train import parse_args as trainer_arguments
from families.trust import write_table
from ig_core import AttributionEngine, ScanSettings

RANDOM = "random"
MOVED_SHARES = (0.1, 0.3, 0.5)  # log units moved per carbon-heteroatom bond, for the Crippen ceiling
COMMAND = "python -m families.molecules.attribution_benchmark"


@dataclass
class BenchmarkMolecule:
    row: int  # in the task's table
    features: MoleculeFeatures
    truth: np.ndarray  # ground_truth(): contributions [A] or answers [M, A]


@dataclass
class MoleculeSelection:
    molecules: list[BenchmarkMolecule]
    refused: list[tuple[int, str]]  # (row, the featurizer's reason)
    without_true_atom: int  # binary tasks: passed over, as the metric leaves them out
    label_disagrees: int  # binary tasks: molecules read whose label column says otherwise than the rule


# -- training ----------------------------------------------------------------------------------------------------

def train_model(data: TaskData, args: argparse.Namespace) -> Path:
    """A weave (the trainer's defaults) trained on the task's train split, or --train-limit molecules of it drawn
    with --seed; a tenth of them kept apart for early stopping; the test split scored on the card."""
    chosen = np.random.RandomState(args.seed).permutation(data.train_index)[:args.train_limit or None]
    n_valid = max(1, round(len(chosen) / 10))
    split_rows = {"train": np.sort(chosen[n_valid:]), "valid": np.sort(chosen[:n_valid]),
                  "test": np.sort(data.test_index)}
    trainer = trainer_arguments(["--out", str(args.checkpoint), "--epochs", str(args.train), "--seed", str(args.seed),
                                 "--split-seed", str(args.seed), "--patience", str(args.patience),
                                 "--threads", str(args.threads), "--weave", str(args.weave)])
    featurizer = Featurizer(kind=trainer.featurizer, max_distance=trainer.distance)
    column = data.task.target_column
    splits = {name: featurize_rows(data.frame, rows, featurizer, [column]) for name, rows in split_rows.items()}
    meta = {"featurizer": featurizer.to_dict(), "split_seed": int(args.seed), "file": data.file,
            "rows": len(data.frame), "tasks": [column],
            "kinds": ["regression" if data.task.regression else "classification"],
            "dataset": f"graph-attribution benchmark, task {data.task.name}",
            "split": (f"the benchmark's train split ({len(chosen)} of {len(data.train_index)} molecules, seed "
                      f"{args.seed}; a tenth of them for validation) and its test split"),
            "command": f"{COMMAND} {shlex.join(args.argv)}"}
    train_on_splits(splits, meta, featurizer, trainer)
    return Path(args.checkpoint)


# -- explaining --------------------------------------------------------------------------------------------------

def select_test_molecules(data: TaskData, model: LoadedModel, limit: int | None) -> MoleculeSelection:
    """The first `limit` test molecules (split order) the model's featurizer reads and, for a binary task, with a
    true atom."""
    selection = MoleculeSelection([], [], 0, 0)
    for row in data.test_index:
        if limit is not None and len(selection.molecules) >= limit:
            break
        try:
            features = FAMILY.parse(model, data.frame.smiles.iloc[row])
        except MoleculeError as exc:
            selection.refused.append((int(row), str(exc)))
            continue
        truth = ground_truth(data.task, features.mol)
        if not data.task.regression:
            selection.label_disagrees += data.task.active(features.mol) != bool(data.frame.label.iloc[row] == 1)
        if has_true_atom(data.task, truth):
            selection.molecules.append(BenchmarkMolecule(int(row), features, truth))
        else:
            selection.without_true_atom += 1
    return selection


def explained_scores(engine, model: LoadedModel, molecule: BenchmarkMolecule, method: str, settings: ScanSettings,
                     rng: np.random.Generator, family: MoleculeFamily) -> dict:
    """One molecule's atom and ordered-pair scores by a method (random: rng's) from the family's baseline, with the
    scan's completeness."""
    features = molecule.features
    if method == RANDOM:
        atom_scores, pair_scores = random_attributions(rng, features.n_atoms, features.n_pairs)
        return {"atom_scores": atom_scores, "pair_scores": pair_scores, "relative_delta": np.nan,
                "completeness_defined": False, "points": 0, "F(x)": np.nan, "F(baseline)": np.nan}
    explanation = family.explain(engine, model, features, [0], settings.with_method(method))
    attribution = explanation.attribution
    return {"atom_scores": explanation.atom_scores, "pair_scores": explanation.pair_scores,
            "relative_delta": explanation.task_relative_delta,
            "completeness_defined": attribution.completeness_defined, "points": int(attribution.points_evaluated),
            "F(x)": explanation.task_score_input, "F(baseline)": explanation.task_score_baseline}


def molecule_rows(engine, model: LoadedModel, data: TaskData, molecules: list[BenchmarkMolecule], methods: list[str],
                  settings: ScanSettings, seed: int, family: MoleculeFamily = FAMILY) -> pd.DataFrame:
    """One row per method and molecule: the metric on each atom view, completeness, the attribution's parts (atoms,
    bonded pairs, other pairs) and the time taken; the methods explain with `family` (its baseline)."""
    rows = []
    for method in methods:
        rng = np.random.default_rng(seed)  # each run of the random floor draws the same scores
        for molecule in molecules:
            start = time.perf_counter()
            scores = explained_scores(engine, model, molecule, method, settings, rng, family)
            seconds = time.perf_counter() - start
            features = molecule.features
            views = atom_views(scores["atom_scores"], scores["pair_scores"], features)
            rows.append({
                "method": method, "row": molecule.row, "smiles": features.smiles, "atoms": features.n_atoms,
                **{view: score_atoms(data.task, molecule.truth, views[view]) for view in ATOM_VIEWS},
                "relative_delta": scores["relative_delta"], "completeness_defined": scores["completeness_defined"],
                "points": scores["points"], "F(x)": scores["F(x)"], "F(baseline)": scores["F(baseline)"],
                "target": float(data.frame[data.task.target_column].iloc[molecule.row]),
                "atoms part": float(np.sum(scores["atom_scores"])),
                "bonded pairs part": float(features.bond_scores(scores["pair_scores"]).sum()),
                "other pairs part": features.nonbonded_total(scores["pair_scores"]), "seconds": seconds})
    return pd.DataFrame(rows)


def moved_truth_scores(data: TaskData, molecules: list[BenchmarkMolecule]) -> dict[float, float]:
    """Crippen only: the mean tau against Crippen's contributions of the same contributions moved along bonds by each
    share (ground_truth.crippen_moved_along_bonds), which add up as exactly: the ceiling the labels allow."""
    if not data.task.regression:
        return {}
    scores = {share: [score_atoms(data.task, m.truth, crippen_moved_along_bonds(m.features.mol, m.truth, share))
                      for m in molecules] for share in MOVED_SHARES}
    return {share: mean_score(taus).mean for share, taus in scores.items()}


# -- the command -------------------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="crippen", choices=list(TASKS))
    parser.add_argument("--model", help="a weave checkpoint: a shipped name or a .pt file (with --train: --checkpoint)")
    parser.add_argument("--methods", nargs="+", default=["integrated_gradients", "gradient_x_input", RANDOM],
                        help=f"attribution methods (ig_core.METHODS that apply to molecules) and {RANDOM!r}")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, choices=list(BASELINES),
                        help="what the path starts from (families.molecules.baseline)")
    parser.add_argument("--limit", type=int, default=50, help="test molecules to explain (0: the whole test split)")
    parser.add_argument("--out", help="the results file (.md), or a CSV of the per-molecule rows (default: "
                                      "bench/RESULTS-molecule-benchmark-TASK.md)")
    parser.add_argument("--train", type=int, default=0, metavar="EPOCHS",
                        help="first train a weave on the task's train split for at most EPOCHS epochs")
    parser.add_argument("--checkpoint", help="where --train saves the model (its card beside it)")
    parser.add_argument("--weave", type=int, default=2, choices=(1, 2), help="--train's weave modules (W)")
    parser.add_argument("--train-limit", type=int, default=0,
                        help="train on this many molecules of the train split (0: all of it)")
    parser.add_argument("--patience", type=int, default=10, help="early stopping's patience in epochs")
    parser.add_argument("--seed", type=int, default=0, help="training, its validation draw and the random floor")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu", help="where the scans run (training runs on the CPU)")
    ScanSettings.add_arguments(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.train and not args.checkpoint:
        parser.error("--train needs --checkpoint: the file the trained model is saved to")
    if not args.train and not args.model:
        parser.error("name the --model to explain, or --train one")
    args.argv = argv  # for the results file's command line
    return args


def main(argv=None) -> pd.DataFrame:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_task(args.task)
    model_name = str(train_model(data, args)) if args.train else args.model
    device = torch.device(args.device)
    model = FAMILY.load(FAMILY.source_named(model_name), device)
    selection = select_test_molecules(data, model, args.limit or None)
    settings = ScanSettings.from_arguments(args)
    print(f"{args.task}: explaining {len(selection.molecules)} test molecules with {', '.join(args.methods)}",
          flush=True)
    start = time.time()
    family = MoleculeFamily(baseline=args.baseline)
    rows = molecule_rows(AttributionEngine(device=device, cache_size=0), model, data, selection.molecules,
                         args.methods, settings, args.seed, family)
    moved_truth = moved_truth_scores(data, selection.molecules)
    out = Path(args.out or f"bench/RESULTS-molecule-benchmark-{args.task}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".md":
        out.write_text(results_markdown(
            rows, data, model, selection_counts(data, selection), settings, family.baseline,
            command=f"{COMMAND} {shlex.join(args.argv)}", machine=machine_description(device),
            day=date.today().isoformat(), minutes=(time.time() - start) / 60,
            moved_truth=moved_truth))
    else:
        rows.to_csv(out, index=False)
    trust = write_table("molecules", model.name, f"ground truth: {data.task.name}",
                        trust_rows(rows, data.task.name, data.task.metric, moved_truth),
                        f"{COMMAND} {shlex.join(args.argv)}")
    print(f"wrote {out}; the summary in the trust table {trust}")
    return rows


def selection_counts(data: TaskData, selection: MoleculeSelection) -> dict[str, int]:
    return {"test split": len(data.test_index), "explained": len(selection.molecules),
            "refused": len(selection.refused), "without a true atom": selection.without_true_atom,
            "label disagrees": selection.label_disagrees}


if __name__ == "__main__":
    main()
