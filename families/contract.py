"""The contract every model family implements (images, molecules, words, tables, ...).

The dashboard's pages, the dataset runs and the tests work through it, so a new family is one package
(families/<name>/) and one page. A family says where its models come from and loads one with a readable
error; parses a user's input or refuses it with a clear message; turns it into the engine's tensors and
baseline; and maps the engine's result back to its own units (pixels, atoms and bonds, words, columns) in an
explanation that also gives a flat record for storage. For dataset runs it names the collections it reads and
says which inputs can share an engine call and how they are stacked.
"""
from __future__ import annotations

import hashlib
import pathlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any, Callable, ClassVar, Hashable, Mapping, Sequence

import numpy as np
import torch

from families.collection import Collection
from families.config import models_dir
from ig_core import METHODS, Attribution, Contrast, ScanSettings, method


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
    # where F is no probability but the scores have one (a classifier explained on its log-odds): the transform of
    # OUTPUT_TRANSFORMS that gives it, for the records beside F
    probability: str | None = None
    probe_alphas: Sequence[float] = ()  # interior gradients to keep
    keep_all_gradients: bool = False  # keep the interior gradient at every evaluated alpha (small inputs only)
    layer: torch.nn.Module | None = None

    def scan_options(self) -> dict:
        """The keyword arguments of AttributionEngine.attribute that come with the input, besides its tensors."""
        return {"output": self.output, "probe_alphas": self.probe_alphas, "keep_all_gradients": self.keep_all_gradients,
                "layer": self.layer}


# F(input) - F(baseline) at most this fraction of the parts' total size (a molecule's |atoms| + |bonded pairs| +
# |non-bonded pairs|, a window's |words|) means the parts all but cancel: their shares of the difference would add
# up, in size, to 5,000% or more, which says more about how small the difference is than about the input. A fraction
# of the parts, not of F, so that a regression task's units and offset do not matter. On W2N2's Tox21 rows the
# molecules it picks out score within about 0.05 of the baseline's P(active); 5% also picked out molecules 0.12
# away, which do not score like the baseline
NEAR_EQUAL_FRACTION = 0.02


def has_contrast(targets) -> bool:
    """Whether a call's targets (one, or a list) hold a contrastive target, "a rather than b"."""
    return isinstance(targets, Contrast) or (isinstance(targets, (list, tuple))
                                             and any(isinstance(t, Contrast) for t in targets))


def target_label(names: Sequence[str], target: int | Contrast) -> str:
    """A target's name among the model's: its class's, or for a contrast "a rather than b"."""
    if isinstance(target, Contrast):
        return f"{names[int(target.target)]} rather than {names[int(target.rather_than)]}"
    return names[int(target)]


class Explanation:
    """What every family's explanation shares, read once from the engine's result (example 0, targets t).

    The names below keep their types in every family ([T] arrays over the explained targets); a family adds its
    own names for its own views (a molecule's single task's `task_score_input` as a float, say)."""

    def __init__(self, attribution: Attribution, targets: Sequence[int | Contrast], target_names: Sequence[str],
                 settings: ScanSettings, model_key: str):
        self.attribution = attribution
        self.targets = [int(t.target if isinstance(t, Contrast) else t) for t in targets]  # the classes explained
        # what each target is explained rather than (F = score[target] - score[rather_than]); None: a plain target
        self.rather_than = [int(t.rather_than) if isinstance(t, Contrast) else None for t in targets]
        self.target_names = list(target_names)
        self.settings = settings
        self.model_key = model_key

    @property
    def engine_targets(self) -> list[int | Contrast]:
        """The targets as the engine takes them, contrasts included: what another run explains to be comparable."""
        return [t if other is None else Contrast(t, other) for t, other in zip(self.targets, self.rather_than)]

    @property
    def contrasted(self) -> bool:
        """Whether a target is a contrast: then every target was explained on the family's contrast_output."""
        return any(other is not None for other in self.rather_than)

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

    def compared_map(self, t: int = 0) -> np.ndarray:
        """The t-th target's scores as the sanity check ranks them against another model's: features of one kind (a
        2-D map where the family gives one, an image's pixels). By default every score, in order."""
        scores = self.scores(t)
        return np.asarray(list(scores.values()) if isinstance(scores, dict) else scores, dtype=np.float64)

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
    collections: ClassVar[tuple[type[Collection], ...]] = ()  # the inputs of its dataset runs, first match first
    # the output (one of ig_core.CONTRAST_OUTPUTS) on which a contrastive target, "a rather than b", is explained, with
    # every other target of its call; None: the family offers no contrasts
    contrast_output: ClassVar[str | None] = None
    # what else says how far a method can be trusted on this family's models, beside the sanity check every family
    # has: a check's name -> the command that records it in the trust folder (families.trust)
    trust_checks: ClassVar[dict[str, str]] = {}

    def sources(self) -> list[ModelSource]:
        """The models a user can choose: the shipped ones, then the files of the family's models folder."""
        folder = models_dir() / self.name
        files = sorted(p for p in folder.rglob("*") if p.suffix in self.model_suffixes) if folder.is_dir() else []
        return self.shipped() + [ModelSource(str(p.relative_to(folder)), path=p) for p in files]

    def shipped(self) -> list[ModelSource]:
        return []

    def source_named(self, name: str | None) -> ModelSource:
        """A model by the name the dashboard lists ("shipped: w2n2"), its short name ("w2n2", "mobilenet_v2",
        "small.pt"), or a file's path; the family's first model when none is named. FamilyError otherwise."""
        sources = self.sources()
        if not name:
            if not sources:
                raise FamilyError(f"the {self.name} family has no model here: name a model file")
            return sources[0]
        for source in sources:
            short = source.name.split(": ", 1)[-1].removesuffix(" (default)")
            if name in (source.name, short, PurePath(short).stem):
                return source
        path = pathlib.Path(name)
        if path.is_file():
            return ModelSource(path.name, path=path.resolve())
        raise FamilyError(f"no {self.name} model named {name!r}; choose one of "
                          f"{', '.join(repr(s.name) for s in sources) or '(none)'} or give a model file's path")

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
    def explanation(self, model: LoadedModel, item, targets: Sequence[int | Contrast], result: Attribution,
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

    def open_collection(self, path: pathlib.Path, options: Mapping[str, Any]) -> Collection:
        """The collection a dataset run reads from `path` (options: every collection's command-line options by
        name), or a FamilyError saying what the family reads."""
        for kind in self.collections:
            if kind.accepts(path):
                return kind.open(path, options)
        reads = " or ".join(kind.reads for kind in self.collections) or "no collection yet"
        raise FamilyError(f"the {self.name} family reads {reads}; got {path}")

    def stacking_key(self, request: EngineInput) -> Hashable:
        """Inputs with equal keys can share one engine call (`stacked_input`): by default those of one forward,
        output and layer whose tensors have one shape."""
        shapes = tuple((tuple(x.shape), x.dtype) for x in request.inputs)
        return request.forward, request.output, request.layer, shapes

    def stacked_input(self, model: LoadedModel, items: Sequence, requests: Sequence[EngineInput]) -> EngineInput:
        """One engine input for several items of one stacking key, as examples [N, ...] in their order: by default
        their tensors and baselines concatenated."""
        return replace(requests[0], inputs=tuple(torch.cat(xs) for xs in zip(*(r.inputs for r in requests))),
                       baseline=tuple(torch.cat(bs) for bs in zip(*(r.baseline for r in requests))))

    def attribute(self, engine, model: LoadedModel, item, request: EngineInput, targets, settings: ScanSettings,
                  **engine_options) -> Attribution:
        """One engine run of the settings' method on `request`: the item's own (engine_input), or several items'
        stacked (stacked_input; `item` is the first, and only integrated gradients are stacked). The family fills
        in the method's options that depend on its units; a reference-set method draws its baselines from the
        family's references. A call with a contrastive target (ig_core.Contrast) explains all its targets on the
        family's contrast_output. engine_options: AttributionEngine.attribute's progress and partial_results."""
        if has_contrast(targets):
            if self.contrast_output is None:
                raise FamilyError(f"the {self.name} family offers no contrasts (a target rather than another)")
            request = replace(request, output=self.contrast_output)
        chosen = dict(settings.method_options)
        scan = settings.with_method(settings.method, **self.method_options(model, settings.method, chosen))
        baseline = request.baseline
        if method(scan.method, **dict(scan.method_options)).reference_set:
            baseline = self.references(model, item)
            if baseline is None:
                raise FamilyError(self.refusal(model, item, settings.method, **chosen))
        return engine.attribute(request.forward, request.inputs, targets, baseline, model_key=model.key,
                                **request.scan_options(), **scan.options(), **engine_options)

    def explain(self, engine, model: LoadedModel, item, targets: Sequence[int | Contrast] | None = None,
                settings: ScanSettings | None = None, progress=None,
                partial: Callable[[Explanation], bool | None] | None = None) -> Explanation:
        """One engine run of the settings' method for all targets, returned in the family's units. partial: called
        with the explanation so far after each round of the adaptive rule; False stops it (engine.attribute's
        partial_results)."""
        settings = settings or ScanSettings()
        targets = list(targets) if targets else self.default_targets(model, item)
        partial_results = None if partial is None else (
            lambda so_far: partial(self.explanation(model, item, targets, so_far, settings)))
        result = self.attribute(engine, model, item, self.engine_input(model, item), targets, settings,
                                progress=progress, partial_results=partial_results)
        return self.explanation(model, item, targets, result, settings)
