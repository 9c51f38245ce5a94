"""Molecules: RDKit featurization and the weave model (Kearnes et al. 2016) trained on Tox21.

    from models.molecules import load_weave
    model = load_weave("w2n2")                      # or a path to a .pt checkpoint
    mol = model.featurizer.from_smiles("CCO")       # MoleculeError with a user message if bad
    bound = model.bind(mol)                         # forward(atoms [K,A,Fa], pairs [K,P,Fp]) -> [K, tasks]
    atoms, pairs = bound.inputs                     # [1, A, Fa], [1, P, Fp]; baseline: zeros
"""
from __future__ import annotations

from pathlib import Path

import torch

from .featurize import (ELEMENTS, Featurizer, LoadReport, MoleculeError, MoleculeFeatures, load_sdf,
                        load_smiles_csv)
from .weave import BoundWeave, Graph, WeaveModel, collate

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CHECKPOINT_FORMAT = "ig-dashboard/weave"
CHECKPOINT_FORMAT_VERSION = 1
_CONFIG_KEYS = {"n_atom_features", "n_pair_features", "n_tasks", "n_weave", "hidden", "n_graph_features",
                "dense", "dropout"}

__all__ = ["ELEMENTS", "Featurizer", "LoadReport", "MoleculeError", "MoleculeFeatures", "load_sdf",
           "load_smiles_csv", "BoundWeave", "Graph", "WeaveModel", "collate", "load_weave",
           "available_checkpoints", "CheckpointError", "CHECKPOINT_DIR"]


class CheckpointError(ValueError):
    """A file that is not a usable weave checkpoint; the message says why."""


def available_checkpoints() -> list[str]:
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.pt"))


def _resolve(name_or_path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".pt" or p.exists() or "/" in str(name_or_path):
        return p
    return CHECKPOINT_DIR / f"{name_or_path}.pt"


def load_checkpoint(name_or_path) -> dict:
    """The raw checkpoint dict, read with weights_only=True (no code from the file is run)."""
    path = _resolve(name_or_path)
    if not path.exists():
        have = ", ".join(available_checkpoints()) or "none"
        raise CheckpointError(f"No weave checkpoint at {path} (bundled checkpoints: {have}).")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any failure to unpickle safely is a refusal
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path.name} was refused: it is not a plain-tensor PyTorch checkpoint that can be loaded safely "
            f"(torch.load weights_only=True: {first}). Only checkpoints written by "
            f"`python -m models.molecules.train` are accepted.") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path.name} is not a weave checkpoint (expected a dict with format '{CHECKPOINT_FORMAT}'; "
            f"a bare state_dict or another model's file cannot be used).")
    if ckpt.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"{path.name} has checkpoint format version {ckpt.get('format_version')}; "
                              f"this code reads version {CHECKPOINT_FORMAT_VERSION}.")
    return ckpt


def _set_task_kinds(model: WeaveModel, ckpt: dict, name: str) -> None:
    """Regression tasks and their target scaling; a checkpoint without ``task_kinds`` is all classification."""
    n = model.n_tasks
    kinds = ckpt.get("task_kinds") or ["classification"] * n
    scaling = ckpt.get("target_scaling") or {"mean": [0.0] * n, "std": [1.0] * n}
    if len(kinds) != n or set(kinds) - {"classification", "regression"}:
        raise CheckpointError(f"{name}: task kinds {kinds!r:.200} do not describe {n} tasks "
                              "(each 'classification' or 'regression').")
    try:
        model.set_regression([k == "regression" for k in kinds], scaling["mean"], scaling["std"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{name}: the regression targets' scaling is unusable: {exc}") from exc
    if model.target_mean.shape != (n,) or model.target_std.shape != (n,):
        raise CheckpointError(f"{name}: the regression targets' scaling does not have one value per task.")


def load_weave(name_or_path, device: str | torch.device = "cpu") -> WeaveModel:
    """Load a trained weave model in eval mode with parameters frozen.

    ``name_or_path``: a bundled name (``"w2n2"``, ``"w1n2"``) or a path to a .pt file. The model carries
    ``featurizer`` (use it to featurize inputs), ``task_names``, ``task_kinds``, ``metrics`` and
    ``checkpoint_info``.
    """
    ckpt = load_checkpoint(name_or_path)
    name = _resolve(name_or_path).name
    cfg = ckpt.get("config")
    if not isinstance(cfg, dict) or set(cfg) != _CONFIG_KEYS:
        raise CheckpointError(f"{name}: the model configuration is missing or unknown ({cfg!r:.200}).")
    try:
        featurizer = Featurizer.from_dict(ckpt["featurizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{name}: featurizer settings unusable: {exc}") from exc
    if (featurizer.n_atom_features, featurizer.n_pair_features) != (cfg["n_atom_features"], cfg["n_pair_features"]):
        raise CheckpointError(f"{name}: the featurizer gives {featurizer.n_atom_features}/{featurizer.n_pair_features} "
                              f"atom/pair features but the model expects {cfg['n_atom_features']}/{cfg['n_pair_features']}.")
    model = WeaveModel(**cfg)
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{name}: the weights do not fit the weave architecture W{cfg['n_weave']} described in the file "
            f"(wrong architecture or a damaged file): {str(exc).splitlines()[0]}") from exc
    tasks = list(ckpt.get("task_names") or [])
    if len(tasks) != cfg["n_tasks"]:
        raise CheckpointError(f"{name}: {len(tasks)} task names for {cfg['n_tasks']} tasks.")
    model.task_names = tasks
    _set_task_kinds(model, ckpt, name)
    model.featurizer = featurizer
    model.metrics = ckpt.get("metrics", {})
    model.checkpoint_info = {k: ckpt.get(k) for k in ("name", "data", "training")}
    model.requires_grad_(False)
    return model.eval().to(device)
