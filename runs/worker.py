"""A dataset run's worker: one model and engine that turn a shard's items into the results store's rows.

A `Worker` is built from the job alone, so a Ray actor builds its own. Items of a shard are explained together,
up to the job's batch_items per engine call: items whose inputs the family can stack (`ModelFamily.stacking_key`,
`stacked_input`: photos of one size, text windows of one length, molecules of any size packed together), each
with its own targets [N, T] (items grouped by their number of targets). Their rows equal those of items explained
one at a time up to float32 rounding: the adaptive rule refines each item on its own grid and stops it when it meets
the tolerance. Sampling methods draw their noise per call, so they explain one item per call.
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Callable, Sequence

import numpy as np
import torch

from families.collection import Item
from families.contract import EngineInput, Explanation, FamilyError
from families.registry import FAMILIES
from ig_core import METHODS, OUTPUT_TRANSFORMS, Attribution, AttributionEngine, Contrast, read_off_scan
from runs import store
from runs.job import choose_targets, collection_of, no_target_reason, settings_of

PROBABILITY_OUTPUTS = ("softmax", "sigmoid")  # F is a probability: the row's `probability` column


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

    targets: list[tuple[int | Contrast, str]]
    predicted: int
    probabilities: np.ndarray | None
    truth_rank: int | None

    @property
    def target_ids(self) -> list[int | Contrast]:
        return [target for target, _ in self.targets]


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
        self.engine = AttributionEngine(device, cache_size=0)  # no cache: every item comes once
        self.model = self.family.load(self.family.source_named(job["model"]), self.engine.device)
        self.common = {"model_key": self.model.key, "method": self.settings.method,
                       "settings": json.dumps(job["settings"], sort_keys=True)}
        self.batch_items = job["batch_items"] if METHODS[self.settings.method].stackable else 1

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
        """Items predicted or explained in one engine call: up to batch_items items of one stacking key (and one
        number of targets), of like sizes. The groups depend on the shard alone, so a restarted or distributed run
        explains the same groups."""
        if self.batch_items == 1:
            return [[read] for read in ready]
        by_key: dict[tuple, list[Read]] = {}
        for read in ready:
            by_key.setdefault((len(read.target_ids), self.family.stacking_key(read.request)), []).append(read)
        groups = []
        for same in by_key.values():
            same.sort(key=lambda read: (size_of(read), read.item.index))
            groups += [same[k:k + self.batch_items] for k in range(0, len(same), self.batch_items)]
        return groups

    def request_of(self, group: list[Read]) -> EngineInput:
        """One engine input for the group's items, as examples [N, ...] in the group's order."""
        if len(group) == 1:
            return group[0].request
        return self.family.stacked_input(self.model, [read.parsed for read in group], [read.request for read in group])

    def row(self, item: Item, **values) -> dict:
        return {"item_index": item.index, "item_id": item.id, "source": item.source, **self.common, **values}

    def read(self, item: Item) -> Read | dict:
        """The item parsed into its engine input; or its row when it is refused."""
        start = time.perf_counter()
        try:
            parsed = self.collection.parse(self.family, self.model, item)
            # a stored row keeps no interior gradients: a photo's probe alphas would double its path points
            request = dataclasses.replace(self.family.engine_input(self.model, parsed), probe_alphas=(),
                                          keep_all_gradients=False)
            return Read(item, parsed, request, time.perf_counter() - start)
        except FamilyError as exc:
            return self.row(item, status="refused", error=str(exc), seconds_parse=time.perf_counter() - start)

    def prepare(self, group: list[Read]) -> list[Prepared | dict]:
        """The group's items predicted in one forward and given their targets; the row of an item that is refused
        or has no target. A group the family refuses is predicted item by item, so that only the items it
        refuses are recorded so."""
        start = time.perf_counter()
        try:
            raw, probabilities = self.predict(self.request_of(group))
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
            return self.row(item, status="skipped", error=no_target_reason(self.policy, predicted, truth),
                            predicted=predicted, truth_rank=truth_rank, seconds_parse=seconds)
        return Prepared(item=item, parsed=read.parsed, request=read.request, seconds_parse=seconds, targets=targets,
                        predicted=predicted, probabilities=probabilities, truth_rank=truth_rank)

    def predict(self, request: EngineInput) -> tuple[np.ndarray, np.ndarray | None]:
        """The raw outputs [N, classes] at the inputs and, where F is or has a probability, every target's."""
        with torch.no_grad():
            raw = request.forward(*(x.to(self.engine.device) for x in request.inputs)).float()
        transform = request.output if request.output in PROBABILITY_OUTPUTS else request.probability
        probabilities = None if transform is None else OUTPUT_TRANSFORMS[transform](raw).cpu().numpy()
        return raw.cpu().numpy(), probabilities

    def explain(self, group: list[Prepared]) -> list[dict]:
        """The rows of a group of items from one scan, its items stacked as examples [N, ...] with per-example
        targets [N, T]; a group the family refuses is explained item by item, so that only the items it refuses
        are recorded so."""
        start = time.perf_counter()
        first = group[0]
        try:
            result = self.family.attribute(self.engine, self.model, first.parsed, self.request_of(group),
                                           engine_targets(group), self.settings)
        except FamilyError as exc:
            if len(group) > 1:
                return [row for prepared in group for row in self.explain([prepared])]
            return [self.row(first.item, status="refused", error=str(exc), predicted=first.predicted,
                             seconds_parse=first.seconds_parse)]
        seconds_scan = (time.perf_counter() - start) / len(group)
        return [row for n, prepared in enumerate(group)
                for row in self.rows(prepared, result.select(examples=n), seconds_scan)]

    def rows(self, prepared: Prepared, result: Attribution, seconds_scan: float) -> list[dict]:
        """One row per target of the item, each from the family's explanation of that target alone."""
        item = prepared.item
        truth = self.collection.truth_target(self.model, item)
        rows = []
        for t, (engine_target, chosen_as) in enumerate(prepared.targets):
            explanation = self.family.explanation(self.model, prepared.parsed, [engine_target],
                                                  result.select(targets=t), self.settings)
            record = explanation.records(item.id, item.source)[0]
            target, rather_than = explanation.targets[0], explanation.rather_than[0]
            probability = None if prepared.probabilities is None else float(prepared.probabilities[target])
            rows.append(self.row(
                item, status="explained", rule=record["rule"], target=target, rather_than=rather_than,
                # the class's own name: a contrast's other class is the rather_than column
                target_name=self.model.target_names[target] if rather_than is not None else record["target_name"],
                chosen_as=chosen_as, predicted=prepared.predicted, truth=truth, truth_rank=prepared.truth_rank,
                target_truth=self.collection.target_truth(self.model, item, target), probability=probability,
                **{name: record[name] for name in ("score_input", "score_baseline", "delta", "relative_delta")},
                nothing_to_attribute=bool(explanation.nothing_per_target()[0]), nonfinite=bool(result.nonfinite),
                points_evaluated=record["points_evaluated"], **domain_scores(record["scores"]),
                gradient_scores=self.gradient_scores(prepared, explanation, record["scores"]),
                seconds_parse=prepared.seconds_parse, seconds_scan=seconds_scan))
        return rows

    def gradient_scores(self, prepared: Prepared, explanation: Explanation, scores) -> list[float] | None:
        """Gradient x input of the explanation's one target in the domain's named units, read off the scan's
        gradient at the input; None for pixel maps and for scans that did not evaluate the input."""
        if not isinstance(scores, dict) or 1.0 not in explanation.attribution.interior_gradients:
            return None
        gradients = explanation.attribution.interior_gradients[1.0]  # [1, 1, ...], padded with its group
        inputs = [padded(x, g.shape[1:]) for x, g in zip(prepared.request.inputs, gradients)]
        off_scan = read_off_scan(explanation.attribution, inputs, "gradient_x_input")
        named = self.family.explanation(self.model, prepared.parsed, explanation.targets, off_scan, self.settings)
        return [float(value) for value in named.records("", "")[0]["scores"].values()]


def engine_targets(group: list[Prepared]):
    """The group's targets as family.attribute takes them: an item's own list, or per example [N, T] (a tensor of
    plain targets, or one Contrast of two [N, T] sides, so that the family sees a contrast and explains it on its
    contrast output)."""
    if len(group) == 1:
        return group[0].target_ids
    rows = [prepared.target_ids for prepared in group]
    if any(isinstance(target, Contrast) for row in rows for target in row):
        return Contrast(torch.tensor([[int(target.target) for target in row] for row in rows]),
                        torch.tensor([[int(target.rather_than) for target in row] for row in rows]))
    return torch.tensor(rows)


def padded(x: torch.Tensor, shape) -> torch.Tensor:
    """x with zero rows appended up to shape, as a stacked input may pad an item to its group's largest."""
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
