"""Molecules: a weave network's Tox21 predictions, explained atom by atom and bond by bond (paper Section 3.1).

A molecule (SMILES or an RDKit Mol) is featurized with the model's own featurizer into atom features [A, Fa]
and ordered-pair features [P, Fp]; both are scaled together towards the family's baseline (families.molecules.baseline:
by default the same graph with atom and bond types blanked; "zeros", all-zero features, is the paper's).
F is the log-odds of active of a classification task (a probability saturates and hides the atoms that push it
further) or a regression task's value; a contrast of two classification tasks, "this task rather than that",
explains log-odds(a) - log-odds(b).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from families.contract import EngineInput, FamilyError, LoadedModel, ModelFamily, ModelSource, has_contrast
from families.molecules import MoleculeFeatures, WeaveModel, read_weave_checkpoint, shipped_checkpoint_dir, weave_model
from families.molecules.baseline import BASELINES, DEFAULT_BASELINE
from families.molecules.collection import MoleculeSDF, MoleculeTable
from families.molecules.explanation import (
    MoleculeExplanation,
    contrast_refusal,
    featurize,
    graph_digest,
    model_fingerprint,
)
from families.molecules.ground_truth import TASKS
from ig_core import Attribution, Contrast, ScanSettings


def loaded_weave(model: WeaveModel) -> LoadedModel:
    """A weave model already in memory (a script's, a test's) as the family's LoadedModel, keyed by its weights."""
    return LoadedModel(key=f"weave:{model_fingerprint(model)}", name="weave", target_names=list(model.task_names),
                       module=model, card={"metrics": getattr(model, "metrics", {})})


class MoleculeFamily(ModelFamily):
    name, input_name = "molecules", "molecule"
    collections = (MoleculeSDF, MoleculeTable)
    trust_checks = {f"ground truth: {task}": f"python -m families.molecules.attribution_benchmark --task {task} "
                                             f"--model families/molecules/benchmark_models/{task}-weave.pt"
                    for task in TASKS}
    # "this task rather than that": a difference of the log-odds that the forward returns (other models refuse:
    # contrast_refusal)
    contrast_output = "identity"
    no_references = ("molecules are graphs of different sizes: no other molecule has this one's atom and pair "
                     "tensors")

    def __init__(self, baseline: str = DEFAULT_BASELINE):
        self.baseline = BASELINES[baseline]

    def shipped(self) -> list[ModelSource]:
        folder = shipped_checkpoint_dir()
        files = sorted(folder.glob("*.pt")) if folder.is_dir() else []
        return [ModelSource(f"shipped: {path.stem}", path=path) for path in files]

    def load(self, source: ModelSource, device: torch.device) -> LoadedModel:
        model = weave_model(read_weave_checkpoint(source.read(), source.name), source.name).to(device)
        loaded = loaded_weave(model)
        return dataclasses.replace(loaded, key=f"molecules:{source.name}:{source.digest[:16]}", name=source.name)

    def parse(self, model: LoadedModel, raw) -> MoleculeFeatures:
        """A SMILES string or an RDKit Mol, featurized by the model's featurizer; MoleculeError (an InputError)."""
        return featurize(model.module, raw)

    def engine_input(self, model: LoadedModel, item: MoleculeFeatures) -> EngineInput:
        weave = model.module
        # F is a classification task's log-odds, not P(active): a probability saturates near 0 and 1, where the
        # atoms that push the log-odds further get almost nothing. On the molecule benchmark's logic8 this raised
        # the attribution AUROC from 0.71 to 0.99 (bench/RESULTS-molecule-benchmark-logic8.md)
        bound = weave.bind(item, output="log_odds")
        classification = not bool(weave.regression.any())
        return EngineInput(forward=bound, inputs=bound.inputs,
                           baseline=self.baseline.of(weave.featurizer, bound.inputs), output="identity",
                           probability="sigmoid" if classification else None)

    def method_options(self, model: LoadedModel, name: str, options: dict) -> dict:
        # the baseline keeps the structure columns and a one-hot column is zero at both ends: by the paper's rule IDGI
        # gave such unmoved columns 98% of a map (ig_core.methods.idgi)
        return {"moving_only": True, **options} if name == "idgi" else options

    def stacking_key(self, request: EngineInput) -> tuple:
        """A molecule's forward binds its own graph, so molecules of any size go together (stacked_input)."""
        return request.forward.model, request.forward.output, request.output, request.layer

    def stacked_input(self, model: LoadedModel, items: Sequence[MoleculeFeatures],
                      requests: Sequence[EngineInput]) -> EngineInput:
        """The molecules' graphs bound together, each padded to the largest; the padding rows are zero at both ends
        of the path, as the baseline keeps nothing but some of the molecules' own values."""
        bound = model.module.bind(list(items), output=requests[0].forward.output)
        return dataclasses.replace(requests[0], forward=bound, inputs=bound.inputs,
                                   baseline=self.baseline.of(model.module.featurizer, bound.inputs))

    def attribute(self, engine, model: LoadedModel, item, request: EngineInput, targets, settings: ScanSettings,
                  **engine_options) -> Attribution:
        refusal = contrast_refusal(model.module) if has_contrast(targets) else None
        if refusal:
            raise FamilyError(f"No contrast of tasks: {refusal}.")
        return super().attribute(engine, model, item, request, targets, settings, **engine_options)

    def explain(self, engine, model: LoadedModel, item, targets=None, settings=None, progress=None, partial=None):
        """The base's scan, cached under a key that also names the molecule's graph (not in the scaled tensors)."""
        keyed = dataclasses.replace(model, key=f"{model.key}:{graph_digest(item)}")
        return super().explain(engine, keyed, item, targets, settings, progress, partial)

    def explanation(self, model: LoadedModel, item: MoleculeFeatures, targets: Sequence[int], result: Attribution,
                    settings: ScanSettings) -> MoleculeExplanation:
        # one task per explanation (the page explains the task it shows): the first of `targets`, or a contrast
        first = targets[0]
        task, other = (int(first.target), int(first.rather_than)) if isinstance(first, Contrast) else (int(first), None)
        atom_attr, pair_attr = result.attributions_per_target  # [T, 1, A, Fa], [T, 1, P, Fp] (P padded to >= 1)
        return MoleculeExplanation(
            attribution=result, settings=settings, model_key=model.key, features=item, task=task, other_task=other,
            task_names=list(model.target_names), weave=model.module,
            task_regression=[bool(r) for r in model.module.regression.tolist()], baseline=self.baseline,
            atom_attr=atom_attr[0, 0, :item.n_atoms].double().cpu().numpy(),
            pair_attr=pair_attr[0, 0, :item.n_pairs].double().cpu().numpy())


FAMILY = MoleculeFamily()
