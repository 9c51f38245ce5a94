"""Atom-level ground truth for attributions: the molecule benchmark of Sanchez-Lengeling et al. 2020 ("Evaluating
Attribution for Graph Neural Networks", google-research/graph-attribution), its tasks and its metrics.

Data: $IG_DATA_DIR/attribution_benchmarks/graph_attribution/<task>/<task>_smiles.csv (a smiles column; the binary
tasks a label column) and <task>_traintest_indices.npz (train_index, test_index: their split).

- crippen, a regression: the target is RDKit's Crippen logP; the ground truth is each heavy atom's Crippen
  contribution with its hydrogens' contributions folded into it, so that the atoms' truths add up to the target.
  It is one exact decomposition of many (crippen_moved_along_bonds): the labels cannot tell them apart.
- benzene, logic7, logic8, logic10, binary: the label column; the ground truth is every legal answer to "which atoms
  make the rule true", as the authors define it (fragment_identifier.py): for one SMARTS pattern, the atoms of any
  one or more of its matches; for several patterns that must all match, one such answer per pattern, joined; a
  pattern that must not match marks no atom; where the rule is an OR of clauses, the answers of every clause that
  holds. The logic rules below are those that reproduce the data's label column on every molecule of its three
  tables; the data README's list names other patterns for them (its logic7 pattern pair is logic8's of the authors'
  earlier numbering and matches the labels of no table).

Metrics, per molecule, then the mean over the molecules where they are defined (NaN ones left out, as np.nanmean):
- Kendall tau-b between the true contributions and the atom attributions (crippen);
- attribution AUROC: the atom attributions as scores of the atoms of one answer against the others, ties counted
  one half, the best answer kept (binary tasks); undefined for a molecule without a true atom.

Our graphs hold heavy atoms only (the weave featurizer's hydrogens are implicit); the authors' carry every hydrogen as
a node, so their AUROC also ranks hydrogens and their tau correlates hydrogens' contributions too.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
from rdkit import Chem
from rdkit.Chem import Crippen, rdMolDescriptors

from families.config import DataNotFound, data_dir
from families.molecules.featurize import Featurizer, MoleculeError


@functools.cache
def pattern(smarts: str) -> Chem.Mol:
    """A SMARTS parsed once: the rules match the same few patterns against thousands of molecules."""
    return Chem.MolFromSmarts(smarts)


@dataclass(frozen=True)
class Clause:
    """Every `required` SMARTS matches and no `forbidden` one does."""
    required: tuple[str, ...]
    forbidden: tuple[str, ...] = ()

    def holds(self, mol: Chem.Mol) -> bool:
        return (all(mol.HasSubstructMatch(pattern(smarts)) for smarts in self.required)
                and not any(mol.HasSubstructMatch(pattern(smarts)) for smarts in self.forbidden))


@dataclass(frozen=True)
class BenchmarkTask:
    name: str
    rule: tuple[Clause, ...] = ()  # a binary task's label: any clause holds; none: the Crippen regression

    @property
    def regression(self) -> bool:
        return not self.rule

    def active(self, mol: Chem.Mol) -> bool:
        """A binary task's label by its rule."""
        return any(clause.holds(mol) for clause in self.rule)

    @property
    def target_column(self) -> str:
        return "crippen_logp" if self.regression else "label"

    @property
    def metric(self) -> str:
        return "Kendall tau-b" if self.regression else "attribution AUROC"


UNBRANCHED_CHAIN, CARBONYL = "[R0;D2,D1][R0;D2][R0;D2,D1]", "[CX3]=O"
FLUORIDE, HYDROXYL, ALKENE = "[FX1]", "[OX2H]", "[CX3]=[CX3]"
PRIMARY_AMINE, ETHER, BENZENE = "[NX3;H2]", "[OD2](C)C", "[cX3]1[cX3H][cX3H][cX3H][cX3H][cX3H]1"
# each rule gives the label column of its whole table (4,326, 8,671 and 8,687 logic molecules; module docstring)
TASKS = {task.name: task for task in (
    BenchmarkTask("crippen"),
    BenchmarkTask("benzene", (Clause(("c1ccccc1",)),)),
    BenchmarkTask("logic7", (Clause((UNBRANCHED_CHAIN, CARBONYL)),)),
    BenchmarkTask("logic8", (Clause((FLUORIDE, HYDROXYL), forbidden=(ALKENE,)),)),
    BenchmarkTask("logic10", (Clause((PRIMARY_AMINE,), forbidden=(ETHER,)), Clause((), forbidden=(ETHER, BENZENE)))),
)}


def benchmark_folder() -> Path:
    return data_dir() / "attribution_benchmarks" / "graph_attribution"


@dataclass
class TaskData:
    """A task's molecules: ``frame`` has a smiles column and the task's target column (NaN where RDKit cannot read
    the molecule); the indices are rows of it."""

    task: BenchmarkTask
    frame: pd.DataFrame
    train_index: np.ndarray
    test_index: np.ndarray
    file: str


def load_task(name: str) -> TaskData:
    """The task's table and split from the data directory; DataNotFound names what is missing."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    task = TASKS[name]
    table, split = (benchmark_folder() / name / f"{name}_{part}" for part in ("smiles.csv", "traintest_indices.npz"))
    missing = [path.name for path in (table, split) if not path.is_file()]
    if missing:
        raise DataNotFound(f"{', '.join(missing)} not in {table.parent}: set IG_DATA_DIR to the shared data folder")
    raw = pd.read_csv(table)
    frame = pd.DataFrame({"smiles": raw["smiles"].astype(str)})
    frame[task.target_column] = (raw["label"].astype(np.float32) if not task.regression
                                 else [crippen_target(smiles) for smiles in frame["smiles"]])
    indices = np.load(split)
    return TaskData(task, frame, indices["train_index"], indices["test_index"], table.name)


def crippen_target(smiles: str) -> float:
    """Crippen logP of the molecule the featurizer keeps (the largest fragment); NaN when it refuses the SMILES.
    (Its own "Exp_logp" column is the measured logP, not the benchmark's target.)"""
    try:
        return Crippen.MolLogP(Featurizer().from_smiles(smiles).mol)
    except MoleculeError:
        return float("nan")


# -- ground truth ------------------------------------------------------------------------------------------------

def crippen_contributions(mol: Chem.Mol) -> np.ndarray:
    """[A] each atom's Crippen logP contribution, those of its implicit hydrogens added to it (they sum to
    Crippen.MolLogP(mol) up to the order of the float64 sums)."""
    with_hydrogens = Chem.AddHs(mol)
    contributions = [logp for logp, _ in rdMolDescriptors._CalcCrippenContribs(with_hydrogens, force=True)]
    folded = np.array(contributions[:mol.GetNumAtoms()], dtype=np.float64)
    # AddHs appends the hydrogens after the molecule's own atoms; each has one neighbour
    for atom in with_hydrogens.GetAtoms():
        if atom.GetIdx() >= mol.GetNumAtoms():
            folded[atom.GetNeighbors()[0].GetIdx()] += contributions[atom.GetIdx()]
    return folded


def crippen_moved_along_bonds(mol: Chem.Mol, contributions: np.ndarray, share: float) -> np.ndarray:
    """[A] the contributions with `share` moved, across every bond between a carbon and another element, from the
    other atom to the carbon. Every molecule keeps its sum, so no model fit to the sums can tell this decomposition
    from Crippen's: its tau against Crippen's is what an equally exact attribution scores."""
    moved = np.array(contributions, dtype=np.float64)
    for bond in mol.GetBonds():
        ends = bond.GetBeginAtom(), bond.GetEndAtom()
        carbons = [atom.GetSymbol() == "C" for atom in ends]
        if carbons[0] != carbons[1]:
            carbon, other = ends if carbons[0] else ends[::-1]
            moved[carbon.GetIdx()] += share
            moved[other.GetIdx()] -= share
    return moved


def pattern_answers(mol: Chem.Mol, patterns: tuple[str, ...]) -> set[int]:
    """The answers of "every pattern matches" (module docstring) as atom sets, Python ints (bit i: atom i) so that
    the unions stay cheap; empty when some pattern does not match."""
    joined = {0}
    for smarts in patterns:
        matches = [sum(1 << i for i in match) for match in mol.GetSubstructMatches(pattern(smarts))]
        unions: set[int] = set()
        for match in matches:
            unions |= {match | earlier for earlier in unions} | {match}
        joined = {answer | union for answer in joined for union in unions}
    return joined


def rule_answers(mol: Chem.Mol, rule: tuple[Clause, ...]) -> np.ndarray:
    """bool [M, A]: the legal answers of the rule, each once, those that mark no atom left out (a clause of forbidden
    patterns alone holds without any atom); [0, A] when no clause holds."""
    answers = set().union(*(pattern_answers(mol, clause.required) for clause in rule if clause.holds(mol))) - {0}
    n_atoms = mol.GetNumAtoms()
    return np.array([[(answer >> i) & 1 for i in range(n_atoms)] for answer in sorted(answers)],
                    dtype=bool).reshape(-1, n_atoms)


def ground_truth(task: BenchmarkTask, mol: Chem.Mol) -> np.ndarray:
    """crippen: float [A] contributions; a binary task: bool [M, A] answers."""
    return crippen_contributions(mol) if task.regression else rule_answers(mol, task.rule)


def has_true_atom(task: BenchmarkTask, truth: np.ndarray) -> bool:
    """Whether the molecule takes part in the mean: the binary tasks leave out molecules no rule answer marks."""
    return task.regression or bool(truth.any())


# -- from attributions to atom scores ----------------------------------------------------------------------------

ATOM_VIEWS = ("atoms", "atoms + bonds split", "atoms + all pairs split")


def atom_views(atom_scores: np.ndarray, pair_scores: np.ndarray, features) -> dict[str, np.ndarray]:
    """Per-atom scores three ways: the atoms' own; with each bonded ordered pair's score split half to each of its
    two atoms (so a bond's score, its two ordered pairs, goes half to each end); with every pair's score so split
    (distance-2 pairs too: the scores then add up to the whole attribution). `features`: the molecule's
    MoleculeFeatures, which knows its pairs."""
    return {"atoms": np.asarray(atom_scores, dtype=np.float64),
            "atoms + bonds split": features.atoms_with_pairs(atom_scores, pair_scores),
            "atoms + all pairs split": features.atoms_with_pairs(atom_scores, pair_scores, bonds_only=False)}


def random_attributions(rng: np.random.Generator, n_atoms: int, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """The floor: uniform(0, 1) atom and ordered-pair scores, as the authors' RandomBaseline draws them, taken through
    the same views and metrics. Positive pair scores split to atoms favour atoms with more pairs: with pairs the floor
    ranks atoms by their degree, and is no longer 0 where the truth follows the degree."""
    return rng.uniform(size=n_atoms), rng.uniform(size=n_pairs)


# -- metrics -----------------------------------------------------------------------------------------------------

def kendall_tau_b(truth: np.ndarray, scores: np.ndarray) -> float:
    """Kendall's tau-b (ties in either ranking corrected for); NaN when either side is constant (one atom, say)."""
    truth, scores = np.asarray(truth, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if len(truth) < 2 or np.ptp(truth) == 0 or np.ptp(scores) == 0:
        return float("nan")
    return float(scipy.stats.kendalltau(truth, scores, variant="b").statistic)


def attribution_auroc(answers: np.ndarray, scores: np.ndarray) -> float:
    """The best over the answers (bool [M, A]) of the AUROC of the atom scores for that answer's atoms against the
    rest (Mann-Whitney, ties one half); NaN when no answer has atoms both in and out."""
    answers = np.asarray(answers, dtype=bool).reshape(-1, len(scores))
    positives = answers.sum(axis=1)
    negatives = answers.shape[1] - positives
    defined = (positives > 0) & (negatives > 0)
    if not defined.any():
        return float("nan")
    ranks = scipy.stats.rankdata(np.asarray(scores, dtype=np.float64))  # ties get their average rank
    pos, neg = positives[defined], negatives[defined]
    wins = answers[defined].astype(np.float64) @ ranks - pos * (pos + 1) / 2
    return float(np.max(wins / (pos * neg)))


def score_atoms(task: BenchmarkTask, truth: np.ndarray, scores: np.ndarray) -> float:
    """The task's metric for one molecule (NaN where undefined)."""
    return kendall_tau_b(truth, scores) if task.regression else attribution_auroc(truth, scores)


@dataclass(frozen=True)
class MeanScore:
    mean: float
    standard_error: float
    molecules: int  # those where the metric is defined
    left_out: int  # those where it is not (NaN)


def mean_score(values) -> MeanScore:
    """The mean over the molecules where the metric is defined, and its standard error."""
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    if len(kept) == 0:
        return MeanScore(float("nan"), float("nan"), 0, len(values))
    error = float(kept.std(ddof=1) / np.sqrt(len(kept))) if len(kept) > 1 else float("nan")
    return MeanScore(float(kept.mean()), error, len(kept), len(values) - len(kept))
