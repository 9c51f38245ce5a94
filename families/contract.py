"""The contract every model family implements (images, molecules, words, tables, ...).

The dashboard's pages, the dataset runs and the tests work through it, so a new family is one adapter file
(models/families/) and one page. A family says where its models come from and loads one with a readable
error; parses a user's input or refuses it with a clear message; turns it into the engine's tensors and
baseline; and maps the engine's result back to its own units (pixels, atoms and bonds, words, columns) in an
explanation that also gives a flat record for storage.
"""
from __future__ import annotations

import hashlib
import pathlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch

from ig_core import METHODS, Attribution, ScanSettings, method

from families.config import models_dir


class FamilyError(ValueError):
    """A refusal the user can act on: a model file that cannot be used, an input the model cannot read."""


class InputError(FamilyError):
    """An input the family cannot parse (an unreadable photo, an invalid SMILES, a text with no words)."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, as the user sees it: `name` is all the browser ever shows."""

    name: str  # "shipped: w2n2", "my_model.pt" (relative to the family's models folder), "upload: x.pt"
    path: pathlib.Path | None = None  # on the server; never shown
    data: bytes | None = None  # an upload's bytes
    options: tuple = ()  # family-specific settings that are part of the model's identity (sorted pairs)

    def read(self) -> bytes:
        from families.checkpoint import read_file

        return self.data if self.data is not None else read_file(self.path, self.name)

    @property
    def digest(self) -> str:
        """Content digest: two routes to the same bytes are one model (caches, the results store)."""
        content = self.read() if (self.data is not None or self.path is not None) else self.name.encode()
        return hashlib.sha256(content + repr(self.options).encode()).hexdigest()


@dataclass
class LoadedModel:
    """A model ready for the engine (on its device, eval mode, frozen) and what the family needs to use it."""

    key: str  # family, name and content digest: the key of caches and of stored results
    name: str
    target_names: list[str]
    module: torch.nn.Module
    card: dict = field(default_factory=dict)  # what the model is: data, metrics, how it was made
    extra: Any = None  # the family's own model object (a classifier with its preprocessing, a vocabulary, ...)


@dataclass
class EngineInput:
    """One parsed input as the engine needs it: scores = forward(*inputs) [batch, targets], F = output(scores)."""

    forward: Callable[..., torch.Tensor]
    inputs: tuple[torch.Tensor, ...]
    baseline: tuple[torch.Tensor, ...]
    output: str = "identity"  # ig_core.OUTPUT_TRANSFORMS: "softmax", "sigmoid", "identity", ...
    probe_alphas: Sequence[float] = ()  # interior gradients to keep
    keep_all_gradients: bool = False  # keep the interior gradient at every evaluated alpha (small inputs only)
    layer: torch.nn.Module | None = None


class Explanation:
    """What every family's explanation shares, read once from the engine's result (example 0, targets t).

    The shared methods read the engine's arrays directly, so a family may give the convenience names below its
    own meaning (a molecule's single-task `score_input` as a float, say)."""

    def __init__(self, attribution: Attribution, targets: Sequence[int], target_names: Sequence[str],
                 settings: ScanSettings, model_key: str):
        self.attribution = attribution
        self.targets = [int(t) for t in targets]
        self.target_names = list(target_names)
        self.settings = settings
        self.model_key = model_key

    def per_target(self, name: str) -> np.ndarray:
        """One of the engine's [N, T] arrays for example 0: score_input, score_baseline, delta, relative_delta."""
        return getattr(self.attribution, name)[0]

    def nothing_per_target(self) -> np.ndarray:
        """[T] F(input) = F(baseline) up to rounding: nothing to attribute."""
        nothing = self.attribution.nothing_to_attribute
        return np.zeros(len(self.targets), bool) if nothing is None else nothing[0]

    @property
    def score_input(self) -> np.ndarray:  # [T] F(input)
        return self.per_target("score_input")

    @property
    def score_baseline(self) -> np.ndarray:  # [T] F(baseline)
        return self.per_target("score_baseline")

    @property
    def relative_delta(self) -> np.ndarray:  # [T] |sum of attributions - (F(input) - F(baseline))| / |...|
        return self.per_target("relative_delta")

    @property
    def completeness_ok(self) -> bool:
        """No completeness failure: the attributions add up within the tolerance, or the method defines no law."""
        if not self.attribution.completeness_defined:
            return not self.attribution.nonfinite
        relevant = self.per_target("relative_delta")[~self.nothing_per_target()]
        return not self.attribution.nonfinite and bool(np.all(relevant <= self.settings.tolerance))

    def scores(self, t: int) -> dict[str, float]:
        """The t-th target's attributions in the family's units (pixel, atom, word, column -> score)."""
        raise NotImplementedError

    def records(self, item_id: str, source: str) -> list[dict]:
        """Flat records for storage, one per target: completeness, the scan and the scores in domain units."""
        a = self.attribution
        return [{"item_id": item_id, "source": source, "model_key": self.model_key, "method": a.method, "rule": a.rule,
                 "settings": repr(self.settings), "target": target, "target_name": name,
                 **{name_: float(self.per_target(name_)[t])
                    for name_ in ("score_input", "score_baseline", "delta", "relative_delta")},
                 "points_evaluated": int(a.points_evaluated), "scores": self.scores(t)}
                for t, (target, name) in enumerate(zip(self.targets, self.target_names))]


class ModelFamily(ABC):
    """One family of models: an adapter between its domain and the engine."""

    name: ClassVar[str]  # "vision", "molecules", ...: also the family's subfolder of the models folder
    input_name: ClassVar[str]  # what one input is called in messages: "photo", "molecule", "text", "row"
    model_suffixes: ClassVar[tuple[str, ...]] = (".pt",)  # model files listed and uploaded
    no_references: ClassVar[str] = "this family has no other inputs shaped like this one"  # why references() is None

    def sources(self) -> list[ModelSource]:
        """The models a user can choose: the shipped ones, then the files of the family's models folder."""
        folder = models_dir() / self.name
        files = sorted(p for p in folder.rglob("*") if p.suffix in self.model_suffixes) if folder.is_dir() else []
        return self.shipped() + [ModelSource(str(p.relative_to(folder)), path=p) for p in files]

    def shipped(self) -> list[ModelSource]:
        return []

    @abstractmethod
    def load(self, source: ModelSource, device: torch.device) -> LoadedModel:
        """The model, or a FamilyError that says why not (never random weights)."""

    @abstractmethod
    def parse(self, model: LoadedModel, raw) -> Any:
        """One user input (bytes, a string) as the family's item, or an InputError."""

    @abstractmethod
    def engine_input(self, model: LoadedModel, item) -> EngineInput:
        """The item's tensors, its baseline and the forward function the engine differentiates."""

    @abstractmethod
    def explanation(self, model: LoadedModel, item, targets: Sequence[int], result: Attribution,
                    settings: ScanSettings) -> Explanation:
        """The engine's result in the family's units."""

    def default_targets(self, model: LoadedModel, item) -> list[int]:
        """The targets explained when the user picks none: the top prediction."""
        request = self.engine_input(model, item)
        with torch.no_grad():
            scores = request.forward(*request.inputs)
        return [int(scores[0].argmax())]

    def references(self, model: LoadedModel, item) -> tuple[torch.Tensor, ...] | None:
        """Other inputs shaped like this item's tensors [R, ...], for the methods that draw their baselines from a
        reference set (Expected Gradients); None where the family has none (inputs of different shapes)."""
        return None

    def refusal(self, model: LoadedModel, item, name: str, **options) -> str:
        """Why the method `name` (with its options) does not apply to this item; "" when it does."""
        chosen = method(name, **options)
        if chosen.images_only and not all(x.dim() == 4 for x in self.engine_input(model, item).inputs):
            return f"{chosen.label} works on images only, and a {self.input_name} is no image."
        if chosen.reference_set and self.references(model, item) is None:
            return (f"{chosen.label} draws its baselines from a set of other inputs shaped like this "
                    f"{self.input_name}, and {self.no_references}.")
        return ""

    def methods(self, model: LoadedModel, item) -> list[str]:
        """The attribution methods that apply to this item: image methods need [N, C, H, W] inputs, reference-set
        methods need the family's references."""
        return [name for name in METHODS if not self.refusal(model, item, name)]

    def method_options(self, model: LoadedModel, name: str, options: dict) -> dict:
        """The options a method runs with on this family's inputs: a family fills in what depends on its input
        units (white in a normalised network's units, say)."""
        return options

    def explain(self, engine, model: LoadedModel, item, targets: Sequence[int] | None = None,
                settings: ScanSettings | None = None, progress=None,
                partial: Callable[[Explanation], bool | None] | None = None) -> Explanation:
        """One engine run of the settings' method for all targets, returned in the family's units. partial: called
        with the explanation so far after each round of the adaptive rule; False stops it (engine.attribute's
        partial_results)."""
        settings = settings or ScanSettings()
        targets = list(targets) if targets else self.default_targets(model, item)
        request = self.engine_input(model, item)
        baseline = request.baseline
        options = self.method_options(model, settings.method, dict(settings.method_options))
        chosen = method(settings.method, **options)
        if chosen.reference_set:
            baseline = self.references(model, item)
            if baseline is None:
                raise FamilyError(self.refusal(model, item, settings.method, **dict(settings.method_options)))
        result = engine.attribute(request.forward, request.inputs, targets, baseline, settings.steps,
                                  settings.rule, tolerance=settings.tolerance, max_steps=settings.max_steps,
                                  probe_alphas=request.probe_alphas, keep_all_gradients=request.keep_all_gradients,
                                  output=request.output, layer=request.layer,
                                  model_key=model.key, progress=progress, max_batch=settings.max_batch,
                                  amp=settings.amp, method=settings.method, method_options=options,
                                  partial_results=None if partial is None else (
                                      lambda so_far: partial(self.explanation(model, item, targets, so_far, settings))))
        return self.explanation(model, item, targets, result, settings)
