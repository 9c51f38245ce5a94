"""families.contract: every registered family keeps the contract's promises to the browser."""
import pickle

import pytest
import torch
from unsafe_files import RunsCode

from families.checkpoint import CheckpointError
from families.contract import FamilyError, ModelSource
from families.registry import FAMILIES


def test_the_four_families_are_registered():
    assert set(FAMILIES) == {"vision", "molecules", "language", "tabular"}
    assert all(name == family.name for name, family in FAMILIES.items())


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_sources_are_named_without_server_paths(name, shared_data, tmp_path, monkeypatch):
    (tmp_path / name).mkdir()
    (tmp_path / name / "mine.pt").write_bytes(b"x")
    monkeypatch.setenv("IG_MODELS_DIR", str(tmp_path))
    names = [source.name for source in FAMILIES[name].sources()]
    assert "mine.pt" in names
    assert not any(str(tmp_path) in n or str(shared_data) in n or n.startswith("/") for n in names), names


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("kind", ["garbage", "pickle-with-code"])
def test_uploads_that_are_no_model_are_refused_by_name(name, kind, tmp_path):
    marker = tmp_path / "executed"
    data = b"garbage" if kind == "garbage" else pickle.dumps(RunsCode(f"touch {marker}"))
    with pytest.raises((FamilyError, CheckpointError)) as error:
        FAMILIES[name].load(ModelSource("upload: mine.pt", data=data), torch.device("cpu"))
    assert "mine.pt" in str(error.value) and "/" not in str(error.value).replace("upload: ", "")
    assert not marker.exists()


def test_two_routes_to_the_same_bytes_have_one_digest(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"same bytes")
    assert ModelSource("a.pt", path=tmp_path / "a.pt").digest == ModelSource("upload: b.pt", data=b"same bytes").digest


def test_vision_references_are_the_other_sample_photos_preprocessed_like_the_photo(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from families.vision.factories import classifier_from_factory
    from families.vision.family import FAMILY as VISION
    from families.vision.family import VisionFamily

    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "notes.png").write_bytes(b"no image")  # skipped, not fatal
    monkeypatch.setenv("IG_VISION_SAMPLES", str(tmp_path))
    model = VisionFamily.wrap(classifier_from_factory("vision_factory_example:tiny_cnn", "cpu"))
    photo = VISION.parse(model, (tmp_path / "b.png").read_bytes())
    (references,) = VISION.references(model, photo)
    expected = [model.extra.preprocess(Image.open(tmp_path / name)) for name in ("a.png", "c.png")]
    assert references.shape == (2, 3, 32, 32) and torch.equal(references, torch.cat(expected))
    assert "expected_gradients" in VISION.methods(model, photo)
    monkeypatch.setenv("IG_VISION_SAMPLES", str(tmp_path / "missing"))
    assert VISION.references(model, photo) is None and "expected_gradients" not in VISION.methods(model, photo)
    assert "no other sample photos" in VISION.refusal(model, photo, "expected_gradients")



def test_xrai_on_a_normalised_classifier_averages_black_with_white_in_its_units():
    from families.vision.baselines import image_method_options
    from families.vision.image_classifier import ImageClassifier

    classifier = ImageClassifier(model=torch.nn.Identity(), arch="test", key="test", categories=["a"],
                                 weights_source="test", mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0))
    white = image_method_options(classifier, "xrai", {})["second_baseline"]
    assert white == pytest.approx(((1 - 0.5) / 0.5, (1 - 0.25) / 0.25, (1 - 0.0) / 2.0))
    assert image_method_options(classifier, "xrai", {"second_baseline": None}) == {"second_baseline": None}
    assert image_method_options(classifier, "smoothgrad", {"samples": 3}) == {"samples": 3}
