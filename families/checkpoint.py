"""Model files of every family: safe loading, the dashboard's checkpoint format, atomic saving, the model card.

A checkpoint is a dict of plain Python values and tensors that `torch.load(weights_only=True)` reads: nothing
in the file is executed. Its `format` names the family's model and `version` the layout; the card (same name,
`.md`) says for people what the model is, what it was trained on and how well it does. Messages name files
by the name the user knows them by, never by their place on the server.
"""
from __future__ import annotations

import io
import os
import pathlib
import pickle
import warnings
from typing import Mapping

import torch

TORCH_FILE_STARTS = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive, or a legacy pickle


class CheckpointError(ValueError):
    """A model file that cannot be used; the message says why in words a user can act on."""


def read_file(path: pathlib.Path, name: str, kind: str = "model file") -> bytes:
    """A file's bytes; errors call it by `name` (what the user knows it as) and `kind`."""
    try:
        return pathlib.Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"The {kind} {name} does not exist.") from None
    except OSError as exc:
        raise CheckpointError(f"The {kind} {name} could not be read ({exc.strerror or type(exc).__name__}).") from None


def safe_load(source: bytes | pathlib.Path, name: str):
    """torch.load with weights_only=True from bytes or a file; CheckpointError for anything it refuses."""
    data = source if isinstance(source, bytes) else read_file(source, name)
    if not data.startswith(TORCH_FILE_STARTS):
        raise CheckpointError(f"{name} is not a PyTorch weights file (torch.save writes a zip archive or a pickle; "
                              "this is neither).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle protocol notices for foreign pickles
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{name} is not a plain state_dict or checkpoint: it holds Python objects or code that "
                              "safe loading refuses (a whole pickled model?). "
                              "Only tensors and plain values are read.") from None
    except Exception as exc:  # a damaged or truncated archive; the first line only (later ones may be C++ frames)
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise CheckpointError(f"{name} is not a readable PyTorch weights file "
                              f"({type(exc).__name__}: {detail}).") from None


def read_checkpoint(source: bytes | pathlib.Path, name: str, format_name: str, version: int,
                    required: Mapping[str, type] = (), how_to_make: str = "") -> dict:
    """The checkpoint dict, checked: its format and version, and the keys a family needs with their types."""
    payload = safe_load(source, name)
    if not isinstance(payload, dict) or payload.get("format") != format_name:
        raise CheckpointError(f"{name} is not a {format_name} checkpoint (a bare state_dict or another model's file "
                              f"cannot be used here){'; ' + how_to_make if how_to_make else ''}.")
    found = payload.get("version", payload.get("format_version"))
    if found != version:
        raise CheckpointError(f"{name} has checkpoint version {found!r}; this code reads version {version}.")
    for key, kind in dict(required).items():
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{name} is damaged: {key!r} is missing or not a {kind.__name__}.")
    return payload


def load_weights(model: torch.nn.Module, state: Mapping, name: str) -> torch.nn.Module:
    """Load a state_dict whose names and shapes must match the model exactly, and whose values are finite."""
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{name}: the weights do not fit the model (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]}).")
    for key, value in expected.items():
        if not isinstance(state[key], torch.Tensor) or state[key].shape != value.shape:
            raise CheckpointError(f"{name}: weight {key} has shape {tuple(getattr(state[key], 'shape', ()))}, "
                                  f"the model needs {tuple(value.shape)}.")
        if state[key].is_floating_point() and not torch.isfinite(state[key]).all():
            raise CheckpointError(f"{name}: weight {key} holds NaN or infinite values.")
    model.load_state_dict({key: value.to(expected[key].dtype) for key, value in state.items()})
    return model


def plain(value):
    """Plain Python values only (weights_only loading refuses other types, e.g. torch.__version__'s TorchVersion)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, torch.Tensor):
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")


def save_checkpoint(path: pathlib.Path, payload: dict, card: str | None = None) -> pathlib.Path:
    """Write the checkpoint (and its card) atomically: a temporary file, then a rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    torch.save(plain(payload), temporary)
    os.replace(temporary, path)
    if card is not None:
        card_path = path.with_suffix(".md")
        temporary = card_path.with_name(card_path.name + ".part")
        temporary.write_text(card, encoding="utf-8")
        os.replace(temporary, card_path)
    return path
