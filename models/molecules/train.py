"""Train the weave model on Tox21 (MoleculeNet, 7,831 molecules, 12 tasks).

    python -m models.molecules.train --weave 2 --out models/molecules/checkpoints/w2n2.pt
    python -m models.molecules.train --weave 1 --out models/molecules/checkpoints/w1n2.pt

Data: $IG_DATA_DIR/molecules/tox21_moleculenet.csv (or the MoleculeNet tox21.csv.gz, downloaded into
the data directory when neither file is there and the machine has internet).
Split: random 80/10/10 over the CSV rows with a fixed seed (default 0); rows RDKit cannot featurize
(8 invalid SMILES in Tox21) are dropped from their split. Loss: per-task 2-class cross-entropy,
masked where the label is blank, positives weighted n_negative/n_positive per task (train split).
Early stopping on the validation mean ROC-AUC; the best epoch is evaluated on the test split.
The paper used PCBA (128 tasks), which is not available here; Tox21 is the substitute.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.data import DataNotFound, data_dir, download

from . import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION
from .featurize import Featurizer, MoleculeError
from .weave import WeaveModel, collate, predict_batched

TOX21_URL = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/tox21.csv.gz"
TOX21_TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
               "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]


# -- data --------------------------------------------------------------------------------------------

def tox21_path(allow_download: bool = True) -> Path:
    folder = data_dir() / "molecules"
    # tox21_moleculenet.csv: the shared data's copy; .csv.gz: what the download below saves.
    # (DeepChem's older tox21.csv.gz, 8,014 rows, is a different file and is not used.)
    for name in ("tox21_moleculenet.csv", "tox21_moleculenet.csv.gz"):
        if (folder / name).exists():
            return folder / name
    if not allow_download:
        raise DataNotFound(f"Tox21 is not in {folder}; set IG_DATA_DIR to a folder with molecules/tox21_moleculenet.csv")
    return download(TOX21_URL, folder / "tox21_moleculenet.csv.gz")


def load_tox21(path: Path | None = None):
    import pandas as pd  # here, so that training from a --cache needs neither pandas nor RDKit

    df = pd.read_csv(path or tox21_path())
    missing = [t for t in TOX21_TASKS + ["smiles"] if t not in df.columns]
    if missing:
        raise DataNotFound(f"{path} is not the MoleculeNet Tox21 file (missing columns {missing})")
    return df[["smiles"] + TOX21_TASKS]


def split_rows(n_rows: int, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    perm = np.random.RandomState(seed).permutation(n_rows)
    n_train = int(round(fractions[0] * n_rows))
    n_valid = int(round(fractions[1] * n_rows))
    return {"train": np.sort(perm[:n_train]), "valid": np.sort(perm[n_train:n_train + n_valid]),
            "test": np.sort(perm[n_train + n_valid:])}


def featurize_rows(df, rows: np.ndarray, featurizer: Featurizer):
    """-> (molecules, labels float [n, T] with NaN for unknown, kept row numbers, skipped [(row, reason)])."""
    mols, keep, skipped = [], [], []
    for r in rows:
        try:
            mols.append(featurizer.from_smiles(df.smiles.iloc[r]))
            keep.append(r)
        except MoleculeError as exc:
            skipped.append((int(r), str(exc)))
    labels = df[TOX21_TASKS].iloc[keep].to_numpy(dtype=np.float32)
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


def predict(model: WeaveModel, mols, batch_size: int = 128) -> np.ndarray:
    """[n, tasks] probabilities of 'active' in eval mode (the model is left in eval mode)."""
    model.eval()
    return predict_batched(model, mols, batch_size)


# -- training ----------------------------------------------------------------------------------------

def _batches(mols, rng: np.random.RandomState, batch_size: int):
    """Random batches. (Not grouped by size: batch normalization needs batches that look like the data.)"""
    idx = rng.permutation(len(mols))
    return [idx[k:k + batch_size].tolist() for k in range(0, len(idx), batch_size)]


def train(args) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    featurizer = Featurizer(kind=args.featurizer, max_distance=args.distance)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.exists():
        data, meta = load_feature_cache(cache)
        if meta["featurizer"] != featurizer.to_dict() or meta["split_seed"] != args.split_seed:
            raise SystemExit(f"{cache} was made with other settings ({meta}); delete it or pick another path")
        print(f"loaded featurized splits from {cache}", flush=True)
    else:
        path = tox21_path()
        df = load_tox21(path)
        split = split_rows(len(df), seed=args.split_seed)
        t0 = time.time()
        data = {name: featurize_rows(df, rows, featurizer) for name, rows in split.items()}
        meta = {"featurizer": featurizer.to_dict(), "split_seed": int(args.split_seed), "file": path.name,
                "rows": int(len(df))}
        print(f"featurized {len(df)} rows in {time.time() - t0:.1f}s", flush=True)
        if cache is not None:
            save_feature_cache(cache, data, meta)
    print(", ".join(f"{k}: {len(v[0])} molecules, {len(v[3])} skipped" for k, v in data.items()), flush=True)
    train_mols, train_y, _, _ = data["train"]
    known = ~np.isnan(train_y)
    pos = np.nansum(train_y, 0)
    neg = known.sum(0) - pos
    pos_weight = torch.tensor(neg / np.maximum(pos, 1), dtype=torch.float32, device=device)

    model = WeaveModel(featurizer.n_atom_features, featurizer.n_pair_features, len(TOX21_TASKS),
                       n_weave=args.weave, dense=args.dense, dropout=args.dropout)
    model.task_names = list(TOX21_TASKS)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    best = (-1.0, 0, None)
    history = []
    t_start = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        te = time.time()
        total, count = 0.0, 0
        for batch in _batches(train_mols, rng, args.batch_size):
            a, p, g = collate([train_mols[i] for i in batch])
            a, p, g = a.to(device), p.to(device), g.to(device)
            y = torch.from_numpy(train_y[batch]).to(device)
            mask = ~torch.isnan(y)
            target = torch.nan_to_num(y).long()
            w = mask.float() * torch.where(target == 1, pos_weight, torch.ones_like(pos_weight))
            logits = model(a, p, g)
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 2), target.reshape(-1), reduction="none")
            loss = (ce * w.reshape(-1)).sum() / mask.sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
            count += len(batch)
        val_aucs = task_aucs(data["valid"][1], predict(model, data["valid"][0]))
        val_mean = float(np.nanmean(val_aucs))
        history.append({"epoch": epoch, "loss": total / count, "valid_mean_auc": val_mean})
        print(f"epoch {epoch:3d} loss {total / count:.4f} valid mean AUC {val_mean:.4f} ({time.time() - te:.1f}s)",
              flush=True)
        if val_mean > best[0]:
            best = (val_mean, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
        elif epoch - best[1] >= args.patience:
            print(f"early stop: no improvement for {args.patience} epochs", flush=True)
            break
    wall = time.time() - t_start
    model.load_state_dict(best[2])
    model.cpu()  # the reported metrics are the saved float32 CPU model's
    results = {}
    for name in ("valid", "test"):
        aucs = task_aucs(data[name][1], predict(model, data[name][0]))
        results[name] = {"per_task": dict(zip(TOX21_TASKS, aucs)), "mean": float(np.nanmean(aucs))}
    print("test ROC-AUC per task: " + ", ".join(f"{t} {v:.3f}" for t, v in results["test"]["per_task"].items()))
    print(f"best epoch {best[1]}; valid mean {results['valid']['mean']:.4f}; test mean {results['test']['mean']:.4f}; "
          f"training {wall:.0f}s", flush=True)

    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "name": Path(args.out).stem,
        "config": model.config,
        "featurizer": featurizer.to_dict(),
        "task_names": list(TOX21_TASKS),
        "state_dict": {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()},
        "metrics": results,
        "data": {"dataset": "Tox21 (MoleculeNet)", "file": meta["file"], "rows": int(meta["rows"]),
                 "split": "random 80/10/10 over CSV rows", "split_seed": int(args.split_seed),
                 "counts": {k: int(len(v[0])) for k, v in data.items()},
                 "skipped": {k: int(len(v[3])) for k, v in data.items()}},
        "training": {"epochs_run": int(len(history)), "best_epoch": int(best[1]), "wall_seconds": float(round(wall, 1)),
                     "seed": int(args.seed), "command": "python -m models.molecules.train " + " ".join(sys.argv[1:]),
                     "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
                     "torch": str(torch.__version__), "threads": int(torch.get_num_threads()),
                     "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)
    out.with_suffix(".md").write_text(model_card(ckpt))
    out.with_suffix(".history.json").write_text(json.dumps(history, indent=1))
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) and {out.with_suffix('.md')}")
    return ckpt


def model_card(ckpt: dict) -> str:
    cfg, data, tr, m = ckpt["config"], ckpt["data"], ckpt["training"], ckpt["metrics"]
    name = ckpt["name"]
    fz = ckpt["featurizer"]
    rows = "\n".join(f"| {t} | {m['valid']['per_task'][t]:.3f} | {m['test']['per_task'][t]:.3f} |"
                     for t in ckpt["task_names"])
    return f"""# {name}: weave W{cfg['n_weave']}N{fz['max_distance']} on Tox21

Weave network (Kearnes et al. 2016) with {cfg['n_weave']} weave module(s), hidden size {cfg['hidden']}, atom pairs up
to graph distance {fz['max_distance']}, readout dense {cfg['n_graph_features']} + 11-bin Gaussian histogram summed over
atoms, dense layers {cfg['dense']} (dropout {cfg['dropout']}), one 2-class softmax per task ({len(ckpt['task_names'])} tasks).
Featurizer `{fz['kind']}` (version {fz['version']}, max {fz['max_atoms']} heavy atoms); see `models/molecules/featurize.py`.

**The paper used PCBA (128 tasks), which is not available here; this model is trained on Tox21 instead.**

## Data and split
- {data['dataset']}, file `{data['file']}` ({data['rows']} rows, 12 tasks, blank = unknown label, masked in the loss).
- {data['split']}, split seed {data['split_seed']}: train {data['counts']['train']}, valid {data['counts']['valid']},
  test {data['counts']['test']} molecules (rows that RDKit cannot featurize dropped: {data['skipped']}).
- Salts and mixtures: the largest fragment is kept.

## Training
- Command: `{tr['command']}`
  (`--cache` is a git-ignored featurization cache made from the same CSV, so that a GPU machine without RDKit
  can train; `python -m models.molecules.train --weave {cfg['n_weave']} --out <file>` does the same on a CPU, slower.)
- Adam, positives weighted n_neg/n_pos per task, early stopping on validation mean ROC-AUC
  (patience {tr['args']['patience']}); best epoch {tr['best_epoch']} of {tr['epochs_run']} run, {tr['wall_seconds']:.0f} s
  (device {tr['device']}, {tr['threads']} CPU threads, torch {tr['torch']}), seed {tr['seed']}. The metrics below are
  those of the saved float32 weights evaluated on the CPU.

## ROC-AUC (best epoch)
Mean: valid **{m['valid']['mean']:.3f}**, test **{m['test']['mean']:.3f}** (DeepChem's weave benchmark on a random
Tox21 split: 0.820 test).

| task | valid | test |
| --- | --- | --- |
{rows}

Load with `models.molecules.load_weave("{name}")` (`torch.load(weights_only=True)`: tensors and plain Python types only).
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    args = ap.parse_args(argv)
    train(args)


if __name__ == "__main__":
    main()
