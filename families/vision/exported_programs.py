"""Exported programs an engineer brings: a torch.export program (``.pt2``, exported with a dynamic batch dimension,
[N, 3, H, W] -> [N, classes]) in the models folder with a sidecar ``<stem>.json`` (class names and preprocessing),
or uploaded with a class-names file. torch.export.load is not safe for untrusted files, so an archive is checked
before it is loaded (`_check_program_archive`) and its graph before it runs (`_check_program_graph`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import operator
import pathlib
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from typing import Sequence

import torch

from families.config import models_dir
from families.vision.errors import ModelFileError
from families.vision.image_classifier import (
    DYNAMIC_BATCH_HINT,
    ExportedModule,
    ImageClassifier,
    Preprocessing,
    classifier_from_module,
    default_device,
    shape_text,
)
from families.vision.weights import model_files

PROGRAM_SUFFIX = ".pt2"
IMAGENET_PREPROCESSING = Preprocessing()  # the default preprocessing (frozen: one shared instance is safe)


def program_files() -> dict[str, pathlib.Path]:
    """The exported programs (*.pt2) below the models folder, by the name the browser sees (`model_files`)."""
    return model_files((PROGRAM_SUFFIX,))


def read_sidecar(program: pathlib.Path, name: str) -> tuple[list[str] | None, Preprocessing]:
    """The class names and preprocessing of a models-folder program from its sidecar `<stem>.json`:
    {"classes": [...] or "classes_file": "names.txt" (next to it), "input_size", "resize", "mean", "std"}.
    No sidecar: no class names (see `classifier_from_program`) and ImageNet's preprocessing."""
    sidecar = program.with_suffix(".json")
    shown = str(pathlib.PurePosixPath(name).with_suffix(".json"))
    if not sidecar.is_file():
        return None, Preprocessing()
    try:
        settings = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{shown} could not be read as JSON ({type(exc).__name__}).") from None
    if not isinstance(settings, dict):
        raise ModelFileError(f"{shown} must hold a JSON object (classes, input_size, resize, mean, std).")
    classes = settings.get("classes")
    if "classes_file" in settings:
        names_file = (sidecar.parent / str(settings["classes_file"])).resolve()
        # no way out of the models folder
        if not names_file.is_relative_to(models_dir().resolve()) or not names_file.is_file():
            raise ModelFileError(f"{shown} names the class-names file {settings['classes_file']!r}, which is not "
                                 f"in the models folder.")
        classes = parse_class_names(names_file.read_bytes(), settings["classes_file"])
    elif classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise ModelFileError(f"{shown}: classes must be a list of names.")
    return classes, Preprocessing.from_settings(settings, shown)


def parse_class_names(data: bytes, name: str) -> list[str]:
    """Class names, one a line (blank lines skipped), from a text file."""
    try:
        names = [line.strip() for line in data.decode("utf-8-sig").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise ModelFileError(f"{name} is not a UTF-8 text file of class names (one a line).") from None
    if not names:
        raise ModelFileError(f"{name} holds no class names (one a line expected).")
    return names


def program_digest(data: bytes, classes: Sequence[str] | None, preprocessing: Preprocessing) -> str:
    """The identity of a program with its class names and preprocessing (the cache key)."""
    sidecar = json.dumps([classes, dataclasses.astuple(preprocessing)]).encode()
    return hashlib.sha256(data + sidecar).hexdigest()


# Where the graph of a program may call: tensor operators only (an archive names its targets as text, and
# the deserializer resolves any attribute of torch, operator or math, e.g. torch.os.system).
_SAFE_PYTHON_OPERATORS = {operator.getitem, operator.add, operator.sub, operator.mul, operator.floordiv,
                          operator.truediv, operator.mod, operator.neg, operator.pow, operator.eq, operator.ne,
                          operator.lt, operator.le, operator.gt, operator.ge}
# What a shape expression of the archive may hold (torch.export.save writes e.g. "Symbol('s77', positive=True,
# integer=True)"): the deserializer parses it with sympy.sympify, which evaluates Python, so every name in it
# (symbols aside) must be one of these sympy constructors, functions or assumptions.
_SHAPE_EXPRESSION = re.compile(r"[\w\s+\-*/%(),.<>=!&|~']*")
_SHAPE_NAMES = {"Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "positive", "negative",
                "nonnegative", "nonpositive", "integer", "real", "finite", "zero", "nonzero", "even", "odd",
                "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt",
                "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv",
                "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt",
                "RoundDecimal", "ToFloat", "Identity", "Max", "Min", "Abs", "floor", "ceiling", "oo", "Eq", "Ne",
                "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "True", "False"}


def _check_program_archive(data: bytes, name: str) -> None:
    """Refuse an archive that torch.export.load (torch 2.15) would let run code, before loading it.

    torch.export.load is not safe for untrusted files (its docstring: "uses pickle under the hood ...
    Never load data from an untrusted source"); reading torch/export/pt2_archive/_package.py and
    torch/_export/serde/serialize.py shows how: weights and constants saved with use_pickle are read with
    torch.load(weights_only=False), opaque constants with pickle.loads, custom objects with torch's own
    unpickler, sample inputs fall back to weights_only=False, data/aotinductor/ holds compiled libraries
    it loads, and shape expressions are parsed with sympy.sympify, which evaluates Python. What
    torch.export.save writes for a plain program needs none of these: weights and constants are raw
    tensor bytes described by JSON, sample inputs load with weights_only=True, shape expressions are
    arithmetic on symbols. So only such archives pass; the graph's targets are checked after loading
    (`_check_program_graph`), before the program runs."""
    if not data.startswith(b"PK\x03\x04"):
        raise ModelFileError(f"{name} is not an exported program (torch.export.save writes a zip archive; "
                             f"this is not one).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        roots = {member.split("/", 1)[0] for member in archive.namelist()}
        root = roots.pop() if len(roots) == 1 else ""
        files = {member[len(root) + 1:]: member for member in archive.namelist()}
        if files.get("archive_format") is None or archive.read(files["archive_format"]) != b"pt2":
            raise ModelFileError(f"{name} is a zip archive but not an exported program (torch.export.save); "
                                 f"a state_dict (.pth) goes with a torchvision architecture instead.")
        if any(info.compress_type != zipfile.ZIP_STORED for info in archive.infolist()):  # no zip bombs
            raise ModelFileError(f"{name} is a compressed zip archive; torch.export.save writes an uncompressed "
                                 f"one, so save the program with it.")
        if any(f.startswith(("data/aotinductor/", "data/executorch/", "data/mtia", "xl_model_weights/"))
               for f in files):
            raise ModelFileError(f"{name} holds compiled code (AOTInductor or another backend), which is never "
                                 f"run here; save the program with torch.export.save only.")
        for member in files:
            if member.startswith("models/") and member.endswith(".json"):
                model = member[len("models/"):-len(".json")]
                _check_payloads(archive, files, f"data/weights/{model}_weights_config.json", name)
                _check_payloads(archive, files, f"data/constants/{model}_constants_config.json", name)
                _check_shape_expressions(json.loads(archive.read(files[member])), name)
                torch.load(io.BytesIO(archive.read(files[f"data/sample_inputs/{model}.pt"])), weights_only=True)
    except ModelFileError:
        raise
    except pickle.UnpicklingError:
        raise _pickled(name) from None
    except Exception as exc:  # a damaged archive: bad zip, missing member, bad JSON
        raise ModelFileError(f"{name} is not a readable exported program ({type(exc).__name__}).") from None


def _check_payloads(archive: zipfile.ZipFile, files: Mapping[str, str], config: str, name: str) -> None:
    entries = json.loads(archive.read(files[config]))["config"].values()
    if any(entry["use_pickle"] or not entry["path_name"].startswith(("weight_", "tensor_")) for entry in entries):
        raise _pickled(name)


def _pickled(name: str) -> ModelFileError:
    return ModelFileError(f"{name} holds pickled Python objects, which could run code, so it is not loaded; "
                          f"export a plain tensor program.")


def _check_shape_expressions(node, name: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr_str" and not _is_shape_expression(value):
                raise ModelFileError(f"{name} has a shape expression that is not plain arithmetic; it is not "
                                     f"loaded.")
            _check_shape_expressions(value, name)
    elif isinstance(node, list):
        for value in node:
            _check_shape_expressions(value, name)


def _is_shape_expression(text) -> bool:
    if not isinstance(text, str) or not _SHAPE_EXPRESSION.fullmatch(text) or "__" in text:
        return False
    return all(re.fullmatch(r"[a-z]\d+", word) or word in _SHAPE_NAMES
               for word in re.findall(r"[A-Za-z_]\w*", text))


def _check_program_graph(program, name: str) -> None:
    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        for node in graph.nodes if graph is not None else ():
            target = node.target
            if node.op == "call_function" and not (
                    isinstance(target, (torch._ops.OpOverload, torch._ops.HigherOrderOperator))
                    or target in _SAFE_PYTHON_OPERATORS):
                raise ModelFileError(f"{name} calls {str(target)[:80]}, which is not a tensor operator; it is "
                                     f"not run.")


def _load_program(data: bytes, name: str, preprocessing: Preprocessing,
                  device: torch.device) -> torch.nn.Module:
    """The program of a checked archive as a module on `device`, after checking its input signature."""
    _check_program_archive(data, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(io.BytesIO(data))
    except Exception as exc:  # e.g. saved by another torch version
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ModelFileError(f"{name} could not be loaded as an exported program ({type(exc).__name__}: "
                             f"{detail}).") from None
    _check_program_graph(program, name)
    inputs = [node.meta.get("val") for node in program.graph.nodes
              if node.op == "placeholder" and node.name in program.graph_signature.user_inputs]
    if len(inputs) != 1 or not isinstance(inputs[0], torch.Tensor) or inputs[0].dim() != 4:
        raise ModelFileError(f"{name} does not take one image batch [N, 3, H, W] (its inputs: "
                             f"{[shape_text(v) for v in inputs]}).")
    batch, channels, height, width = inputs[0].shape
    if channels != 3:
        raise ModelFileError(f"{name} takes {shape_text(inputs[0])}: {channels} channels, not 3 (RGB).")
    if isinstance(batch, int):
        raise ModelFileError(f"{name} was exported for batches of exactly {batch} image(s); the explanations "
                             f"run batches of path points, so {DYNAMIC_BATCH_HINT}.")
    size = preprocessing.input_size
    if any(isinstance(side, int) and side != size for side in (height, width)):
        raise ModelFileError(f"{name} takes {shape_text(inputs[0])} but the input size is {size} x {size}; set the "
                             f"input size to the program's.")
    if device.type != "cpu":
        program = torch.export.passes.move_to_device_pass(program, device)
    return ExportedModule(program.module())


def classifier_from_program(data: bytes, name: str, classes: Sequence[str] | None = None,
                            preprocessing: Preprocessing = IMAGENET_PREPROCESSING,
                            device: str | torch.device | None = None) -> ImageClassifier:
    """A classifier from the bytes of a torch.export program (`torch.export.save`, dynamic batch
    dimension) taking [N, 3, H, W] and returning [N, classes]. classes: its class names (None: ImageNet's
    for 1000 outputs, else "class i"). Raises ModelFileError, naming the file as `name`, for a file that
    is not such a program or that safe loading refuses (see `_check_program_archive`)."""
    device = default_device(device)
    model = _load_program(data, name, preprocessing.checked(name), device)
    digest = program_digest(data, classes, preprocessing)
    return classifier_from_module(model, name, f"pt2:{digest}", f"exported program, sha256 {digest[:16]}...",
                              classes, preprocessing, device)
