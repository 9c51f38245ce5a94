"""Engineers' own vision models (models/vision.py): torch.export programs (.pt2, from the models folder with
a sidecar or as bytes) and factories named in IG_VISION_FACTORY; the unsafe archives are refused."""
from __future__ import annotations

import io
import json
import pathlib
import zipfile

import numpy as np
import pytest
import torch
import vision_factory_example as example
from PIL import Image
from unsafe_files import RunsCode, torch_bytes

from families import config
from families.vision import exported_programs
from families.vision import family as vision_family
from families.vision.errors import ModelFileError
from families.vision.exported_programs import classifier_from_program, program_digest, program_files, read_sidecar
from families.vision.factories import classifier_from_factory, factory_names
from families.vision.image_classifier import IMAGENET_MEAN, Preprocessing, predict_image
from ig_core import AttributionEngine, ScanSettings

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.numeric  # completeness and accuracy bounds: CI runs them on the portable kernels too

TINY = Preprocessing(input_size=example.SIZE, resize=36)


@pytest.fixture(scope="module")
def program() -> bytes:
    return example.export_bytes()


@pytest.fixture
def models_folder(tmp_path, monkeypatch, program):
    """A models folder with tiny.pt2, its sidecar and class-names file."""
    folder = tmp_path / "models"
    (folder / "mine").mkdir(parents=True)
    (folder / "mine" / "tiny.pt2").write_bytes(program)
    (folder / "mine" / "tiny.txt").write_text("\n".join(example.CLASSES) + "\n")
    (folder / "mine" / "tiny.json").write_text(json.dumps(
        {"classes_file": "tiny.txt", "input_size": 32, "resize": 36, "mean": [0.5] * 3, "std": [0.25] * 3}))
    monkeypatch.setenv("IG_MODELS_DIR", str(folder))
    return folder


def picture() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8))


def assert_explains(classifier):
    engine = AttributionEngine("cpu")
    classifier.model = engine.prepare(classifier.model)
    seen = predict_image(classifier, picture())
    assert seen.input.shape == (1, 3, 32, 32) and seen.probabilities.shape == (5,)
    ex = vision_family.explain(engine, classifier, seen, targets=[0, 3], settings=ScanSettings())  # adaptive, 1%
    assert ex.labels == ["apple", "date"] and ex.completeness_ok and ex.max_relative_delta <= 0.01
    assert ex.attributions(1).shape == (3, 32, 32)


def test_a_program_in_the_models_folder_is_listed_loads_predicts_and_explains(models_folder):
    assert program_files() == {"mine/tiny.pt2": models_folder / "mine" / "tiny.pt2"}
    classes, preprocessing = read_sidecar(models_folder / "mine" / "tiny.pt2", "mine/tiny.pt2")
    assert classes == example.CLASSES and preprocessing == Preprocessing(32, 36, (0.5,) * 3, (0.25,) * 3)
    data = (models_folder / "mine" / "tiny.pt2").read_bytes()
    classifier = classifier_from_program(data, "mine/tiny.pt2", classes, preprocessing, device="cpu")
    assert classifier.key == f"pt2:{program_digest(data, classes, preprocessing)}"
    assert (classifier.crop_size, classifier.resize_size, classifier.mean) == (32, 36, (0.5,) * 3)
    assert classifier.layer_names() == []  # a flat graph: no layer to observe
    assert not any(p.requires_grad for p in classifier.model.parameters())
    with torch.no_grad():  # the program gives what the model it was exported from gives
        x = torch.randn(3, 3, 32, 32)
        torch.testing.assert_close(classifier.model(x), example.tiny_model()(x))
    assert_explains(classifier)


def test_the_sidecar_is_part_of_the_identity(program):
    assert (program_digest(program, None, TINY)
            != program_digest(program, example.CLASSES, TINY))
    assert (program_digest(program, None, TINY)
            != program_digest(program, None, Preprocessing()))


def test_without_a_sidecar_imagenet_preprocessing_and_numbered_classes(models_folder):
    (models_folder / "mine" / "tiny.json").unlink()
    path = models_folder / "mine" / "tiny.pt2"
    assert read_sidecar(path, "mine/tiny.pt2") == (None, Preprocessing())
    with pytest.raises(ModelFileError, match=r"takes \[N, 3, 32, 32\] but the input size is 224 x 224"):
        classifier_from_program(path.read_bytes(), "mine/tiny.pt2", device="cpu")
    classifier = classifier_from_program(path.read_bytes(), "mine/tiny.pt2", None, TINY, device="cpu")
    assert classifier.categories == [f"class {i}" for i in range(5)]


@pytest.mark.parametrize("sidecar, message", [
    ("{not json", "could not be read as JSON"),
    (json.dumps({"classes_file": "../secret.txt"}), "not in the models folder"),
    (json.dumps({"classes": "apple"}), "classes must be a list of names"),
    (json.dumps({"input_size": "big"}), "whole numbers"),
    (json.dumps({"std": [0, 1, 1]}), "std all positive"),
])
def test_a_bad_sidecar_gets_a_clear_message(models_folder, sidecar, message):
    (models_folder.parent / "secret.txt").write_text("a\nb\n")
    (models_folder / "mine" / "tiny.json").write_text(sidecar)
    with pytest.raises(ModelFileError, match=message) as err:
        read_sidecar(models_folder / "mine" / "tiny.pt2", "mine/tiny.pt2")
    assert str(err.value).startswith("mine/tiny.json") and str(models_folder) not in str(err.value)


def test_wrong_class_count(program):
    with pytest.raises(ModelFileError, match="has 5 outputs but 3 class names were given"):
        classifier_from_program(program, "up.pt2", ["a", "b", "c"], TINY, device="cpu")


def test_a_program_of_another_shape_or_a_fixed_batch_is_refused():
    with pytest.raises(ModelFileError, match=r"takes \[N, 3, 16, 16\] but the input size is 32 x 32"):
        classifier_from_program(example.export_bytes(size=16), "up.pt2", None, TINY, device="cpu")
    with pytest.raises(ModelFileError, match=r"takes \[N, 1, 32, 32\]: 1 channels, not 3"):
        classifier_from_program(example.export_bytes(channels=1), "up.pt2", None, TINY, device="cpu")
    with pytest.raises(ModelFileError,
                       match="exported for batches of exactly 2 image.*dynamic batch dimension"):
        classifier_from_program(example.export_bytes(dynamic_batch=False), "up.pt2", None, TINY,
                                device="cpu")


def rewritten(data: bytes, edit, compression: int = zipfile.ZIP_STORED) -> bytes:
    """The archive with edit(member, content) -> content applied to every member."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", compression) as target:
        for member in source.namelist():
            target.writestr(member, edit(member, source.read(member)))
    return out.getvalue()


def pickled_weight(marker):
    def edit(member, content):
        if member.endswith("model_weights_config.json"):
            config = json.loads(content)
            config["config"]["conv.weight"]["use_pickle"] = True
            return json.dumps(config).encode()
        return torch_bytes(RunsCode(f"touch {marker}")) if member.endswith("weights/weight_0") else content
    return edit


def evaluated_shape(marker):
    def edit(member, content):
        if member.endswith("models/model.json"):
            return content.replace(b"Symbol('s", f"__import__('os').system('touch {marker}') or Symbol('s".encode())
        return content
    return edit


def system_call(marker):
    def edit(member, content):
        if member.endswith("models/model.json"):
            return content.replace(b"torch.ops.aten.relu.default", b"torch.os.system")
        return content
    return edit


@pytest.mark.parametrize("make, message", [
    (lambda marker, program: b"\x89PNG garbage, not a program", "not an exported program"),
    (lambda marker, program: b"", "not an exported program"),
    (lambda marker, program: torch_bytes({"w": RunsCode(f"touch {marker}")}),
     "a zip archive but not an exported program"),
    (lambda marker, program: program[: len(program) // 2], "not a readable exported program"),
    (lambda marker, program: rewritten(program, pickled_weight(marker)), "holds pickled Python objects"),
    (lambda marker, program: rewritten(program, evaluated_shape(marker)), "shape expression that is not plain"),
    (lambda marker, program: rewritten(program, system_call(marker)), "not a tensor operator|could not be loaded"),
    (lambda marker, program: rewritten(program, lambda member, content: content, zipfile.ZIP_DEFLATED),
     "compressed zip archive"),
], ids=["garbage", "empty", "pickle-renamed", "truncated", "pickled-weight", "eval-shape", "system-call",
        "compressed"])
def test_files_that_are_no_safe_program_get_clear_messages_and_run_nothing(tmp_path, program, make, message):
    marker = tmp_path / "ran"
    with pytest.raises(ModelFileError, match=message) as err:
        classifier_from_program(make(marker, program), "upload.pt2", None, TINY, device="cpu")
    assert str(err.value).startswith("upload.pt2 ") and str(tmp_path) not in str(err.value)
    assert str(ROOT) not in str(err.value)
    assert not marker.exists()


def test_the_check_passes_what_torch_export_save_writes(program):
    exported_programs._check_program_archive(program, "tiny.pt2")  # no exception: plain tensors and arithmetic shapes


def test_a_factory_named_in_the_setting_loads_predicts_and_explains(monkeypatch):
    monkeypatch.setenv(config.VISION_FACTORY.name,
                       "vision_factory_example:tiny_cnn, vision_factory_example:not_a_model")
    assert factory_names() == ["vision_factory_example:tiny_cnn", "vision_factory_example:not_a_model"]
    classifier = classifier_from_factory("vision_factory_example:tiny_cnn", device="cpu")
    assert classifier.key == "factory:vision_factory_example:tiny_cnn" and classifier.categories == example.CLASSES
    assert (classifier.crop_size, classifier.resize_size, classifier.mean) == (32, 36, IMAGENET_MEAN)
    assert classifier.layer_names() == ["conv"]  # a real module: its layers can be observed
    assert_explains(classifier)


@pytest.mark.parametrize("spec, message", [
    ("vision_factory_example:not_a_model", "returned a str, not a torch.nn.Module"),
    ("vision_factory_example:missing", "cannot be found"),
    ("no_such_package.module:function", "cannot be found"),
    ("vision_factory_example:broken", r"failed \(FileNotFoundError\); the details are in the server log"),
])
def test_a_factory_that_gives_no_module_is_refused(spec, message):
    with pytest.raises(ModelFileError, match=message) as err:
        classifier_from_factory(spec, device="cpu")
    assert "/srv/secret" not in str(err.value)
