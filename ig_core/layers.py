"""Integrated gradients of a layer and of a neuron (Captum's LayerIntegratedGradients and NeuronIntegratedGradients),
as path scans of the engine.

Layer IG integrates in the layer's activation space, along the straight line between the layer's activations at
the baseline and at the input: the model runs on the input while a forward hook replaces the layer's output (or
input) by the path points, so the attributions add up to F(input) - F(layer at its baseline activations). Neuron
IG is input-space IG of one value of the layer's output (or input). The hooks act only on the calling thread,
since other sessions may run the same model, and are removed however the forward ends.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Callable

import torch

from .engine import AttributionEngine, default_engine
from .inputs import as_batches, as_forward_args, baseline_tensors
from .result import Attribution


class _NeuronReached(Exception):
    """Raised by the hook that read the neuron: the rest of the model is not needed."""


@contextlib.contextmanager
def _hooked(layer: torch.nn.Module, on_input: bool, action: Callable):
    """Within the block, action(values) sees the layer's positional inputs (a tuple) or its output on the calling
    thread's forward passes; what it returns, unless None, replaces them."""
    thread = threading.get_ident()

    def before(_module, args):
        return action(args) if threading.get_ident() == thread else None

    def after(_module, _args, output):
        return action(output) if threading.get_ident() == thread else None

    handle = layer.register_forward_pre_hook(before) if on_input else layer.register_forward_hook(after)
    try:
        yield
    finally:
        handle.remove()


def _as_tuple(values) -> tuple[torch.Tensor, ...]:
    values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    if not all(isinstance(v, torch.Tensor) for v in values):
        raise ValueError(f"the layer's inputs and outputs must be tensors, got {[type(v).__name__ for v in values]}")
    return values


def _activations(model, layer, on_input: bool, inputs: tuple, forward_args: tuple) -> tuple[torch.Tensor, ...]:
    """The layer's input or output when the model runs on `inputs`, without gradients."""
    seen = []

    def record(values):  # copies, taken now: a later in-place op (ReLU(inplace=True)) would change them
        seen.append(tuple(v.detach().clone() for v in _as_tuple(values)))

    with torch.no_grad(), _hooked(layer, on_input, record):
        model(*inputs, *forward_args)
    if len(seen) != 1:
        raise ValueError(f"the layer ran {len(seen)} times in one forward pass of the model; attribute to a layer "
                         "that runs exactly once (a module used twice has no single activation)")
    return seen[0]


def _model_key(model, layer, attribute_options: dict, what: str) -> str:
    # the forward below is new on every call: the key names the model, the layer and what is attributed, so that
    # the cache recognises a repeated request (the cached forward holds the model, so its id is not reused)
    model_key = attribute_options.pop("model_key", None) or f"id:{id(model)}"
    return f"{model_key}/{what} of layer id:{id(layer)}"


def layer_integrated_gradients(engine: AttributionEngine | None, model: Callable, layer: torch.nn.Module, inputs,
                               target, baseline=None, attribute_to_layer_input: bool = False,
                               **attribute_options) -> Attribution:
    """Integrated gradients of F in the layer's activation space, shaped like the layer's output (or its input): a
    tensor, or a tuple where the layer has several. inputs and baseline are the model's (they need not be floating
    point: token ids, say); attribute_options are those of AttributionEngine.attribute (forward_args, rule, ...)."""
    engine = engine or default_engine()
    xs = as_batches(inputs, engine.device)
    bs = baseline_tensors(baseline, xs)
    args = as_forward_args(attribute_options.pop("forward_args", ()), engine.device)
    at_input = _activations(model, layer, attribute_to_layer_input, xs, args)
    at_baseline = _activations(model, layer, attribute_to_layer_input, bs, args)
    count = len(at_input)
    engine.freeze(model)

    def layer_forward(*points_and_rest):
        # copies: a later in-place op (ReLU(inplace=True)) must not write into the path points autograd holds
        points = tuple(p.clone() for p in points_and_rest[:count])

        def replace(values):  # the path points, in the layer's own structure: a tensor or a tuple
            return points if isinstance(values, tuple) else points[0]

        with _hooked(layer, attribute_to_layer_input, replace):
            return model(*points_and_rest[count:])

    model_key = _model_key(model, layer, attribute_options, "input" if attribute_to_layer_input else "output")
    return engine.attribute(layer_forward, at_input if count > 1 else at_input[0], target,
                            at_baseline if count > 1 else at_baseline[0], forward_args=(*xs, *args),
                            model_key=model_key, **attribute_options)


def neuron_integrated_gradients(engine: AttributionEngine | None, model: Callable, layer: torch.nn.Module,
                                neuron_index: int | tuple[int, ...], inputs, baseline=None,
                                attribute_to_neuron_input: bool = False, **attribute_options) -> Attribution:
    """Input-space integrated gradients of one neuron: the value at `neuron_index` (an int or a tuple, indexing one
    example's slice) of the layer's output, or of its input, the first time the layer runs. Adds up to
    neuron(input) - neuron(baseline). The model stops at the layer: what comes after it is not run.
    attribute_options as for AttributionEngine.attribute."""
    engine = engine or default_engine()
    index = (slice(None), *(neuron_index if isinstance(neuron_index, tuple) else (neuron_index,)))

    def read_neuron(values):
        values = _as_tuple(values)
        if len(values) != 1:
            raise ValueError(f"the layer has {len(values)} {'inputs' if attribute_to_neuron_input else 'outputs'}; "
                             "a neuron is read from a layer with one")
        neuron = values[0][index]
        if neuron.dim() != 1:
            raise ValueError(f"neuron_index {neuron_index} picks {tuple(neuron.shape[1:])} values per example from "
                             f"the layer's {tuple(values[0].shape)}; give one index per dimension after the batch")
        raise _NeuronReached(neuron)

    def neuron_forward(*inputs_and_args):
        with _hooked(layer, attribute_to_neuron_input, read_neuron):
            try:
                model(*inputs_and_args)
            except _NeuronReached as reached:
                return reached.args[0]
        raise ValueError("the layer did not run in the model's forward pass")

    engine.freeze(model)
    what = f"neuron {neuron_index} of the {'input' if attribute_to_neuron_input else 'output'}"
    model_key = _model_key(model, layer, attribute_options, what)
    return engine.attribute(neuron_forward, inputs, None, baseline, model_key=model_key, **attribute_options)
