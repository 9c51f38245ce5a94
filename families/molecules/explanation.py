"""One molecule's explanation for the weave model: atoms, bonds and atom pairs (paper Section 3.1, Figures 7, 13).

No Streamlit here. The counterfactuals scale the atom features and the pair features of a molecule by
the same alpha towards the family's baseline (families.molecules.baseline); F is the log-odds that the molecule
is active on a classification task (log P(active) / P(inactive): a probability saturates, see
families.molecules.family), or the predicted value of a regression task (in the column's units); a contrast "task a
rather than task b" explains log-odds(a) - log-odds(b). From one engine scan we get:

* an attribution per atom feature [A, Fa] and per ordered-pair feature [P, Fp];
* an atom's score = the sum over its features; a bond's score = the sum over the features of its two
  ordered pairs (i, j) and (j, i); the non-bonded (distance-2) pairs have no bond to draw, so they are
  reported as one total;
* the accounting of Section 3.1: atoms + bonded pairs + non-bonded pairs add up to the total
  attribution, which completeness makes equal to F(molecule) - F(baseline) (the gap is reported);
* the saturation trend (Figure 13): F and the sum of the feature gradients against alpha.

Results are cached inside the engine (``model_key`` names the model's weights *and* the molecule's graph,
which is not part of the scaled inputs), so revisiting a molecule costs nothing.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rdkit import Chem

from families.contract import NEAR_EQUAL_FRACTION, Explanation, target_label
from families.molecules.baseline import MoleculeBaseline
from families.molecules.featurize import MoleculeError, MoleculeFeatures
from families.molecules.weave import WeaveModel, predict_batched
from ig_core import Attribution, Contrast, ScanSettings

# -- inputs ------------------------------------------------------------------------------------------

def featurize(model: WeaveModel, smiles_or_mol) -> MoleculeFeatures:
    """A SMILES string, an RDKit Mol or already featurized molecule -> the model's own features.

    Raises MoleculeError (a message for the user) for anything the featurizer refuses."""
    if isinstance(smiles_or_mol, MoleculeFeatures) or all(
            hasattr(smiles_or_mol, a) for a in ("atoms", "pairs", "pair_index", "pair_bond", "mol")):
        return smiles_or_mol  # duck-typed too: Streamlit's reloads can leave two MoleculeFeatures classes
    if model.featurizer is None:
        raise ValueError("the model has no featurizer: load it with families.molecules.load_weave")
    if isinstance(smiles_or_mol, Chem.Mol):
        return model.featurizer.from_mol(smiles_or_mol)
    if smiles_or_mol is None or isinstance(smiles_or_mol, str):
        return model.featurizer.from_smiles(smiles_or_mol)
    raise MoleculeError(f"Cannot read a molecule from a {type(smiles_or_mol).__name__}.")


def model_fingerprint(model: WeaveModel) -> str:
    """A digest of the model's weights and task scaling (computed once per model object)."""
    fp = model.__dict__.get("_ig_fingerprint")
    if fp is None:
        h = hashlib.sha256(repr(model.config).encode())
        # the regression tasks' scaling is part of F but not of the state_dict
        h.update(repr((model.task_kinds, model.target_mean.tolist(), model.target_std.tolist())).encode())
        for k, v in model.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        fp = h.hexdigest()[:16]
        model.__dict__["_ig_fingerprint"] = fp
    return fp


def graph_digest(features: MoleculeFeatures) -> str:
    """The molecule's graph, which is not part of the scaled inputs: it belongs in the engine's cache key."""
    h = hashlib.sha256(features.smiles.encode())
    h.update(features.pair_index.numpy().tobytes())
    h.update(features.pair_bond.numpy().tobytes())
    return h.hexdigest()[:16]


def molecule_key(model: WeaveModel, features: MoleculeFeatures) -> str:
    """The engine cache key: the weights plus the molecule's graph."""
    return f"weave:{model_fingerprint(model)}:{graph_digest(features)}"


def is_regression(model: WeaveModel, task: int | str) -> bool:
    return bool(model.regression[task_index(model, task)])


def quantity(regression: bool, task: str = "") -> str:
    """What F is, for labels: "log-odds(active)" or "predicted value", with the task when given."""
    if regression:
        return f"predicted value ({task})" if task else "predicted value"
    return f"log-odds(active: {task})" if task else "log-odds(active)"


def contrast_refusal(model: WeaveModel) -> str | None:
    """Why the model's tasks cannot be contrasted ("this task rather than that", F = log-odds(a) - log-odds(b)), or
    None when they can: two classification tasks at least, as a difference of a probability and a value, or of two
    values in their own units, is nobody's evidence."""
    if len(model.task_names) < 2:
        return "the model has one task: there is no other task to explain it rather than"
    if bool(model.regression.any()):
        return ("the model has regression tasks: a contrast is a difference of two classification tasks' log-odds, "
                "and its tasks' outputs are in different units")
    return None


def task_index(model: WeaveModel, task: int | str) -> int:
    names = list(model.task_names)
    if isinstance(task, str):
        if task not in names:
            raise ValueError(f"unknown task {task!r}; the model has {', '.join(names)}")
        return names.index(task)
    t = int(task)
    if not 0 <= t < len(names):
        raise ValueError(f"task {t} out of range for {len(names)} tasks")
    return t


# -- predictions -------------------------------------------------------------------------------------

def predict(model: WeaveModel, features: MoleculeFeatures) -> np.ndarray:
    """[T]: P(active) of each classification task, the predicted value of each regression task."""
    return predict_batched(model, [features])[0]


# -- one molecule ------------------------------------------------------------------------------------

BOND_COLUMNS = ["bond", "atoms", "type", "pair i→j", "pair j→i", "score", "share"]
# the accounting's columns, in percent
PERCENT_OF_DIFFERENCE = "% of F(molecule) - F(baseline)"
PERCENT_OF_PREDICTION = "% of F(molecule)"


@dataclass(eq=False)
class MoleculeExplanation(Explanation):
    """Integrated gradients of one task's prediction (its log-odds, or a regression task's value) for one molecule.

    The engine's result is read through families.contract.Explanation, whose per-target arrays (score_input, ...)
    hold the one explained task; task_score_input, task_score_baseline, task_delta and task_relative_delta are
    that task's values as floats."""

    attribution: Attribution
    settings: ScanSettings
    model_key: str
    features: MoleculeFeatures
    task: int
    task_names: list[str]
    weave: WeaveModel = dataclasses.field(repr=False)  # the network, for `predictions`
    task_regression: list[bool]  # per task of the model
    atom_attr: np.ndarray  # [A, Fa]
    pair_attr: np.ndarray  # [P, Fp] per ordered pair
    baseline: MoleculeBaseline  # what the path started from
    # a contrast's other task: F = log-odds(task) - log-odds(other_task), on the log-odds for every target
    other_task: int | None = None

    def __post_init__(self):
        target = self.task if self.other_task is None else Contrast(self.task, self.other_task)
        Explanation.__init__(self, self.attribution, [target], [target_label(self.task_names, target)],
                             self.settings, self.model_key)

    @property
    def task_name(self) -> str:
        return self.task_names[self.task]

    @property
    def explained_name(self) -> str:
        """The task, or the contrast "a rather than b"."""
        return self.target_names[0]

    @functools.cached_property
    def predictions(self) -> np.ndarray:
        """[T] P(active), or the predicted value of a regression task: a forward pass, run when first read (a
        dataset run stores the explained task's scores and never reads them)."""
        return predict(self.weave, self.features)

    @property
    def regression(self) -> bool:
        """F is the task's predicted value, not its log-odds."""
        return bool(self.task_regression[self.task])

    @property
    def task_score_input(self) -> float:  # F(molecule)
        return float(self.per_target("score_input")[0])

    @property
    def task_score_baseline(self) -> float:  # F(baseline)
        return float(self.per_target("score_baseline")[0])

    @property
    def task_delta(self) -> float:  # sum of attributions - (F(molecule) - F(baseline))
        return float(self.per_target("delta")[0])

    @property
    def task_relative_delta(self) -> float:  # the relative completeness error
        return float(self.per_target("relative_delta")[0])

    @property
    def nothing_to_attribute(self) -> bool:  # F(molecule) = F(baseline) up to rounding (set by the engine)
        return bool(self.nothing_per_target()[0])

    @property
    def tolerance(self) -> float:
        return float(self.settings.tolerance)

    @property
    def max_steps(self) -> int:  # the adaptive rule's budget of path points
        return int(self.settings.max_steps)

    @property
    def alphas(self) -> np.ndarray:  # [K]
        return np.asarray(self.attribution.alphas, dtype=float)

    @property
    def trend(self) -> np.ndarray:  # [K] F along the path
        return self.attribution.scores[:, 0, 0]

    @property
    def grad_sum(self) -> np.ndarray:  # [K] sum of all feature gradients (Figure 13b)
        return self.attribution.grad_sum[:, 0, 0]

    @property
    def steps_used(self) -> int:
        return int(self.attribution.steps_used)

    @property
    def rule(self) -> str:
        return self.attribution.rule

    @property
    def nonfinite(self) -> bool:
        return bool(self.attribution.nonfinite)

    @property
    def message(self) -> str:
        return self.attribution.message

    @property
    def warnings(self) -> list[str]:
        return list(self.features.warnings)

    def scores(self, t: int = 0) -> dict[str, float]:
        """Per atom ("C1", "O2"), per bond ("C1-O2 single") and the non-bonded pairs' total (one task: t = 0)."""
        atoms = {f"{a.GetSymbol()}{a.GetIdx()}": float(s) for a, s in zip(self.mol.GetAtoms(), self.atom_scores)}
        bonds = {f"{row['atoms']} {row['type']}": row["score"] for row in self.bond_rows()}
        return {**atoms, **bonds, "non-bonded pairs": float(self.nonbonded_total)}

    def compared_map(self, t: int = 0) -> np.ndarray:
        """Per atom, with half of each bond (the page's "own + half of each bond"). Ranked together with the bonds,
        atoms outscore them on any model, trained or random (an atom has more features), so maps looked alike after
        randomisation for that alone: on 40 Tox21 molecules the gradient was flagged on 35% of them (0% per atom),
        integrated gradients on 33% (15%)."""
        return self.atom_scores_with_bonds

    @property
    def quantity(self) -> str:
        """"log-odds(active)", "predicted value" or a contrast's "log-odds difference": what F is, for labels."""
        return "log-odds difference" if self.contrasted else quantity(self.regression)

    @property
    def explained_quantity(self) -> str:
        """What F is, with its tasks: "log-odds(active: NR-AR)", or a contrast's
        "log-odds(NR-AR) - log-odds(SR-MMP)"."""
        if self.contrasted:
            return f"log-odds({self.task_name}) - log-odds({self.task_names[self.other_task]})"
        return quantity(self.regression, self.task_name)

    # -- per atom, bond, pair
    @property
    def mol(self) -> Chem.Mol:
        return self.features.mol

    @property
    def smiles(self) -> str:
        return self.features.smiles

    @property
    def atom_scores(self) -> np.ndarray:
        """[A]: sum over each atom's features."""
        return self.atom_attr.sum(axis=1)

    @property
    def pair_scores(self) -> np.ndarray:
        """[P]: sum over each ordered pair's features."""
        return self.pair_attr.sum(axis=1)

    @property
    def bond_scores(self) -> np.ndarray:
        """[n_bonds] by RDKit bond index: the sum of the bond's two ordered pairs."""
        return self.features.bond_scores(self.pair_scores)

    @property
    def atom_scores_with_bonds(self) -> np.ndarray:
        """[A]: each atom's score plus half of each of its bonds' scores, so that they add up to the atoms' and bonds'
        total (the molecule benchmark's "atoms + bonds split", nearest its published protocol)."""
        return self.features.atoms_with_pairs(self.atom_scores, self.pair_scores)

    @property
    def nonbonded_total(self) -> float:
        return self.features.nonbonded_total(self.pair_scores)

    @property
    def difference(self) -> float:
        """F(molecule) - F(baseline): what the attributions must add up to."""
        return self.task_score_input - self.task_score_baseline

    @property
    def share_base(self) -> float:
        """The denominator of every share: F(molecule) - F(baseline), NaN when there is nothing to attribute."""
        return np.nan if self.nothing_to_attribute or self.difference == 0 else self.difference

    @property
    def total(self) -> float:
        return float(self.atom_attr.sum() + self.pair_attr.sum())

    def part_totals(self) -> dict[str, float]:
        """Section 3.1's parts: the attributions of the atoms, of the bonded pairs and of the non-bonded pairs."""
        return {"atoms": float(self.atom_scores.sum()), "bonded pairs": float(self.bond_scores.sum()),
                "non-bonded pairs": float(self.nonbonded_total)}

    @property
    def parts_size(self) -> float:
        """|atoms| + |bonded pairs| + |non-bonded pairs|: how much the parts move F, whichever way."""
        return float(sum(abs(value) for value in self.part_totals().values()))

    @property
    def explains_little(self) -> bool:
        """F(molecule) and F(baseline) nearly equal next to the parts' size (NEAR_EQUAL_FRACTION): the parts
        cancel, and their shares of F(molecule) - F(baseline) would be meaningless."""
        return self.nothing_to_attribute or abs(self.difference) <= NEAR_EQUAL_FRACTION * self.parts_size

    def accounting(self) -> pd.DataFrame:
        """Section 3.1: who gets the score. Rows add up to F(molecule) (the last row).

        Percentages are of F(molecule) - F(baseline) (the quantity the attributions explain; NaN when the
        attributions explain little of it) and of F(molecule)."""
        parts = [*self.part_totals().items(), ("completeness gap", -self.task_delta),
                 ("F(baseline)", self.task_score_baseline)]
        diff = np.nan if self.explains_little else self.difference
        f_molecule = self.task_score_input if abs(self.task_score_input) > 1e-12 else np.nan
        rows = [{"part": name, "attribution": value,
                 PERCENT_OF_DIFFERENCE: 100 * value / diff if name != "F(baseline)" else np.nan,
                 PERCENT_OF_PREDICTION: 100 * value / f_molecule}
                for name, value in parts]
        rows.append({"part": "F(molecule)", "attribution": self.task_score_input,
                     PERCENT_OF_DIFFERENCE: np.nan, PERCENT_OF_PREDICTION: 100 * self.task_score_input / f_molecule})
        return pd.DataFrame(rows)

    def atom_table(self) -> pd.DataFrame:
        """One row per atom: index, element, neighbours, score, with half of its bonds' scores, share, strongest
        feature."""
        names = self.features.featurizer.atom_feature_names if self.features.featurizer else None
        diff = self.share_base
        rows = []
        for atom, score, with_bonds, attr in zip(self.mol.GetAtoms(), self.atom_scores, self.atom_scores_with_bonds,
                                                 self.atom_attr):
            k = int(np.argmax(np.abs(attr)))
            rows.append({"atom": atom.GetIdx(), "element": atom.GetSymbol(), "aromatic": atom.GetIsAromatic(),
                         "bonds": atom.GetDegree(), "H": atom.GetTotalNumHs(), "score": float(score),
                         "score + ½ bonds": float(with_bonds), "share": float(score) / diff,
                         "strongest feature": f"{names[k] if names else k} ({attr[k]:+.3g})"})
        return pd.DataFrame(rows)

    def bond_table(self) -> pd.DataFrame:
        """One row per bond: both ordered pairs and their sum (the bond's score)."""
        return pd.DataFrame(self.bond_rows(), columns=BOND_COLUMNS)  # the columns also for a molecule without bonds

    def bond_rows(self) -> list[dict]:
        """bond_table's rows as dicts (a data frame costs more than the scores of a dataset run's row)."""
        ps = self.pair_scores
        pair_of = {}
        for k, (i, j) in enumerate(self.features.pair_index.tolist()):
            pair_of[(i, j)] = k
        diff = self.share_base
        rows = []
        for bond, score in zip(self.mol.GetBonds(), self.bond_scores):
            i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            a, b = self.mol.GetAtomWithIdx(i).GetSymbol(), self.mol.GetAtomWithIdx(j).GetSymbol()
            rows.append({"bond": bond.GetIdx(), "atoms": f"{a}{i}-{b}{j}",
                         "type": str(bond.GetBondType()).lower(),
                         "pair i→j": float(ps[pair_of[(i, j)]]), "pair j→i": float(ps[pair_of[(j, i)]]),
                         "score": float(score), "share": float(score) / diff})
        return rows

    def scores_csv(self) -> str:
        """Atom and bond scores (and the non-bonded total) as one CSV for download."""
        atoms = self.atom_table().assign(kind="atom", id=lambda d: d["atom"], label=lambda d: d["element"])
        bonds = self.bond_table().assign(kind="bond", id=lambda d: d["bond"],
                                         label=lambda d: d["atoms"] + " " + d["type"])
        rest = pd.DataFrame([{"kind": "non-bonded pairs", "id": -1, "label": "all distance-2 pairs",
                              "score": self.nonbonded_total, "share": self.nonbonded_total / self.share_base}])
        cols = ["kind", "id", "label", "score", "share"]
        parts = [atoms[cols], bonds[cols], rest[cols]]
        out = pd.concat([part for part in parts if len(part)], ignore_index=True)  # a lone atom has no bonds
        header = (f"# smiles={self.smiles}; task={self.explained_name}; F(x)={self.task_score_input:.6g}; "
                  f"F(baseline)={self.task_score_baseline:.6g}; "
                  f"relative completeness error={self.task_relative_delta:.3g}\n")
        return header + out.to_csv(index=False)
