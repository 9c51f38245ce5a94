"""A molecules run's rows of one task, read back as molecules with their scores: filters, statistics, exports.

Pure: RDKit, numpy and pandas on the tables a page reads from the run; no Streamlit. A molecules row names its
scores as MoleculeExplanation.scores does: atoms "C1" (element and RDKit atom index), bonds "C1-O2 single" (begin
and end atom, RDKit bond type) and one "non-bonded pairs" total; the indices are those of the molecule the model's
featurizer made of the row's input (families/molecules/featurize.py: the SMILES parsed as RDKit parses it, explicit
hydrogens removed, the first of the largest fragments kept). `stored_molecule` makes that molecule again from the
row's `source` and checks it atom by atom and bond by bond against the names; where the source's atom order differs
(an SDF run stores a canonical SMILES of each record, not the record's own order), the atoms are renumbered onto the
names' graph.

The functional groups and their scoring are families.molecules.functional_groups' (FUNCTIONAL_GROUPS,
functional_group_matches); the statistics have the columns and the meaning of its mean_by_atom_type and
mean_by_functional_group, computed from tables made once per task, so that a new filter of 50,000 rows only
regroups numbers instead of matching every molecule again.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.rdBase import BlockLogs

from families.molecules.functional_groups import FUNCTIONAL_GROUP_PATTERNS
from families.molecules.ground_truth import TASKS, BenchmarkTask, ground_truth, has_true_atom, score_atoms

NONBONDED = "non-bonded pairs"
ATOM_NAME = re.compile(r"([A-Z][a-z]?)(\d+)$")
BOND_NAME = re.compile(r"([A-Z][a-z]?)(\d+)-([A-Z][a-z]?)(\d+) (\w+)$")
ATOM_PROPERTY = "ig_attribution"  # written as the SDF property atom.dprop.ig_attribution
GROUPS = [name for name, _ in FUNCTIONAL_GROUP_PATTERNS]
SORT_KEYS = ("prediction", "completeness error", "group attribution")


class StoreMismatch(ValueError):
    """A row whose SMILES does not give the atoms and bonds its scores name; the message says which row."""


@dataclass(eq=False)
class StoredMolecule:
    """A stored row as a molecule with its scores: what the statistics and the exports read (and, duck-typed,
    the functional_groups module's functional_group_matches and mean_by_atom_type)."""

    mol: Chem.Mol  # atoms in the order of the row's score names
    smiles: str  # the row's source
    atom_scores: np.ndarray  # [atoms] by atom index
    bond_scores: np.ndarray  # [bonds] by RDKit bond index of `mol`
    nonbonded_total: float
    share_base: float  # F(molecule) - F(baseline), NaN when there is nothing to attribute
    atom_types: list[str]  # as mean_by_atom_type: the element, lower case when aromatic
    bond_ends: np.ndarray  # [bonds, 2]: each bond's begin and end atom


# -- names and molecules -----------------------------------------------------------------------------

def molecule_graph(mol: Chem.Mol) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """(element symbols, atom types, bond ends [bonds, 2], bond types) in RDKit's atom and bond order."""
    # by index: RDKit's atom and bond sequences cost a Python call per item on top
    atoms = [mol.GetAtomWithIdx(k) for k in range(mol.GetNumAtoms())]
    bonds = [mol.GetBondWithIdx(k) for k in range(mol.GetNumBonds())]
    symbols = [atom.GetSymbol() for atom in atoms]
    types = [symbol.lower() if atom.GetIsAromatic() else symbol for symbol, atom in zip(symbols, atoms)]
    ends = np.array([(bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()) for bond in bonds], dtype=np.int64)
    return symbols, types, ends.reshape(len(bonds), 2), [str(bond.GetBondType()).lower() for bond in bonds]


def names_of(symbols: Sequence[str], ends: np.ndarray, kinds: Sequence[str]) -> list[str]:
    """Score names as MoleculeExplanation.scores gives them: atoms "C1", bonds "C1-O2 single", the non-bonded
    pairs' total."""
    return ([f"{symbol}{k}" for k, symbol in enumerate(symbols)]
            + [f"{symbols[begin]}{begin}-{symbols[end]}{end} {kind}"
               for (begin, end), kind in zip(ends.tolist(), kinds)]
            + [NONBONDED])


def score_names(mol: Chem.Mol) -> list[str]:
    """The names a molecules row gives the scores of this molecule."""
    symbols, _, ends, kinds = molecule_graph(mol)
    return names_of(symbols, ends, kinds)


def named_graph(names: Sequence[str]) -> tuple[list[str], list[tuple[int, int, str]]]:
    """(element per atom index, [(begin, end, bond type)]) read from score names."""
    elements, bonds = {}, []
    for name in names:
        if atom := ATOM_NAME.match(name):
            elements[int(atom[2])] = atom[1]
        elif bond := BOND_NAME.match(name):
            bonds.append((int(bond[2]), int(bond[4]), bond[5]))
        elif name != NONBONDED:
            raise StoreMismatch(f"{name!r} names no atom, bond or the non-bonded pairs")
    if sorted(elements) != list(range(len(elements))):
        raise StoreMismatch("the atom names do not number the atoms 0, 1, 2, ...")
    return [elements[k] for k in range(len(elements))], bonds


def largest_fragment(smiles: str) -> Chem.Mol:
    """The molecule of a SMILES as the featurizer keeps it: explicit hydrogens removed, the first of the largest
    fragments."""
    with BlockLogs():
        mol = Chem.MolFromSmiles(smiles or "")
    if mol is None:
        raise StoreMismatch(f"RDKit cannot read the SMILES {smiles!r}")
    fragments = Chem.GetMolFrags(mol)  # atom indices: cheap, where asMols copies every molecule
    if len(fragments) == 1:
        return mol
    return Chem.GetMolFrags(mol, asMols=True)[int(np.argmax([len(fragment) for fragment in fragments]))]


def onto_named_graph(mol: Chem.Mol, names: Sequence[str]) -> Chem.Mol:
    """The molecule with its atoms renumbered onto the graph the names describe (element and bond types; charges
    and hydrogens are not in the names), or StoreMismatch when the graphs differ."""
    elements, bonds = named_graph(names)
    query = Chem.RWMol()
    for element in elements:
        query.AddAtom(Chem.Atom(element))
    for begin, end, kind in bonds:
        query.AddBond(begin, end, Chem.BondType.names.get(kind.upper(), Chem.BondType.UNSPECIFIED))
    query = query.GetMol()
    query.UpdatePropertyCache(strict=False)
    same_size = len(elements) == mol.GetNumAtoms() and len(bonds) == mol.GetNumBonds()
    match = mol.GetSubstructMatch(query) if same_size else ()
    if not match:
        raise StoreMismatch(f"the atoms and bonds of {Chem.MolToSmiles(mol)} are not those its scores name")
    return Chem.RenumberAtoms(mol, list(match))


def _identity(name: str):
    """An atom's name, or a bond's atoms (either direction) and type."""
    bond = BOND_NAME.match(name)
    return name if bond is None else (frozenset((bond[2], bond[4])), bond[5])


def stored_molecule(smiles: str, names: Sequence[str], scores: Sequence[float], share_base: float) -> StoredMolecule:
    """A row's scores on its molecule: atom scores by atom index, bond scores by the molecule's bond index.

    The SMILES's own atom order is the names' when the run read it as a SMILES (names equal, no search); another
    order (an SDF run's canonical SMILES) is renumbered onto the names' graph and the scores found by name."""
    if names is None or scores is None or len(names) != len(scores):
        raise StoreMismatch("the row has no scores, or not one for each name")
    names, values = list(names), np.asarray(scores, dtype=np.float64)
    mol = largest_fragment(smiles)
    symbols, types, ends, kinds = molecule_graph(mol)
    own = names_of(symbols, ends, kinds)
    if own != names:
        mol = onto_named_graph(mol, names)
        symbols, types, ends, kinds = molecule_graph(mol)
        own = names_of(symbols, ends, kinds)
        where = {_identity(name): k for k, name in enumerate(names)}
        try:
            values = values[[where[_identity(name)] for name in own]]
        except KeyError:  # a bond the match paired with one of another type
            raise StoreMismatch(f"the atoms and bonds of {smiles} are not those its scores name") from None
    atoms, bonds = len(symbols), len(ends)
    return StoredMolecule(mol, smiles, values[:atoms], values[atoms:atoms + bonds], float(values[-1]), share_base,
                          types, ends)


def share_base(score_input: float, score_baseline: float, nothing_to_attribute: bool) -> float:
    """The denominator of a share, as MoleculeExplanation.share_base: F(molecule) - F(baseline), else NaN."""
    difference = float(score_input) - float(score_baseline)
    return np.nan if nothing_to_attribute or difference == 0 else difference


# -- one task of a run -------------------------------------------------------------------------------

def explained(listing: pd.DataFrame) -> pd.DataFrame:
    """The listing's explained rows (the ones with a task and scores)."""
    return listing[(listing["status"] == "explained") & listing["target"].notna()]


def task_counts(listing: pd.DataFrame) -> pd.DataFrame:
    """target, task and rows of each task among the explained rows, in the model's task order."""
    rows = explained(listing)
    counts = rows.groupby(["target", "target_name"]).size().reset_index(name="rows")
    return counts.rename(columns={"target_name": "task"}).astype({"target": np.int64})


@dataclass(eq=False)
class TaskRows:
    """One task's rows with their molecules, and the per-atom and per-group tables every selection regroups.

    A position is a row's place in `rows` (0 .. n-1), the same in `molecules` and the tables."""

    rows: pd.DataFrame  # the listing's columns, in item order
    molecules: list[StoredMolecule]
    occurrences: pd.DataFrame  # one row per functional-group match: position, group, score, share, size
    group_totals: pd.DataFrame  # [position, group]: the group's atoms and bonds, each once; NaN: not in it
    group_counts: pd.DataFrame  # [position, group]: matches of the group
    atoms: pd.DataFrame  # one row per atom: position, atom type, score, share
    left_out: list[str]  # the rows whose molecule could not be read, and why

    @property
    def prediction_name(self) -> str:
        """What the prediction column holds: P(active), or a regression task's value (no probability)."""
        return "predicted value" if self.rows["probability"].isna().all() and len(self.rows) else "P(active)"

    @property
    def predictions(self) -> pd.Series:
        return self.rows["score_input" if self.prediction_name == "predicted value" else "probability"]


def task_rows(listing: pd.DataFrame, scores: pd.DataFrame) -> TaskRows:
    """The task's listing rows (explained, one task) joined with their scores by item (`scores`: item_index,
    score_names and scores of the task's explained rows, as a page reads them from the run)."""
    joined = listing.drop(columns=["score_names", "scores"], errors="ignore").merge(
        scores, on="item_index", validate="one_to_one").sort_values("item_index", kind="stable")
    molecules, keep, left_out = [], [], []
    for k, row in enumerate(joined.itertuples(index=False)):
        try:
            molecules.append(stored_molecule(row.source, row.score_names, row.scores,
                                             share_base(row.score_input, row.score_baseline, row.nothing_to_attribute)))
            keep.append(k)
        except StoreMismatch as exc:
            left_out.append(f"{row.item_id}: {exc}")
    rows = joined.iloc[keep].drop(columns=["score_names", "scores"]).reset_index(drop=True)
    occurrences, totals, counts = functional_groups(molecules)
    return TaskRows(rows, molecules, occurrences, totals, counts, atom_rows(molecules), left_out)


def group_matches(molecule: StoredMolecule) -> list[tuple[str, tuple[int, ...], np.ndarray, float]]:
    """(group, matched atoms, the bonds inside the match as a mask, score) per match of
    FUNCTIONAL_GROUPS, scored as functional_group_matches scores it (the
    match's atom scores, then its inside bonds' scores added in bond order), with the bonds inside found from the bond
    ends at once rather than bond by bond."""
    begin, end = molecule.bond_ends.T
    out = []
    for name, pattern in FUNCTIONAL_GROUP_PATTERNS:
        for match in molecule.mol.GetSubstructMatches(pattern, uniquify=True):
            matched = np.zeros(len(molecule.atom_scores), dtype=bool)
            matched[list(match)] = True
            inside = matched[begin] & matched[end]
            score = float(molecule.atom_scores[list(match)].sum())
            for value in molecule.bond_scores[inside]:
                score += float(value)
            out.append((name, match, inside, score))
    return out


def functional_groups(molecules: Sequence[StoredMolecule]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(occurrences, totals, counts): one row per match of a functional group, and per molecule and group the
    number of matches and the score of all of them, their atoms and inside bonds each counted once (overlapping
    matches, as the two rings of naphthalene, do not count their shared atoms twice); NaN where it has none."""
    occurrences = []
    totals = np.full((len(molecules), len(GROUPS)), np.nan)
    counts = np.zeros((len(molecules), len(GROUPS)), dtype=np.int64)
    for position, molecule in enumerate(molecules):
        atoms: dict[str, set] = {}
        bonds: dict[str, np.ndarray] = {}
        for name, match, inside, score in group_matches(molecule):
            occurrences.append((position, name, score, score / molecule.share_base, len(match)))
            atoms[name] = atoms.get(name, set()) | set(match)
            bonds[name] = bonds.get(name, False) | inside
            counts[position, GROUPS.index(name)] += 1
        for name in atoms:
            totals[position, GROUPS.index(name)] = (molecule.atom_scores[sorted(atoms[name])].sum()
                                                    + molecule.bond_scores[bonds[name]].sum())
    return (pd.DataFrame(occurrences, columns=["position", "group", "score", "share", "size"]),
            pd.DataFrame(totals, columns=GROUPS), pd.DataFrame(counts, columns=GROUPS))


def atom_rows(molecules: Sequence[StoredMolecule]) -> pd.DataFrame:
    """One row per atom of the molecules: position, atom type, score, share."""
    sizes = [len(molecule.atom_scores) for molecule in molecules]
    scores = np.concatenate([molecule.atom_scores for molecule in molecules] or [np.zeros(0)])
    return pd.DataFrame({
        "position": np.repeat(np.arange(len(molecules)), sizes),
        "atom type": [kind for molecule in molecules for kind in molecule.atom_types],
        "score": scores,
        "share": scores / np.repeat([molecule.share_base for molecule in molecules], sizes)})


# -- a selection of a task's rows --------------------------------------------------------------------

def smarts_pattern(text: str) -> Chem.Mol | None:
    """The SMARTS query of `text`, None for no filter; ValueError with a message for the user if RDKit cannot
    read it."""
    text = (text or "").strip()
    if not text:
        return None
    with BlockLogs():
        pattern = Chem.MolFromSmarts(text)
    if pattern is None:
        raise ValueError(f"'{text}' is not a valid SMARTS pattern (RDKit could not read it). Check the brackets, "
                         "ring-closure digits and atom primitives, e.g. c1ccccc1 (a benzene ring), [OX2H] "
                         "(a hydroxyl) or [N+](=O)[O-] (a nitro group).")
    return pattern


def matching(task: TaskRows, pattern: Chem.Mol | None) -> np.ndarray:
    """Positions of the molecules that contain the pattern (all of them without one)."""
    if pattern is None:
        return np.arange(len(task.molecules))
    return np.array([k for k, molecule in enumerate(task.molecules) if molecule.mol.HasSubstructMatch(pattern)],
                    dtype=np.int64)


def known_ground_truth(task_name: str) -> BenchmarkTask | None:
    """The ground truth a run's task has, by the task's name: Crippen's per-atom logP contributions for a task named
    like Crippen logP ("crippen", "crippen_logp", "logp"), the benchmark's SMARTS rule for a task named like one of
    its binary tasks ("benzene", "logic7", ...); None for any other task."""
    name = task_name.strip().lower()
    return TASKS["crippen"] if name in ("crippen", "crippen_logp", "logp") else TASKS.get(name)


def ground_truth_agreement(task: TaskRows, truth: BenchmarkTask) -> np.ndarray:
    """[rows] each molecule's agreement of its atom scores with the ground truth, as the benchmark scores it (Kendall
    tau-b against Crippen's contributions, attribution AUROC against the rule's atoms); NaN where undefined (a
    molecule without a true atom, a constant ranking)."""
    agreement = np.full(len(task.molecules), np.nan)
    for position, molecule in enumerate(task.molecules):
        answers = ground_truth(truth, molecule.mol)
        if has_true_atom(truth, answers):
            agreement[position] = score_atoms(truth, answers, molecule.atom_scores)
    return agreement


def agreement_column(truth: BenchmarkTask) -> str:
    return f"ground truth: {truth.metric}"


def selection_table(task: TaskRows, positions: Sequence[int], group: str, sort_by: str = SORT_KEYS[0],
                    descending: bool = True, truth: BenchmarkTask | None = None,
                    agreement: np.ndarray | None = None) -> pd.DataFrame:
    """The selected rows, indexed by position, sorted by one of SORT_KEYS (missing values last); with each row's
    agreement with its task's ground truth where it has one (ground_truth_agreement over all rows)."""
    rows = task.rows.iloc[positions]
    table = pd.DataFrame({
        "item": rows["item_id"].to_numpy(), "SMILES": rows["source"].to_numpy(),
        task.prediction_name: task.predictions.iloc[positions].to_numpy(),
        "completeness error": rows["relative_delta"].to_numpy(), "delta": rows["delta"].to_numpy(),
        "label": rows["target_truth"].to_numpy(),
        f"{group}: attribution": task.group_totals[group].iloc[positions].to_numpy(),
        f"{group}: matches": task.group_counts[group].iloc[positions].to_numpy()},
        index=pd.Index(np.asarray(positions, dtype=np.int64), name="position"))
    if truth is not None and agreement is not None:  # beside the prediction, where a narrow pane still shows it
        table.insert(3, agreement_column(truth), agreement[np.asarray(positions, dtype=np.int64)])
    column = {"prediction": task.prediction_name, "completeness error": "completeness error",
              "group attribution": f"{group}: attribution"}[sort_by]
    return table.sort_values(column, ascending=not descending, na_position="last", kind="stable")


def atom_type_statistics(task: TaskRows, positions: Sequence[int]) -> pd.DataFrame:
    """mean_by_atom_type's table over the selected rows (molecules: rows with such an atom)."""
    atoms = task.atoms[task.atoms["position"].isin(positions)]
    out = atoms.groupby("atom type").agg(atoms=("score", "size"), molecules=("position", "nunique"),
                                         **{"mean score": ("score", "mean"), "mean share": ("share", "mean"),
                                            "std score": ("score", "std")})
    return out.reset_index().sort_values("mean score", ascending=False, ignore_index=True)


def group_statistics(task: TaskRows, positions: Sequence[int]) -> pd.DataFrame:
    """mean_by_functional_group's table over the selected rows (mean score: per match), with the
    mean per molecule that contains the group (its matches' atoms and bonds, each once: the table's attribution)."""
    matches = task.occurrences[task.occurrences["position"].isin(positions)].assign(
        per_atom=lambda frame: frame["score"] / frame["size"])
    out = matches.groupby("group").agg(occurrences=("score", "size"), molecules=("position", "nunique"),
                                       **{"mean score": ("score", "mean"), "mean share": ("share", "mean"),
                                          "mean score per atom": ("per_atom", "mean")})
    out["mean per molecule"] = task.group_totals.iloc[positions].mean()[out.index]
    return out.reset_index().sort_values("mean score", ascending=False, ignore_index=True)


# -- exports -----------------------------------------------------------------------------------------

def selection_csv(task: TaskRows, table: pd.DataFrame, task_name: str) -> str:
    """The selected rows in the table's order: the row's numbers and the attribution on every functional group
    (empty where the molecule has none)."""
    rows = task.rows.loc[table.index]
    out = pd.DataFrame({"item_index": rows["item_index"], "item": rows["item_id"], "smiles": rows["source"],
                        "task": task_name, "probability": rows["probability"], "score_input": rows["score_input"],
                        "score_baseline": rows["score_baseline"], "delta": rows["delta"],
                        "relative_delta": rows["relative_delta"], "label": rows["target_truth"]})
    groups = task.group_totals.loc[table.index].add_prefix("attribution: ")
    return pd.concat([out, groups], axis=1).to_csv(index=False)


def _number(value) -> str | None:
    """A float as the shortest text that reads back to the same float64; None for a missing one."""
    return None if value is None or pd.isna(value) else repr(float(value))


def selection_sdf(task: TaskRows, positions: Sequence[int], task_name: str) -> str:
    """An SD file of the selected rows: per-atom scores as the atom property list atom.dprop.ig_attribution
    (RDKit writes 17 significant digits, so the float64 values read back exactly), the bond scores in the
    record's bond order and the row's numbers as record properties."""
    text = io.StringIO()
    writer = Chem.SDWriter(text)
    for position, row in zip(positions, task.rows.iloc[list(positions)].to_dict("records")):
        molecule = task.molecules[position]
        mol = Chem.Mol(molecule.mol)  # the cached molecule stays without properties
        for atom, score in zip(mol.GetAtoms(), molecule.atom_scores):
            atom.SetDoubleProp(ATOM_PROPERTY, float(score))
        Chem.CreateAtomDoublePropertyList(mol, ATOM_PROPERTY)
        properties = {"_Name": row["item_id"], "smiles": row["source"], "task": task_name,
                      "probability": _number(row["probability"]), "score_input": _number(row["score_input"]),
                      "score_baseline": _number(row["score_baseline"]), "delta": _number(row["delta"]),
                      "relative_delta": _number(row["relative_delta"]), "label": _number(row["target_truth"]),
                      "ig_bond_attribution": " ".join(map(_number, molecule.bond_scores)),
                      "ig_nonbonded_pairs": _number(molecule.nonbonded_total),
                      "model_key": row["model_key"], "method": row["method"]}
        for name, value in properties.items():
            if value is not None:
                mol.SetProp(name, str(value))
        writer.write(mol)
    writer.close()
    return text.getvalue()


def model_source_name(model_key: str, sources) -> str | None:
    """The name of the family's model source whose weights made the rows (model_key "molecules:NAME:DIGEST16",
    as the molecules family keys a loaded model), or None when none of them is that model."""
    return next((source.name for source in sources
                 if model_key == f"molecules:{source.name}:{source.digest[:16]}"), None)
