"""Explain a whole collection into a results store (models.results_store): resumable, every item exactly once.

    python -m models.run_dataset --family molecules --input tox21_moleculenet.csv --model w2n2 \\
        --targets actives --rule gauss-legendre --steps 16 --out runs/tox21-w2n2

The items of the input (models.dataset_inputs) are cut into shards of --shard-size items in input order; a shard
is explained whole and written atomically, so a run killed at any moment and started again with the same command
computes only the shards that are missing. The folder remembers its run (manifest.json): another command into it
is refused. Target policies:

    predicted   the model's top class, task or next word
    truth       the ground truth (a photo folder's labels.csv, a text's next word)
    both        predicted and truth from one scan (one target where they agree)
    actives     every task a molecule is labelled active on (the input's label columns named like the tasks)
    next_word   the word that follows a text window

Items the family refuses (an unreadable photo, an invalid SMILES) are stored with the reason and skipped.

The work is split so that another backend can spread it: a `Worker` is built from the job alone, holds one model
and engine and turns a shard's items into rows (`Worker.shard_rows`); only the driver writes shards. Workers in
other processes (actors, one per GPU) can map `shard_rows` over the pending shards, the driver writing each shard
as it returns.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import fcntl
import json
import pathlib
import platform
import sys
import time
from pathlib import PurePath
from typing import Callable, Sequence

import numpy as np
import pyarrow
import torch

from ig_core import AttributionEngine, ScanSettings
from ig_core.evaluator import OUTPUT_TRANSFORMS

from . import results_store as store
from .dataset_inputs import Collection, Item, TextWindows, open_collection
from .families import FAMILIES
from .family import Explanation, FamilyError, ModelFamily, ModelSource

POLICIES = ("predicted", "truth", "both", "actives", "next_word")
PROBABILITY_OUTPUTS = ("softmax", "sigmoid")  # F is a probability: the row's `probability` column


class LeanEngine:
    """The engine as a dataset run calls it: no interior gradients at probe alphas (a stored row has none, and a
    photo's ten probes would double its path points), on an engine without a cache (every item comes once)."""

    def __init__(self, engine: AttributionEngine):
        self.engine = engine

    def attribute(self, *args, **options):
        return self.engine.attribute(*args, **{**options, "probe_alphas": (), "keep_all_gradients": False})

    def __getattr__(self, name):
        return getattr(self.engine, name)


def find_source(family: ModelFamily, name: str | None) -> ModelSource:
    """A model by the name the dashboard lists ("shipped: w2n2"), its short name ("w2n2", "mobilenet_v2",
    "small.pt"), or a file's path; the family's first model when none is named."""
    sources = family.sources()
    if not name:
        if not sources:
            raise FamilyError(f"the {family.name} family has no model here: name one with --model")
        return sources[0]
    for source in sources:
        short = source.name.split(": ", 1)[-1].removesuffix(" (default)")
        if name in (source.name, short, PurePath(short).stem):
            return source
    path = pathlib.Path(name)
    if path.is_file():
        return ModelSource(path.name, path=path.resolve())
    raise FamilyError(f"no {family.name} model named {name!r}; choose one of "
                      f"{', '.join(repr(s.name) for s in sources) or '(none)'} or give a model file's path")


def settings_of(job: dict) -> ScanSettings:
    options = dict(job["settings"])
    return ScanSettings(**{**options, "method_options": tuple(tuple(pair) for pair in options["method_options"])})


def collection_of(job: dict) -> Collection:
    return open_collection(job["family"], pathlib.Path(job["input"]), job["smiles_column"], job["window"],
                           job["stride"], job["text_format"])


def check_policy(policy: str, family: str, collection: Collection) -> None:
    """Refuse a policy the collection cannot serve before any model is loaded."""
    if policy == "actives" and not collection.multi_label:
        raise ValueError(f"--targets actives needs per-task labels (a molecule CSV or SDF); a {collection.kind} "
                         "has none")
    if policy in ("truth", "both") and collection.multi_label:
        raise ValueError(f"a {collection.kind} has one label per task, not one true target: use --targets actives")
    if policy == "next_word" and family != "language":
        raise ValueError("--targets next_word is for text windows (--family language)")


def choose_targets(policy: str, predicted: int, truth: int | None, actives: Sequence[int]) -> list[tuple[int, str]]:
    """(target, why) pairs under the policy; none when the item has no such target."""
    if policy == "predicted":
        return [(predicted, "predicted")]
    if policy == "actives":
        return [(t, "active") for t in actives]
    if truth is None:
        return []
    if policy in ("truth", "next_word"):
        return [(truth, policy)]
    return [(predicted, "predicted+truth")] if predicted == truth else [(predicted, "predicted"), (truth, "truth")]


def target_slice(result, t: int):
    """The engine's result for its t-th target alone (arrays [K, N, T] and [N, T], tensors [T, N, ...])."""
    s = slice(t, t + 1)
    along_path = {name: getattr(result, name)[:, :, s]
                  for name in ("scores", "raw_scores", "path_derivative", "grad_abs_mean", "grad_sum")}
    per_example = {name: getattr(result, name)[:, s]
                   for name in ("score_input", "score_baseline", "delta", "relative_delta", "targets")}
    nothing = None if result.nothing_to_attribute is None else result.nothing_to_attribute[:, s]
    return dataclasses.replace(
        result, attributions_per_target=tuple(x[s] for x in result.attributions_per_target),
        interior_gradients={a: tuple(g[s] for g in gs) for a, gs in result.interior_gradients.items()},
        nothing_to_attribute=nothing, **along_path, **per_example)


@dataclasses.dataclass
class Prepared:
    """An item read and given its targets, waiting for its scan."""

    item: Item
    parsed: object
    targets: list[tuple[int, str]]
    predicted: int
    probabilities: np.ndarray | None
    seconds_parse: float


class Worker:
    """One model and engine: turns a shard's items into the store's rows. The unit a Ray actor would hold."""

    def __init__(self, job: dict, device: str | None = None):
        self.job, self.policy = job, job["targets"]
        self.family = FAMILIES[job["family"]]
        self.collection = collection_of(job)
        self.settings = settings_of(job)
        self.engine = LeanEngine(AttributionEngine(device, cache_size=0))
        self.model = self.family.load(find_source(self.family, job["model"]), self.engine.device)
        self.common = {"model_key": self.model.key, "method": self.settings.method,
                       "settings": json.dumps(job["settings"], sort_keys=True)}

    def shard_rows(self, items: Sequence[Item], done: Callable[[int], object] = lambda n: None) -> list[dict]:
        """The rows of these items in item order; done(1) after each item."""
        rows, ready = [], []
        for item in items:
            prepared = self.prepare(item)
            if isinstance(prepared, dict):
                rows.append(prepared)
                done(1)
            else:
                ready.append(prepared)
        for group in self.batches(ready):
            rows += self.explain(group)
            done(len(group))
        return sorted(rows, key=lambda row: row["item_index"])  # stable: an item's targets stay in order

    def batches(self, ready: list[Prepared]) -> list[list[Prepared]]:
        """Items explained together: one per engine call for now. Photos of one size and text windows of one
        length could share a call (inputs stacked, per-example targets [N, T], results cut per example with
        their index n as target_slice cuts targets); molecules of different sizes cannot."""
        return [[prepared] for prepared in ready]

    def row(self, item: Item, **values) -> dict:
        return {"item_index": item.index, "item_id": item.id, "source": item.source, **self.common, **values}

    def prepare(self, item: Item) -> Prepared | dict:
        """The item parsed, predicted and given its targets; or its row when it is refused or has no target."""
        start = time.perf_counter()
        try:
            parsed = self.collection.parse(self.family, self.model, item)
            predicted, probabilities = self.predict(parsed)
        except FamilyError as exc:
            return self.row(item, status="refused", error=str(exc), seconds_parse=time.perf_counter() - start)
        truth = self.collection.truth_target(self.model, item)
        if truth is not None and not 0 <= truth < len(self.model.target_names):
            truth = None  # a label the model has no class for
        targets = choose_targets(self.policy, predicted, truth, self.collection.active_targets(self.model, item))
        seconds = time.perf_counter() - start
        if not targets:
            reason = ("active on no task of the model" if self.policy == "actives"
                      else "no ground truth the model can explain")
            return self.row(item, status="skipped", error=reason, predicted=predicted, seconds_parse=seconds)
        return Prepared(item, parsed, targets, predicted, probabilities, seconds)

    def predict(self, parsed) -> tuple[int, np.ndarray | None]:
        """The top target and, where F is a probability, every target's probability at the input."""
        request = self.family.engine_input(self.model, parsed)
        with torch.no_grad():
            raw = request.forward(*(x.to(self.engine.device) for x in request.inputs))[0].float()
        probabilities = (OUTPUT_TRANSFORMS[request.output](raw).cpu().numpy()
                         if request.output in PROBABILITY_OUTPUTS else None)
        return int(raw.argmax()), probabilities

    def explain(self, group: list[Prepared]) -> list[dict]:
        (prepared,) = group
        item, targets = prepared.item, [target for target, _ in prepared.targets]
        start = time.perf_counter()
        try:
            explanation = self.family.explain(self.engine, self.model, prepared.parsed, targets, self.settings)
        except FamilyError as exc:
            return [self.row(item, status="refused", error=str(exc), predicted=prepared.predicted,
                             seconds_parse=prepared.seconds_parse)]
        seconds_scan = time.perf_counter() - start
        truth = self.collection.truth_target(self.model, item)
        rows = []
        for t, (one, k) in enumerate(self.per_target(prepared, explanation)):
            target, chosen_as = prepared.targets[t]
            record = one.records(item.id, item.source)[k]
            probability = None if prepared.probabilities is None else float(prepared.probabilities[target])
            rows.append(self.row(
                item, status="explained", rule=record["rule"], target=target, target_name=record["target_name"],
                chosen_as=chosen_as, predicted=prepared.predicted, truth=truth,
                target_truth=self.collection.target_truth(self.model, item, target), probability=probability,
                **{name: record[name] for name in ("score_input", "score_baseline", "delta", "relative_delta")},
                nothing_to_attribute=bool(one.nothing_per_target()[k]), nonfinite=bool(one.attribution.nonfinite),
                points_evaluated=record["points_evaluated"], **domain_scores(record["scores"]),
                seconds_parse=prepared.seconds_parse, seconds_scan=seconds_scan))
        return rows

    def per_target(self, prepared: Prepared, explanation: Explanation) -> list[tuple[Explanation, int]]:
        """(explanation, its index of the target) per target. A family whose explanation covers one target
        (molecules: one task) gets one explanation per target, cut from the same scan."""
        targets = [target for target, _ in prepared.targets]
        if explanation.targets == targets:
            return [(explanation, t) for t in range(len(targets))]
        return [(self.family.explanation(self.model, prepared.parsed, [target],
                                         target_slice(explanation.attribution, t), self.settings), 0)
                for t, target in enumerate(targets)]


def domain_scores(scores) -> dict:
    """Named scores (atoms, bonds, words) as two lists; a pixel map [H, W] as scaled float16 bytes."""
    if isinstance(scores, dict):
        return {"score_names": list(scores), "scores": [float(v) for v in scores.values()]}
    return store.encode_pixel_map(scores)


def hold_lock(folder: pathlib.Path):
    """An exclusive lock on the folder for the run's life (the system drops it when the process dies)."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise store.RunConflict(f"another run is writing to {folder} now") from None
    return handle


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run(job: dict, out: pathlib.Path, command: Sequence[str], device: str | None = None,
        show_progress: bool = True) -> dict:
    """Explain every item of the job's input into `out` (continuing the run there); returns the manifest."""
    from tqdm import tqdm

    job = json.loads(json.dumps(job))  # as the manifest holds it, so a restart compares like with like
    out = pathlib.Path(out)
    lock = hold_lock(out)
    try:
        collection = collection_of(job)
        check_policy(job["targets"], job["family"], collection)
        items = collection.items()[:job["limit"]]
        size = job["shard_size"]
        shards = [items[k:k + size] for k in range(0, len(items), size)]
        worker = Worker(job, device)
        manifest = store.open_run(out, {
            "format": store.FORMAT, "version": store.VERSION, "job": job, "model_key": worker.model.key,
            "input_fingerprint": collection.fingerprint(), "command": list(command), "items": len(items),
            "shards": len(shards), "status": "running", "created": now(),
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "pyarrow": pyarrow.__version__}}, identity=("job", "model_key", "input_fingerprint"))
        done = store.finished_shards(out)
        pending = [k for k in range(len(shards)) if k not in done]
        start = time.perf_counter()
        with tqdm(total=len(items), initial=len(items) - sum(len(shards[k]) for k in pending), unit="item",
                  desc=job["family"], disable=not show_progress, mininterval=1.0) as bar:
            for k in pending:
                store.write_shard(out, k, worker.shard_rows(shards[k], bar.update))
        manifest.update(status="complete", counts=store.counts(out), finished=now(),
                        seconds_last_session=round(time.perf_counter() - start, 3))
        store.write_manifest(out, manifest)
        return manifest
    finally:
        lock.close()


def option_value(text: str):
    """A --method-option value: a Python literal (3, 0.5, True, 'x') or else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m models.run_dataset", description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", required=True, choices=sorted(set(FAMILIES) - {"tabular"}))
    parser.add_argument("--input", required=True, type=pathlib.Path,
                        help="a photo folder (labels.csv optional), a molecule .csv/.sdf, a text file")
    parser.add_argument("--model", help="a model's name as the dashboard lists it, its short name, or a file "
                                        "(default: the family's first)")
    parser.add_argument("--targets", default="predicted", choices=POLICIES)
    parser.add_argument("--out", required=True, type=pathlib.Path, help="the run's folder")
    defaults = ScanSettings()
    parser.add_argument("--method", default=defaults.method)
    parser.add_argument("--method-option", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--rule", default=defaults.rule)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--tolerance", type=float, default=defaults.tolerance)
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps)
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch)
    parser.add_argument("--amp", default=defaults.amp, choices=["bf16", "fp16"])
    parser.add_argument("--shard-size", type=int, default=64, help="items per shard (default 64)")
    parser.add_argument("--limit", type=int, help="only the first LIMIT items")
    parser.add_argument("--smiles-column", help="a molecule CSV's SMILES column (default: the one named smiles)")
    parser.add_argument("--window", type=int, default=20, help="tokens per text window (default 20)")
    parser.add_argument("--stride", type=int, help="tokens between window starts (default: the window)")
    parser.add_argument("--text-format", default="plain", choices=TextWindows.TEXT_FORMATS,
                        help="plain: a text as people write it; tokens: tokenized already (Penn Treebank's files)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: the GPU when there is one)")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's choice; 1 on a shared "
                                                     "machine, or one per worker)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def job_of(args: argparse.Namespace) -> dict:
    """What decides the rows (a restart must repeat it): not the output folder, the device or the progress bar."""
    options = {}
    for pair in args.method_option:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--method-option takes NAME=VALUE, got {pair!r}")
        options[name.strip()] = option_value(value.strip())
    settings = ScanSettings(rule=args.rule, steps=args.steps, tolerance=args.tolerance, max_steps=args.max_steps,
                            max_batch=args.max_batch, amp=args.amp, method=args.method, method_options=options)
    if args.shard_size < 1:
        raise ValueError("--shard-size must be at least 1")
    return {"family": args.family, "input": str(args.input.expanduser().resolve()), "model": args.model,
            "targets": args.targets, "settings": dataclasses.asdict(settings), "shard_size": args.shard_size,
            "limit": args.limit, "smiles_column": args.smiles_column, "window": args.window,
            "stride": args.stride or args.window, "text_format": args.text_format}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        start = time.perf_counter()
        manifest = run(job_of(args), args.out, ["python", "-m", "models.run_dataset", *argv], args.device,
                       show_progress=not args.quiet)
    except (ValueError, store.RunConflict) as exc:  # FamilyError is a ValueError
        print(f"run_dataset: {exc}", file=sys.stderr)
        return 2
    counts, seconds = manifest["counts"], time.perf_counter() - start
    print(f"{args.out}: {counts['items']} items ({counts['explained']} explained, {counts['refused']} refused, "
          f"{counts['skipped']} skipped), {counts['rows']} rows; this session {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
