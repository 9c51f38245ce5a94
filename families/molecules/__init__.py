"""Molecules: RDKit featurization and the weave model (Kearnes et al. 2016) trained on Tox21.

    from families.molecules import load_weave
    model = load_weave("w2n2")                      # or a path to a .pt checkpoint
    mol = model.featurizer.from_smiles("CCO")       # MoleculeError with a user message if bad
    bound = model.bind(mol)                         # forward(atoms [K,A,Fa], pairs [K,P,Fp]) -> [K, tasks]
    atoms, pairs = bound.inputs                     # [1, A, Fa], [1, P, Fp]; baseline: families.molecules.baseline
"""
from __future__ import annotations

from pathlib import Path

import torch

from families.checkpoint import CheckpointError, load_weights, read_checkpoint
from families.config import WEAVE_CHECKPOINTS
from families.molecules.featurize import (
    ELEMENTS,
    Featurizer,
    LoadReport,
    MoleculeError,
    MoleculeFeatures,
    load_sdf,
    load_smiles_csv,
)
from families.molecules.weave import BoundWeave, Graph, WeaveModel, collate

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CHECKPOINT_FORMAT = "ig-dashboard/weave"
CHECKPOINT_FORMAT_VERSION = 1
_CONFIG_KEYS = {"n_atom_features", "n_pair_features", "n_tasks", "n_weave", "hidden", "n_graph_features",
                "dense", "dropout"}

__all__ = ["ELEMENTS", "Featurizer", "LoadReport", "MoleculeError", "MoleculeFeatures", "load_sdf",
           "load_smiles_csv", "BoundWeave", "Graph", "WeaveModel", "collate", "load_weave",
           "available_checkpoints", "CheckpointError", "CHECKPOINT_DIR", "read_weave_checkpoint", "weave_model",
           "shipped_checkpoint_dir"]


REFUSED = ("This file was refused: it is not a weave checkpoint as `python -m families.molecules.train` writes "
           "them.")


def shipped_checkpoint_dir() -> Path:
    return WEAVE_CHECKPOINTS.path() or CHECKPOINT_DIR


def available_checkpoints() -> list[str]:
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.pt"))


def _resolve(name_or_path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".pt" or p.exists() or "/" in str(name_or_path):
        return p
    return CHECKPOINT_DIR / f"{name_or_path}.pt"


def read_weave_checkpoint(source: bytes | Path, name: str) -> dict:
    """The checkpoint dict, read safely (nothing in the file runs) and checked to be a weave checkpoint."""
    try:
        return read_checkpoint(source, name, CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION,
                               {"config": dict, "featurizer": dict, "task_names": list, "state_dict": dict})
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} {REFUSED}") from None


def load_checkpoint(name_or_path) -> dict:
    """The raw checkpoint dict of a shipped name ("w2n2") or a file (see read_weave_checkpoint)."""
    path = _resolve(name_or_path)
    if not path.is_file():
        have = ", ".join(available_checkpoints()) or "none"
        raise CheckpointError(f"No weave checkpoint named {path.name} (shipped checkpoints: {have}).")
    return read_weave_checkpoint(path, path.name)


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


def weave_model(ckpt: dict, name: str) -> WeaveModel:
    """The weave model of a checked checkpoint dict (read_weave_checkpoint), in eval mode and frozen, on the CPU.

    It carries ``featurizer`` (use it to featurize inputs), ``task_names``, ``task_kinds``, ``metrics`` and
    ``checkpoint_info``."""
    cfg = ckpt["config"]
    if set(cfg) != _CONFIG_KEYS:
        raise CheckpointError(f"{name}: the model configuration is unknown ({cfg!r:.200}).")
    try:
        featurizer = Featurizer.from_dict(ckpt["featurizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{name}: featurizer settings unusable: {exc}") from exc
    if (featurizer.n_atom_features, featurizer.n_pair_features) != (cfg["n_atom_features"], cfg["n_pair_features"]):
        raise CheckpointError(f"{name}: the featurizer gives {featurizer.n_atom_features}/{featurizer.n_pair_features} "
                              f"atom/pair features but the model expects "
                              f"{cfg['n_atom_features']}/{cfg['n_pair_features']}.")
    model = WeaveModel(**cfg)
    try:
        load_weights(model, ckpt["state_dict"], name)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} The weights do not fit the weave architecture W{cfg['n_weave']} described in "
                              "the file (wrong architecture or a damaged file).") from None
    tasks = list(ckpt["task_names"])
    if len(tasks) != cfg["n_tasks"]:
        raise CheckpointError(f"{name}: {len(tasks)} task names for {cfg['n_tasks']} tasks.")
    model.task_names = tasks
    _set_task_kinds(model, ckpt, name)
    model.featurizer = featurizer
    model.metrics = ckpt.get("metrics", {})
    model.checkpoint_info = {k: ckpt.get(k) for k in ("name", "data", "training")}
    model.requires_grad_(False)
    return model.eval()


def load_weave(name_or_path, device: str | torch.device = "cpu") -> WeaveModel:
    """Load a trained weave model (see weave_model): a shipped name (``"w2n2"``, ``"w1n2"``) or a .pt file."""
    return weave_model(load_checkpoint(name_or_path), _resolve(name_or_path).name).to(device)
