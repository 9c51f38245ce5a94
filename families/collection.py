"""The collections a dataset run explains, item by item, in a stable order with stable ids.

Each family registers the kinds of input it reads (`ModelFamily.collections`): a photo folder, a molecule CSV or
SDF, a text cut into windows. Items are light (paths, SMILES, molblocks, token lists) so that a shard of them
travels cheaply to another process; the heavy parsing is the family's, in `Collection.parse`.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import pathlib
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping


@dataclass(frozen=True)
class Item:
    index: int  # position in the collection: decides the item's shard
    id: str  # stable across runs: a path relative to the input, a row or record number, a token span
    source: str  # what the item is, for people: the path, the SMILES, the window's words
    raw: Any  # what `Collection.parse` reads
    truth: int | str | None = None  # the ground-truth class or next word, where the collection knows it
    labels: tuple = ()  # (task name, value) pairs of a multi-label collection; NaN: not measured


class Collection:
    """The items of one input; subclasses say which paths they read and how."""

    kind: ClassVar[str] = ""  # what the input is called in messages: "photo folder"
    reads: ClassVar[str] = ""  # the paths it reads, for the message that lists a family's inputs: "a folder of photos"
    multi_label: ClassVar[bool] = False  # ground truth per task (molecules) rather than one true target per item
    policies: ClassVar[tuple[str, ...]] = ("predicted", "truth", "both")  # the target policies it can serve

    def __init__(self, path: pathlib.Path):
        self.path = path

    @classmethod
    def accepts(cls, path: pathlib.Path) -> bool:
        """Whether this kind of collection reads the path."""
        raise NotImplementedError

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The command-line options of this kind of input (none by default)."""

    @classmethod
    def open(cls, path: pathlib.Path, options: Mapping[str, Any]) -> "Collection":
        """The collection at path; options: the values of every collection's command-line options by name."""
        return cls(path)

    def items(self) -> list[Item]:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """What the input was: a restart must see the same items, so a changed input is refused."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def parse(self, family, model, item: Item):
        """The item as the family's parsed input (family: a ModelFamily, model: its LoadedModel)."""
        return family.parse(model, item.raw)

    def truth_target(self, model, item: Item) -> int | None:
        return None if item.truth is None else int(item.truth)

    def active_targets(self, model, item: Item) -> list[int]:
        """The model's tasks the item is labelled active on (label 1)."""
        labels = dict(item.labels)
        return [t for t, name in enumerate(model.target_names) if labels.get(name) == 1]

    def target_truth(self, model, item: Item, target: int) -> float | None:
        """The ground truth of one target: 1 (the true class, an active task), 0 (not), None (unknown)."""
        if self.multi_label:
            value = dict(item.labels).get(model.target_names[target])
            return None if value is None or math.isnan(value) else float(value)
        truth = self.truth_target(model, item)
        return None if truth is None else float(truth == target)
