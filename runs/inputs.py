"""The collections a dataset run explains, item by item, in a stable order with stable ids.

A photo folder (with labels.csv or boxes.csv for ground truth, families.vision.photos), a molecule CSV (a SMILES column
and label columns named like the model's tasks) or SDF (its properties as labels), and a text file cut into
windows of words whose next word is the ground truth. Items are light (paths, SMILES, molblocks, token lists) so
a shard of them travels cheaply to another process; the heavy parsing is the family's, in `parse`.
"""
from __future__ import annotations

import hashlib
import math
import pathlib
from dataclasses import dataclass
from typing import Any

import pandas as pd

from families.contract import InputError, LoadedModel, ModelFamily
from families.vision.photos import list_photos


@dataclass(frozen=True)
class Item:
    index: int  # position in the collection: decides the item's shard
    id: str  # stable across runs: a path relative to the input, a row or record number, a token span
    source: str  # what the item is, for people: the path, the SMILES, the window's words
    raw: Any  # what `Collection.parse` reads
    truth: int | str | None = None  # the ground-truth class or next word, where the collection knows it
    labels: tuple = ()  # (task name, value) pairs of a multi-label collection; NaN: not measured


class Collection:
    """The items of one input; subclasses say how to read it."""

    kind = ""
    multi_label = False  # ground truth per task (molecules) rather than one true target per item

    def __init__(self, path: pathlib.Path):
        self.path = path

    def items(self) -> list[Item]:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """What the input was: a restart must see the same items, so a changed input is refused."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def parse(self, family: ModelFamily, model: LoadedModel, item: Item):
        return family.parse(model, item.raw)

    def truth_target(self, model: LoadedModel, item: Item) -> int | None:
        return None if item.truth is None else int(item.truth)

    def active_targets(self, model: LoadedModel, item: Item) -> list[int]:
        """The model's tasks the item is labelled active on (label 1)."""
        labels = dict(item.labels)
        return [t for t, name in enumerate(model.target_names) if labels.get(name) == 1]

    def target_truth(self, model: LoadedModel, item: Item, target: int) -> float | None:
        """The ground truth of one target: 1 (the true class, an active task), 0 (not), None (unknown)."""
        if self.multi_label:
            value = dict(item.labels).get(model.target_names[target])
            return None if value is None or math.isnan(value) else float(value)
        truth = self.truth_target(model, item)
        return None if truth is None else float(truth == target)


class PhotoFolder(Collection):
    kind = "photo folder"

    def items(self) -> list[Item]:
        return [Item(k, photo.file, photo.file, photo.path, photo.label)
                for k, photo in enumerate(list_photos(self.path))]

    def fingerprint(self) -> str:
        """The listing with sizes and modification times: hashing every photo's bytes would take as long as a
        small run."""
        digest = hashlib.sha256()
        for side_file in ("labels.csv", "boxes.csv"):
            if (self.path / side_file).is_file():
                digest.update((self.path / side_file).read_bytes())
        for item in self.items():
            stat = item.raw.stat() if item.raw.exists() else None
            digest.update(f"{item.id}:{stat and stat.st_size}:{stat and stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


class MoleculeTable(Collection):
    """A CSV with a SMILES column; the other columns that name a model task are its labels."""

    kind, multi_label = "molecule CSV", True

    def __init__(self, path: pathlib.Path, smiles_column: str | None = None):
        super().__init__(path)
        self.smiles_column = smiles_column

    def items(self) -> list[Item]:
        table = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        column = self.smiles_column or next((c for c in table.columns if c.lower() == "smiles"), None)
        if column not in table.columns:
            raise ValueError(f"{self.path.name} has no SMILES column {column or '(none named smiles)'}; its columns "
                             f"are {', '.join(table.columns)}: name one with --smiles-column")
        others = [c for c in table.columns if c != column]
        labels = table[others].apply(pd.to_numeric, errors="coerce")
        return [Item(k, f"row {k}", smiles, smiles,
                     labels=tuple((c, float(v)) for c, v in zip(others, label_row)))
                for k, (smiles, label_row) in enumerate(zip(table[column], labels.itertuples(index=False)))]


class MoleculeSDF(Collection):
    """An SDF file: one item per record (raw: its molblock), its numeric properties as labels."""

    kind, multi_label = "molecule SDF", True

    def items(self) -> list[Item]:
        from rdkit import Chem

        items = []
        for k, mol in enumerate(Chem.SDMolSupplier(str(self.path), sanitize=False)):
            if mol is None:  # a record RDKit cannot even read: recorded as refused by parse
                items.append(Item(k, f"record {k}", "", None))
                continue
            labels = tuple((name, float(pd.to_numeric(value, errors="coerce")))
                           for name, value in mol.GetPropsAsDict().items())
            items.append(Item(k, f"record {k}", Chem.MolToSmiles(mol), Chem.MolToMolBlock(mol), labels=labels))
        return items

    def parse(self, family: ModelFamily, model: LoadedModel, item: Item):
        from rdkit import Chem

        mol = Chem.MolFromMolBlock(item.raw) if item.raw is not None else None
        if mol is None:
            raise InputError(f"{item.id} of {self.path.name} is no valid molecule")
        return family.parse(model, mol)


class TextWindows(Collection):
    """A text file's tokens cut into windows of `window` tokens every `stride` tokens; the token after a window is
    its ground truth. text_format "plain": tokenized as the dashboard tokenizes a user's text, one sentence a line
    (families.language.ptb.read_text_tokens); "tokens": already tokenized, words separated by spaces, as Penn
    Treebank's files (read_words). Both put <eos> after every line."""

    kind = "text file"
    TEXT_FORMATS = ("plain", "tokens")

    def __init__(self, path: pathlib.Path, window: int, stride: int, text_format: str = "plain"):
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be at least 1, got {window} and {stride}")
        if text_format not in self.TEXT_FORMATS:
            raise ValueError(f"text format {text_format!r}: choose one of {', '.join(self.TEXT_FORMATS)}")
        super().__init__(path)
        self.window, self.stride, self.text_format = window, stride, text_format

    def items(self) -> list[Item]:
        from families.language.ptb import read_text_tokens, read_words

        tokens = (read_text_tokens if self.text_format == "plain" else read_words)(self.path)
        return [Item(k, f"tokens {start}-{start + self.window}", " ".join(tokens[start:start + self.window]),
                     tuple(tokens[start:start + self.window]), tokens[start + self.window])
                for k, start in enumerate(range(0, len(tokens) - self.window, self.stride))]

    def parse(self, family: ModelFamily, model: LoadedModel, item: Item):
        """The window's tokens as they are (tokenizing them as a user's text again would turn <eos> into <unk>)."""
        from families.language.ptb import window_tokens

        return family.parse(model, window_tokens(model.extra.vocab, item.raw))

    def truth_target(self, model: LoadedModel, item: Item) -> int | None:
        return model.extra.vocab.id(item.truth)


def open_collection(family: str, path: pathlib.Path, smiles_column: str | None = None, window: int = 20,
                    stride: int | None = None, text_format: str = "plain") -> Collection:
    """The collection a family reads from `path`, or a ValueError saying what the family takes."""
    if family == "vision" and path.is_dir():
        return PhotoFolder(path)
    if family == "molecules" and path.suffix.lower() == ".sdf":
        return MoleculeSDF(path)
    if family == "molecules" and path.suffix.lower() in (".csv", ".gz"):
        return MoleculeTable(path, smiles_column)
    if family == "language" and path.is_file():
        return TextWindows(path, window, stride or window, text_format)
    takes = {"vision": "a folder of photos", "molecules": "a .csv (or .csv.gz) of SMILES or an .sdf file",
             "language": "a text file"}
    raise ValueError(f"the {family} family reads {takes.get(family, 'no collection yet')}; got {path}")
