"""Measurements for the molecules page: completeness at default settings and the W1N2 anomaly.

    python -m families.molecules.evaluate [--n 100] [--groups 20] [--checkpoints DIR] [--seed 0]

1. Completeness: integrated gradients of the log-odds of active for `--n` Tox21 actives at the default scan settings
   (ig_core.ScanSettings()). Across tasks: the (molecule, task) pairs labelled active are shuffled with
   the seed, one task per molecule (its first active task in that order), molecules distinct. Prints the
   median and 90th percentile of the relative completeness error |sum of attributions - (F(x) - F(b))| /
   |F(x) - F(b)| (b: the family's default baseline, as on the page) and of the steps used, and the Section 3.1
   accounting (shares of F(x) - F(b) from atoms, bonded pairs and non-bonded pairs), for W2N2.
2. Identical attributions: on the first `--groups` of those molecules, the atom groups with identical
   scores (5 digits of the largest |atom score|) under W1N2 and W2N2, and how many of them the molecule's
   symmetry does not explain (the paper's W1N2 anomaly).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from families.molecules import CHECKPOINT_DIR, load_weave
from families.molecules.attribution import explain_molecule
from families.molecules.explanation import PERCENT_OF_DIFFERENCE
from families.molecules.featurize import MoleculeError
from families.molecules.identical_attributions import anomaly_counts, identical_attribution_groups
from families.molecules.tox21 import tox21_frame
from ig_core import AttributionEngine, ScanSettings


def active_pairs(n: int, seed: int, tasks: list[str]) -> list[tuple[str, str, int]]:
    """n distinct molecules, each with one task it is labelled active on: (smiles, task, row)."""
    df = tox21_frame()
    pairs = [(int(r), t) for t in tasks for r in np.flatnonzero(df[t].to_numpy() == 1)]
    order = np.random.RandomState(seed).permutation(len(pairs))
    seen, out = set(), []
    for k in order:
        row, task = pairs[k]
        if row in seen:
            continue
        seen.add(row)
        out.append((str(df.smiles.iloc[row]), task, row))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="actives for the completeness figures")
    ap.add_argument("--groups", type=int, default=20, help="molecules for the identical-attribution counts")
    ap.add_argument("--checkpoints", default=str(CHECKPOINT_DIR), help="folder with w2n2.pt and w1n2.pt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)

    folder = Path(args.checkpoints)
    w2 = load_weave(folder / "w2n2.pt")
    w1 = load_weave(folder / "w1n2.pt") if (folder / "w1n2.pt").exists() else None
    engine = AttributionEngine(device=args.device, cache_size=0)
    settings = ScanSettings()
    print(f"device {engine.device_name}; settings {settings}")
    candidates = active_pairs(args.n * 2, args.seed, list(w2.task_names))

    rel, steps, shares, used, t0 = [], [], [], [], time.time()
    for smiles, task, row in candidates:
        if len(used) >= args.n:
            break
        try:
            e = explain_molecule(engine, w2, smiles, task, settings)
        except MoleculeError:
            continue
        used.append((smiles, task, row))
        rel.append(e.task_relative_delta)
        steps.append(e.steps_used)
        acc = e.accounting().set_index("part")[PERCENT_OF_DIFFERENCE]
        shares.append([acc["atoms"], acc["bonded pairs"], acc["non-bonded pairs"]])
    wall = time.time() - t0
    rel, steps, shares = np.array(rel), np.array(steps), np.array(shares)
    tasks_used = sorted({t for _, t, _ in used})
    print(f"\n1. Completeness, W2N2, {len(used)} Tox21 actives across {len(tasks_used)} tasks "
          f"(one active task per molecule), default settings: {wall:.0f} s ({wall / max(len(used), 1):.2f} s/molecule)")
    print(f"   relative error: median {np.median(rel):.4%}, 90th pct {np.percentile(rel, 90):.4%}, "
          f"max {rel.max():.4%}; within tolerance {settings.tolerance:g}: {np.mean(rel <= settings.tolerance):.0%}")
    print(f"   steps used: median {np.median(steps):.0f}, 90th pct {np.percentile(steps, 90):.0f}, max {steps.max()}")
    med = np.nanmedian(shares, axis=0)  # NaN: a molecule whose attributions explain little of F(x) - F(b)
    print(f"   accounting (median % of F(x) - F(b), {np.isnan(shares[:, 0]).sum()} molecules without shares): "
          f"atoms {med[0]:.0f}%, bonded pairs {med[1]:.0f}%, non-bonded pairs {med[2]:.0f}% "
          "(paper, one PCBA molecule from all-zero features: bonded 46%, non-bonded -3%)")

    result = {"n": len(used), "median_rel": float(np.median(rel)), "p90_rel": float(np.percentile(rel, 90)),
              "median_steps": float(np.median(steps)), "p90_steps": float(np.percentile(steps, 90))}
    if w1 is None:
        print("\n2. w1n2.pt not found: no identical-attribution comparison")
        return result
    print(f"\n2. Identical atom scores (5 digits of the largest), first {args.groups} of those molecules:")
    totals = {}
    for name, model in (("W1N2", w1), ("W2N2", w2)):
        counts = []
        for smiles, task, _ in used[: args.groups]:
            e = explain_molecule(engine, model, smiles, task, settings)
            counts.append(anomaly_counts(identical_attribution_groups(e, 5)))
        total = {k: sum(c[k] for c in counts) for k in counts[0]}
        total["molecules with an unexplained group"] = sum(c["groups not explained by symmetry"] > 0 for c in counts)
        totals[name] = total
        print(f"   {name}: " + ", ".join(f"{k} {v}" for k, v in total.items()))
    result["groups"] = totals
    return result


if __name__ == "__main__":
    main()
