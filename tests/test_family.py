"""models.family: every registered family keeps the contract's promises to the browser."""
import pickle

import pytest
import torch

from models.checkpoint import CheckpointError
from models.families import FAMILIES
from models.family import FamilyError, ModelSource
from unsafe_files import RunsCode


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
