"""RDKit featurization for the weave model ("simple" featurization of Kearnes et al. 2016, paper 3.1).

Atoms (heavy atoms only; hydrogens are implicit):

* ``simple``  -- one-hot element type over ``ELEMENTS`` (50 elements, listed below). There is no
  "other" bucket: an element outside the list raises :class:`MoleculeError` naming it.
* ``simple+`` -- the element one-hot plus a few standard RDKit atom features (all one-hot or 0/1):
  heavy-atom degree (0, 1, 2, 3, 4, 5+), total hydrogen count (0, 1, 2, 3, 4+), formal charge
  (negative, neutral, positive), aromatic, in ring, hybridization (sp, sp2, sp3; other hybridizations
  leave all three at 0).

Atom pairs: every ordered pair (i, j), i != j, whose graph distance is at most ``max_distance``
(2 = "N2"); both (i, j) and (j, i) are present and carry identical features. Pair features are
one-hot bond type (single, double, triple, aromatic; all zero for non-bonded pairs) followed by
one-hot graph distance (1, 2). Integrated gradients scales both tensors by alpha towards a baseline made
from these column names (families.molecules.baseline).

Inputs with several fragments (salts, mixtures) keep the largest fragment (most heavy atoms) and say
so in :attr:`MoleculeFeatures.warnings`; every other problem raises :class:`MoleculeError` whose
message is meant to be shown to a user as is.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from rdkit.rdBase import BlockLogs

from families.contract import InputError

FEATURIZER_VERSION = 1

#: Supported elements, in one-hot order: every element of Tox21's largest fragments plus the
#: elements of DeepChem's weave atom list. Nothing else is accepted.
ELEMENTS: tuple[str, ...] = (
    "C", "N", "O", "S", "Cl", "F", "P", "Br", "I", "Si", "B", "Se", "As", "H",
    "Na", "K", "Li", "Mg", "Ca", "Ba", "Be", "Al", "Ge", "Sn", "Pb", "Sb", "Bi", "Tl", "In",
    "Ti", "Zr", "V", "Cr", "Mo", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Cd", "Hg", "Pd", "Pt",
    "Ag", "Au", "Nd", "Dy", "Gd", "Yb",
)
_ELEMENT_INDEX = {e: i for i, e in enumerate(ELEMENTS)}

_EXTRA_ATOM_FEATURES: tuple[str, ...] = (
    "degree=0", "degree=1", "degree=2", "degree=3", "degree=4", "degree=5+",
    "H=0", "H=1", "H=2", "H=3", "H=4+",
    "charge<0", "charge=0", "charge>0",
    "aromatic", "in ring",
    "sp", "sp2", "sp3",
)
_HYBRIDIZATION = {
    Chem.HybridizationType.SP: 0,
    Chem.HybridizationType.SP2: 1,
    Chem.HybridizationType.SP3: 2,
}

BOND_TYPES: tuple[str, ...] = ("single", "double", "triple", "aromatic")
_BOND_INDEX = {
    Chem.BondType.SINGLE: 0,
    Chem.BondType.DOUBLE: 1,
    Chem.BondType.TRIPLE: 2,
    Chem.BondType.AROMATIC: 3,
}

FEATURIZER_KINDS = ("simple", "simple+")
DEFAULT_MAX_ATOMS = 150


class MoleculeError(InputError):
    """A molecule that cannot be featurized; ``str(err)`` is a message for the user."""


@dataclass(frozen=True)
class Featurizer:
    """Settings that must match between training and attribution (stored in every checkpoint)."""

    kind: str = "simple+"
    max_distance: int = 2
    max_atoms: int = DEFAULT_MAX_ATOMS

    def __post_init__(self):
        if self.kind not in FEATURIZER_KINDS:
            raise ValueError(f"unknown featurizer kind {self.kind!r}; choose one of {FEATURIZER_KINDS}")
        if self.max_distance not in (1, 2):
            raise ValueError("max_distance must be 1 or 2 (pair distance features are one-hot 1..2)")

    @property
    def atom_feature_names(self) -> list[str]:
        names = [f"element={e}" for e in ELEMENTS]
        if self.kind == "simple+":
            names += list(_EXTRA_ATOM_FEATURES)
        return names

    @property
    def pair_feature_names(self) -> list[str]:
        return [f"bond={b}" for b in BOND_TYPES] + [f"distance={d}" for d in range(1, self.max_distance + 1)]

    @property
    def n_atom_features(self) -> int:
        return len(self.atom_feature_names)

    @property
    def n_pair_features(self) -> int:
        return len(self.pair_feature_names)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "max_distance": self.max_distance, "max_atoms": self.max_atoms,
                "version": FEATURIZER_VERSION}

    @classmethod
    def from_dict(cls, d: dict) -> "Featurizer":
        if int(d.get("version", -1)) != FEATURIZER_VERSION:
            raise MoleculeError(
                f"the checkpoint was trained with featurizer version {d.get('version')}, this code has "
                f"version {FEATURIZER_VERSION}; retrain the model or use the matching code version")
        return cls(kind=str(d["kind"]), max_distance=int(d["max_distance"]), max_atoms=int(d["max_atoms"]))

    # -- featurization -------------------------------------------------------------------------------

    def from_smiles(self, smiles: str, name: str | None = None) -> "MoleculeFeatures":
        if smiles is None or not str(smiles).strip():
            raise MoleculeError("The input is empty: enter a SMILES string such as CCO (ethanol).")
        smiles = str(smiles).strip()
        with BlockLogs():
            mol = Chem.MolFromSmiles(smiles, sanitize=False)
            if mol is None:
                raise MoleculeError(
                    f"'{_short(smiles)}' is not a valid SMILES string (RDKit could not parse it). "
                    f"Check brackets, ring-closure digits and element symbols.")
            _sanitize(mol, f"SMILES '{_short(smiles)}'")
        return self.from_mol(mol, name=name, source=smiles)

    def from_mol(self, mol: Chem.Mol, name: str | None = None, source: str | None = None) -> "MoleculeFeatures":
        """Featurize an RDKit molecule (sanitized); explicit hydrogens are removed."""
        if mol is None:
            raise MoleculeError("No molecule was given.")
        warnings: list[str] = []
        with BlockLogs():
            if any(a.GetAtomicNum() == 1 for a in mol.GetAtoms()):
                try:
                    mol = Chem.RemoveHs(mol)
                except Exception as exc:  # RDKit raises several types
                    raise MoleculeError(f"Could not remove explicit hydrogens: {exc}") from exc
        if all(a.GetAtomicNum() == 1 for a in mol.GetAtoms()):  # also true for no atoms at all
            raise MoleculeError("The molecule has no heavy atoms: there is nothing to featurize.")
        frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
        if len(frags) > 1:
            sizes = [f.GetNumAtoms() for f in frags]
            keep = int(np.argmax(sizes))  # first of the largest
            dropped = [Chem.MolToSmiles(f) for i, f in enumerate(frags) if i != keep]
            mol = frags[keep]
            atoms = mol.GetNumAtoms()
            warnings.append(
                f"The input has {len(frags)} fragments (a salt or mixture); kept the largest "
                f"({Chem.MolToSmiles(mol)}, {atoms} heavy atom{'' if atoms == 1 else 's'}) and dropped "
                f"{', '.join(dropped)}.")
        n = mol.GetNumAtoms()
        if n > self.max_atoms:
            raise MoleculeError(
                f"The molecule has {n} heavy atoms; the limit is {self.max_atoms}. "
                f"Large molecules (proteins, polymers) are outside what this model was trained on.")
        unsupported = sorted({a.GetSymbol() for a in mol.GetAtoms() if a.GetSymbol() not in _ELEMENT_INDEX})
        if unsupported:
            raise MoleculeError(
                f"Unsupported element{'s' if len(unsupported) > 1 else ''} {', '.join(unsupported)}: the model "
                f"knows only {', '.join(ELEMENTS)}.")
        atoms = self._atom_features(mol)
        pairs, pair_index, pair_bond = self._pair_features(mol)
        return MoleculeFeatures(
            atoms=atoms, pairs=pairs, pair_index=pair_index, pair_bond=pair_bond, mol=mol,
            smiles=Chem.MolToSmiles(mol), name=name, source=source, warnings=warnings, featurizer=self)

    def _atom_features(self, mol: Chem.Mol) -> torch.Tensor:
        n = mol.GetNumAtoms()
        x = np.zeros((n, self.n_atom_features), dtype=np.float32)
        ne = len(ELEMENTS)
        for a in mol.GetAtoms():
            i = a.GetIdx()
            x[i, _ELEMENT_INDEX[a.GetSymbol()]] = 1.0
            if self.kind == "simple+":
                x[i, ne + min(a.GetDegree(), 5)] = 1.0
                x[i, ne + 6 + min(a.GetTotalNumHs(), 4)] = 1.0
                charge = a.GetFormalCharge()
                x[i, ne + 11 + (0 if charge < 0 else 1 if charge == 0 else 2)] = 1.0
                x[i, ne + 14] = float(a.GetIsAromatic())
                x[i, ne + 15] = float(a.IsInRing())
                h = _HYBRIDIZATION.get(a.GetHybridization())
                if h is not None:
                    x[i, ne + 16 + h] = 1.0
        return torch.from_numpy(x)

    def _pair_features(self, mol: Chem.Mol):
        dist = Chem.GetDistanceMatrix(mol)
        ii, jj = np.nonzero((dist > 0) & (dist <= self.max_distance))  # row-major: sorted by (i, j)
        p = len(ii)
        feats = np.zeros((p, self.n_pair_features), dtype=np.float32)
        bond_of = np.full(p, -1, dtype=np.int64)
        for k, (i, j) in enumerate(zip(ii.tolist(), jj.tolist())):
            d = int(dist[i, j])
            feats[k, len(BOND_TYPES) + d - 1] = 1.0
            if d == 1:
                bond = mol.GetBondBetweenAtoms(i, j)
                bond_of[k] = bond.GetIdx()
                t = _BOND_INDEX.get(bond.GetBondType())
                if t is None:
                    raise MoleculeError(
                        f"Unsupported bond type {bond.GetBondType()} between atoms {i} and {j} "
                        f"(supported: {', '.join(BOND_TYPES)}).")
                feats[k, t] = 1.0
        index = np.stack([ii, jj], axis=1).astype(np.int64).reshape(p, 2)
        return torch.from_numpy(feats), torch.from_numpy(index), torch.from_numpy(bond_of)


@dataclass
class MoleculeFeatures:
    """One featurized molecule. ``atoms`` [A, Fa], ``pairs`` [P, Fp], ``pair_index`` long [P, 2]."""

    atoms: torch.Tensor
    pairs: torch.Tensor
    pair_index: torch.Tensor
    pair_bond: torch.Tensor  # long [P]: RDKit bond index of the pair, -1 when not bonded
    mol: Chem.Mol
    smiles: str
    name: str | None = None
    source: str | None = None
    warnings: list[str] = field(default_factory=list)
    featurizer: Featurizer | None = None

    @property
    def n_atoms(self) -> int:
        return self.atoms.shape[0]

    @property
    def n_pairs(self) -> int:
        return self.pairs.shape[0]

    @property
    def bonded(self) -> torch.Tensor:
        """bool [P]: the pair is a bond."""
        return self.pair_bond >= 0

    def bond_scores(self, pair_scores) -> np.ndarray:
        """[P] (or [P, Fp]) ordered-pair scores -> [n_bonds] indexed by RDKit bond index:
        a bond's score is the sum of its two ordered pairs (i, j) and (j, i)."""
        s = _pair_totals(pair_scores)
        out = np.zeros(self.mol.GetNumBonds(), dtype=np.float64)
        b = self.pair_bond.numpy()
        np.add.at(out, b[b >= 0], s[b >= 0])
        return out

    def atoms_with_pairs(self, atom_scores, pair_scores, bonds_only: bool = True) -> np.ndarray:
        """[A] atom scores, each with half of the score of every ordered pair it is an end of (the bonded pairs only,
        or every pair), so that they add up to the atoms' and those pairs' total."""
        scores = np.asarray(atom_scores, dtype=np.float64).copy()
        pairs = _pair_totals(pair_scores)
        chosen = self.bonded.numpy() if bonds_only else np.ones(len(pairs), dtype=bool)
        ends = self.pair_index.numpy().reshape(-1, 2)
        for end in (0, 1):
            np.add.at(scores, ends[chosen, end], pairs[chosen] / 2)
        return scores

    def nonbonded_total(self, pair_scores) -> float:
        """Total score of the pairs that are not bonds (distance-2 pairs): there is no bond to draw."""
        s = _pair_totals(pair_scores)
        return float(s[self.pair_bond.numpy() < 0].sum())


# -- several molecules -------------------------------------------------------------------------------

@dataclass
class LoadReport:
    """Molecules that featurized, and the records that did not with the reason (index is 0-based)."""

    molecules: list[MoleculeFeatures]
    skipped: list[tuple[int, str, str]]  # (record index, name or SMILES, reason)

    @property
    def messages(self) -> list[str]:
        return [f"record {i + 1} ({label}): skipped: {reason}" for i, label, reason in self.skipped]


def load_sdf(source, featurizer: Featurizer | None = None) -> LoadReport:
    """Read an SD file (path, bytes or text); broken records are skipped and reported, not fatal."""
    featurizer = featurizer or Featurizer()
    if isinstance(source, (str, Path)) and not (isinstance(source, str) and "\n" in source):
        text = Path(source).read_text(errors="replace")
    elif isinstance(source, bytes):
        text = source.decode("utf-8", errors="replace")
    else:
        text = str(source)
    blocks = _split_sdf(text)
    if not blocks:
        raise MoleculeError("The SD file holds no records (no '$$$$' separators and no molecule block).")
    good, skipped = [], []
    for idx, block in enumerate(blocks):
        name = block.splitlines()[0].strip() if block.strip() else ""
        label = name or f"#{idx + 1}"
        try:
            with BlockLogs():
                mol = Chem.MolFromMolBlock(block, sanitize=False, removeHs=False)
                if mol is None:
                    raise MoleculeError("RDKit could not parse the molecule block (malformed counts or atom lines).")
                _sanitize(mol, "the record")
            good.append(featurizer.from_mol(mol, name=name or None, source=f"SDF record {idx + 1}"))
        except MoleculeError as exc:
            skipped.append((idx, label, str(exc)))
    return LoadReport(good, skipped)


def load_smiles_csv(source, featurizer: Featurizer | None = None, smiles_column: str | None = None,
                    name_column: str | None = None) -> LoadReport:
    """Read a CSV with a SMILES column ('smiles', any case, unless named); bad rows are skipped and reported."""
    featurizer = featurizer or Featurizer()
    if isinstance(source, bytes):
        text = source.decode("utf-8", errors="replace")
    elif isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and "," not in source):
        text = Path(source).read_text(errors="replace")
    else:
        text = str(source)
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    col = smiles_column or next((c for c in columns if c.strip().lower() == "smiles"), None)
    if col is None or col not in columns:
        raise MoleculeError(f"The CSV has no '{smiles_column or 'smiles'}' column "
                            f"(columns: {', '.join(columns) or 'none'}).")
    good, skipped = [], []
    for idx, row in enumerate(reader):
        smi = (row.get(col) or "").strip()
        name = (row.get(name_column) or "").strip() if name_column else ""
        try:
            good.append(featurizer.from_smiles(smi, name=name or None))
        except MoleculeError as exc:
            skipped.append((idx, name or smi or "(empty)", str(exc)))
    return LoadReport(good, skipped)


# -- helpers -----------------------------------------------------------------------------------------

def _sanitize(mol: Chem.Mol, what: str) -> None:
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises AtomValenceException, KekulizeException, ...
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise MoleculeError(f"{what[0].upper()}{what[1:]} is not a valid molecule: {msg}.") from exc


def _split_sdf(text: str) -> list[str]:
    blocks, current = [], []
    for line in text.splitlines():
        if line.strip() == "$$$$":
            blocks.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if any(text_line.strip() for text_line in current):
        blocks.append("\n".join(current))
    # a molecule block ends at 'M  END'; the rest of a record is data items
    out = []
    for b in blocks:
        lines = b.splitlines()
        while lines and not lines[0].strip() and len(lines) > 3 and "V2000" not in lines[3] and "V3000" not in lines[3]:
            lines = lines[1:]  # tolerate a blank line left after '$$$$'
        end = next((k for k, text_line in enumerate(lines) if text_line.startswith("M  END")), None)
        out.append("\n".join(lines[: end + 1] if end is not None else lines) + "\n")
    return out


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _pair_totals(x) -> np.ndarray:
    """[P] ordered-pair scores, or [P, Fp] attributions summed over the features -> float64 [P]."""
    s = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    return s.sum(axis=1) if s.ndim == 2 else s
