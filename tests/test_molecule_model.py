"""Molecule model layer: featurization, the weave network's batch contract, checkpoints."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from rdkit import Chem

from families.molecules import (
    CHECKPOINT_DIR,
    CheckpointError,
    Featurizer,
    MoleculeError,
    WeaveModel,
    available_checkpoints,
    collate,
    load_checkpoint,
    load_sdf,
    load_smiles_csv,
    load_weave,
)
from families.molecules.featurize import BOND_TYPES, ELEMENTS

FZ = Featurizer()  # simple+, N2
SIMPLE = Featurizer(kind="simple")
EPS = torch.finfo(torch.float32).eps
pytestmark = pytest.mark.numeric


def _pairs_by_hand(mol_smiles: str, max_d: int = 2) -> int:
    d = Chem.GetDistanceMatrix(Chem.MolFromSmiles(mol_smiles))
    return int(((d > 0) & (d <= max_d)).sum())


# -- featurization -----------------------------------------------------------------------------------

def test_ethanol_shapes_and_pairs():
    m = FZ.from_smiles("CCO")
    assert m.atoms.shape == (3, FZ.n_atom_features) and m.atoms.dtype == torch.float32
    # C0-C1, C1-O2 bonded, C0..O2 at distance 2: 3 unordered -> 6 ordered pairs
    assert m.pairs.shape == (6, 6) and m.pair_index.dtype == torch.long
    assert sorted(map(tuple, m.pair_index.tolist())) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    s = m.pairs.numpy()
    single, dist1 = 0, len(BOND_TYPES)
    for (i, j), row in zip(m.pair_index.tolist(), s):
        if {i, j} == {0, 2}:
            assert row.tolist() == [0, 0, 0, 0, 0, 1]  # not bonded, distance 2
        else:
            assert row[single] == 1 and row[dist1] == 1 and row.sum() == 2
    # element one-hot: C, C, O
    c, o = ELEMENTS.index("C"), ELEMENTS.index("O")
    assert m.atoms[:, : len(ELEMENTS)].sum(1).tolist() == [1, 1, 1]
    assert m.atoms[0, c] == 1 and m.atoms[1, c] == 1 and m.atoms[2, o] == 1
    assert SIMPLE.from_smiles("CCO").atoms.shape == (3, len(ELEMENTS))
    assert not m.warnings


@pytest.mark.parametrize("smiles, atoms, unordered", [
    ("C", 1, 0),            # methane: no pairs at all
    ("CC", 2, 1),
    ("CC(C)C", 4, 6),       # isobutane: 3 bonds + 3 distance-2 pairs among the methyls
    ("c1ccccc1", 6, 12),    # benzene: 6 bonds + 6 meta pairs (para is distance 3)
    ("C#N", 2, 1),
])
def test_pair_counts_by_hand(smiles, atoms, unordered):
    m = FZ.from_smiles(smiles)
    assert m.n_atoms == atoms
    assert m.n_pairs == 2 * unordered == _pairs_by_hand(smiles)
    assert torch.equal(m.pairs.sum(1) > 0, torch.ones(m.n_pairs, dtype=torch.bool))
    # both orders present with identical features
    feats = {tuple(ij): tuple(f) for ij, f in zip(m.pair_index.tolist(), m.pairs.tolist())}
    assert all(feats[(j, i)] == f for (i, j), f in feats.items())


def test_benzene_bonds_are_aromatic():
    m = FZ.from_smiles("c1ccccc1")
    bonded = m.bonded
    assert int(bonded.sum()) == 12
    arom = BOND_TYPES.index("aromatic")
    assert (m.pairs[bonded, arom] == 1).all() and (m.pairs[bonded, :arom].sum() == 0)
    assert (m.pairs[~bonded, : len(BOND_TYPES)] == 0).all() and (m.pairs[~bonded, len(BOND_TYPES) + 1] == 1).all()
    # extras: every benzene carbon is aromatic, sp2, with one hydrogen
    names = FZ.atom_feature_names
    for feat in ("aromatic", "sp2", "H=1", "in ring", "degree=2"):
        assert (m.atoms[:, names.index(feat)] == 1).all(), feat


def test_double_and_triple_bonds():
    m = FZ.from_smiles("C=CC#N")
    kinds = {}
    for (i, j), row in zip(m.pair_index.tolist(), m.pairs.tolist()):
        if row[4] == 1:
            kinds[frozenset((i, j))] = BOND_TYPES[int(np.argmax(row[:4]))]
    assert kinds == {frozenset((0, 1)): "double", frozenset((1, 2)): "single", frozenset((2, 3)): "triple"}


def test_bond_scores_and_nonbonded_total():
    m = FZ.from_smiles("CCO")
    scores = torch.arange(1.0, 7.0)  # one score per ordered pair
    bond = m.bond_scores(scores)
    assert bond.shape == (m.mol.GetNumBonds(),) == (2,)
    expected = {}
    for k, (i, j) in enumerate(m.pair_index.tolist()):
        b = m.mol.GetBondBetweenAtoms(i, j)
        if b is not None:
            expected[b.GetIdx()] = expected.get(b.GetIdx(), 0) + scores[k].item()
    assert bond.tolist() == [expected[0], expected[1]]
    assert m.nonbonded_total(scores) + bond.sum() == pytest.approx(21.0)
    # [P, Fp] attributions work too
    assert m.bond_scores(torch.ones(6, 6)).tolist() == [12.0, 12.0]


@pytest.mark.parametrize("bad, words", [
    ("", ["empty"]),
    ("   ", ["empty"]),
    ("C1CC", ["not a valid SMILES", "C1CC"]),
    ("not a molecule", ["not a valid SMILES"]),
    ("C(C)(C)(C)(C)C", ["valence"]),
    ("c1cccc1", ["not a valid molecule"]),  # cannot be kekulized
    ("CC[U]CC", ["Unsupported element U"]),
    ("[Xe].[Rn]", ["Unsupported element"]),
    ("[H][H]", ["no heavy atoms"]),
])
def test_bad_inputs_give_helpful_errors(bad, words):
    with pytest.raises(MoleculeError) as err:
        FZ.from_smiles(bad)
    for w in words:
        assert w in str(err.value)
    assert isinstance(err.value, ValueError)


def test_too_many_atoms_limit_is_configurable():
    chain = "C" * 40
    with pytest.raises(MoleculeError, match="40 heavy atoms; the limit is 30"):
        Featurizer(max_atoms=30).from_smiles(chain)
    assert FZ.from_smiles(chain).n_atoms == 40


def test_salt_keeps_largest_fragment_with_warning():
    m = FZ.from_smiles("[Na+].CC(=O)[O-]")
    assert m.n_atoms == 4 and m.smiles == "CC(=O)[O-]"
    assert len(m.warnings) == 1 and "2 fragments" in m.warnings[0] and "[Na+]" in m.warnings[0]


def test_a_kept_fragment_of_one_atom_is_counted_in_the_singular():
    warning = FZ.from_smiles("[Na+].[Cl-]").warnings[0]
    assert "1 heavy atom)" in warning and "heavy atoms" not in warning


def _sdf(*smiles_or_blocks) -> str:
    out = io.StringIO()
    for item in smiles_or_blocks:
        if item.startswith("RAW:"):
            out.write(item[4:])
        else:
            mol = Chem.MolFromSmiles(item)
            mol.SetProp("_Name", item)
            out.write(Chem.MolToMolBlock(mol))
        out.write("$$$$\n")
    return out.getvalue()


def test_sdf_with_one_broken_record(tmp_path):
    good = Chem.MolToMolBlock(Chem.MolFromSmiles("CCO"))
    # a carbon with five bonds: the block parses but fails sanitization
    broken_mol = Chem.RWMol(Chem.MolFromSmiles("C(C)(C)(C)C", sanitize=False))
    broken_mol.AddAtom(Chem.Atom(6))
    broken_mol.AddBond(0, 5, Chem.BondType.SINGLE)
    broken = Chem.MolToMolBlock(broken_mol, kekulize=False)
    text = _sdf("c1ccccc1O", "RAW:" + broken, "CC(=O)O")
    path = tmp_path / "three.sdf"
    path.write_text(text)
    report = load_sdf(path)
    assert [m.name for m in report.molecules] == ["c1ccccc1O", "CC(=O)O"]
    assert len(report.skipped) == 1 and report.skipped[0][0] == 1
    assert "valence" in report.skipped[0][2] and "record 2" in report.messages[0]
    # garbage in the middle, from bytes
    report = load_sdf(_sdf("CCO", "RAW:garbage\n\n\nnot a counts line\nM  END\n", "CCN").encode())
    assert len(report.molecules) == 2 and len(report.skipped) == 1 and report.skipped[0][0] == 1
    assert good  # the well-formed block above is a real mol block


def test_csv_with_smiles_column(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("id,SMILES\na,CCO\nb,C1CC\nc,[Na+].[Cl-]\nd,c1ccccc1\n")
    report = load_smiles_csv(path, name_column="id")
    assert [m.name for m in report.molecules] == ["a", "c", "d"]  # NaCl: largest fragment, first of equal size
    assert [s[1] for s in report.skipped] == ["b"]
    with pytest.raises(MoleculeError, match="no 'smiles' column"):
        load_smiles_csv("name,structure\nx,CCO\n")


# -- the weave network -------------------------------------------------------------------------------

SMILES = ["CCO", "c1ccccc1O", "C", "CC(=O)Nc1ccc(O)cc1", "O=C(O)c1ccccc1OC(C)=O"]


@pytest.fixture(scope="module", params=[1, 2], ids=["W1", "W2"])
def model(request):
    torch.manual_seed(0)
    m = WeaveModel(FZ.n_atom_features, FZ.n_pair_features, n_tasks=3, n_weave=request.param)
    with torch.no_grad():  # make the random model's outputs spread out so comparisons mean something
        m.head.weight.mul_(20)
    return m.eval()


def head_size(model, run):
    """run() with the model's head hooked: (its result, the largest sum of |terms| of a head output).

    A logit is a float32 sum of head.weight * z terms (x20 here), z itself the end of sums over atoms and pairs:
    another batch, atom order or CPU kernel rounds these sums differently and moves a logit by a few eps of
    that size (16 eps: both sides), and P(active) = softmax of two logits by at most half of that."""
    seen = []
    hook = model.head.register_forward_hook(lambda _module, args, _out: seen.append(args[0].detach()))
    try:
        out = run()
    finally:
        hook.remove()
    z = torch.cat(seen)
    return out, float((z.abs() @ model.head.weight.abs().T + model.head.bias.abs()).max())


def test_batch_of_different_molecules_equals_each_alone(model):
    mols = [FZ.from_smiles(s) for s in SMILES]
    a, p, g = collate(mols)
    with torch.no_grad():
        together, size = head_size(model, lambda: model.predict_proba(a, p, g))
        assert together.shape == (len(SMILES), 3)
        for k, m in enumerate(mols):
            alone = model.bind(m)(*model.bind(m).inputs)
            assert torch.allclose(alone[0], together[k], rtol=0, atol=8 * EPS * size), SMILES[k]  # see head_size
    assert together.std() > 1e-3  # different molecules, different outputs


def test_permutation_invariance(model):
    smi = "CC(=O)Nc1ccc(O)cc1"
    mol = Chem.MolFromSmiles(smi)
    rng = np.random.RandomState(0)
    outs = []
    for _ in range(3):
        order = rng.permutation(mol.GetNumAtoms()).tolist()
        outs.append(model.bind(FZ.from_mol(Chem.RenumberAtoms(mol, order)), output="logits"))
    with torch.no_grad():
        vals = [b(*b.inputs) for b in outs]
        _, size = head_size(model, lambda: outs[0](*outs[0].inputs))
    for v in vals[1:]:
        assert torch.allclose(vals[0], v, rtol=0, atol=16 * EPS * size)  # logits: see head_size


def test_bound_forward_takes_scaled_copies(model):
    mol = FZ.from_smiles("O=C(O)c1ccccc1OC(C)=O")
    bound = model.bind(mol)
    atoms, pairs = bound.inputs
    assert atoms.shape == (1, mol.n_atoms, FZ.n_atom_features) and pairs.shape == (1, mol.n_pairs, FZ.n_pair_features)
    alphas = torch.linspace(0, 1, 9).view(-1, 1, 1)
    atoms_k, pairs_k = (alphas * atoms).requires_grad_(True), (alphas * pairs).requires_grad_(True)
    out = bound(atoms_k, pairs_k)
    assert out.shape == (9, 3) and ((out > 0) & (out < 1)).all()
    out[:, 1].sum().backward()
    assert atoms_k.grad.abs().sum() > 0 and pairs_k.grad.abs().sum() > 0
    with torch.no_grad():
        one, size = head_size(model, lambda: bound(atoms, pairs))
        assert torch.allclose(out[-1], one[0], rtol=0, atol=8 * EPS * size)  # see head_size
        lo = model.bind(mol, output="log_odds")(atoms, pairs)
        assert torch.allclose(torch.sigmoid(lo), bound(atoms, pairs), atol=1e-6)
    # the engine stacks points x molecules: several bound molecules broadcast the same way
    two = model.bind([FZ.from_smiles("CCO"), FZ.from_smiles("CCN")])
    a2, p2 = two.inputs
    with torch.no_grad():
        stacked = two(torch.cat([a2 * 0.5, a2]), torch.cat([p2 * 0.5, p2]))
        assert stacked.shape == (4, 3)
        alone, size = head_size(model, lambda: two(a2, p2))
        assert torch.allclose(stacked[2:], alone, rtol=0, atol=8 * EPS * size)  # see head_size


def test_bind_rejects_features_of_another_featurizer(model):
    with pytest.raises(ValueError, match="featurizer"):
        model.bind(SIMPLE.from_smiles("CCO"))


# -- checkpoints -------------------------------------------------------------------------------------

def test_loader_refuses_bad_files(tmp_path):
    with pytest.raises(CheckpointError, match="No weave checkpoint"):
        load_weave(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="refused"):
        load_weave(junk)

    class Evil:  # a pickled object: weights_only=True must refuse it
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))
    evil = tmp_path / "evil.pt"
    torch.save({"format": "ig-dashboard/weave", "x": Evil()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_weave(evil)
    bare = tmp_path / "bare.pt"
    torch.save(WeaveModel(5, 6, 2).state_dict(), bare)
    with pytest.raises(CheckpointError, match="not a weave checkpoint"):
        load_weave(bare)


def test_loader_refuses_wrong_architecture(tmp_path):
    m = WeaveModel(FZ.n_atom_features, FZ.n_pair_features, 2, n_weave=2)
    ckpt = {"format": "ig-dashboard/weave", "format_version": 1, "name": "x", "config": dict(m.config, n_weave=1),
            "featurizer": FZ.to_dict(), "task_names": ["a", "b"], "state_dict": m.state_dict()}
    path = tmp_path / "x.pt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="do not fit the weave architecture"):
        load_weave(path)
    ckpt["config"] = m.config
    torch.save(ckpt, path)
    loaded = load_weave(path)  # the round trip works
    assert loaded.task_names == ["a", "b"] and not any(p.requires_grad for p in loaded.parameters())


BUNDLED = available_checkpoints()


@pytest.mark.parametrize("name", BUNDLED or ["(none)"])
def test_bundled_checkpoint_matches_its_card(name):
    if name == "(none)":
        pytest.skip(f"no checkpoints in {CHECKPOINT_DIR}; train with python -m families.molecules.train")
    ckpt = load_checkpoint(name)
    card = (CHECKPOINT_DIR / f"{name}.md").read_text()
    assert f"{ckpt['metrics']['test']['mean']:.3f}" in card and "PCBA" in card
    assert (CHECKPOINT_DIR / f"{name}.pt").stat().st_size < 5e6
    model = load_weave(name)
    bound = model.bind(model.featurizer.from_smiles("CCO"))
    assert bound(*bound.inputs).shape == (1, len(model.task_names))
    if not os.environ.get("IG_DATA_DIR"):
        pytest.skip("IG_DATA_DIR is not set: the Tox21 test split is needed to re-check the card's ROC-AUC")
    from families.molecules.train import featurize_rows, load_tox21, predict, split_rows, task_aucs
    df = load_tox21()
    rows = split_rows(len(df), seed=ckpt["data"]["split_seed"])["test"]
    mols, labels, _, _ = featurize_rows(df, rows, model.featurizer)
    assert len(mols) == ckpt["data"]["counts"]["test"]
    aucs = task_aucs(labels, predict(model, mols))
    assert float(np.nanmean(aucs)) == pytest.approx(ckpt["metrics"]["test"]["mean"], abs=2e-3)
    assert ckpt["metrics"]["test"]["mean"] >= 0.75


def test_roc_auc_matches_definition():
    from families.molecules.train import roc_auc
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.4])
    pos, neg = s[y == 1], s[y == 0]
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(y, s) == pytest.approx(brute)
    assert roc_auc(np.ones(3), np.arange(3.0)) != roc_auc(np.ones(3), np.arange(3.0))  # NaN: one class


# -- one heavy atom: no bonds, no pairs ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_explained():
    """Explanations of one-atom molecules by a random weave model (the shapes are the point, not the values)."""
    from families.molecules import attribution as molecule_attribution
    from ig_core import AttributionEngine, ScanSettings

    torch.manual_seed(0)
    model = WeaveModel(FZ.n_atom_features, FZ.n_pair_features, n_tasks=3, n_weave=2).eval().requires_grad_(False)
    model.featurizer, model.task_names = FZ, ["a", "b", "c"]
    engine = AttributionEngine(device="cpu")
    return lambda smiles: molecule_attribution.explain_molecule(engine, model, smiles, 0,
                                                                ScanSettings(rule="trapezoid", steps=4))


@pytest.mark.parametrize("smiles", ["O", "[Na+].[Cl-]"])
def test_one_heavy_atom_gives_tables_csv_and_drawings(tiny_explained, smiles):
    from dashboard.renderers import molecules as molecule_views
    from families.molecules import explanation as molecule_explanation
    from families.molecules import functional_groups, identical_attributions

    e = tiny_explained(smiles)
    assert e.features.n_atoms == 1 and e.features.n_pairs == 0
    assert e.bond_scores.size == 0 and e.nonbonded_total == 0
    bonds = e.bond_table()
    # a table with headers, not a KeyError
    assert bonds.empty and list(bonds.columns) == molecule_explanation.BOND_COLUMNS
    assert molecule_views.sort_table(bonds).empty and len(e.atom_table()) == 1
    atoms = e.accounting().set_index("part")["attribution"]
    assert atoms["atoms"] == pytest.approx(e.total) and atoms["bonded pairs"] == 0
    lines = e.scores_csv().splitlines()
    assert lines[1] == "kind,id,label,score,share"
    assert lines[2].startswith(f"atom,0,{e.mol.GetAtomWithIdx(0).GetSymbol()},") and lines[3].startswith("non-bonded")
    assert len(lines) == 4
    assert not molecule_views.draws_contours(e.mol)  # RDKit's similarity map raises "too few atoms" here
    assert molecule_views.similarity_map_png(e.mol, e.atom_scores)[:4] == b"\x89PNG"
    assert molecule_views.attribution_svg(e.mol, e.atom_scores, e.bond_scores).startswith("<svg")
    assert molecule_views.attribution_png(e.mol, e.atom_scores, e.bond_scores)[:4] == b"\x89PNG"
    assert molecule_views.thumbnail_svg(e.mol, e.atom_scores, e.bond_scores).startswith("<svg")
    assert identical_attributions.identical_attribution_groups(e) == []
    assert functional_groups.mean_by_functional_group([e]).empty


def test_gaussian_membership_gradient_is_the_formulas():
    """The histogram's hand-written backward against numerical differences (float64) and autograd of the formula."""
    from families.molecules.weave import GAUSSIANS, GaussianMembership
    mu = torch.tensor([m for m, _ in GAUSSIANS], dtype=torch.float64)
    sigma = torch.tensor([s for _, s in GAUSSIANS], dtype=torch.float64)
    x = (torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: GaussianMembership.apply(v, mu, sigma), (x,))
    z = (x.unsqueeze(-1) - mu) / sigma
    e = torch.exp(-0.5 * z * z)
    formula = e / (e.sum(-1, keepdim=True) + 1e-7)
    upstream = torch.randn(3, 4, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (by_hand,) = torch.autograd.grad(GaussianMembership.apply(x, mu, sigma), x, upstream)
    (by_autograd,) = torch.autograd.grad(formula, x, upstream)
    # both sum 22 products of terms below |upstream| / sigma^2 * 2 in float64
    bound = 22 * 2 * upstream.abs().max() / sigma.min() ** 2 * torch.finfo(torch.float64).eps * 8
    assert torch.allclose(by_hand, by_autograd, rtol=0, atol=float(bound))
    torch.testing.assert_close(GaussianMembership.apply(x, mu, sigma), formula, rtol=0, atol=1e-15)
