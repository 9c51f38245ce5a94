"""Integrated gradients for the weave model, one molecule or several, through the molecules family's adapter.

    from families.molecules import load_weave
    from families.molecules.attribution import explain_molecule
    explanation = explain_molecule(engine, load_weave("w2n2"), "CCO", "SR-MMP")   # a MoleculeExplanation

The scan itself is the family's (families.molecules.family): both feature sets scaled by alpha towards its baseline
(families.molecules.baseline), the engine's result read back per atom, bond and atom pair
(families.molecules.explanation).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

from families.molecules.explanation import MoleculeExplanation, task_index
from families.molecules.family import FAMILY, loaded_weave
from families.molecules.featurize import MoleculeError
from families.molecules.weave import WeaveModel
from ig_core import ScanSettings

Progress = Callable[[float], None]


def explain_molecule(engine, model: WeaveModel, smiles_or_mol, task: int | str,
                     settings: ScanSettings | None = None, progress: Progress | None = None,
                     partial=None) -> MoleculeExplanation:
    """Integrated gradients of `task`'s prediction for one molecule (a SMILES, an RDKit Mol or its features).
    partial: called with the explanation so far as the adaptive rule refines it (ModelFamily.explain).

    Raises MoleculeError (show its message) when the input cannot be featurized."""
    loaded = loaded_weave(engine.prepare(model))
    return FAMILY.explain(engine, loaded, FAMILY.parse(loaded, smiles_or_mol), [task_index(model, task)], settings,
                          progress, partial)


def explain_many(engine, model: WeaveModel, molecules: Iterable, task: int | str,
                 settings: ScanSettings | None = None, progress: Progress | None = None
                 ) -> tuple[list[MoleculeExplanation], list[tuple[int, str]]]:
    """Explain several molecules (one cached engine scan each); -> (explanations, [(index, error)]).

    `progress(fraction)` is called as the molecules complete; molecules that cannot be featurized are
    reported, not fatal."""
    molecules = list(molecules)
    out, failed = [], []
    n = max(len(molecules), 1)
    for k, m in enumerate(molecules):
        inner = (lambda f, k=k: progress((k + min(max(f, 0.0), 1.0)) / n)) if progress is not None else None
        try:
            out.append(explain_molecule(engine, model, m, task, settings, inner))
        except MoleculeError as exc:
            failed.append((k, str(exc)))
    if progress is not None:
        progress(1.0)
    return out, failed


def boosted_settings(settings: ScanSettings, factor: int) -> ScanSettings:
    """`settings` with `factor` times the path points: the step budget for the adaptive rule, else the steps."""
    if factor <= 1:
        return settings
    if settings.rule == "adaptive":
        return dataclasses.replace(settings, max_steps=settings.max_steps * factor)
    return dataclasses.replace(settings, steps=settings.steps * factor)
