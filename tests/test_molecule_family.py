"""The molecules family through the model-family contract (families.molecules.family)."""
from __future__ import annotations

import os
import pathlib

import pytest
import torch
from test_molecule_page import ASPIRIN, _write_random_checkpoint

from families.checkpoint import CheckpointError
from families.contract import InputError, ModelSource
from families.registry import FAMILIES
from ig_core import AttributionEngine, ScanSettings

pytestmark = pytest.mark.numeric  # completeness and accuracy bounds: CI runs them on the portable kernels too

FAMILY = FAMILIES["molecules"]
CPU = torch.device("cpu")


@pytest.fixture
def folders(tmp_path, monkeypatch) -> pathlib.Path:
    """Random-weight shipped checkpoints and a models folder with one file of the user's."""
    shipped, models = tmp_path / "shipped", tmp_path / "models"
    shipped.mkdir()
    (models / "molecules").mkdir(parents=True)
    for n in (1, 2):
        _write_random_checkpoint(shipped / f"w{n}n2.pt", n)
    _write_random_checkpoint(models / "molecules" / "mine.pt", 2)
    monkeypatch.setenv("IG_WEAVE_CHECKPOINTS", str(shipped))
    monkeypatch.setenv("IG_MODELS_DIR", str(models))
    return tmp_path


def test_sources_are_the_shipped_checkpoints_then_the_models_folder(folders):
    sources = FAMILY.sources()
    assert [s.name for s in sources] == ["shipped: w1n2", "shipped: w2n2", "mine.pt"]
    model = FAMILY.load(sources[2], CPU)
    assert model.name == "mine.pt" and model.key.startswith("molecules:mine.pt:") and len(model.target_names) == 12


def test_load_refuses_code_and_other_formats_without_naming_a_server_path(folders):
    class Evil:  # a pickled object: safe loading must refuse it, and never run it
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    evil, bare = folders / "evil.pt", folders / "bare.pt"
    torch.save({"format": "ig-dashboard/weave", "x": Evil()}, evil)
    torch.save({"weight": torch.zeros(2)}, bare)
    for path, words in ((evil, "safe loading refuses"), (bare, "not a weave checkpoint")):
        with pytest.raises(CheckpointError, match=words) as error:
            FAMILY.load(ModelSource(f"upload: {path.name}", data=path.read_bytes()), CPU)
        assert str(folders) not in str(error.value) and f"upload: {path.name}" in str(error.value)


@pytest.fixture(scope="module")
def shipped():
    source = next(s for s in FAMILY.sources() if s.name == "shipped: w2n2")
    return FAMILY.load(source, CPU)


def test_parse_refuses_a_bad_smiles(shipped):
    with pytest.raises(InputError, match="not a valid SMILES"):
        FAMILY.parse(shipped, "C1CC(")
    assert FAMILY.parse(shipped, ASPIRIN).n_atoms == 13


def test_explain_through_the_contract_is_complete(shipped):
    item = FAMILY.parse(shipped, ASPIRIN)
    explanation = FAMILY.explain(AttributionEngine(device="cpu"), shipped, item)
    assert explanation.task_relative_delta <= ScanSettings().tolerance and explanation.completeness_ok
    [record] = explanation.records("aspirin", ASPIRIN)
    difference = record["score_input"] - record["score_baseline"]
    assert set(record["scores"]) >= {"C0", "O3", "non-bonded pairs"} and "C0-C1 single" in record["scores"]
    assert sum(record["scores"].values()) == pytest.approx(difference, abs=abs(record["delta"]) + 1e-6)
    assert abs(record["delta"]) <= 0.01 * abs(difference)
