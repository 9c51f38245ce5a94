"""Molecule attributions (families.molecules.attribution), their renderers and the Molecules page.

Unit tests use small seeded weave models with random weights (exact properties hold for any weights);
the page tests use the bundled checkpoints when they are there, else random-weight checkpoints written to
a temporary folder (the page's plumbing is the same).
"""
from __future__ import annotations

import dataclasses
import io
import pathlib
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from rdkit import Chem
from streamlit_browser import (
    ARTIFACTS,
    browser_page,
    full_screenshot,
    open_page,
    require_chromium,
    streamlit_server,
    use_fast_settings,
    wait_idle,
)

from dashboard.renderers import colours
from dashboard.renderers import molecules as molecule_views
from families.molecules import CHECKPOINT_DIR, Featurizer, WeaveModel, functional_groups, identical_attributions
from families.molecules import attribution as molecule_attribution
from families.molecules import explanation as molecule_explanation
from ig_core import AttributionEngine, ScanSettings

ROOT = pathlib.Path(__file__).resolve().parents[1]

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
FAST = ScanSettings(rule="trapezoid", steps=4)  # page plumbing only


def random_weave(n_weave: int, seed: int = 0) -> WeaveModel:
    torch.manual_seed(seed)
    fz = Featurizer()
    model = WeaveModel(fz.n_atom_features, fz.n_pair_features, 12, n_weave=n_weave).eval()
    model.featurizer = fz
    model.task_names = [f"task{i}" for i in range(12)]
    return model.requires_grad_(False)


@pytest.fixture(scope="module")
def engine():
    return AttributionEngine(device="cpu")


@pytest.fixture(scope="module")
def w2():
    return random_weave(2)


@pytest.fixture(scope="module")
def aspirin(engine, w2):
    return molecule_attribution.explain_molecule(engine, w2, ASPIRIN, 3, ScanSettings(tolerance=0.005))


# --- attribution ------------------------------------------------------------------------------------

def test_parts_add_up_to_the_total_and_to_the_prediction(aspirin):
    e = aspirin
    parts = e.atom_scores.sum() + e.bond_scores.sum() + e.nonbonded_total
    assert parts == pytest.approx(e.total, rel=1e-9, abs=1e-12)
    assert e.total == pytest.approx(e.atom_attr.sum() + e.pair_attr.sum(), rel=1e-12)
    assert (abs(e.total - (e.task_score_input - e.task_score_baseline))
            <= 0.01 * abs(e.task_score_input - e.task_score_baseline))
    acc = e.accounting().set_index("part")["attribution"]
    assert acc[["atoms", "bonded pairs", "non-bonded pairs", "completeness gap", "F(baseline)"]].sum() == \
        pytest.approx(acc["F(molecule)"], abs=1e-9)
    # F is the explained task's log-odds: its sigmoid is the task's probability (float32 roundings of both)
    assert 1 / (1 + np.exp(-acc["F(molecule)"])) == pytest.approx(e.predictions[3], abs=1e-6)
    assert len(e.predictions) == 12 and np.all((e.predictions > 0) & (e.predictions < 1))
    assert e.trend[0] == pytest.approx(e.task_score_baseline) and e.trend[-1] == pytest.approx(e.task_score_input)
    assert e.alphas[0] == 0 and e.alphas[-1] == 1 and len(e.grad_sum) == len(e.alphas)


def test_bond_score_is_the_sum_of_both_ordered_pairs(aspirin):
    e = aspirin
    index = {tuple(p): k for k, p in enumerate(e.features.pair_index.tolist())}
    ps = e.pair_attr.sum(axis=1)
    for bond, score in zip(e.mol.GetBonds(), e.bond_scores):
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        assert score == pytest.approx(ps[index[(i, j)]] + ps[index[(j, i)]], rel=1e-12, abs=1e-15)
    table = e.bond_table()
    assert np.allclose(table["pair i→j"] + table["pair j→i"], table["score"])
    assert e.mol.GetNumBonds() == len(table) == len(e.bond_scores)


def test_an_atom_with_half_of_each_bond_takes_half_of_its_bonds_scores(aspirin):
    e = aspirin  # CC(=O)Oc1ccccc1C(=O)O: atom 0 has bond 0 (C0-C1); atom 1 bonds 0, 1 (C1=O2) and 2 (C1-O3)
    with_bonds, atoms, bonds = e.atom_scores_with_bonds, e.atom_scores.astype(np.float64), e.bond_scores
    # both sides are float64 sums, in other orders, of at most n of the atom and ordered-pair scores (halving is
    # exact): each within n eps/2 of the exact sum of their absolute values, so the two within n eps of them all
    pairs = np.asarray(e.pair_scores, dtype=np.float64)
    n = len(atoms) + pairs.size
    bound = n * np.finfo(np.float64).eps * (np.abs(atoms).sum() + np.abs(pairs).sum())
    assert abs(with_bonds[0] - (atoms[0] + bonds[0] / 2)) <= bound
    assert abs(with_bonds[1] - (atoms[1] + (bonds[0] + bonds[1] + bonds[2]) / 2)) <= bound
    assert abs(with_bonds.sum() - (atoms.sum() + bonds.sum())) <= bound
    assert e.atom_table()["score + ½ bonds"].tolist() == with_bonds.tolist()


def test_detector_finds_a_planted_group(aspirin):
    e = aspirin
    scores = np.linspace(-1, 1, e.features.n_atoms) * 1e-3  # all distinct
    planted = [2, 5, 11]  # O (carbonyl), aromatic C, O (acid carbonyl): different neighbourhoods
    scores[planted] = 4.3e-4
    atom_attr = np.zeros_like(e.atom_attr)
    atom_attr[:, 0] = scores
    atom_attr[planted, 1] = 1e-9 * np.array([1, -1, 0.5])  # float noise far below the tolerance
    planted_e = dataclasses.replace(e, atom_attr=atom_attr)
    groups = identical_attributions.identical_attribution_groups(planted_e, decimals=5)
    assert [g.atoms for g in groups] == [planted]
    assert groups[0].elements == ["O", "C", "O"] and not groups[0].explained_by_symmetry
    assert identical_attributions.anomaly_counts(groups)["groups not explained by symmetry"] == 1
    assert identical_attributions.groups_table(groups).shape[0] == 1


def test_w1n2_gives_identical_scores_to_non_equivalent_atoms_and_w2n2_does_not(engine):
    """The paper's anomaly, exactly: in heptane, C2 and C3 are not symmetric but have the same type and
    the same pairs (2 bonds, 2 atoms at distance 2); one weave layer cannot tell them apart."""
    e1 = molecule_attribution.explain_molecule(engine, random_weave(1), "CCCCCCC", 0, ScanSettings())
    e2 = molecule_attribution.explain_molecule(engine, random_weave(2), "CCCCCCC", 0, ScanSettings())
    odd1 = [g for g in identical_attributions.identical_attribution_groups(e1) if not g.explained_by_symmetry]
    odd2 = [g for g in identical_attributions.identical_attribution_groups(e2) if not g.explained_by_symmetry]
    assert any({2, 3} <= set(g.atoms) for g in odd1), odd1
    assert odd2 == []


def test_batch_explanation_reports_bad_molecules_and_uses_the_cache(engine, w2):
    calls = []
    out, failed = molecule_attribution.explain_many(engine, w2, ["CCO", "not a smiles", "c1ccccc1O"], 1, FAST,
                                                    calls.append)
    assert [e.smiles for e in out] == ["CCO", "Oc1ccccc1"] and [k for k, _ in failed] == [1]
    assert "not a valid SMILES" in failed[0][1]
    assert calls[-1] == 1.0 and all(0 <= c <= 1 for c in calls)
    again = molecule_attribution.explain_molecule(engine, w2, "CCO", 1, FAST)
    assert again.atom_attr is not out[0].atom_attr and np.array_equal(again.atom_attr, out[0].atom_attr)
    # the graph is part of the cache key: same features, different molecule must not collide
    assert (molecule_explanation.molecule_key(w2, out[0].features)
            != molecule_explanation.molecule_key(w2, out[1].features))


def test_means_per_atom_type_and_functional_group(engine, w2, aspirin):
    phenol = molecule_attribution.explain_molecule(engine, w2, "Oc1ccccc1", 3, FAST)
    atoms = functional_groups.mean_by_atom_type([aspirin, phenol]).set_index("atom type")
    assert atoms.loc["c", "atoms"] == 12 and atoms.loc["c", "molecules"] == 2
    expected_c = np.mean([s for e in (aspirin, phenol) for a, s in zip(e.mol.GetAtoms(), e.atom_scores)
                          if a.GetIsAromatic()])
    assert atoms.loc["c", "mean score"] == pytest.approx(expected_c)
    groups = functional_groups.mean_by_functional_group([aspirin, phenol]).set_index("group")
    assert groups.loc["benzene ring", "occurrences"] == 2
    assert {"ester", "carboxylic acid", "phenol OH"} <= set(groups.index)
    ring = [m for m in functional_groups.functional_group_matches(phenol) if m[0] == "benzene ring"][0]
    inside = [b.GetIdx() for b in phenol.mol.GetBonds() if b.GetIsAromatic()]
    assert ring[2] == pytest.approx(phenol.atom_scores[list(ring[1])].sum() + phenol.bond_scores[inside].sum())


def test_renderers(aspirin):
    e = aspirin
    svg = molecule_views.attribution_svg(e.mol, e.atom_scores, e.bond_scores, show_indices=True)
    assert svg.startswith("<svg") and svg.count("<svg") == 3 and "linearGradient" in svg  # drawing and legend nest
    assert molecule_views.attribution_png(e.mol, e.atom_scores, e.bond_scores)[:4] == b"\x89PNG"
    assert molecule_views.similarity_map_png(e.mol, e.atom_scores)[:4] == b"\x89PNG"
    assert molecule_views.thumbnail_svg(e.mol, e.atom_scores, e.bond_scores).startswith("<svg")
    table = molecule_views.sort_table(e.atom_table())
    assert list(table["score"].abs()) == sorted(table["score"].abs(), reverse=True)
    for chart in (molecule_views.accounting_chart(e.accounting()),
                  *molecule_views.saturation_charts([e, e], ["a", "b"])):
        assert chart.to_dict()["data"]
    assert "kind,id,label,score,share" in e.scores_csv()


SIGNED = ("CCO", np.array([2.0, 0.0, -2.0]), np.array([0.0, 0.0]))  # ethanol: C raises F, O lowers it


def atom_fills(svg: str) -> dict[int, np.ndarray]:
    """Each atom's highlight colour in an RDKit SVG drawing, RGB in [0, 1]."""
    found = re.findall(r"<ellipse [^>]*class='atom-(\d+)'\s+style='fill:#([0-9A-Fa-f]{6})", svg)
    return {int(atom): np.array([int(colour[k:k + 2], 16) for k in (0, 2, 4)]) / 255 for atom, colour in found}


def legend_numbers(svg: str) -> list[str]:
    return re.findall(r">([-+]?[\d.e-]+)</text>", svg)


def test_the_drawing_is_red_where_the_score_raises_f_and_blue_where_it_lowers_it():
    smiles, atoms, bonds = SIGNED
    mol = Chem.MolFromSmiles(smiles)
    for svg in (molecule_views.attribution_svg(mol, atoms, bonds), molecule_views.thumbnail_svg(mol, atoms, bonds)):
        fills = atom_fills(svg)
        assert fills[0] == pytest.approx(colours.POSITIVE, abs=1.5 / 255)  # RDKit rounds colours down
        assert fills[1] == pytest.approx(colours.WHITE, abs=1.5 / 255)
        assert fills[2] == pytest.approx(colours.NEGATIVE, abs=1.5 / 255)
        assert legend_numbers(svg) == ["-2", "0", "+2"]  # the legend's numbers are the drawing's scale
        assert colours.LOWERS in svg and colours.RAISES in svg
    assert legend_numbers(molecule_views.attribution_svg(mol, atoms, bonds, vmax=4.0)) == ["-4", "0", "+4"]


def png_pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def is_near(pixels: np.ndarray, rgb) -> np.ndarray:
    return (np.abs(pixels - 255 * np.array(rgb)) <= 3).all(axis=-1)


@pytest.mark.parametrize("draw", [molecule_views.attribution_png, molecule_views.similarity_map_png])
def test_png_drawings_carry_the_signed_scale_and_its_legend(draw):
    smiles, atoms, bonds = SIGNED
    mol = Chem.MolFromSmiles(smiles)
    size = (300, 220)
    png = draw(mol, atoms, bonds, size=size) if draw is molecule_views.attribution_png else draw(mol, atoms, size=size)
    pixels = png_pixels(png)
    drawing, legend = pixels[:size[1]], pixels[size[1]:]
    assert legend.shape[0] > 0  # the colour bar below the drawing
    for ends in (colours.POSITIVE, colours.NEGATIVE):
        assert is_near(drawing, ends).sum() > 20 and is_near(legend, ends).any()
    # the red is where the raising atom is: RDKit lays C-C-O out left to right
    red_columns = np.nonzero(is_near(drawing, colours.POSITIVE))[1]
    blue_columns = np.nonzero(is_near(drawing, colours.NEGATIVE))[1]
    assert red_columns.mean() < blue_columns.mean()


def with_result(e, **changes):
    """The explanation with the engine's result changed (its completeness fields are read from the result)."""
    return dataclasses.replace(e, attribution=dataclasses.replace(e.attribution, **changes))


def test_completeness_verdict_of_a_molecule(engine, aspirin):
    verdict = molecule_views.completeness(aspirin)
    assert verdict.level == ("success" if aspirin.task_relative_delta <= aspirin.tolerance else "warning")
    missed = molecule_views.completeness(with_result(aspirin, relative_delta=np.array([[0.2]]), rule="trapezoid",
                                                     steps_used=8))
    assert missed.level == "warning" and "F(molecule) - F(baseline)" in missed.text and "adaptive" in missed.text
    broken = molecule_views.completeness(with_result(aspirin, nonfinite=True, message="non-finite at alpha = 1"))
    assert broken.level == "error" and "alpha = 1" in broken.text
    flat = random_weave(2)
    flat.head.weight.zero_()  # P(active) is the head's bias for every molecule: F(molecule) = F(baseline)
    e = molecule_attribution.explain_molecule(engine, flat, ASPIRIN, 3, FAST)
    assert e.nothing_to_attribute and e.completeness_ok  # passed on from the engine's result
    verdict = molecule_views.completeness(e)
    assert verdict.level == "info" and "nothing to attribute" in verdict.text
    assert "another baseline" not in verdict.text  # the page has no baseline to choose
    assert e.accounting()["% of F(molecule) - F(baseline)"].isna().all()


# --- the page ---------------------------------------------------------------------------------------

def _write_random_checkpoint(path: pathlib.Path, n_weave: int) -> None:
    from families.molecules import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION

    model = random_weave(n_weave, seed=n_weave)
    torch.save({"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION, "name": path.stem,
                "config": model.config, "featurizer": model.featurizer.to_dict(),
                "task_names": ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD",
                               "NR-PPAR-gamma", "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"],
                "state_dict": model.state_dict(), "metrics": {}}, path)


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory) -> pathlib.Path:
    if (CHECKPOINT_DIR / "w2n2.pt").is_file() and (CHECKPOINT_DIR / "w1n2.pt").is_file():
        return CHECKPOINT_DIR
    folder = tmp_path_factory.mktemp("weave")
    for n in (1, 2):
        _write_random_checkpoint(folder / f"w{n}n2.pt", n)
    return folder


@pytest.fixture
def app(shared_data, checkpoint_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IG_WEAVE_CHECKPOINTS", str(checkpoint_dir))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = FAST
    at.run()
    at.switch_page("dashboard/pages/molecules.py").run()
    return at


def _explain(at, smiles: str):
    at.text_input[0].input(smiles)
    [b for b in at.button if b.label == "Explain"][0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _task_box(at):
    """The task selectbox: keyed by the model and the molecule (mol_task:<molecule_key>)."""
    [box] = [s for s in at.selectbox if s.key and s.key.startswith("mol_task:")]
    return box


def test_page_from_smiles_to_drawing(app):
    at = _explain(app, "c1ccccc1O")
    assert not at.error, [e.value for e in at.error]
    assert any("c1ccccc1O: " in s.value and "log-odds(active)" in s.value for s in at.subheader)
    images = at.get("image")
    assert images and any("Oc1ccccc1" in c for img in images for c in img.captions)
    assert any("F(molecule) - F(baseline)" in s.value for s in at.success) or at.warning
    assert len(at.dataframe) >= 4  # accounting, predictions, atoms, bonds
    assert len(_task_box(at).options) == 12


@pytest.mark.parametrize("smiles, kind, text", [
    ("C1CC(", "error", "not a valid SMILES"),
    ("   ", "error", "empty"),
    ("C" * 500, "error", "500 heavy atoms"),
    ("[Na+].CC(=O)[O-]", "warning", "fragments"),
    ("C[Xe]C", "error", "Unsupported element"),
])
def test_bad_inputs_give_messages(app, smiles, kind, text):
    at = _explain(app, smiles)
    messages = [m.value for m in getattr(at, kind)]
    assert any(text in m for m in messages), messages
    if kind == "warning":
        assert not at.error and at.get("image")


@pytest.mark.parametrize("smiles", ["O", "[Na+].[Cl-]"])
def test_page_explains_a_single_atom(app, smiles):
    """One heavy atom: no bonds, so the bond table is empty and RDKit cannot draw contours."""
    at = _explain(app, smiles)
    assert not at.error, [e.value for e in at.error]  # was a KeyError: 'bond' traceback
    tables = [d.value for d in at.dataframe]
    assert any(list(t.columns[:2]) == ["atom", "element"] and len(t) == 1 for t in tables)
    assert any(list(t.columns[:2]) == ["bond", "atoms"] and t.empty for t in tables)
    assert any("single atom" in c.value for c in at.caption)
    at.radio(key="mol_style").set_value("atom contours (similarity map)").run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert any("no contours" in c for img in at.get("image") for c in img.captions)


def test_atom_scores_with_half_of_each_bond_redraw_the_molecule(app):
    at = _explain(app, "c1ccccc1O")
    own = [img.proto.imgs[0].url for img in at.get("image")]
    at.radio(key="mol_atom_scores").set_value("own + half of each bond").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [img.proto.imgs[0].url for img in at.get("image")] != own  # the atoms take their bonds' halves


def test_task_box_follows_the_molecule(app):
    """A new molecule gets a new task box: its most likely task, labelled with its own probabilities."""
    at = app  # aspirin, the example
    first = _task_box(at)
    at = _explain(at, "c1ccc2ccccc2c1")  # naphthalene
    box = _task_box(at)
    assert box.id != first.id  # a fresh widget: the browser cannot keep the old label
    labels = dict(label.split(maxsplit=1) for label in box.options)  # task -> "P(active) = 0.734"
    probabilities = {task: float(label.rsplit("= ", 1)[1]) for task, label in labels.items()}
    assert box.value == max(probabilities, key=probabilities.get)
    [heading] = [s.value for s in at.subheader]
    assert heading.endswith(f"({labels[box.value]})") and f"{box.value}, log-odds(active) = " in heading
    # a task chosen by the user stays while the molecule does
    other = next(task for task in labels if task != box.value)
    box.set_value(other).run()
    assert _task_box(at).value == other and at.subheader[0].value.split(": ")[1].startswith(other)


def test_a_task_rather_than_another_on_the_page(app):
    """The "... rather than" box explains a contrast of two tasks' log-odds, says what F is and puts it in the URL."""
    at = app  # aspirin, the example
    task = _task_box(at).value
    other = next(name for name in at.selectbox(key="mol_rather_than").options if name not in (task, "(none)"))
    at.selectbox(key="mol_rather_than").set_value(other).run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    [heading] = [s.value for s in at.subheader]
    assert f"{task} rather than {other}, log-odds difference = " in heading
    assert any(f"log-odds({task}) - log-odds({other})" in c.value for c in at.caption)
    assert at.query_params["rather_than"] == other and at.query_params["task"] == task
    at.selectbox(key="mol_rather_than").set_value(task).run()  # a task rather than itself: said, and not explained
    assert any("rather than itself" in i.value for i in at.info)
    assert "rather than" not in at.subheader[0].value and "rather_than" not in at.query_params


def test_download_names_are_stable_across_processes():
    """The download file names use a digest of the SMILES, not Python's per-process hash()."""
    import os
    import subprocess

    stem = molecule_views.download_stem("NR-AR", ASPIRIN)
    assert stem.startswith("NR-AR_") and stem == molecule_views.download_stem("NR-AR", ASPIRIN)
    assert stem != molecule_views.download_stem("NR-AR", "c1ccccc1O")
    code = f"from dashboard.renderers.molecules import download_stem; print(download_stem('NR-AR', {ASPIRIN!r}))"
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        assert out.stdout.strip() == stem


def test_sdf_with_a_broken_record_keeps_the_good_ones(app):
    """The upload path: LoadReport -> stored input -> a selectbox of the good molecules and a warning."""
    from rdkit import Chem

    from families.molecules import load_sdf

    good = [Chem.MolToMolBlock(Chem.MolFromSmiles(s)) for s in ("CCO", "c1ccccc1")]
    broken = "broken\n  RDKit\n\n  2  1  0  0  0  0  0  0  0  0999 V2000\nthis is not an atom line\nM  END\n"
    sdf = "$$$$\n".join([good[0], broken, good[1]]) + "$$$$\n"
    report = load_sdf(sdf.encode())
    assert [m.smiles for m in report.molecules] == ["CCO", "c1ccccc1"] and len(report.skipped) == 1
    at = app
    at.session_state["mol_input"] = {"kind": "test.sdf", "skipped": report.messages, "truncated": 0,
                                     "molecules": [(m.source, m.smiles, []) for m in report.molecules]}
    at.run()
    assert not at.exception and not at.error
    assert any("record 2" in w.value and "skipped" in w.value for w in at.warning)
    assert at.selectbox(key="mol_pick").options and len(at.selectbox(key="mol_pick").options) == 2
    assert at.get("image")


def test_browse_actives_grid(app):
    at = app.switch_page("dashboard/pages/molecules_browse.py").run()
    at.selectbox[[s.label for s in at.selectbox].index("Per page")].set_value(8)
    [b for b in at.button if b.label == "Show actives"][0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.get("image")) == 8
    assert sum(b.label == "Open" for b in at.button) == 8
    [b for b in at.button if b.label == "Open"][0].click().run()
    assert at.title[0].value == "Molecules: which atoms and bonds drive the prediction"  # the explain page
    assert _task_box(at).value == "NR-AR"  # the browsed task, not the molecule's most likely one
    assert at.get("image") and not at.exception


def test_w1n2_vs_w2n2_page_compares_the_two_models(app):
    at = app.switch_page("dashboard/pages/molecules_debug.py").run()
    assert [s.value for s in at.selectbox[:2]] == ["shipped: w1n2", "shipped: w2n2"]
    [b for b in at.button if b.label == "Compare"][0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.get("image")) == 2 and any("groups of identical atom scores" in m.value
                                             for m in [*at.success, *at.warning])


# --- real browser -----------------------------------------------------------------------------------

@pytest.fixture
def server(shared_data, checkpoint_dir, tmp_path):
    require_chromium()
    with streamlit_server(tmp_path, IG_DATA_DIR=str(shared_data), IG_WEAVE_CHECKPOINTS=str(checkpoint_dir)) as url:
        yield url


def test_browser_smiles_drawing_and_browse_grid(server):
    from playwright.sync_api import expect

    with browser_page("molecules") as page:
        page.goto(server)
        main = page.locator("[data-testid='stMain']")
        use_fast_settings(page)
        open_page(page, "Molecules")
        expect(main.get_by_text("Molecules: which atoms and bonds drive the prediction")).to_be_visible()
        wait_idle(page)
        box = main.get_by_role("textbox", name="SMILES", exact=True)
        box.fill("O=C(O)c1ccccc1O")
        box.press("Tab")
        main.get_by_role("button", name="Explain", exact=True).first.click()
        expect(main.get_by_text("O=C(O)c1ccccc1O", exact=True)).to_be_visible()  # the drawing's caption
        wait_idle(page)
        drawing = main.locator("[data-testid='stImage'] img").first
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=drawing.element_handle())
        assert main.locator("[data-testid='stException']").count() == 0
        open_page(page, "Molecules: browse actives")
        wait_idle(page)
        main.get_by_role("button", name="Show actives").click()
        # at least a full page of 12 (a rerun may briefly show stale buttons beside the new ones)
        expect(main.locator("[data-testid='stButton'] button").filter(has_text=re.compile("^Open$"))
               .nth(11)).to_be_visible()
        wait_idle(page)
        thumbs = main.locator("[data-testid='stImage'] img")
        assert thumbs.count() >= 12
        for i in range(12):
            thumbs.nth(i).scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbs.nth(i).element_handle())
        assert main.locator("[data-testid='stException']").count() == 0
        assert main.locator("[data-testid='stAlertContentError']").count() == 0
        full_screenshot(page, "molecules.png")
    assert (ARTIFACTS / "molecules.png").stat().st_size > 30_000


def test_an_uploaded_checkpoint_explains_and_a_bad_upload_is_refused(app, checkpoint_dir):
    at = app
    at.sidebar.selectbox(key="molecules_model").set_value("upload a model file...").run()
    upload = at.sidebar.file_uploader(key="molecules_model_upload")
    upload.set_value(("notes.pt", b"not a checkpoint", "application/octet-stream")).run()
    assert any("notes.pt cannot be used" in e.value for e in at.error), [e.value for e in at.error]
    data = (checkpoint_dir / "w1n2.pt").read_bytes()
    at.sidebar.file_uploader(key="molecules_model_upload").set_value(
        ("mine.pt", data, "application/octet-stream")).run()
    at = _explain(at, "c1ccccc1O")
    assert not at.error, [e.value for e in at.error]
    assert any("F(molecule) - F(baseline)" in s.value for s in at.success) or at.warning


def test_page_runs_other_methods_and_compares_them(shared_data, checkpoint_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IG_WEAVE_CHECKPOINTS", str(checkpoint_dir))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = FAST.with_method("expected_gradients")  # molecules have no references
    at.run()
    at.switch_page("dashboard/pages/molecules.py").run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert any("Expected gradients draws its baselines" in w.value and "graphs of different sizes" in w.value
               for w in at.warning)
    offered = at.selectbox(key="molecules_method_here")
    assert "Expected gradients" not in offered.options and "XRAI (regions)" not in offered.options
    assert "Gradient (saliency)" in offered.options and offered.value == "integrated_gradients"
    assert any("F(molecule) - F(baseline)" in m.value for m in [*at.success, *at.warning])  # the IG verdict
    offered.set_value("gradient_x_input").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(i.value.startswith("Gradient x input defines no completeness") for i in at.info)
    assert not any("Saturation" in m.value for m in at.markdown)
    assert any("straight-line scan" in c.value for c in at.caption)
    at.multiselect(key="mol_compare_methods").set_value(["integrated_gradients", "gradient_x_input"])
    [compare] = [b for b in at.button if b.label == "Compare"]
    compare.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = [c for img in at.get("image") for c in img.captions]
    assert any(c.startswith("Integrated gradients; completeness: ") and "% off F(input) - F(baseline)" in c
               for c in captions), captions
    assert "Gradient x input; completeness: not defined" in captions
    tables = [d.value for d in at.dataframe]
    scores = next(t for t in tables if list(t.columns) == ["feature", "Integrated gradients", "Gradient x input"])
    assert scores.feature.iloc[0] == "C0" and scores.feature.iloc[-1] == "non-bonded pairs"
    agreement = next(t for t in tables if "Spearman (all features)" in t.columns)
    assert list(agreement[["first", "second"]].iloc[0]) == ["Integrated gradients", "Gradient x input"]
