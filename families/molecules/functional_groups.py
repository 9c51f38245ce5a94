"""Functional groups and atom types across molecules: where a set of explanations puts its attribution.

A functional group's match scores the sum of its atoms' scores plus the scores of the bonds between matched atoms;
the means per atom type and per group are taken over the molecules given (one explanation each, or anything with
the same `mol`, `smiles`, `atom_scores`, `bond_scores` and `share_base`, as a run's stored rows).
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
from rdkit import Chem

from families.molecules.explanation import MoleculeExplanation

#: Common functional groups for the across-molecule means: (name, SMARTS). A match's score is the sum of
#: its atoms' scores plus the scores of the bonds between matched atoms. Overlapping groups are counted in
#: each (a carboxylic acid is also a carbonyl); unique matches only (symmetric duplicates dropped).
FUNCTIONAL_GROUPS: tuple[tuple[str, str], ...] = (
    ("benzene ring", "c1ccccc1"),
    ("aromatic N (heteroaromatic)", "[n]"),
    ("hydroxyl (alcohol)", "[CX4][OX2H]"),
    ("phenol OH", "c[OX2H]"),
    ("carbonyl", "[CX3]=[OX1]"),
    ("carboxylic acid", "[CX3](=O)[OX2H1,OX1-]"),
    ("ester", "[#6][CX3](=O)[OX2][#6]"),
    ("amide", "[NX3][CX3]=[OX1]"),
    ("amine (not amide)", "[NX3;H2,H1,H0;!$(NC=[O,S,N]);!$(N-a);!$(N=*);!$(N#*);!$([N+])]"),
    ("aniline N", "[NX3;!$(NC=O)]-c"),
    ("nitro", "[$([NX3](=O)=O),$([NX3+](=O)[O-])]"),
    ("nitrile", "[CX2]#[NX1]"),
    ("ether", "[OD2;!$(OC=O)]([#6])[#6]"),
    ("halogen on aromatic", "c[F,Cl,Br,I]"),
    ("halogen on aliphatic", "C[F,Cl,Br,I]"),
    ("thiol / thioether", "[#16X2;!$(S=*)]"),
    ("sulfonyl", "[#16X4](=O)(=O)"),
    ("phosphate / phosphonate", "[PX4](=O)"),
    ("alkene (C=C)", "[CX3]=[CX3]"),
    ("steroid core (any bond orders)",
     "[#6]1~[#6]~[#6]~[#6]2~[#6](~[#6]~1)~[#6]~[#6]~[#6]1~[#6]~2~[#6]~[#6]~[#6]2~[#6]~[#6]~[#6]~[#6]~1~2"),
)
FUNCTIONAL_GROUP_PATTERNS = [(name, Chem.MolFromSmarts(s)) for name, s in FUNCTIONAL_GROUPS]
assert all(p is not None for _, p in FUNCTIONAL_GROUP_PATTERNS), "a functional-group SMARTS does not parse"


def mean_by_atom_type(explanations: Sequence[MoleculeExplanation]) -> pd.DataFrame:
    """Mean atom score per element (and aromatic or not) over a set of molecules."""
    rows = []
    for e in explanations:
        diff = e.share_base
        for atom, s in zip(e.mol.GetAtoms(), e.atom_scores):
            rows.append({"atom type": atom.GetSymbol().lower() if atom.GetIsAromatic() else atom.GetSymbol(),
                         "smiles": e.smiles, "score": float(s), "share": float(s) / diff})
    if not rows:
        return pd.DataFrame(columns=["atom type", "atoms", "molecules", "mean score", "mean share", "std score"])
    df = pd.DataFrame(rows)
    out = df.groupby("atom type").agg(atoms=("score", "size"), molecules=("smiles", "nunique"),
                                      **{"mean score": ("score", "mean"), "mean share": ("share", "mean"),
                                         "std score": ("score", "std")})
    return out.reset_index().sort_values("mean score", ascending=False, ignore_index=True)


def functional_group_matches(e: MoleculeExplanation) -> list[tuple[str, tuple[int, ...], float]]:
    """(group name, matched atoms, score = atom scores + scores of bonds inside the match)."""
    atom_scores, bond_scores = e.atom_scores, e.bond_scores
    out = []
    for name, patt in FUNCTIONAL_GROUP_PATTERNS:
        for match in e.mol.GetSubstructMatches(patt, uniquify=True):
            inside = set(match)
            s = float(atom_scores[list(match)].sum())
            for b in e.mol.GetBonds():
                if b.GetBeginAtomIdx() in inside and b.GetEndAtomIdx() in inside:
                    s += float(bond_scores[b.GetIdx()])
            out.append((name, tuple(match), s))
    return out


def mean_by_functional_group(explanations: Sequence[MoleculeExplanation]) -> pd.DataFrame:
    """Mean score per occurrence of each FUNCTIONAL_GROUPS entry over a set of molecules."""
    rows = []
    for e in explanations:
        diff = e.share_base
        for name, match, s in functional_group_matches(e):
            rows.append({"group": name, "smiles": e.smiles, "score": s, "share": s / diff, "size": len(match)})
    if not rows:
        return pd.DataFrame(columns=["group", "occurrences", "molecules", "mean score", "mean share",
                                     "mean score per atom"])
    df = pd.DataFrame(rows)
    df["per atom"] = df["score"] / df["size"]
    out = df.groupby("group").agg(occurrences=("score", "size"), molecules=("smiles", "nunique"),
                                  **{"mean score": ("score", "mean"), "mean share": ("share", "mean"),
                                     "mean score per atom": ("per atom", "mean")})
    return out.reset_index().sort_values("mean score", ascending=False, ignore_index=True)

