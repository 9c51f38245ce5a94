"""The molecules family through the model-family contract (families.molecules.family)."""
from __future__ import annotations

import os
import pathlib

import pytest
import torch
from test_molecule_page import ASPIRIN, FAST, _write_random_checkpoint, random_weave

from families.checkpoint import CheckpointError
from families.contract import FamilyError, InputError, ModelSource
from families.molecules import explanation as molecule_explanation
from families.molecules.family import loaded_weave
from families.registry import FAMILIES
from ig_core import AttributionEngine, Contrast, ScanSettings

pytestmark = pytest.mark.numeric  # completeness and accuracy bounds: CI runs them on the portable kernels too

FAMILY = FAMILIES["molecules"]
CPU = torch.device("cpu")
ENGINE = AttributionEngine(device="cpu")


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


def test_idgi_gives_the_columns_the_baseline_keeps_nothing(shipped):
    item = FAMILY.parse(shipped, ASPIRIN)
    request = FAMILY.engine_input(shipped, item)
    explanation = FAMILY.explain(ENGINE, shipped, item, [0], ScanSettings().with_method("idgi"))
    maps = (explanation.atom_attr, explanation.pair_attr)
    for x, baseline, attribution in zip(request.inputs, request.baseline, maps):
        still = (x[0] == baseline[0]).numpy()  # kept structure columns and one-hot zeros
        assert still.any() and (attribution[still] == 0).all()
        assert (attribution[~still] != 0).any()
    # IDGI's float64 shares add up to F(input) - F(baseline); the maps are rounded to float32, each term within
    # eps/2 of itself
    total = sum(float(m.sum()) for m in maps)
    bound = float(torch.finfo(torch.float32).eps) * sum(float(abs(m).sum()) for m in maps)
    assert abs(total - (explanation.task_score_input - explanation.task_score_baseline)) <= bound


def test_a_contrast_of_two_tasks_explains_their_log_odds_difference():
    """"task 0 rather than task 3": F = log-odds(0) - log-odds(3), completeness holds for it, and its names say so."""
    w2 = random_weave(2)
    loaded = loaded_weave(w2)
    item = FAMILY.parse(loaded, ASPIRIN)
    e = FAMILY.explain(ENGINE, loaded, item, [Contrast(0, 3)], ScanSettings(tolerance=0.005))
    bound = w2.bind(item, output="log_odds")
    with torch.no_grad():
        log_odds = bound(*bound.inputs)[0].double()
    # the engine evaluates F in a batch of path points, the check above alone: float32 rounding of a few hundred
    # terms per log-odds, so a bound of 1e-4 of their size
    assert abs(e.task_score_input - float(log_odds[0] - log_odds[3])) <= 1e-4 * float(log_odds.abs().max() + 1)
    assert e.task_relative_delta <= 0.005 and e.contrasted and e.other_task == 3
    assert e.explained_name == "task0 rather than task3" and e.quantity == "log-odds difference"
    assert e.explained_quantity == "log-odds(task0) - log-odds(task3)"
    assert e.records("aspirin", "test")[0]["target_name"] == "task0 rather than task3"
    parts = e.atom_scores.sum() + e.bond_scores.sum() + e.nonbonded_total
    assert abs(parts - e.difference) <= 0.005 * abs(e.difference)


def test_tasks_of_a_regression_model_or_a_single_task_are_not_contrasted():
    mixed = random_weave(1)
    mixed.set_regression([True] + [False] * 11, [0.0] * 12, [1.0] * 12)
    assert "regression" in molecule_explanation.contrast_refusal(mixed)
    loaded = loaded_weave(mixed)
    with pytest.raises(FamilyError, match="regression tasks"):
        FAMILY.explain(ENGINE, loaded, FAMILY.parse(loaded, ASPIRIN), [Contrast(1, 2)], FAST)
    single = random_weave(1)
    single.task_names = ["logp"]
    assert "one task" in molecule_explanation.contrast_refusal(single)
    assert molecule_explanation.contrast_refusal(random_weave(1)) is None
