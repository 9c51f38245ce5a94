"""Sanity checks of any family's maps (Adebayo et al. 2018, cascading model-parameter randomisation).

For one model and input, the model's weights are re-initialised block by block from the output down
(ig_core.randomisation) and every method explains the same targets again on each randomised copy, through the
family like any explanation. A method whose map still ranks the features as it did once every weight is gone shows
the input, not the model, and is flagged. The control, the input itself offered as an "attribution", must be.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from families.contract import LoadedModel, ModelFamily
from ig_core import METHODS, Contrast, ScanSettings
from ig_core.randomisation import RandomisationStep, cascade, input_itself, parameter_modules, randomise, similarity

CONTROL = "Input itself (control)"
# A map whose absolute scores still rank like the original's (Spearman at least this) once every parameter has been
# re-initialised does not depend on the weights it claims to explain. Adebayo et al. read their curves by eye; on
# MobileNetV2 the gradient falls to about 0.1 and the input itself stays at 1
STILL_SIMILAR = 0.5
NOT_RANDOMISED = "none (the trained model)"


def randomised_model(model: LoadedModel, step: RandomisationStep, seed: int) -> LoadedModel:
    """A copy of the model (its family's objects with it, so that its forward runs the copy) whose step's modules
    are re-initialised; its own key, so that no cached result of the trained model is taken for it."""
    twin = copy.deepcopy(model)
    randomise(twin.module, step.modules, seed)
    twin.key = f"{model.key}:randomised:{len(step.modules)}:{seed}"
    return twin


def input_modules(family: ModelFamily, model: LoadedModel, item, seed: int = 0) -> list[str]:
    """The modules whose parameters make the engine's inputs (a language model's embeddings, and an output layer
    that shares them): re-initialising them would change the input the maps are of, so the cascade keeps them.
    Found by re-initialising each module alone on one copy of the model and restoring it."""
    twin = copy.deepcopy(model)
    modules = dict(twin.module.named_modules())
    before = [x.detach().clone() for x in family.engine_input(twin, item).inputs]

    def changes_input(names) -> bool:
        saved = {name: {key: value.clone() for key, value in modules[name].state_dict().items()} for name in names}
        randomise(twin.module, names, seed)
        after = family.engine_input(twin, item).inputs
        for name in names:
            modules[name].load_state_dict(saved[name])
        return any(not torch.equal(a, b.detach()) for a, b in zip(before, after))

    names = parameter_modules(twin.module)
    if not changes_input(names):  # most models: the input is made outside the module (one check)
        return []
    return [name for name in names if changes_input([name])]


def chance_level(features: int) -> float:
    """The Spearman correlation that chance exceeds one time in a hundred over this many features: z(0.99) /
    sqrt(n - 1), Spearman's large-sample spread. At 1 or more (6 features or fewer) no map can be told from chance."""
    return 2.326 / np.sqrt(max(features - 1, 1))


def decidable(features: int) -> bool:
    """Whether a map of this many features can be told apart from chance at all."""
    return chance_level(features) < 1


def still_similar(spearman_abs: float, features: int) -> bool:
    """Whether a randomised model's map still ranks |scores| like the trained model's: at least STILL_SIMILAR, and
    more than chance would give one time in a hundred over this many features (a few words rank alike by chance:
    z(0.99) / sqrt(n - 1), Spearman's large-sample spread)."""
    return bool(spearman_abs >= max(STILL_SIMILAR, chance_level(features)))


@dataclass
class SanityCheck:
    """The cascade's similarities: one row per method and step (step 0: the trained model, similarity 1)."""

    table: pd.DataFrame  # method, step, randomised, spearman_abs, spearman_signed[, ssim]
    steps: list[RandomisationStep]
    kept: list[str]  # the modules never re-initialised: they make the input
    features: int  # the scores per map

    def final(self) -> pd.DataFrame:
        """Each method's similarity once every parameter is re-initialised, with whether it is flagged."""
        last = self.table[self.table["step"] == len(self.steps)].drop(columns=["step", "randomised"])
        flagged = [still_similar(value, self.features) for value in last["spearman_abs"]]
        return last.assign(flagged=flagged).reset_index(drop=True)

    def flagged(self) -> list[str]:
        final = self.final()
        return final.loc[final["flagged"], "method"].tolist()


def sanity_check(family: ModelFamily, engine, model: LoadedModel, item, targets: Sequence[int | Contrast] | None,
                 settings: ScanSettings, methods: Sequence[str], steps: int = 4, seed: int = 0,
                 progress: Callable[[float], None] | None = None) -> SanityCheck:
    """The methods' maps of the item on the trained model and on each step of the cascade (at most `steps` steps),
    compared with the trained model's; the control beside them. Methods that do not apply to the item are left
    out; the settings' options go to the settings' own method, the others run at their defaults. An adaptive scan of
    a randomised copy takes at most the path points the method's map of the trained model took."""
    targets = list(targets) if targets else family.default_targets(model, item)
    names = [name for name in methods if name in METHODS and not family.refusal(model, item, name)]
    kept = input_modules(family, model, item, seed)
    cascade_steps = cascade(model.module, steps, keep=kept)
    order = ["gradient", *(name for name in names if name != "gradient")]  # the control needs the gradient's result
    runs = len(order) * (len(cascade_steps) + 1)
    maps: dict[str, list[np.ndarray]] = {}
    points: dict[str, int] = {}  # the path points of each method's map of the trained model
    for k, step in enumerate([None, *cascade_steps]):
        state = model if step is None else randomised_model(model, step, seed)
        for j, name in enumerate(order):
            done = k * len(order) + j
            step_progress = None if progress is None else (lambda f, done=done: progress((done + f) / runs))
            chosen = settings if name == settings.method else settings.with_method(name)
            if step is not None:
                # the copies' maps at the trained map's resolution: the adaptive rule would otherwise spend hundreds
                # of points on the completeness of a random network's output, which the comparison does not read
                chosen = replace(chosen, max_steps=points[name])
            request = family.engine_input(state, item)
            if family.contrast_output:  # the scores before the softmax: a random model's probabilities are all alike
                request = replace(request, output=family.contrast_output)
            result = family.attribute(engine, state, item, request, targets, chosen, progress=step_progress)
            if step is None:
                points[name] = max(int(result.points_evaluated), chosen.steps)
            explanation = family.explanation(state, item, targets, result, chosen)
            if name == "gradient":  # the control, from the gradient's result
                inputs = tuple(x.detach().cpu() for x in request.inputs)
                control = input_itself(explanation.attribution, inputs)
                maps.setdefault(CONTROL, []).append(
                    family.explanation(state, item, explanation.engine_targets, control, chosen).compared_map())
            if name in names:
                maps.setdefault(METHODS[name].label, []).append(explanation.compared_map())
    if progress is not None:
        progress(1.0)
    rows = [{"method": method, "step": k,
             "randomised": NOT_RANDOMISED if k == 0 else f"{k}. {cascade_steps[k - 1].label}",
             **similarity(states[0], states[k])}
            for method, states in maps.items() for k in range(len(states))]
    return SanityCheck(pd.DataFrame(rows), cascade_steps, kept, maps[CONTROL][0].size)
