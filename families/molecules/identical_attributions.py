"""The W1N2 anomaly detector (paper Section 3.1): atoms of one molecule with identical attributions.

identical_attribution_groups groups atoms whose scores agree to a relative tolerance and says whether each group is
explained by the molecule's own symmetry (RDKit's canonical ranking without tie breaking) or not; the paper found
non-equivalent carbons with identical attributions in W1N2 because a single weave layer sees only an atom's type
and its pair multiset.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from rdkit import Chem

from families.molecules.explanation import MoleculeExplanation


@dataclass
class AtomGroup:
    """Atoms whose scores agree within the tolerance."""

    value: float
    atoms: list[int]
    elements: list[str]
    bond_counts: list[int]  # heavy-atom degree of each atom
    bond_types: list[str]  # per atom, e.g. "1 single, 1 aromatic"
    symmetry_classes: int  # distinct RDKit symmetry classes among the atoms

    @property
    def explained_by_symmetry(self) -> bool:
        """All atoms are topologically equivalent: equal scores are expected from any model."""
        return self.symmetry_classes == 1


def identical_attribution_groups(result: MoleculeExplanation, decimals: int = 5) -> list[AtomGroup]:
    """Groups of >= 2 atoms with identical scores: equal to `decimals` digits relative to the largest
    |atom score| (decimals=5: within 1e-5 of it, well above float32 noise). Largest groups first.

    Groups whose atoms are not all symmetry-equivalent are the paper's W1N2 anomaly."""
    scores = np.asarray(result.atom_scores, dtype=float)
    mol = result.mol
    if len(scores) < 2:
        return []
    tol = 10.0 ** (-decimals) * max(float(np.max(np.abs(scores))), 1e-12)
    order = np.argsort(scores, kind="stable")
    ranks = list(Chem.CanonicalRankAtoms(mol, breakTies=False))
    groups, current = [], [int(order[0])]
    for prev, idx in zip(order[:-1], order[1:]):
        if scores[idx] - scores[prev] <= tol and scores[idx] - scores[current[0]] <= 2 * tol:
            current.append(int(idx))
        else:
            groups.append(current)
            current = [int(idx)]
    groups.append(current)
    out = []
    for g in groups:
        if len(g) < 2:
            continue
        g = sorted(g)
        atoms = [mol.GetAtomWithIdx(i) for i in g]
        out.append(AtomGroup(value=float(np.mean(scores[g])), atoms=g, elements=[a.GetSymbol() for a in atoms],
                             bond_counts=[a.GetDegree() for a in atoms],
                             bond_types=[_bond_types(a) for a in atoms],
                             symmetry_classes=len({ranks[i] for i in g})))
    out.sort(key=lambda grp: (-len(grp.atoms), -abs(grp.value)))
    return out


def _bond_types(atom) -> str:
    counts: dict[str, int] = {}
    for b in atom.GetBonds():
        k = str(b.GetBondType()).lower()
        counts[k] = counts.get(k, 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"


def groups_table(groups: Sequence[AtomGroup]) -> pd.DataFrame:
    return pd.DataFrame([{"score": g.value, "atoms": ", ".join(map(str, g.atoms)),
                          "elements": ", ".join(g.elements), "bonds per atom": ", ".join(map(str, g.bond_counts)),
                          "bond types": " | ".join(g.bond_types),
                          "explained by symmetry": g.explained_by_symmetry} for g in groups],
                        columns=["score", "atoms", "elements", "bonds per atom", "bond types", "explained by symmetry"])


def anomaly_counts(groups: Sequence[AtomGroup]) -> dict:
    """Counts for a summary: groups, atoms in them, and those not explained by symmetry."""
    odd = [g for g in groups if not g.explained_by_symmetry]
    return {"groups": len(groups), "atoms in groups": sum(len(g.atoms) for g in groups),
            "groups not explained by symmetry": len(odd), "atoms in those": sum(len(g.atoms) for g in odd)}

