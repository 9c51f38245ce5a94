"""The molecule attribution benchmark (families.molecules.ground_truth, families.molecules.attribution_benchmark):
metrics against cases worked out by hand, the ground truth against RDKit, the seeded random floor, and one small run
of the command (train on 60 Crippen molecules, explain 30)."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Crippen, rdMolDescriptors

from families.molecules.attribution_benchmark import BenchmarkMolecule, main, molecule_rows, select_test_molecules
from families.molecules.baseline import BASELINES, STRUCTURE
from families.molecules.family import FAMILY
from families.molecules.featurize import Featurizer
from families.molecules.ground_truth import (
    ATOM_VIEWS,
    TASKS,
    TaskData,
    atom_views,
    attribution_auroc,
    crippen_contributions,
    crippen_moved_along_bonds,
    ground_truth,
    has_true_atom,
    kendall_tau_b,
    load_task,
    mean_score,
    rule_answers,
)
from ig_core import ScanSettings

EPS = np.finfo(np.float64).eps


# -- metrics, by hand --------------------------------------------------------------------------------------------

@pytest.mark.numeric
def test_kendall_tau_b_with_a_tie_in_the_truth():
    # pairs of the 4 atoms: (0,1) (0,2) (0,3) (2,3) concordant; (1,3) discordant (2 < 3 but .30 > .25); (1,2) tied
    # in the truth only. tau-b = (4 - 1) / sqrt((6 - 1 tied in truth) (6 - 0 tied in scores)) = 3 / sqrt(30).
    # A few correctly rounded float64 operations on each side (a square root, divisions): a few epsilons apart
    truth = [1.0, 2.0, 2.0, 3.0]
    scores = [0.10, 0.30, 0.20, 0.25]
    assert kendall_tau_b(truth, scores) == pytest.approx(3 / math.sqrt(30), rel=8 * EPS, abs=0)
    assert kendall_tau_b(truth, scores[::-1]) < 0
    assert math.isnan(kendall_tau_b([1.0], [0.5]))  # one atom: no pair to rank
    assert math.isnan(kendall_tau_b(truth, [0.2] * 4))  # constant scores


@pytest.mark.numeric
def test_attribution_auroc_keeps_the_best_answer_and_counts_ties_half():
    scores = np.array([0.9, 0.8, 0.1, 0.3, 0.1])
    first = [True, False, True, False, False]  # .9 beats .8 .3 .1; .1 beats none and ties atom 4: 3.5 / 6
    second = [False, True, False, True, False]  # .8 beats .1 .1; .3 beats .1 .1: 4 / 6
    # ranks are halves, the sums exact: one rounding in the last division
    assert attribution_auroc(np.array([first]), scores) == pytest.approx(3.5 / 6, rel=2 * EPS, abs=0)
    assert attribution_auroc(np.array([first, second]), scores) == pytest.approx(4 / 6, rel=2 * EPS, abs=0)
    assert math.isnan(attribution_auroc(np.zeros((0, 5), bool), scores))  # no true atom
    assert math.isnan(attribution_auroc(np.ones((1, 5), bool), scores))  # no atom outside the answer


@pytest.mark.numeric
def test_molecules_without_a_true_atom_are_left_out_of_the_mean():
    task = TASKS["benzene"]
    no_ring = ground_truth(task, Chem.MolFromSmiles("CCCC(=O)O"))
    assert no_ring.shape == (0, 6) and not has_true_atom(task, no_ring)
    summary = mean_score([0.75, attribution_auroc(no_ring, np.arange(6.0)), 0.5])
    assert (summary.molecules, summary.left_out) == (2, 1)
    assert summary.mean == 0.625  # (0.75 + 0.5) / 2: exact in binary
    # the sample standard deviation 0.25 / sqrt(2) over sqrt(2): a few roundings
    assert summary.standard_error == pytest.approx(0.125, rel=4 * EPS)


def test_pair_scores_reach_atoms_half_to_each_end():
    features = Featurizer().from_smiles("CCO")  # pairs (0,1) (0,2) (1,0) (1,2) (2,0) (2,1); (0,2) (2,0) not bonded
    assert features.pair_index.tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
    pair_scores = np.array([2.0, 8.0, 4.0, 16.0, 32.0, 64.0])
    views = atom_views(np.array([1.0, 2.0, 3.0]), pair_scores, features)
    assert views["atoms"].tolist() == [1.0, 2.0, 3.0]
    # bond C0-C1 = 2 + 4, half to each; bond C1-O2 = 16 + 64, half to each
    assert views["atoms + bonds split"].tolist() == [1 + 3, 2 + 3 + 40, 3 + 40]
    # the distance-2 pairs 8 and 32 too, half to atoms 0 and 2 each
    assert views["atoms + all pairs split"].tolist() == [1 + 3 + 20, 2 + 3 + 40, 3 + 40 + 20]
    assert views["atoms + all pairs split"].sum() == 6 + pair_scores.sum()


# -- ground truth ------------------------------------------------------------------------------------------------

@pytest.mark.numeric
@pytest.mark.parametrize("smiles", ["CCO", "c1ccccc1O", "N#CC(OC1OC(COC2OC(CO)C(O)C(O)C2O)C(O)C(O)C1O)c1ccccc1",
                                    "[2H]C([2H])([2H])O", "C[N+](C)(C)CC(=O)[O-]"])
def test_crippen_truth_adds_up_to_rdkits_logp(smiles):
    mol = Chem.MolFromSmiles(smiles)
    truth = crippen_contributions(mol)
    assert truth.shape == (mol.GetNumAtoms(),)
    # the same n float64 terms summed in another order (RDKit's loop, our folds and numpy's pairwise sum): each order
    # is within (n - 1) eps/2 * sum |c| of the exact sum, so the two within (n - 1) eps * sum |c|
    terms = [logp for logp, _ in rdMolDescriptors._CalcCrippenContribs(Chem.AddHs(mol), force=True)]
    bound = (len(terms) - 1) * EPS * sum(abs(t) for t in terms)
    assert abs(truth.sum() - Crippen.MolLogP(mol)) <= bound


@pytest.mark.numeric
def test_crippen_moved_along_bonds_moves_the_share_to_each_carbon_of_a_heteroatom():
    chloroethanol = Chem.MolFromSmiles("OCCCl")  # O0-C1, C1-C2, C2-Cl3
    truth = crippen_contributions(chloroethanol)
    moved = crippen_moved_along_bonds(chloroethanol, truth, 0.25)
    # the same one addition or subtraction per atom as the function makes: equal bit for bit
    assert moved.tolist() == [truth[0] - 0.25, truth[1] + 0.25, truth[2] + 0.25, truth[3] - 0.25]
    # each sum of 4 terms rounds within 3 eps/2 of its terms' absolute sum, and each moved term within eps/2 of itself
    bound = 3 * EPS / 2 * np.abs(truth).sum() + 4 * EPS / 2 * np.abs(moved).sum()
    assert abs(moved.sum() - truth.sum()) <= bound
    urea = Chem.MolFromSmiles("NC(N)=O")  # a carbon with three heteroatoms takes a share from each
    # halves of zero: every sum is exact in binary
    assert crippen_moved_along_bonds(urea, np.zeros(4), 0.5).tolist() == [-0.5, 1.5, -0.5, -0.5]


def test_benzene_truth_marks_exactly_the_ring():
    task = TASKS["benzene"]
    acetanilide = ground_truth(task, Chem.MolFromSmiles("CC(=O)Nc1ccccc1"))
    assert acetanilide.tolist() == [[False] * 4 + [True] * 6]
    # two rings: either ring, or both (the authors' unions of matches)
    biphenyl = ground_truth(task, Chem.MolFromSmiles("c1ccccc1-c1ccccc1"))
    assert sorted(row.tolist() for row in biphenyl) == sorted(
        [[True] * 6 + [False] * 6, [False] * 6 + [True] * 6, [True] * 12])


def test_every_required_pattern_must_match_for_an_answer_and_a_forbidden_one_for_none():
    rule = TASKS["logic8"].rule  # [FX1] and [OX2H], and no [CX3]=[CX3]
    assert rule_answers(Chem.MolFromSmiles("FCCO"), rule).tolist() == [[True, False, False, True]]
    assert rule_answers(Chem.MolFromSmiles("FCC=O"), rule).shape == (0, 4)  # no hydroxyl
    assert rule_answers(Chem.MolFromSmiles("FC=CO"), rule).shape == (0, 4)  # an alkene
    assert [TASKS["logic8"].active(Chem.MolFromSmiles(s)) for s in ("FCCO", "FCC=O", "FC=CO")] == [True, False, False]


def test_a_clause_of_forbidden_patterns_alone_makes_an_active_without_a_true_atom():
    logic10 = TASKS["logic10"]  # no ether, and a primary amine or no benzene ring
    aniline, toluene, hexane = (Chem.MolFromSmiles(s) for s in ("Nc1ccccc1", "Cc1ccccc1", "CCCCCC"))
    assert rule_answers(aniline, logic10.rule).tolist() == [[True] + [False] * 6]  # the amine's nitrogen
    assert [logic10.active(mol) for mol in (aniline, toluene, hexane)] == [True, False, True]
    assert rule_answers(hexane, logic10.rule).shape == (0, 6)  # active, but no atom makes it so
    assert rule_answers(Chem.MolFromSmiles("NCCOC"), logic10.rule).shape == (0, 5)  # an ether: inactive


def test_the_logic_rules_give_the_label_column_of_their_tables(shared_data):
    for name in ("logic7", "logic8", "logic10"):
        data = load_task(name)
        sample = data.frame.iloc[:: len(data.frame) // 400]  # about 400 molecules of each table
        by_rule = [data.task.active(Chem.MolFromSmiles(smiles)) for smiles in sample["smiles"]]
        assert by_rule == (sample["label"] == 1).tolist(), name


# -- the random floor --------------------------------------------------------------------------------------------

def _crippen_sample(smiles: list[str]) -> tuple[TaskData, list[BenchmarkMolecule]]:
    task = TASKS["crippen"]
    frame = pd.DataFrame({"smiles": smiles, task.target_column: [Crippen.MolLogP(Chem.MolFromSmiles(s))
                                                                  for s in smiles]})
    data = TaskData(task, frame, np.arange(0), np.arange(len(smiles)), "sample")
    molecules = [BenchmarkMolecule(row, features, ground_truth(task, features.mol))
                 for row, features in enumerate(Featurizer().from_smiles(s) for s in smiles)]
    return data, molecules


def test_random_floor_is_seeded_and_reproducible():
    data, molecules = _crippen_sample(["CCO", "c1ccccc1O", "CC(=O)Nc1ccccc1", "OCC(N)C(=O)O"])
    floor = lambda seed: molecule_rows(None, None, data, molecules, ["random"], ScanSettings(), seed)[list(ATOM_VIEWS)]
    pd.testing.assert_frame_equal(floor(7), floor(7))
    assert not floor(7).equals(floor(8))


# -- the command, small ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_run(shared_data, tmp_path_factory, single_thread):
    """Train 2 epochs on 60 molecules of Crippen's train split, explain 30 test molecules: (rows, results, folder)."""
    folder = tmp_path_factory.mktemp("molecule_benchmark")
    rows = main(["--task", "crippen", "--train", "2", "--train-limit", "60", "--checkpoint",
                 str(folder / "crippen.pt"), "--methods", "integrated_gradients", "random", "--limit", "30",
                 "--threads", "1", "--out", str(folder / "results.md")])
    return rows, (folder / "results.md").read_text(), folder


@pytest.mark.numeric
def test_the_command_writes_every_row_with_numbers_in_range(small_run):
    rows, results, folder = small_run
    assert len(rows) == 60 and set(rows.method) == {"integrated_gradients", "random"}
    assert "60 of 901 molecules" in (folder / "crippen.md").read_text()  # the card names the benchmark's split
    assert "Command: `python -m families.molecules.attribution_benchmark --task crippen" in results
    for method in ("integrated_gradients", "random"):
        line = next(line for line in results.splitlines() if line.startswith(f"| {method} |"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[1] == "30 (0)"
        for cell in cells[2:2 + len(ATOM_VIEWS)]:
            mean, error = (float(x) for x in cell.split(" ± "))
            assert -1 <= mean <= 1 and 0 <= error <= 1
    ig = next(line for line in results.splitlines() if line.startswith("| integrated_gradients |"))
    completeness = float(re.search(r"\| ([0-9.]+)% \|", ig).group(1))
    assert completeness <= 100 * ScanSettings().tolerance  # the adaptive rule's default tolerance, in the median
    assert "| random | .13 |" in results  # the published table beside ours
    ceiling = next(line for line in results.splitlines() if line.startswith("| Kendall tau-b against Crippen's |"))
    taus = [float(cell) for cell in ceiling.strip("|").split("|")[1:]]
    assert len(taus) == 3 and all(-1 <= tau <= 1 for tau in taus)
    assert f"baseline `structure`: {STRUCTURE.description}." in results  # the family's default


def test_the_baseline_option_names_where_the_path_starts(small_run):
    _, _, folder = small_run
    scores_from = {}
    for baseline in BASELINES.values():
        out = folder / f"{baseline.name}.md"
        rows = main(["--task", "crippen", "--model", str(folder / "crippen.pt"), "--baseline", baseline.name,
                     "--methods", "integrated_gradients", "--limit", "2", "--threads", "1", "--out", str(out)])
        assert f"baseline `{baseline.name}`: {baseline.description}." in out.read_text()
        scores_from[baseline.name] = rows["F(baseline)"].to_numpy()
    assert (scores_from["zeros"] != scores_from["structure"]).all()


def test_binary_tasks_pass_over_molecules_without_a_true_atom(small_run):
    _, _, folder = small_run
    model = FAMILY.load(FAMILY.source_named(str(folder / "crippen.pt")), torch.device("cpu"))
    frame = pd.DataFrame({"smiles": ["CC(=O)Nc1ccccc1", "CCCC(=O)O", "C1CC(not a molecule"], "label": [1.0, 1.0, 1.0]})
    benzene = TaskData(TASKS["benzene"], frame, np.arange(0), np.arange(3), "sample")
    selection = select_test_molecules(benzene, model, None)
    assert [m.row for m in selection.molecules] == [0]
    assert (selection.without_true_atom, [row for row, _ in selection.refused]) == (1, [2])
    assert selection.label_disagrees == 1  # row 1, labelled active without a ring; row 2 is never read
