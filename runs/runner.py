"""The dataset run's command line: explain a whole collection into a results store (runs.store), resumable, every
item exactly once.

    python -m runs --family molecules --input tox21_moleculenet.csv --model w2n2 \\
        --targets actives --out results/tox21-w2n2

The input is one of the family's collections (a photo folder, a molecule CSV or SDF, a text file), cut into shards
of --shard-size items (runs.driver). Target policies:

    predicted   the model's top class, task or next word
    truth       the ground truth (a photo folder's labels.csv, a text's next word)
    both        predicted and truth from one scan (one target where they agree)
    actives     every task a molecule is labelled active on (the input's label columns named like the tasks)
    next_word   the word that follows a text window
    contrast    a misclassified item's prediction rather than its truth (F = logit[predicted] - logit[truth], one
                row with rather_than = the truth); an item predicted right is skipped. Families with contrasts only

The scan's flags are the dashboard's settings (ScanSettings.add_arguments): --method and its options as
--option METHOD.NAME=VALUE, --rule, --steps, --tolerance; by default the adaptive rule to 1% completeness, each
item refined until its own attributions add up. Items of one shape are explained several per engine call
(--batch-items, runs.worker). The last line gives the rows' completeness errors and how many miss the tolerance
(runs.completeness). With --ray (a local Ray started for the run) or --ray-address (an existing cluster)
the shards go to Ray actors (runs.ray_workers).
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import time
from typing import Sequence

import torch

from families.collection import Collection
from families.registry import FAMILIES
from ig_core import METHODS, ScanSettings
from runs import completeness, store
from runs.driver import run
from runs.job import POLICIES
from runs.ray_workers import RayOptions


def collection_kinds() -> list[type[Collection]]:
    """Every kind of collection the families read, once each."""
    return list(dict.fromkeys(kind for family in FAMILIES.values() for kind in family.collections))


def input_options_parser() -> argparse.ArgumentParser:
    """The command-line options of every kind of collection (a SMILES column, a text's windows)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("inputs")
    for kind in collection_kinds():
        kind.add_arguments(group)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m runs", description=__doc__.split("\n\n")[0],
                                     parents=[input_options_parser()])
    parser.add_argument("--family", required=True,
                        choices=sorted(name for name, family in FAMILIES.items() if family.collections))
    parser.add_argument("--input", required=True, type=pathlib.Path,
                        help=f"what the family reads: {', '.join(kind.reads for kind in collection_kinds())}")
    parser.add_argument("--model", help="a model's name as the dashboard lists it, its short name, or a file "
                                        "(default: the family's first)")
    parser.add_argument("--targets", default="predicted", choices=POLICIES)
    parser.add_argument("--out", required=True, type=pathlib.Path, help="the run's folder")
    parser.add_argument("--method", default=ScanSettings.method, choices=METHODS)
    ScanSettings.add_arguments(parser)
    parser.add_argument("--shard-size", type=int, default=64, help="items per shard (default 64)")
    parser.add_argument("--batch-items", type=int, default=16,
                        help="items explained together in one engine call (default 16; 1: one at a time)")
    parser.add_argument("--limit", type=int, help="only the first LIMIT items")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: the GPU when there is one)")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's choice; 1 on a shared "
                                                     "machine, or one per worker)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    spread = parser.add_argument_group("Ray (optional: pip install -r requirements-ray.txt)")
    spread.add_argument("--ray", action="store_true", help="spread the shards over a local Ray started for the run")
    spread.add_argument("--ray-address", metavar="ADDR", help="spread them over an existing Ray cluster ('auto', "
                        "'ray://host:10001'); its nodes need this project and the input at the same paths")
    spread.add_argument("--workers", type=int, help="Ray actors, one model each (default: one per GPU of the "
                        "cluster, else its CPUs over --threads; a local Ray: 2)")
    return parser.parse_args(argv)


def job_of(args: argparse.Namespace) -> dict:
    """What decides the rows (a restart must repeat it): not the output folder, the device or the progress bar."""
    others = sorted(set(args.option) - {args.method})
    if others:
        raise ValueError(f"--option names {', '.join(others)}, but this run explains with {args.method}")
    if args.shard_size < 1 or args.batch_items < 1:
        raise ValueError("--shard-size and --batch-items must be at least 1")
    settings = ScanSettings.from_arguments(args, args.method)
    input_options = {name: getattr(args, name) for name in vars(input_options_parser().parse_args([]))}
    return {"family": args.family, "input": str(args.input.expanduser().resolve()), "model": args.model,
            "targets": args.targets, "settings": dataclasses.asdict(settings), "shard_size": args.shard_size,
            "batch_items": args.batch_items, "limit": args.limit, "input_options": input_options}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ray = (RayOptions(args.ray_address, args.workers, args.threads or 1)
           if args.ray or args.ray_address else None)
    try:
        start = time.perf_counter()
        manifest = run(job_of(args), args.out, ["python", "-m", "runs", *argv], args.device,
                       show_progress=not args.quiet, ray=ray)
    except (ValueError, store.RunConflict) as exc:  # FamilyError is a ValueError
        print(f"python -m runs: {exc}", file=sys.stderr)
        return 2
    counts, seconds = manifest["counts"], time.perf_counter() - start
    print(f"{args.out}: {counts['items']} items ({counts['explained']} explained, {counts['refused']} refused, "
          f"{counts['skipped']} skipped), {counts['rows']} rows; this session {seconds:.1f} s")
    rows = store.read(args.out, ["status", "relative_delta"]).to_pandas()
    print(completeness.summary(rows, completeness.tolerance_of(manifest)))
    return 0
