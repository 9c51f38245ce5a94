"""The molecules family's baselines (families.molecules.baseline): the structure-keeping baseline of small molecules
written out by hand, the path from it leaving the kept columns alone, completeness from it, and its wiring through
the family (engine_input, stacked_input, the explanation)."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
from test_molecule_page import ASPIRIN

from families.molecules import CHECKPOINT_DIR, load_weave
from families.molecules.baseline import BASELINES, DEFAULT_BASELINE, STRUCTURE, ZEROS
from families.molecules.family import FAMILY, MoleculeFamily, loaded_weave
from families.molecules.featurize import Featurizer
from ig_core import AttributionEngine, ScanSettings

pytestmark = pytest.mark.numeric  # completeness bounds: CI runs them on the portable kernels too

ROOT = pathlib.Path(__file__).resolve().parents[1]
FZ = Featurizer()  # simple+, pairs up to distance 2
ATOM_COLUMNS, PAIR_COLUMNS = FZ.atom_feature_names, FZ.pair_feature_names


def by_hand(rows: dict[int, list[str]], columns: list[str], n_rows: int) -> np.ndarray:
    """A [n_rows, len(columns)] array with 1 in the named columns of each row, 0 elsewhere."""
    out = np.zeros((n_rows, len(columns)), dtype=np.float32)
    for row, names in rows.items():
        out[row, [columns.index(name) for name in names]] = 1
    return out


def structure_of(smiles: str):
    features = FZ.from_smiles(smiles)
    atoms, pairs = STRUCTURE.of(FZ, (features.atoms[None], features.pairs[None]))
    return features, atoms[0].numpy(), pairs[0].numpy()


def test_the_default_is_the_structure_keeping_baseline_and_zeros_stays_available():
    assert DEFAULT_BASELINE == "structure" and FAMILY.baseline is STRUCTURE
    assert set(BASELINES) == {"structure", "atoms", "zeros"} and MoleculeFamily(baseline="zeros").baseline is ZEROS
    assert [ATOM_COLUMNS[i] for i in np.flatnonzero(STRUCTURE.kept_masks(FZ)[0].numpy())] == [
        "degree=0", "degree=1", "degree=2", "degree=3", "degree=4", "degree=5+", "in ring"]
    assert [PAIR_COLUMNS[i] for i in np.flatnonzero(STRUCTURE.kept_masks(FZ)[1].numpy())] == [
        "distance=1", "distance=2"]
    # "atoms" keeps the same atom columns and every pair column: the pairs score nothing (masks of 0 and 1 read off
    # the column names, no arithmetic: exactly equal)
    atoms_kept, pairs_kept = BASELINES["atoms"].kept_masks(FZ)
    assert torch.equal(atoms_kept, STRUCTURE.kept_masks(FZ)[0]) and bool(pairs_kept.all())


def test_ethanol_keeps_its_degrees_and_distances_only():
    features, atoms, pairs = structure_of("CCO")  # C0-C1-O2
    assert atoms.tolist() == by_hand({0: ["degree=1"], 1: ["degree=2"], 2: ["degree=1"]}, ATOM_COLUMNS, 3).tolist()
    # ordered pairs sorted by (i, j): C0-C1, C0..O2, C1-C0, C1-O2, O2..C0, O2-C1
    assert features.pair_index.tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
    distances = {0: ["distance=1"], 1: ["distance=2"], 2: ["distance=1"], 3: ["distance=1"], 4: ["distance=2"],
                 5: ["distance=1"]}
    assert pairs.tolist() == by_hand(distances, PAIR_COLUMNS, 6).tolist()
    # the molecule itself differs in the blanked columns: elements, hydrogens, charge, hybridisation, bond types
    assert features.atoms[0, ATOM_COLUMNS.index("element=C")] == 1 and features.pairs[0, PAIR_COLUMNS.index(
        "bond=single")] == 1


def test_benzene_keeps_degree_two_in_a_ring_and_its_ring_distances():
    features, atoms, pairs = structure_of("c1ccccc1")
    assert atoms.tolist() == by_hand({i: ["degree=2", "in ring"] for i in range(6)}, ATOM_COLUMNS, 6).tolist()
    # around a ring of six, atoms one or five apart are bonded, two or four apart at distance 2
    ring_distance = {1: "distance=1", 5: "distance=1", 2: "distance=2", 4: "distance=2"}
    expected = {k: [ring_distance[(j - i) % 6]] for k, (i, j) in enumerate(features.pair_index.tolist())}
    assert len(expected) == 24 and pairs.tolist() == by_hand(expected, PAIR_COLUMNS, 24).tolist()
    assert features.atoms[:, ATOM_COLUMNS.index("aromatic")].tolist() == [1] * 6  # blanked in the baseline


@pytest.fixture(scope="module")
def w2n2():
    return loaded_weave(load_weave("w2n2"))


def test_the_path_leaves_the_kept_columns_constant_so_they_get_no_attribution(w2n2, single_thread):
    item = FAMILY.parse(w2n2, ASPIRIN)
    request = FAMILY.engine_input(w2n2, item)
    explanation = FAMILY.explain(AttributionEngine(device="cpu"), w2n2, item, [2], ScanSettings())
    for x, baseline, attribution, kept in zip(request.inputs, request.baseline,
                                              (explanation.atom_attr, explanation.pair_attr),
                                              STRUCTURE.kept_masks(FZ)):
        kept = kept.bool()
        # every path point baseline + alpha (x - baseline) equals x in a kept column: x - baseline is exactly 0
        assert torch.equal(baseline[..., kept], x[..., kept]) and not baseline[..., ~kept].any()
        # so the bound is 0: an attribution is (x - baseline) times the mean gradient, and 0 times a finite gradient
        # is 0
        assert np.abs(attribution[:, kept.numpy()]).max() == 0
    assert np.abs(explanation.atom_attr).max() > 0  # the blanked columns (the atoms' types) carry it


def test_completeness_holds_from_the_structure_keeping_baseline(w2n2, single_thread):
    for smiles in (ASPIRIN, "c1ccccc1O", "CCO"):
        explanation = FAMILY.explain(AttributionEngine(device="cpu"), w2n2, FAMILY.parse(w2n2, smiles), [2])
        assert explanation.baseline is STRUCTURE
        assert explanation.task_relative_delta <= ScanSettings().tolerance and explanation.completeness_ok
        zeros = MoleculeFamily(baseline="zeros").explain(AttributionEngine(device="cpu"), w2n2,
                                                         FAMILY.parse(w2n2, smiles), [2])
        assert zeros.baseline is ZEROS and zeros.task_score_baseline != explanation.task_score_baseline


def test_stacked_molecules_get_each_molecules_own_baseline_padded_with_zeros(w2n2):
    items = [FAMILY.parse(w2n2, smiles) for smiles in ("CCO", ASPIRIN)]
    requests = [FAMILY.engine_input(w2n2, item) for item in items]
    stacked = FAMILY.stacked_input(w2n2, items, requests)
    for n, request in enumerate(requests):
        for together, alone in zip(stacked.baseline, request.baseline):
            rows = alone.shape[1]
            assert torch.equal(together[n, :rows], alone[0]) and not together[n, rows:].any()


def test_the_page_names_the_baseline_under_the_completeness_verdict(shared_data, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IG_WEAVE_CHECKPOINTS", str(CHECKPOINT_DIR))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = ScanSettings(rule="trapezoid", steps=4)  # page plumbing only
    at.run()
    at.switch_page("dashboard/pages/molecules.py").run()
    at.text_input[0].input("CCO")
    [b for b in at.button if b.label == "Explain"][0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Baseline: {STRUCTURE.description}." in [c.value for c in at.caption]
