"""Evaluation of image attribution methods: AOPC, deletion and insertion curves, box localization (paper Section
2.5, Figure 5; Petsiuk et al. 2018), from the command line.

``python -m families.vision.evaluation ... --out bench/RESULTS-methods.md`` writes the Markdown results file (the
command, the date, the machine, the table per method, the settings); another --out name writes the per-photo CSV.
The evaluation itself is families.vision.photo_evaluation, its summaries families.vision.evaluation_report.
"""
from __future__ import annotations

import argparse
import datetime
import pathlib
import shlex
import sys
from typing import Sequence

from families.config import data_dir
from families.machine import machine_description
from families.trust import write_table
from families.vision.curves import INSERTION_STARTS
from families.vision.evaluation_report import format_summary, results_markdown, summarize, trust_rows
from families.vision.importance import IMPORTANCE_MODES
from families.vision.photo_evaluation import REFERENCES, default_folders, evaluate_photos, image_methods
from families.vision.photos import list_photos
from families.vision.torchvision_classifiers import load_classifier
from ig_core import AttributionEngine, ScanSettings


def _folder(name: pathlib.Path) -> pathlib.Path:
    """A folder as given, else under the data folder ($IG_DATA_DIR)."""
    return name if name.is_dir() else data_dir() / name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m families.vision.evaluation", description=__doc__.split("\n")[0])
    parser.add_argument("--folder", action="append", type=pathlib.Path, default=[],
                        help="an image folder (labels.csv / boxes.csv), as a path or a name in $IG_DATA_DIR; "
                             "repeatable")
    parser.add_argument("--folders", nargs="*", type=pathlib.Path, default=None,
                        help="image folders; default (without --folder): $IG_DATA_DIR imagenet_samples and "
                             "imagenet_val_boxes")
    parser.add_argument("--limit", type=int, default=250, help="at most this many photos from each folder")
    parser.add_argument("--methods", nargs="+", default=["all"],
                        help="registry names of the methods, or all (every registered method)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("vision_eval.csv"),
                        help="per-photo CSV, or with a .md name the Markdown results file")
    parser.add_argument("--per-method", type=pathlib.Path, default=None,
                        help="optional CSV, one row per photo and method")
    parser.add_argument("--curves", type=pathlib.Path, default=None, help="optional CSV of the per-photo curves")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--arch", default="mobilenet_v2", help="torchvision classifier name")
    parser.add_argument("--weights", default=None,
                        help="state_dict file (default: families.vision.weights.resolve_weights' lookup)")
    ScanSettings.add_arguments(parser)  # --option METHOD.NAME=VALUE: a method's option over the evaluation's defaults
    parser.add_argument("--batch", type=int, default=1, help="photos per engine scan (adaptive: they share a grid)")
    parser.add_argument("--target", default="predicted", choices=["predicted", "label"])
    parser.add_argument("--pixels-per-step", type=int, default=100)
    parser.add_argument("--ablation-steps", type=int, default=50)
    parser.add_argument("--region", type=int, default=1,
                        help="ablate r x r regions (Samek: 9 with --pixels-per-step 81 --ablation-steps 100); "
                             "1 = pixels")
    parser.add_argument("--fill", default="black", choices=["black", "noise"])
    parser.add_argument("--curve-steps", type=int, default=16, help="steps of the deletion and insertion curves")
    parser.add_argument("--insertion-start", default="blur", choices=INSERTION_STARTS)
    parser.add_argument("--references", type=int, default=REFERENCES,
                        help="other photos in the reference set of expected gradients")
    parser.add_argument("--importance", default="abs", choices=IMPORTANCE_MODES,
                        help="pixel ranking: abs = Eq. 1 (the paper), sum = signed channel sum (most positive first)")
    parser.add_argument("--no-random", action="store_true", help="skip the random-order reference curve")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    methods = image_methods() if args.methods == ["all"] else args.methods
    engine = AttributionEngine(device=args.device)
    classifier = load_classifier(args.arch, args.weights, device=engine.device)
    folders = [_folder(name) for name in args.folder] + list(args.folders or ([] if args.folder else default_folders()))
    photos = [photo for folder in folders for photo in list_photos(folder, args.limit)]
    print(f"{len(photos)} photos ({sum(bool(photo.boxes) for photo in photos)} with boxes) on {engine.device_name}; "
          f"methods: {', '.join(methods)}", file=sys.stderr)
    if not any(photo.boxes for photo in photos):
        print("no photo has a box: localization has no data (add --folder imagenet_val_boxes)", file=sys.stderr)
    last = [-1]

    def progress(fraction):
        percent = int(100 * fraction)
        if percent // 5 > last[0]:  # a line every 5%
            last[0] = percent // 5
            print(f"  {percent}%", file=sys.stderr, flush=True)

    result = evaluate_photos(classifier, photos, engine, methods=methods, options=args.option,
                             scan=ScanSettings.from_arguments(args), batch_size=args.batch, target=args.target,
                             pixels_per_step=args.pixels_per_step, ablation_steps=args.ablation_steps,
                             region=args.region, fill=args.fill, curve_steps=args.curve_steps,
                             insertion_start=args.insertion_start, references=args.references,
                             include_random=not args.no_random, importance_mode=args.importance, seed=args.seed,
                             progress=progress, log=lambda text: print(text, file=sys.stderr, flush=True))
    for row in result.skipped.itertuples():
        print(f"skipped {row.file}: {row.reason}", file=sys.stderr)
    command = "python -m families.vision.evaluation " + shlex.join(argv)
    if args.out.suffix == ".md":
        args.out.write_text(results_markdown(result, command, machine_description(engine.device),
                                             datetime.date.today().isoformat()))
    else:
        result.table.to_csv(args.out, index=False)
    if args.per_method:
        result.per_method.to_csv(args.per_method, index=False)
    print(f"trust table: {write_table('vision', args.arch, 'evaluation', trust_rows(result.per_method), command)}",
          file=sys.stderr)
    if args.curves:
        result.curves.to_csv(args.curves, index=False)
    print(format_summary(summarize(result.table), result.per_method))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
