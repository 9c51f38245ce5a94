"""Explain a whole collection into a results store (runs.store): resumable, every item exactly once.

    python -m runs.runner --family molecules --input tox21_moleculenet.csv --model w2n2 \\
        --targets actives --rule gauss-legendre --steps 16 --out results/tox21-w2n2

The items of the input (runs.inputs) are cut into shards of --shard-size items in input order; a shard
is explained whole and written atomically, so a run killed at any moment and started again with the same command
computes only the shards that are missing. The folder remembers its run (manifest.json): another command into it
is refused. Target policies:

    predicted   the model's top class, task or next word
    truth       the ground truth (a photo folder's labels.csv, a text's next word)
    both        predicted and truth from one scan (one target where they agree)
    actives     every task a molecule is labelled active on (the input's label columns named like the tasks)
    next_word   the word that follows a text window

Items the family refuses (an unreadable photo, an invalid SMILES) are stored with the reason and skipped.

Items of a shard are explained together, up to --batch-items per engine call: photos of one size and text windows
of one length stacked as examples [N, ...], molecules padded to the largest of their group (grouped by size), each
with its own targets [N, T] (items grouped by their number of targets). Their rows equal those of items explained
one at a time up to float32 rounding. Integrated gradients with a fixed rule only: the adaptive rule refines one
grid for all the examples of a call, and sampling methods draw their noise per call.

A `Worker` is built from the job alone, holds one model and engine and turns a shard's items into rows
(`Worker.shard_rows`); only the driver writes shards. With --ray (a local Ray started for the run) or --ray-address
(an existing cluster) the pending shards go to Ray actors, one Worker each (one per GPU where the cluster has
GPUs); the driver keeps the folder's lock and writes each shard as it returns, so a shard Ray runs again after an
actor died is still stored once. Ray is optional (requirements-ray.txt) and imported only for these options.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import fcntl
import json
import os
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
from ig_core.methods import read_off_scan
from ig_core.evaluator import OUTPUT_TRANSFORMS

from runs import store
from runs.inputs import Collection, Item, TextWindows, open_collection
from families.registry import FAMILIES
from families.contract import EngineInput, Explanation, FamilyError, ModelFamily, ModelSource
from families.molecules.weave import BoundWeave

POLICIES = ("predicted", "truth", "both", "actives", "next_word")
PROBABILITY_OUTPUTS = ("softmax", "sigmoid")  # F is a probability: the row's `probability` column
# methods whose examples share nothing but the path's points, so that items can share an engine call; sampling
# methods draw their noise per call, and the image methods read one image's segments
STACKABLE_METHODS = ("integrated_gradients",)
# the adaptive rule refines one grid for all the examples of a call: stacked items would each get the union of
# their grids (Tox21 molecules: 249 points each instead of 40), so it explains one item per call
UNSTACKABLE_RULES = ("adaptive",)
ROOT = pathlib.Path(__file__).resolve().parent.parent  # the project, which Ray's actors import


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


def cut(result, examples: slice = slice(None), targets: slice = slice(None)):
    """Part of the engine's result: some of its examples and targets (arrays [K, N, T], [N, T] and [K, N];
    tensors [T, N, ...]), shaped as a result of those alone."""
    along_path = {name: getattr(result, name)[:, examples, targets]
                  for name in ("scores", "raw_scores", "path_derivative", "grad_abs_mean", "grad_sum")}
    per_example = {name: getattr(result, name)[examples, targets]
                   for name in ("score_input", "score_baseline", "delta", "relative_delta", "targets")}
    nothing = None if result.nothing_to_attribute is None else result.nothing_to_attribute[examples, targets]
    layer = {name: getattr(result, name)[:, examples] for name in ("layer_l2", "layer_cosine")
             if getattr(result, name) is not None}
    return dataclasses.replace(
        result, attributions_per_target=tuple(x[targets, examples] for x in result.attributions_per_target),
        interior_gradients={a: tuple(g[targets, examples] for g in gs) for a, gs in result.interior_gradients.items()},
        nothing_to_attribute=nothing, **along_path, **per_example, **layer)


def one(k: int) -> slice:
    return slice(k, k + 1)


@dataclasses.dataclass
class Read:
    """An item parsed into its engine input, waiting for its prediction."""

    item: Item
    parsed: object
    request: EngineInput
    seconds_parse: float

    @property
    def target_ids(self) -> list[int]:
        return []  # chosen once the item is predicted


@dataclasses.dataclass
class Prepared(Read):
    """An item read, predicted and given its targets, waiting for its scan."""

    targets: list[tuple[int, str]]
    predicted: int
    probabilities: np.ndarray | None
    truth_rank: int | None

    @property
    def target_ids(self) -> list[int]:
        return [target for target, _ in self.targets]


def stacking_key(read: Read) -> tuple:
    """Items with equal keys can be run in one engine call: the same forward, output transform and number of
    targets, and inputs of one shape (photos of one size, windows of one length). A molecule's forward binds its
    own graph, so molecules of any size go together: their model binds several graphs, packed together."""
    request = read.request
    if isinstance(request.forward, BoundWeave):
        forward, shapes = (request.forward.model, request.forward.output), ()
    else:
        forward, shapes = request.forward, tuple((tuple(x.shape), x.dtype) for x in request.inputs)
    return len(read.target_ids), forward, request.output, request.layer, shapes


def stacked_request(group: list[Read]) -> EngineInput:
    """One engine input for the group's items, stacked as examples [N, ...] in the group's order."""
    first = group[0].request
    if isinstance(first.forward, BoundWeave):
        bound = first.forward.model.bind([prepared.parsed for prepared in group], output=first.forward.output)
        # a molecule's baseline is all-zero features, so the padding rows are zero at both ends of the path
        return dataclasses.replace(first, forward=bound, inputs=bound.inputs,
                                   baseline=tuple(torch.zeros_like(x) for x in bound.inputs))
    requests = [prepared.request for prepared in group]
    return dataclasses.replace(first, inputs=tuple(torch.cat(xs) for xs in zip(*(r.inputs for r in requests))),
                               baseline=tuple(torch.cat(bs) for bs in zip(*(r.baseline for r in requests))))


def size_of(read: Read) -> int:
    """Numbers in the item's inputs: items of like size are grouped, so a padded group wastes little."""
    return sum(x.numel() for x in read.request.inputs)


class Worker:
    """One model and engine: turns a shard's items into the store's rows. A Ray actor holds one."""

    def __init__(self, job: dict, device: str | None = None):
        self.job, self.policy = job, job["targets"]
        self.family = FAMILIES[job["family"]]
        self.collection = collection_of(job)
        self.settings = settings_of(job)
        self.engine = LeanEngine(AttributionEngine(device, cache_size=0))
        self.model = self.family.load(find_source(self.family, job["model"]), self.engine.device)
        self.common = {"model_key": self.model.key, "method": self.settings.method,
                       "settings": json.dumps(job["settings"], sort_keys=True)}
        stackable = self.settings.method in STACKABLE_METHODS and self.settings.rule not in UNSTACKABLE_RULES
        self.batch_items = job["batch_items"] if stackable else 1

    def shard_rows(self, items: Sequence[Item], done: Callable[[int], object] = lambda n: None) -> list[dict]:
        """The rows of these items in item order; done(n) after every n items."""
        rows, read, ready = [], [], []
        for item in items:
            outcome = self.read(item)
            (rows if isinstance(outcome, dict) else read).append(outcome)
        for group in self.groups(read):
            for outcome in self.prepare(group):
                (rows if isinstance(outcome, dict) else ready).append(outcome)
        done(len(rows))
        for group in self.groups(ready):
            rows += self.explain(group)
            done(len(group))
        return sorted(rows, key=lambda row: row["item_index"])  # stable: an item's targets stay in order

    def groups(self, ready: list[Read]) -> list[list[Read]]:
        """Items predicted or explained in one engine call: up to batch_items items of one stacking key, of like
        sizes. The groups depend on the shard alone, so a restarted or distributed run explains the same groups."""
        if self.batch_items == 1:
            return [[read] for read in ready]
        by_key: dict[tuple, list[Read]] = {}
        for read in ready:
            by_key.setdefault(stacking_key(read), []).append(read)
        groups = []
        for same in by_key.values():
            same.sort(key=lambda read: (size_of(read), read.item.index))
            groups += [same[k:k + self.batch_items] for k in range(0, len(same), self.batch_items)]
        return groups

    def row(self, item: Item, **values) -> dict:
        return {"item_index": item.index, "item_id": item.id, "source": item.source, **self.common, **values}

    def read(self, item: Item) -> Read | dict:
        """The item parsed into its engine input; or its row when it is refused."""
        start = time.perf_counter()
        try:
            parsed = self.collection.parse(self.family, self.model, item)
            return Read(item, parsed, self.family.engine_input(self.model, parsed), time.perf_counter() - start)
        except FamilyError as exc:
            return self.row(item, status="refused", error=str(exc), seconds_parse=time.perf_counter() - start)

    def prepare(self, group: list[Read]) -> list[Prepared | dict]:
        """The group's items predicted in one forward and given their targets; the row of an item that is refused
        or has no target. A group the family refuses is predicted item by item, so that only the items it
        refuses are recorded so."""
        start = time.perf_counter()
        try:
            raw, probabilities = self.predict(stacked_request(group) if len(group) > 1 else group[0].request)
        except FamilyError as exc:
            if len(group) > 1:
                return [outcome for read in group for outcome in self.prepare([read])]
            return [self.row(group[0].item, status="refused", error=str(exc),
                             seconds_parse=group[0].seconds_parse + time.perf_counter() - start)]
        seconds = (time.perf_counter() - start) / len(group)
        return [self.targeted(read, raw[n], None if probabilities is None else probabilities[n], seconds)
                for n, read in enumerate(group)]

    def targeted(self, read: Read, raw: np.ndarray, probabilities: np.ndarray | None,
                 seconds_predict: float) -> Prepared | dict:
        item = read.item
        seconds = read.seconds_parse + seconds_predict
        predicted = int(raw.argmax())
        truth = self.collection.truth_target(self.model, item)
        if truth is not None and not 0 <= truth < len(self.model.target_names):
            truth = None  # a label the model has no class for
        truth_rank = None if truth is None else 1 + int((raw > raw[truth]).sum())
        targets = choose_targets(self.policy, predicted, truth, self.collection.active_targets(self.model, item))
        if not targets:
            reason = ("active on no task of the model" if self.policy == "actives"
                      else "no ground truth the model can explain")
            return self.row(item, status="skipped", error=reason, predicted=predicted, truth_rank=truth_rank,
                            seconds_parse=seconds)
        return Prepared(item=item, parsed=read.parsed, request=read.request, seconds_parse=seconds, targets=targets,
                        predicted=predicted, probabilities=probabilities, truth_rank=truth_rank)

    def predict(self, request: EngineInput) -> tuple[np.ndarray, np.ndarray | None]:
        """The raw outputs [N, classes] at the inputs and, where F is a probability, every target's probability."""
        with torch.no_grad():
            raw = request.forward(*(x.to(self.engine.device) for x in request.inputs)).float()
        probabilities = (OUTPUT_TRANSFORMS[request.output](raw).cpu().numpy()
                         if request.output in PROBABILITY_OUTPUTS else None)
        return raw.cpu().numpy(), probabilities

    def explain(self, group: list[Prepared]) -> list[dict]:
        """The rows of a group of items from one scan; a group the family refuses is explained item by item, so
        that only the items it refuses are recorded so."""
        start = time.perf_counter()
        try:
            explanations = self.scan(group)
        except FamilyError as exc:
            if len(group) > 1:
                return [row for prepared in group for row in self.explain([prepared])]
            (prepared,) = group
            return [self.row(prepared.item, status="refused", error=str(exc), predicted=prepared.predicted,
                             seconds_parse=prepared.seconds_parse)]
        seconds_scan = (time.perf_counter() - start) / len(group)
        return [row for prepared, explanation in zip(group, explanations)
                for row in self.rows(prepared, explanation, seconds_scan)]

    def scan(self, group: list[Prepared]) -> list[Explanation]:
        """One engine call for the group: its items stacked as examples [N, ...] with per-example targets [N, T]."""
        if len(group) == 1:
            (prepared,) = group
            return [self.family.explain(self.engine, self.model, prepared.parsed, prepared.target_ids,
                                        self.settings)]
        request = stacked_request(group)
        targets = torch.tensor([prepared.target_ids for prepared in group])
        result = self.engine.attribute(request.forward, request.inputs, targets, request.baseline,
                                       output=request.output, layer=request.layer, **self.settings.options())
        return [self.family.explanation(self.model, prepared.parsed, prepared.target_ids, cut(result, one(n)),
                                        self.settings) for n, prepared in enumerate(group)]

    def rows(self, prepared: Prepared, explanation: Explanation, seconds_scan: float) -> list[dict]:
        item = prepared.item
        truth = self.collection.truth_target(self.model, item)
        rows = []
        for t, (single, k) in enumerate(self.per_target(prepared, explanation)):
            target, chosen_as = prepared.targets[t]
            record = single.records(item.id, item.source)[k]
            probability = None if prepared.probabilities is None else float(prepared.probabilities[target])
            rows.append(self.row(
                item, status="explained", rule=record["rule"], target=target, target_name=record["target_name"],
                chosen_as=chosen_as, predicted=prepared.predicted, truth=truth, truth_rank=prepared.truth_rank,
                target_truth=self.collection.target_truth(self.model, item, target), probability=probability,
                **{name: record[name] for name in ("score_input", "score_baseline", "delta", "relative_delta")},
                nothing_to_attribute=bool(single.nothing_per_target()[k]), nonfinite=bool(single.attribution.nonfinite),
                points_evaluated=record["points_evaluated"], **domain_scores(record["scores"]),
                gradient_scores=self.gradient_scores(prepared, single, k, record["scores"]),
                seconds_parse=prepared.seconds_parse, seconds_scan=seconds_scan))
        return rows

    def gradient_scores(self, prepared: Prepared, explanation: Explanation, k: int, scores) -> list[float] | None:
        """Gradient x input of target k in the domain's named units, read off the scan's gradient at the input;
        None for pixel maps and for scans that did not evaluate the input."""
        if not isinstance(scores, dict) or 1.0 not in explanation.attribution.interior_gradients:
            return None
        gradients = explanation.attribution.interior_gradients[1.0]  # [T, 1, ...], padded with its group
        inputs = [padded(x, g.shape[1:]) for x, g in zip(prepared.request.inputs, gradients)]
        off_scan = read_off_scan(explanation.attribution, inputs, "gradient_x_input")
        named = self.family.explanation(self.model, prepared.parsed, explanation.targets, off_scan, self.settings)
        return [float(value) for value in named.records("", "")[k]["scores"].values()]

    def per_target(self, prepared: Prepared, explanation: Explanation) -> list[tuple[Explanation, int]]:
        """(explanation, its index of the target) per target. A family whose explanation covers one target
        (molecules: one task) gets one explanation per target, cut from the same scan."""
        targets = prepared.target_ids
        if explanation.targets == targets:
            return [(explanation, t) for t in range(len(targets))]
        return [(self.family.explanation(self.model, prepared.parsed, [target],
                                         cut(explanation.attribution, targets=one(t)), self.settings), 0)
                for t, target in enumerate(targets)]


def padded(x: torch.Tensor, shape) -> torch.Tensor:
    """x with zero rows appended up to shape, as stacked_request pads a molecule to its group's largest."""
    if tuple(x.shape) == tuple(shape):
        return x
    out = x.new_zeros(shape)
    out[tuple(slice(0, n) for n in x.shape)] = x
    return out


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


class LocalShards:
    """Shards explained one after another by one Worker in this process."""

    def __init__(self, job: dict, device: str | None):
        self.worker = Worker(job, device)
        self.model_key = self.worker.model.key

    def explained(self, shards: list[list[Item]], pending: list[int], done: Callable[[int], object]):
        for k in pending:
            yield k, self.worker.shard_rows(shards[k], done)

    def close(self) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """Where and how a run spreads over Ray: an existing cluster's address, or None for a local Ray started for the
    run; workers (actors; default: one per GPU of the cluster, else its CPUs over `threads`); torch threads each."""

    address: str | None = None
    workers: int | None = None
    threads: int = 1


class ShardActor:
    """A Ray actor's state: one Worker, so one model, loaded once and used for every shard sent to it."""

    def __init__(self, job: dict, device: str | None, threads: int):
        torch.set_num_threads(threads)
        self.worker = Worker(job, device)

    def model_key(self) -> str:
        return self.worker.model.key

    def shard_rows(self, k: int, items: list[Item]) -> tuple[int, list[dict]]:
        return k, self.worker.shard_rows(items)


def connect_ray(options: RayOptions) -> bool:
    """Join the cluster at options.address, or start a local Ray for the workers; True when this call started or
    joined it (the run then shuts it down), False when this process is connected already."""
    import ray

    if ray.is_initialized():
        return False
    # the actors import this project and read the data as this process does (on a cluster: the same paths), on the
    # same CPU kernels
    env = {name: value for name, value in os.environ.items() if name.startswith("IG_") or name == "ATEN_CPU_CAPABILITY"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    local = {} if options.address else {"num_cpus": (options.workers or 2) * options.threads,
                                        "object_store_memory": 200 * 2**20, "include_dashboard": False}
    ray.init(address=options.address, runtime_env={"env_vars": env}, log_to_driver=False,
             logging_level="warning", **local)
    return True


class RayShards:
    """Shards spread over Ray actors, one Worker each (one per GPU where the cluster has GPUs). The actors only
    compute; this process keeps the folder's lock and writes every shard, so a shard Ray retries on a restarted
    actor is still written once, atomically."""

    RETRIES = 2  # an actor that dies is restarted (its model loaded again) and its shard run again

    def __init__(self, job: dict, device: str | None, options: RayOptions):
        import ray

        self.ray = ray
        self.started = connect_ray(options)
        gpus = int(ray.cluster_resources().get("GPU", 0)) if device in (None, "cuda") else 0
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = options.workers or gpus or max(cpus // options.threads, 1)
        from runs import runner as run_dataset  # the class by its module's name: under `python -m` this module is __main__,
        # whose classes Ray would pickle by value along with their module's globals
        actor = ray.remote(run_dataset.ShardActor).options(num_cpus=options.threads, num_gpus=1 if gpus else 0,
                                               max_restarts=self.RETRIES, max_task_retries=self.RETRIES)
        self.actors = [actor.remote(job, device, options.threads) for _ in range(count)]
        self.model_key = ray.get(self.actors[0].model_key.remote())

    def explained(self, shards: list[list[Item]], pending: list[int], done: Callable[[int], object]):
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        for k, rows in pool.map_unordered(lambda actor, k: actor.shard_rows.remote(k, shards[k]), pending):
            done(len(shards[k]))
            yield k, rows

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self.started:
            self.ray.shutdown()


def run(job: dict, out: pathlib.Path, command: Sequence[str], device: str | None = None,
        show_progress: bool = True, ray: RayOptions | None = None) -> dict:
    """Explain every item of the job's input into `out` (continuing the run there), in this process or on Ray
    actors; returns the manifest."""
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
        backend = RayShards(job, device, ray) if ray else LocalShards(job, device)
        try:
            manifest = store.open_run(out, {
                "format": store.FORMAT, "version": store.VERSION, "job": job, "model_key": backend.model_key,
                "input_fingerprint": collection.fingerprint(), "command": list(command), "items": len(items),
                "shards": len(shards), "status": "running", "created": now(),
                "versions": {"python": platform.python_version(), "torch": torch.__version__,
                             "pyarrow": pyarrow.__version__}}, identity=("job", "model_key", "input_fingerprint"))
            done = store.finished_shards(out)
            pending = [k for k in range(len(shards)) if k not in done]
            start = time.perf_counter()
            with tqdm(total=len(items), initial=len(items) - sum(len(shards[k]) for k in pending), unit="item",
                      desc=job["family"], disable=not show_progress, mininterval=1.0) as bar:
                for k, rows in backend.explained(shards, pending, bar.update):
                    store.write_shard(out, k, rows)
        finally:
            backend.close()
        store.write_listing(out)
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
    parser = argparse.ArgumentParser(prog="python -m runs.runner", description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--batch-items", type=int, default=16,
                        help="items explained together in one engine call (default 16; 1: one at a time)")
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
    spread = parser.add_argument_group("Ray (optional: pip install -r requirements-ray.txt)")
    spread.add_argument("--ray", action="store_true", help="spread the shards over a local Ray started for the run")
    spread.add_argument("--ray-address", metavar="ADDR", help="spread them over an existing Ray cluster ('auto', "
                        "'ray://host:10001'); its nodes need this project and the input at the same paths")
    spread.add_argument("--workers", type=int, help="Ray actors, one model each (default: one per GPU of the "
                        "cluster, else its CPUs over --threads; a local Ray: 2)")
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
    if args.shard_size < 1 or args.batch_items < 1:
        raise ValueError("--shard-size and --batch-items must be at least 1")
    return {"family": args.family, "input": str(args.input.expanduser().resolve()), "model": args.model,
            "targets": args.targets, "settings": dataclasses.asdict(settings), "shard_size": args.shard_size,
            "batch_items": args.batch_items, "limit": args.limit, "smiles_column": args.smiles_column,
            "window": args.window, "stride": args.stride or args.window, "text_format": args.text_format}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ray = (RayOptions(args.ray_address, args.workers, args.threads or 1)
           if args.ray or args.ray_address else None)
    try:
        start = time.perf_counter()
        manifest = run(job_of(args), args.out, ["python", "-m", "runs.runner", *argv], args.device,
                       show_progress=not args.quiet, ray=ray)
    except (ValueError, store.RunConflict) as exc:  # FamilyError is a ValueError
        print(f"run_dataset: {exc}", file=sys.stderr)
        return 2
    counts, seconds = manifest["counts"], time.perf_counter() - start
    print(f"{args.out}: {counts['items']} items ({counts['explained']} explained, {counts['refused']} refused, "
          f"{counts['skipped']} skipped), {counts['rows']} rows; this session {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
