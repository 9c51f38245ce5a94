"""The molecules a molecules dataset run explains: a CSV (a SMILES column and label columns named like the model's
tasks) or an SDF (its properties as labels)."""
from __future__ import annotations

import argparse
import pathlib
from typing import Any, Mapping

import pandas as pd

from families.collection import Collection, Item
from families.contract import InputError


class MoleculeTable(Collection):
    """A CSV with a SMILES column; the other columns that name a model task are its labels."""

    kind, reads, multi_label = "molecule CSV", "a .csv (or .csv.gz) of SMILES", True
    policies = ("predicted", "actives")

    def __init__(self, path: pathlib.Path, smiles_column: str | None = None):
        super().__init__(path)
        self.smiles_column = smiles_column

    @classmethod
    def accepts(cls, path: pathlib.Path) -> bool:
        return path.suffix.lower() in (".csv", ".gz")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--smiles-column", help="a molecule CSV's SMILES column (default: the one named smiles)")

    @classmethod
    def open(cls, path: pathlib.Path, options: Mapping[str, Any]) -> "MoleculeTable":
        return cls(path, options.get("smiles_column"))

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

    kind, reads, multi_label = "molecule SDF", "an .sdf file", True
    policies = ("predicted", "actives")

    @classmethod
    def accepts(cls, path: pathlib.Path) -> bool:
        return path.suffix.lower() == ".sdf"

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

    def parse(self, family, model, item: Item):
        from rdkit import Chem

        mol = Chem.MolFromMolBlock(item.raw) if item.raw is not None else None
        if mol is None:
            raise InputError(f"{item.id} of {self.path.name} is no valid molecule")
        return family.parse(model, mol)
