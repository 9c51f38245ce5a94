"""Train the weave model on Tox21 (MoleculeNet, 7,831 molecules, 12 tasks) or on your own table.

    python -m families.molecules.train --weave 2 --out families/molecules/checkpoints/w2n2.pt
    python -m families.molecules.train --weave 1 --out families/molecules/checkpoints/w1n2.pt
    python -m families.molecules.train --csv assays.csv --smiles-column smiles --tasks active,logS \
        --out $IG_MODELS_DIR/molecules/my_assays.pt

Data: without --csv, $IG_DATA_DIR/molecules/tox21_moleculenet.csv (or the MoleculeNet tox21.csv.gz,
downloaded into the data directory when neither file is there and the machine has internet).
With --csv: the named SMILES column and task columns of that table (blank = unknown label). A task
column holding only 0 and 1 is a classification task (F = P(active)), any other numeric column a
regression task (F = the predicted value, in the column's units); --regression names 0/1 columns that
are values nonetheless.
Split: random 80/10/10 over the CSV rows with a fixed seed (default 0); rows RDKit cannot featurize
(8 invalid SMILES in Tox21) are dropped from their split and counted. Loss, averaged over the known
labels: per-task 2-class cross-entropy for classification tasks, positives weighted n_negative/n_positive
per task (train split); squared error of the standardised value (train split's mean and standard
deviation) for regression tasks. Early stopping on the validation mean over tasks of ROC-AUC
(classification) and R² (regression); the best epoch is evaluated on the test split.
The paper used PCBA (128 tasks), which is not available here; Tox21 is the substitute.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from families.checkpoint import save_checkpoint
from families.molecules import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION
from families.molecules.featurize import Featurizer, MoleculeError
from families.molecules.tox21 import TOX21_TASKS, load_tox21, tox21_path
from families.molecules.weave import WeaveModel, collate, predict_batched

if TYPE_CHECKING:  # pandas is imported where a table is read (training from a --cache needs none)
    import pandas as pd


# -- data --------------------------------------------------------------------------------------------

class TableError(ValueError):
    """A training table that cannot be used; the message says why."""


@dataclass
class TaskTable:
    """Molecules and their labels: a "smiles" column and one float column per task (NaN = unknown)."""

    frame: "pd.DataFrame"
    tasks: list[str]
    kinds: list[str]  # "classification" or "regression", per task
    dataset: str
    file: str


def tox21_table() -> TaskTable:
    path = tox21_path()
    return TaskTable(load_tox21(path), list(TOX21_TASKS), ["classification"] * len(TOX21_TASKS),
                     "Tox21 (MoleculeNet)", path.name)


def load_table(path, smiles_column: str, tasks: list[str], regression: list[str] = ()) -> TaskTable:
    """The user's CSV: its SMILES column and task columns; the kind of each task detected from its values
    (only 0 and 1: classification), or regression when named in `regression`."""
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise TableError(f"Cannot read {path} as a CSV table: {exc}") from exc
    if not tasks:
        raise TableError("Name at least one task column (--tasks a,b).")
    missing = [c for c in [smiles_column] + list(tasks) if c not in df.columns]
    if missing:
        raise TableError(f"{path.name} has no column {', '.join(map(repr, missing))} "
                         f"(its columns: {', '.join(map(str, df.columns))}).")
    unknown = sorted(set(regression) - set(tasks))
    if unknown:
        raise TableError(f"--regression names {', '.join(unknown)}, which are not among the tasks {', '.join(tasks)}.")
    frame = pd.DataFrame({"smiles": df[smiles_column].astype(str)})
    kinds = []
    for task in tasks:
        values = pd.to_numeric(df[task], errors="coerce")
        bad = df[task][values.isna() & df[task].notna()]
        if len(bad):
            raise TableError(f"Column {task!r} has {len(bad)} non-numeric values (e.g. {bad.iloc[0]!r} in row "
                             f"{bad.index[0]}); labels must be numbers, blank when unknown.")
        known = values.dropna()
        if known.empty:
            raise TableError(f"Column {task!r} has no labels.")
        binary = set(known.unique()) <= {0.0, 1.0}
        kinds.append("classification" if binary and task not in regression else "regression")
        frame[task] = values.astype(np.float32)
    return TaskTable(frame, list(tasks), kinds, f"user table {path.name}", path.name)


def split_rows(n_rows: int, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    perm = np.random.RandomState(seed).permutation(n_rows)
    n_train = int(round(fractions[0] * n_rows))
    n_valid = int(round(fractions[1] * n_rows))
    return {"train": np.sort(perm[:n_train]), "valid": np.sort(perm[n_train:n_train + n_valid]),
            "test": np.sort(perm[n_train + n_valid:])}


def featurize_rows(df, rows: np.ndarray, featurizer: Featurizer, tasks=TOX21_TASKS):
    """-> (molecules, labels float [n, T] with NaN for unknown, kept row numbers, skipped [(row, reason)])."""
    mols, keep, skipped = [], [], []
    for r in rows:
        try:
            mols.append(featurizer.from_smiles(df.smiles.iloc[r]))
            keep.append(r)
        except MoleculeError as exc:
            skipped.append((int(r), str(exc)))
    labels = df[list(tasks)].iloc[keep].to_numpy(dtype=np.float32)
    return mols, labels, np.array(keep), skipped


@dataclass
class PackedMolecule:
    """Just the tensors collate() needs (what a --cache file holds), without the RDKit molecule."""

    atoms: torch.Tensor
    pairs: torch.Tensor
    pair_index: torch.Tensor


def save_feature_cache(path: Path, data: dict, meta: dict) -> None:
    """Featurized splits as compact plain tensors (one-hot features as uint8), loadable with weights_only."""
    out = {"meta": meta, "splits": {}}
    for name, (mols, labels, rows, skipped) in data.items():
        out["splits"][name] = {
            "atoms": torch.cat([m.atoms for m in mols]).to(torch.uint8),
            "pairs": torch.cat([m.pairs for m in mols]).to(torch.uint8),
            "pair_index": torch.cat([m.pair_index for m in mols]).to(torch.int16),
            "n_atoms": torch.tensor([m.n_atoms for m in mols]),
            "n_pairs": torch.tensor([m.n_pairs for m in mols]),
            "labels": torch.from_numpy(labels),
            "rows": torch.from_numpy(np.asarray(rows, dtype=np.int64)),
            "skipped": [[int(r), str(msg)] for r, msg in skipped],
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)


def load_feature_cache(path: Path):
    blob = torch.load(path, map_location="cpu", weights_only=True)
    data = {}
    for name, d in blob["splits"].items():
        a_off = np.concatenate([[0], np.cumsum(d["n_atoms"].numpy())])
        p_off = np.concatenate([[0], np.cumsum(d["n_pairs"].numpy())])
        atoms, pairs, index = d["atoms"].float(), d["pairs"].float(), d["pair_index"].long()
        mols = [PackedMolecule(atoms[a_off[k]:a_off[k + 1]], pairs[p_off[k]:p_off[k + 1]],
                               index[p_off[k]:p_off[k + 1]]) for k in range(len(a_off) - 1)]
        data[name] = (mols, d["labels"].numpy(), d["rows"].numpy(), [tuple(x) for x in d["skipped"]])
    return data, blob["meta"]


# -- metrics -----------------------------------------------------------------------------------------

def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC by the rank (Mann-Whitney) formula, ties counted one half; NaN if one class is absent."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(s)]])
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def task_aucs(labels: np.ndarray, probs: np.ndarray) -> list[float]:
    out = []
    for t in range(labels.shape[1]):
        known = ~np.isnan(labels[:, t])
        out.append(roc_auc(labels[known, t], probs[known, t]))
    return out


def r2_rmse(y_true: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Coefficient of determination (1 - SSE / SST; NaN for a constant target) and root mean squared error."""
    y, p = np.asarray(y_true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    sse = float(((y - p) ** 2).sum())
    sst = float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0
    return (1.0 - sse / sst if sst > 0 else float("nan")), (float(np.sqrt(sse / len(y))) if len(y) else float("nan"))


def evaluate(labels: np.ndarray, preds: np.ndarray, tasks, kinds) -> dict:
    """ROC-AUC per classification task, R² and RMSE per regression task (known labels only). ``per_task``
    holds each task's main score (ROC-AUC or R²) and ``mean`` their mean, the early-stopping criterion."""
    out = {"per_task": {}, "roc_auc": {}, "r2": {}, "rmse": {}}
    for t, (task, kind) in enumerate(zip(tasks, kinds)):
        known = ~np.isnan(labels[:, t])
        if kind == "classification":
            out["roc_auc"][task] = out["per_task"][task] = roc_auc(labels[known, t], preds[known, t])
        else:
            out["r2"][task], out["rmse"][task] = r2_rmse(labels[known, t], preds[known, t])
            out["per_task"][task] = out["r2"][task]
    scores = [v for v in out["per_task"].values() if not np.isnan(v)]
    out["mean"] = float(np.mean(scores)) if scores else float("nan")
    return out


def predict(model: WeaveModel, mols, batch_size: int = 128) -> np.ndarray:
    """[n, tasks] predictions (P(active), or a regression task's value) in eval mode (left in eval mode)."""
    model.eval()
    return predict_batched(model, mols, batch_size)


# -- training ----------------------------------------------------------------------------------------

def _batches(mols, rng: np.random.RandomState, batch_size: int):
    """Random batches. (Not grouped by size: batch normalization needs batches that look like the data.)"""
    idx = rng.permutation(len(mols))
    return [idx[k:k + batch_size].tolist() for k in range(0, len(idx), batch_size)]


class TaskLoss:
    """Mean over the known labels of a batch: cross-entropy for classification tasks (positives weighted
    n_negative/n_positive of the train split) and the squared error of the standardised value for
    regression tasks (the model's task score before de-standardising)."""

    def __init__(self, train_labels: np.ndarray, kinds, device):
        regression = np.array([k == "regression" for k in kinds])
        pos = np.nansum(np.where(regression, 0, train_labels), 0)
        neg = (~np.isnan(train_labels)).sum(0) - pos
        mean, std = np.nanmean(train_labels, 0), np.nanstd(train_labels, 0)
        self.regression = torch.tensor(regression, device=device)
        self.pos_weight = torch.tensor(neg / np.maximum(pos, 1), dtype=torch.float32, device=device)
        self.mean = torch.tensor(np.where(regression, mean, 0.0), dtype=torch.float32, device=device)
        self.std = torch.tensor(np.where(regression & (std > 0), std, 1.0), dtype=torch.float32, device=device)

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mask = ~torch.isnan(y)
        y = torch.nan_to_num(y)
        target = torch.where(self.regression, 0, y).long()  # regression labels are no class
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 2), target.reshape(-1), reduction="none")
        weighted_ce = ce.view_as(y) * torch.where(target == 1, self.pos_weight, torch.ones_like(self.pos_weight))
        squared = (logits[..., 1] - logits[..., 0] - (y - self.mean) / self.std) ** 2
        per_label = torch.where(self.regression, squared, weighted_ce)
        return (per_label * mask).sum() / mask.sum().clamp(min=1)


def _read_data(args, featurizer: Featurizer):
    """-> (splits {name: (mols, labels, rows, skipped)}, meta) from the table or from the --cache file."""
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.exists():
        data, meta = load_feature_cache(cache)
        meta.setdefault("tasks", list(TOX21_TASKS))  # caches written before user tables were Tox21's
        meta.setdefault("kinds", ["classification"] * len(TOX21_TASKS))
        wanted = {"featurizer": featurizer.to_dict(), "split_seed": args.split_seed,
                  "file": Path(args.csv).name if args.csv else meta["file"],
                  "tasks": _names(args.tasks) if args.csv else list(TOX21_TASKS)}
        if any(meta[k] != v for k, v in wanted.items()):
            raise SystemExit(f"{cache} was made with other settings ({meta}); delete it or pick another path")
        print(f"loaded featurized splits from {cache}", flush=True)
        return data, meta
    table = (load_table(args.csv, args.smiles_column, _names(args.tasks), _names(args.regression))
             if args.csv else tox21_table())
    split = split_rows(len(table.frame), seed=args.split_seed)
    t0 = time.time()
    data = {name: featurize_rows(table.frame, rows, featurizer, table.tasks) for name, rows in split.items()}
    meta = {"featurizer": featurizer.to_dict(), "split_seed": int(args.split_seed), "file": table.file,
            "rows": int(len(table.frame)), "tasks": table.tasks, "kinds": table.kinds, "dataset": table.dataset}
    print(f"featurized {len(table.frame)} rows in {time.time() - t0:.1f}s", flush=True)
    if cache is not None:
        save_feature_cache(cache, data, meta)
    return data, meta


def _names(csv_list: str | None) -> list[str]:
    return [n.strip() for n in (csv_list or "").split(",") if n.strip()]


def fit(model: WeaveModel, data: dict, tasks: list[str], kinds: list[str], loss_fn: TaskLoss, args) -> tuple[int, list]:
    """Adam over the train split, one epoch after another until the validation mean stops improving for
    ``args.patience`` epochs; the model keeps the best epoch's weights (the last epoch's when the validation score
    was NaN throughout). -> (best epoch, history: loss and validation mean per epoch)."""
    rng = np.random.RandomState(args.seed)
    device = torch.device(args.device)
    train_mols, train_y, _, _ = data["train"]
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    best = (-np.inf, 0, None)
    history = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        te = time.time()
        total, count = 0.0, 0
        for batch in _batches(train_mols, rng, args.batch_size):
            a, p, g = collate([train_mols[i] for i in batch])
            loss = loss_fn(model(a.to(device), p.to(device), g.to(device)), torch.from_numpy(train_y[batch]).to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
            count += len(batch)
        val_mean = evaluate(data["valid"][1], predict(model, data["valid"][0]), tasks, kinds)["mean"]
        history.append({"epoch": epoch, "loss": total / count, "valid_mean": val_mean})
        print(f"epoch {epoch:3d} loss {total / count:.4f} valid mean {val_mean:.4f} ({time.time() - te:.1f}s)",
              flush=True)
        if val_mean > best[0]:
            best = (val_mean, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
        elif epoch - best[1] >= args.patience:
            print(f"early stop: no improvement for {args.patience} epochs", flush=True)
            break
    if best[2] is not None:
        model.load_state_dict(best[2])
    return best[1], history


def train(args) -> dict:
    """Train, evaluate and save a checkpoint with its card (``args``: from :func:`parse_args`)."""
    featurizer = Featurizer(kind=args.featurizer, max_distance=args.distance)
    if args.threads:
        torch.set_num_threads(args.threads)
    data, meta = _read_data(args, featurizer)
    return train_on_splits(data, meta, featurizer, args)


def train_on_splits(data: dict, meta: dict, featurizer: Featurizer, args) -> dict:
    """train() on splits made elsewhere (a benchmark's): ``data`` {train, valid, test: featurize_rows' tuple}, ``meta``
    as _read_data makes it, with the card's "split" and "command" if they differ from train()'s."""
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    tasks, kinds = meta["tasks"], meta["kinds"]
    print(", ".join(f"{k}: {len(v[0])} molecules, {len(v[3])} skipped (invalid SMILES)" for k, v in data.items()),
          flush=True)
    print("tasks: " + ", ".join(f"{t} ({k})" for t, k in zip(tasks, kinds)), flush=True)
    loss_fn = TaskLoss(data["train"][1], kinds, device)

    model = WeaveModel(featurizer.n_atom_features, featurizer.n_pair_features, len(tasks),
                       n_weave=args.weave, dense=args.dense, dropout=args.dropout)
    model.task_names = list(tasks)
    model.set_regression(loss_fn.regression.tolist(), loss_fn.mean.tolist(), loss_fn.std.tolist())
    model.to(device)
    t_start = time.time()
    best_epoch, history = fit(model, data, tasks, kinds, loss_fn, args)
    wall = time.time() - t_start
    model.cpu()  # the reported metrics are the saved float32 CPU model's
    results = {name: evaluate(data[name][1], predict(model, data[name][0]), tasks, kinds) for name in ("valid", "test")}
    print("test: " + ", ".join(f"{t} {'R²' if k == 'regression' else 'ROC-AUC'} {results['test']['per_task'][t]:.3f}"
                               for t, k in zip(tasks, kinds)))
    print(f"best epoch {best_epoch}; valid mean {results['valid']['mean']:.4f}; "
          f"test mean {results['test']['mean']:.4f}; training {wall:.0f}s", flush=True)

    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "name": Path(args.out).stem,
        "config": model.config,
        "featurizer": featurizer.to_dict(),
        "task_names": list(tasks),
        "task_kinds": list(kinds),
        "target_scaling": {"mean": model.target_mean.tolist(), "std": model.target_std.tolist()},
        "state_dict": {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()},
        "metrics": results,
        "data": {"dataset": meta.get("dataset", "Tox21 (MoleculeNet)"), "file": meta["file"], "rows": int(meta["rows"]),
                 "split": meta.get("split", "random 80/10/10 over CSV rows"), "split_seed": int(args.split_seed),
                 "counts": {k: int(len(v[0])) for k, v in data.items()},
                 "skipped": {k: int(len(v[3])) for k, v in data.items()}},
        "training": {"epochs_run": int(len(history)), "best_epoch": int(best_epoch),
                     "wall_seconds": float(round(wall, 1)),
                     "seed": int(args.seed),
                     "command": meta.get("command") or "python -m families.molecules.train " + shlex.join(args.argv),
                     "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
                     "torch": str(torch.__version__), "threads": int(torch.get_num_threads()),
                     "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"},
    }
    out = save_checkpoint(Path(args.out), ckpt, model_card(ckpt))
    out.with_suffix(".history.json").write_text(json.dumps(history, indent=1))
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) and {out.with_suffix('.md')}")
    return ckpt


def _metric_cell(metrics: dict, task: str) -> str:
    if task in metrics.get("r2", {}):
        return f"R² {metrics['r2'][task]:.3f}, RMSE {metrics['rmse'][task]:.3g}"
    return f"ROC-AUC {metrics['per_task'][task]:.3f}"


def model_card(ckpt: dict) -> str:
    cfg, data, tr, m = ckpt["config"], ckpt["data"], ckpt["training"], ckpt["metrics"]
    name = ckpt["name"]
    fz = ckpt["featurizer"]
    tasks = ckpt["task_names"]
    kinds = ckpt.get("task_kinds") or ["classification"] * len(tasks)
    tox21 = data["dataset"].startswith("Tox21")
    rows = "\n".join(f"| {t} | {k} | {_metric_cell(m['valid'], t)} | {_metric_cell(m['test'], t)} |"
                     for t, k in zip(tasks, kinds))
    n_regression = kinds.count("regression")
    if tox21:
        about_data = ("**The paper used PCBA (128 tasks), which is not available here; this model is trained on "
                      "Tox21 instead.**")
        mean_note = "(DeepChem's weave benchmark on a random Tox21 split: 0.820 test)"
    else:
        about_data = (f"Trained on the user's table `{data['file']}`: {len(tasks) - n_regression} classification "
                      f"task(s) (F = P(active)) and {n_regression} regression task(s) (F = the predicted value, in "
                      "the column's units).")
        mean_note = "(mean over tasks of ROC-AUC for classification and R² for regression)"
    return f"""# {name}: weave W{cfg['n_weave']}N{fz['max_distance']} on {data['dataset']}

Weave network (Kearnes et al. 2016) with {cfg['n_weave']} weave module(s), hidden size {cfg['hidden']}, atom pairs up
to graph distance {fz['max_distance']}, readout dense {cfg['n_graph_features']} + 11-bin Gaussian histogram summed over
atoms, dense layers {cfg['dense']} (dropout {cfg['dropout']}), two outputs per task ({len(tasks)} tasks): a 2-class
softmax for a classification task, their difference as the standardised value of a regression task.
Featurizer `{fz['kind']}` (version {fz['version']}, max {fz['max_atoms']} heavy atoms); \
see `families/molecules/featurize.py`.

{about_data}

## Data and split
- {data['dataset']}, file `{data['file']}` ({data['rows']} rows, {len(tasks)} tasks, \
blank = unknown label, masked in the loss).
- {data['split']}, split seed {data['split_seed']}: train {data['counts']['train']}, valid {data['counts']['valid']},
  test {data['counts']['test']} molecules (rows that RDKit cannot featurize dropped: {data['skipped']}).
- Salts and mixtures: the largest fragment is kept.

## Training
- Command: `{tr['command']}`
  (`--cache`, when given, is a git-ignored featurization cache made from the same CSV, so that a GPU machine
  without RDKit can train.)
- Adam; classification: cross-entropy, positives weighted n_neg/n_pos per task; regression: squared error of the
  standardised value. Early stopping on the validation mean score
  (patience {tr['args']['patience']}); best epoch {tr['best_epoch']} of {tr['epochs_run']} run, \
{tr['wall_seconds']:.0f} s
  (device {tr['device']}, {tr['threads']} CPU threads, torch {tr['torch']}), seed {tr['seed']}. The metrics below are
  those of the saved float32 weights evaluated on the CPU.

## Metrics (best epoch)
Mean: valid **{m['valid']['mean']:.3f}**, test **{m['test']['mean']:.3f}** {mean_note}.

| task | kind | valid | test |
| --- | --- | --- | --- |
{rows}

Load with `families.molecules.load_weave("{name}")` \
(`torch.load(weights_only=True)`: tensors and plain Python types only).
"""


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", default=None, help="your table (CSV); without it, Tox21 from the data directory")
    ap.add_argument("--smiles-column", default="smiles", help="the CSV's SMILES column")
    ap.add_argument("--tasks", default=None, help="comma-separated task columns of --csv")
    ap.add_argument("--regression", default=None,
                    help="comma-separated tasks to treat as regression although they hold only 0 and 1")
    ap.add_argument("--weave", type=int, default=2, choices=(1, 2), help="number of weave modules (W)")
    ap.add_argument("--distance", type=int, default=2, choices=(1, 2), help="max pair graph distance (N)")
    ap.add_argument("--featurizer", default="simple+", choices=("simple", "simple+"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-5)
    ap.add_argument("--dense", type=int, nargs="+", default=[256, 128])
    ap.add_argument("--dropout", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0, help="initialization and batch order")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--cache", default=None,
                    help="featurized splits file: written on the first run, read afterwards (then neither RDKit "
                         "work nor the CSV is needed, e.g. on a GPU machine without RDKit); keep it out of git")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    if (args.tasks or args.regression) and not args.csv:
        ap.error("--tasks and --regression describe the columns of a --csv table")
    if args.csv and not _names(args.tasks):
        ap.error("--csv needs --tasks: the comma-separated label columns to train on")
    args.argv = argv  # for the card's command line
    return args


def main(argv=None):
    try:
        train(parse_args(argv))
    except TableError as exc:
        raise SystemExit(f"error: {exc}") from exc


if __name__ == "__main__":
    main()
