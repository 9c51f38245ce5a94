"""Tables: a small classifier of one row of numeric columns, explained column by column.

The smallest family: a checkpoint holds the column names, the class names, the columns' training means and
standard deviations, and the weights of a multilayer perceptron on the standardised columns; optionally a few
training rows, the reference set of Expected Gradients. The baseline is the training mean row, so each column's
attribution says how far its value moves the prediction from an average row's.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from families.checkpoint import CheckpointError, load_weights, read_checkpoint, save_checkpoint
from families.contract import EngineInput, Explanation, InputError, LoadedModel, ModelFamily, ModelSource
from ig_core import Attribution, ScanSettings

FORMAT, VERSION = "ig-dashboard/table-classifier", 1
MAX_REFERENCES = 64  # training rows kept in a checkpoint as the reference set


class TableClassifier(torch.nn.Module):
    """Standardise the columns, then a multilayer perceptron: rows [N, columns] -> logits [N, classes]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], hidden: Sequence[int], classes: int):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        sizes = [len(mean), *hidden]
        layers: list[torch.nn.Module] = []
        for size_in, size_out in zip(sizes, sizes[1:]):
            layers += [torch.nn.Linear(size_in, size_out), torch.nn.ReLU()]
        self.layers = torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-1], classes))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.layers((rows - self.mean) / self.std)


def save_table_classifier(path, model: TableClassifier, columns: Sequence[str], classes: Sequence[str],
                          hidden: Sequence[int], card: dict, reference_rows: torch.Tensor | None = None) -> None:
    """The checkpoint (and a short card) of a trained TableClassifier; reference_rows: training rows [R, columns]
    (the first MAX_REFERENCES are kept) for the methods that draw baselines from a reference set."""
    payload = dict(format=FORMAT, version=VERSION, columns=list(columns), classes=list(classes),
                   hidden=list(hidden), state_dict=model.state_dict(), card=card)
    if reference_rows is not None:
        payload["reference_rows"] = torch.as_tensor(reference_rows, dtype=torch.float32)[:MAX_REFERENCES].clone()
    text = f"# Table classifier\n\nColumns: {', '.join(columns)}. Classes: {', '.join(classes)}.\n\n" + "\n".join(
        f"- {key}: {value}" for key, value in card.items())
    save_checkpoint(path, payload, text)


class TableExplanation(Explanation):
    def __init__(self, attribution: Attribution, targets, target_names, settings, model_key, columns, row):
        super().__init__(attribution, targets, target_names, settings, model_key)
        self.columns, self.row = list(columns), row

    def scores(self, t: int) -> dict[str, float]:
        return dict(zip(self.columns, self.attribution.attributions_per_target[0][t, 0].double().tolist()))


class TabularFamily(ModelFamily):
    name, input_name = "tabular", "row"
    no_references = "this model's checkpoint ships no training rows (save it with reference_rows)"

    def load(self, source: ModelSource, device: torch.device) -> LoadedModel:
        payload = read_checkpoint(source.read(), source.name, FORMAT, VERSION,
                                  {"columns": list, "classes": list, "hidden": list, "state_dict": dict},
                                  "save one with families.tabular.family.save_table_classifier")
        state, columns = payload["state_dict"], payload["columns"]
        if state.get("mean") is None or len(state["mean"]) != len(columns):
            raise CheckpointError(f"{source.name} is damaged: it has no training means for its {len(columns)} columns.")
        model = TableClassifier(state["mean"].tolist(), state["std"].tolist(), payload["hidden"],
                                len(payload["classes"]))
        load_weights(model, state, source.name)
        references = payload.get("reference_rows")
        if references is not None:
            if (not isinstance(references, torch.Tensor) or references.dim() != 2
                    or references.shape[1] != len(columns) or not torch.isfinite(references).all()):
                raise CheckpointError(f"{source.name} is damaged: its reference rows are not finite rows of "
                                      f"{len(columns)} values.")
            model.register_buffer("reference_rows", references.float(), persistent=False)  # moves with the model
        model = model.to(device).eval().requires_grad_(False)
        return LoadedModel(key=f"tabular:{source.name}:{source.digest[:16]}", name=source.name,
                           target_names=list(payload["classes"]), module=model, card=dict(payload.get("card") or {}),
                           extra=columns)

    def parse(self, model: LoadedModel, raw) -> torch.Tensor:
        """A row: a mapping column -> value, or a sequence of values in the columns' order."""
        columns = model.extra
        values = [raw.get(column) for column in columns] if isinstance(raw, dict) else list(raw)
        if len(values) != len(columns):
            raise InputError(f"A row of this model has {len(columns)} values ({', '.join(columns)}); "
                             f"got {len(values)}.")
        try:
            row = [float(value) for value in values]
        except (TypeError, ValueError):
            raise InputError(f"Every value of a row must be a number; got {values}.") from None
        if not all(math.isfinite(value) for value in row):
            raise InputError("Every value of a row must be a finite number.")
        return torch.tensor([row], dtype=torch.float32, device=model.module.mean.device)

    def engine_input(self, model: LoadedModel, item: torch.Tensor) -> EngineInput:
        return EngineInput(forward=model.module, inputs=(item,), baseline=(model.module.mean.unsqueeze(0),),
                           output="softmax")

    def references(self, model: LoadedModel, item: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """The training rows the checkpoint ships, if any."""
        rows = getattr(model.module, "reference_rows", None)
        return None if rows is None else (rows,)

    def explanation(self, model: LoadedModel, item, targets, result: Attribution,
                    settings: ScanSettings) -> TableExplanation:
        return TableExplanation(result, targets, [model.target_names[t] for t in targets], settings, model.key,
                                model.extra, item[0].tolist())
