"""families.molecules.run_rows and the page "Molecules: a run's actives": a molecules run's rows read back as molecules,
filtered by SMARTS, counted per functional group and atom type, exported as SDF and CSV, opened on the
Molecules page.

Pure tests use hand-made scores whose sums are exact (powers of two); the store is made by the dataset command
on Tox21's first 60 molecules with the shipped W2N2 model and a cheap fixed rule (accuracy is not the point).
"""
from __future__ import annotations

import io
import math
import pathlib
import re

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
import torch
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

from dashboard.renderers.markdown import escape_markdown
from families.config import RUNS_DIR
from families.molecules import functional_groups
from families.molecules import run_rows as molecule_runs
from families.registry import FAMILIES
from ig_core import AttributionEngine, ScanSettings
from runs import store
from runs.runner import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAMILY = FAMILIES["molecules"]
RUN = "tox60"
PAGE = "dashboard/pages/molecules_runs.py"


def task_scores(folder: pathlib.Path, target: int) -> pd.DataFrame:
    """item_index, score_names and scores of one task's explained rows, as the run's page reads them."""
    where = (ds.field("status") == "explained") & (ds.field("target") == int(target))
    return store.read(folder, ["item_index", "score_names", "scores"], where).to_pandas()


def exact_scores(mol: Chem.Mol) -> list[float]:
    """Scores whose every sum is exact in float64: atom k gets 2**k, bond b gets 2**(20 + b), the non-bonded
    pairs -1."""
    return ([2.0 ** k for k in range(mol.GetNumAtoms())] + [2.0 ** (20 + b) for b in range(mol.GetNumBonds())]
            + [-1.0])


def listing_of(smiles: list[str], probabilities: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A task's listing rows and their scores (task_scores' frame), made by hand: F(molecule) - F(baseline)
    is 2 for every row."""
    mols = [molecule_runs.largest_fragment(s) for s in smiles]
    listing = pd.DataFrame({
        "item_index": range(len(smiles)), "item_id": [f"row {k}" for k in range(len(smiles))], "source": smiles,
        "status": "explained", "target": 7, "target_name": "SR-ARE", "probability": probabilities,
        "score_input": 2.5, "score_baseline": 0.5, "delta": 0.0, "relative_delta": 0.0,
        "nothing_to_attribute": False, "target_truth": 1.0, "model_key": "molecules:test", "method": "test"})
    scores = pd.DataFrame({"item_index": range(len(smiles)),
                           "score_names": [molecule_runs.score_names(m) for m in mols],
                           "scores": [exact_scores(m) for m in mols]})
    return listing, scores


@pytest.fixture(scope="module")
def hand_made() -> molecule_runs.TaskRows:
    listing, scores = listing_of(["Oc1ccccc1", "CCO", "c1ccc2ccccc2c1", "Oc1ccc(O)cc1", "[Na+].CC(=O)[O-]"],
                                 [0.3, 0.9, 0.5, 0.7, 0.1])
    return molecule_runs.task_rows(listing, scores)


# --- names, molecules and the atom-score mapping --------------------------------------------------------------

@pytest.fixture(scope="module")
def w2n2():
    return FAMILY.load(FAMILY.source_named("w2n2"), torch.device("cpu"))


@pytest.mark.parametrize("smiles", ["CC(=O)Oc1ccccc1C(=O)O", "[Na+].OC(=O)c1ccccc1O",
                                    "Cl/C=C\\C[N+]12CN3CN(CN(C3)C1)C2"])
def test_names_and_scores_are_the_explanations(w2n2, smiles, one_thread):
    """A store row's names are MoleculeExplanation.scores' keys (a salt keeps its largest fragment), and its
    values land on the explanation's own atoms and bonds."""
    features = FAMILY.parse(w2n2, smiles)
    expl = FAMILY.explain(AttributionEngine(device="cpu"), w2n2, features, [7],
                          ScanSettings(rule="gauss-legendre", steps=4))
    named = expl.scores(0)
    assert molecule_runs.score_names(molecule_runs.largest_fragment(smiles)) == list(named)
    stored = molecule_runs.stored_molecule(smiles, list(named), list(named.values()), 1.0)
    assert Chem.MolToSmiles(stored.mol) == expl.smiles
    np.testing.assert_array_equal(stored.atom_scores, expl.atom_scores)
    np.testing.assert_array_equal(stored.bond_scores, expl.bond_scores)
    assert stored.nonbonded_total == expl.nonbonded_total


def test_another_atom_order_is_renumbered_onto_the_names():
    """An SDF run stores a canonical SMILES whose atom order is not the record's: the atoms are matched to the
    named graph, so every score stays on its atom and bond."""
    record = Chem.MolFromSmiles("OC(=O)c1ccccc1OC(C)=O")  # aspirin, atoms in another order than canonical
    names, scores = molecule_runs.score_names(record), exact_scores(record)
    canonical = Chem.MolToSmiles(record)
    assert molecule_runs.score_names(Chem.MolFromSmiles(canonical)) != names  # the direct reading would be wrong
    stored = molecule_runs.stored_molecule(canonical, names, scores, 1.0)
    assert [atom.GetSymbol() for atom in stored.mol.GetAtoms()] == [a.GetSymbol() for a in record.GetAtoms()]
    np.testing.assert_array_equal(stored.atom_scores, [2.0 ** k for k in range(record.GetNumAtoms())])
    for bond in record.GetBonds():
        same = stored.mol.GetBondBetweenAtoms(bond.GetBeginAtomIdx(), bond.GetEndAtomIdx())
        assert same is not None and same.GetBondType() == bond.GetBondType()
        assert stored.bond_scores[same.GetIdx()] == 2.0 ** (20 + bond.GetIdx())
    with pytest.raises(molecule_runs.StoreMismatch, match="not those its scores name"):
        # an amide where the names have an acid
        molecule_runs.stored_molecule("CC(=O)Oc1ccccc1C(=O)N", names, scores, 1.0)
    with pytest.raises(molecule_runs.StoreMismatch, match="cannot read"):
        molecule_runs.stored_molecule("C1CC(", names, scores, 1.0)


# --- SMARTS filter and statistics on hand-made scores ---------------------------------------------------------

def test_smarts_filter_on_known_smiles(hand_made):
    assert len(hand_made.molecules) == 5 and hand_made.left_out == []
    # phenol, hydroquinone
    assert molecule_runs.matching(hand_made, molecule_runs.smarts_pattern("c[OX2H]")).tolist() == [0, 3]
    # acetate, salt dropped
    assert molecule_runs.matching(hand_made, molecule_runs.smarts_pattern(" [CX3](=O)[O-] ")).tolist() == [4]
    # the featurizer dropped it
    assert molecule_runs.matching(hand_made, molecule_runs.smarts_pattern("[Na+]")).tolist() == []
    assert molecule_runs.matching(hand_made, molecule_runs.smarts_pattern("")).tolist() == [0, 1, 2, 3, 4]
    assert molecule_runs.smarts_pattern("   ") is None
    for bad in ("c1ccccc1(", "[OX2H", "C)C"):
        with pytest.raises(ValueError, match=f"'{re.escape(bad)}' is not a valid SMARTS pattern"):
            molecule_runs.smarts_pattern(bad)


def test_group_scores_count_each_atom_and_bond_once(hand_made):
    totals, counts = hand_made.group_totals, hand_made.group_counts
    # phenol O0 c1..c6, bond 0 = O0-c1, bonds 1..6 = the ring
    ring = sum(2.0 ** k for k in range(1, 7)) + sum(2.0 ** (20 + b) for b in range(1, 7))
    assert totals.loc[0, "benzene ring"] == ring
    assert totals.loc[0, "phenol OH"] == 2.0 ** 0 + 2.0 ** 1 + 2.0 ** 20
    assert counts.loc[0, "benzene ring"] == 1 and math.isnan(totals.loc[1, "benzene ring"])
    # naphthalene: two overlapping rings; their union is every atom and bond, the shared ones once
    assert counts.loc[2, "benzene ring"] == 2
    assert totals.loc[2, "benzene ring"] == sum(2.0 ** k for k in range(10)) + sum(2.0 ** (20 + b) for b in range(11))
    ring_matches = hand_made.occurrences.query("position == 2 and group == 'benzene ring'")["score"]
    assert ring_matches.sum() > totals.loc[2, "benzene ring"]  # the sum of matches counts the fused bond twice
    assert counts.loc[3, "phenol OH"] == 2 and counts.loc[1, "hydroxyl (alcohol)"] == 1


def test_group_matches_are_scored_as_the_browse_page_scores_them(hand_made):
    for molecule in hand_made.molecules:
        ours = [(name, match, score) for name, match, _, score in molecule_runs.group_matches(molecule)]
        assert ours == functional_groups.functional_group_matches(molecule)  # bit for bit


def test_statistics_over_a_selection(hand_made):
    selection = [0, 2, 3]  # phenol, naphthalene, hydroquinone
    groups = molecule_runs.group_statistics(hand_made, selection).set_index("group")
    assert set(groups.index) == {"benzene ring", "phenol OH"}
    ring = groups.loc["benzene ring"]
    assert ring["occurrences"] == 4 and ring["molecules"] == 3
    ring_scores = hand_made.occurrences.query("group == 'benzene ring' and position in @selection")["score"]
    assert ring["mean score"] == ring_scores.mean() and ring["mean share"] == ring_scores.mean() / 2
    assert ring["mean per molecule"] == hand_made.group_totals.loc[selection, "benzene ring"].mean()
    assert groups.loc["phenol OH", "molecules"] == 2 and groups.loc["phenol OH", "occurrences"] == 3
    atoms = molecule_runs.atom_type_statistics(hand_made, selection).set_index("atom type")
    assert atoms.loc["c", "atoms"] == 6 + 10 + 6 and atoms.loc["O", "atoms"] == 1 + 2
    assert atoms.loc["O", "mean score"] == (2.0 ** 0 + 2.0 ** 0 + 2.0 ** 5) / 3  # O0 of phenol, O0 and O5
    # the same tables as the browse page's, on the same molecules
    molecules = [hand_made.molecules[k] for k in selection]
    pd.testing.assert_frame_equal(molecule_runs.atom_type_statistics(hand_made, selection),
                                  functional_groups.mean_by_atom_type(molecules), check_dtype=False)
    pd.testing.assert_frame_equal(
        molecule_runs.group_statistics(hand_made, selection).drop(columns="mean per molecule"),
        functional_groups.mean_by_functional_group(molecules), check_dtype=False)
    assert (molecule_runs.group_statistics(hand_made, []).empty
            and molecule_runs.atom_type_statistics(hand_made, []).empty)


def test_selection_table_sorts_with_missing_values_last(hand_made):
    table = molecule_runs.selection_table(hand_made, [0, 1, 2, 3, 4], "phenol OH", "prediction")
    assert table.index.tolist() == [1, 3, 2, 0, 4] and table["P(active)"].is_monotonic_decreasing
    by_group = molecule_runs.selection_table(hand_made, [0, 1, 2, 3, 4], "phenol OH", "group attribution",
                                             descending=False)
    assert by_group.index.tolist()[:2] == [0, 3] and by_group["phenol OH: attribution"].iloc[2:].isna().all()
    assert by_group["phenol OH: matches"].tolist() == [1, 2, 0, 0, 0]


# --- the store made by the dataset command --------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    """The runs folder: the 60-molecule run, and a run whose only row was skipped."""
    folder = tmp_path_factory.mktemp("runs")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores: more threads than cores slow a scan ten-fold
    try:
        assert main(["--family", "molecules", "--input", str(shared_data / "molecules" / "tox21_moleculenet.csv"),
                     "--model", "w2n2", "--targets", "actives", "--limit", "60", "--rule", "gauss-legendre",
                     "--steps", "4", "--quiet", "--out", str(folder / RUN)]) == 0
    finally:
        torch.set_num_threads(before)
    skipped = folder / "nothing"
    store.open_run(skipped, {"format": store.FORMAT, "version": store.VERSION, "job": {"family": "molecules"},
                             "status": "complete", "counts": {"rows": 1}}, [])
    store.write_shard(skipped, 0, [{"item_index": 0, "item_id": "row 0", "source": "CCO", "status": "skipped",
                                    "error": "active on no task of the model"}])
    return folder


@pytest.fixture(scope="module")
def biggest_task(runs):
    """(target, task name, TaskRows) of the run's task with the most rows."""
    counts = molecule_runs.task_counts(store.listing(runs / RUN)).sort_values("rows", ascending=False, kind="stable")
    target, name = int(counts.target.iloc[0]), str(counts.task.iloc[0])
    rows = molecule_runs.explained(store.listing(runs / RUN))
    return target, name, molecule_runs.task_rows(rows[rows.target == target], task_scores(runs / RUN, target))


def test_every_row_of_every_task_reads_back(runs):
    listing = store.listing(runs / RUN)
    counts = molecule_runs.task_counts(listing)
    assert counts.rows.sum() == (listing.status == "explained").sum() > 0
    whole = store.read(runs / RUN, ["item_index", "target", "source", "score_names", "scores"]).to_pandas()
    for target, rows in counts.groupby("target")["rows"]:
        scores = task_scores(runs / RUN, target)
        assert sorted(scores.item_index) == sorted(listing[listing.target == target].item_index)
        task = molecule_runs.task_rows(listing[(listing.status == "explained") & (listing.target == target)], scores)
        assert task.left_out == [] and len(task.molecules) == rows.iloc[0]
        for position, molecule in enumerate(task.molecules):
            [row] = whole[(whole.item_index == task.rows.item_index[position]) & (whole.target == target)].itertuples()
            # the SMILES's own order is the names'
            assert molecule_runs.score_names(molecule.mol) == list(row.score_names)
            n, b = len(molecule.atom_scores), len(molecule.bond_scores)
            np.testing.assert_array_equal(np.r_[molecule.atom_scores, molecule.bond_scores, molecule.nonbonded_total],
                                          row.scores)
            assert len(row.scores) == n + b + 1


def test_sdf_export_reads_back_exactly(runs, biggest_task):
    """17 significant digits identify a float64 (ceil(53 log10 2) + 1 = 17): RDKit writes that many, so every
    score and number must read back exactly, on the right atom."""
    target, name, task = biggest_task
    positions = molecule_runs.selection_table(task, range(len(task.molecules)), "benzene ring").index.tolist()
    text = molecule_runs.selection_sdf(task, positions, name)
    digits = [len(token.lstrip("-").split("e")[0].replace(".", "").lstrip("0"))
              for block in re.findall(r"<atom\.dprop\.ig_attribution>.*?\n(.*?)\n\n", text, re.S)
              for token in block.split()]
    assert len(digits) == sum(len(task.molecules[k].atom_scores) for k in positions) and max(digits) == 17
    supplier = Chem.SDMolSupplier()
    supplier.SetData(text)
    records = list(supplier)
    assert len(records) == len(positions) >= 5
    for record, position in zip(records, positions):
        row, molecule = task.rows.iloc[position], task.molecules[position]
        stored = store.item_rows(runs / RUN, [row.item_index]).query("target == @target").iloc[0]
        values = dict(zip(stored.score_names, stored.scores))
        assert record.GetProp("_Name") == row.item_id and record.GetProp("task") == name
        assert float(record.GetProp("probability")) == row.probability
        assert float(record.GetProp("delta")) == row.delta
        assert float(record.GetProp("relative_delta")) == row.relative_delta
        assert float(record.GetProp("ig_nonbonded_pairs")) == values[molecule_runs.NONBONDED]
        for atom in record.GetAtoms():  # atom i is the store's "<element>i"
            assert atom.GetDoubleProp(molecule_runs.ATOM_PROPERTY) == values[f"{atom.GetSymbol()}{atom.GetIdx()}"]
        by_atoms = {tuple(sorted(map(int, re.findall(r"\d+", n.split()[0])))): v
                    for n, v in values.items() if " " in n and n != molecule_runs.NONBONDED}
        bond_values = [float(v) for v in record.GetProp("ig_bond_attribution").split()]
        assert bond_values == [by_atoms[tuple(sorted((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx())))]
                               for bond in record.GetBonds()]
        assert record.GetNumAtoms() == len(molecule.atom_scores)


def test_csv_export(biggest_task):
    target, name, task = biggest_task
    table = molecule_runs.selection_table(task, molecule_runs.matching(task, molecule_runs.smarts_pattern("c")),
                                          "halogen on aromatic", "completeness error")
    back = pd.read_csv(io.StringIO(molecule_runs.selection_csv(task, table, name)))
    assert back["item"].tolist() == table["item"].tolist() and (back["task"] == name).all()
    assert back["smiles"].tolist() == table["SMILES"].tolist()
    np.testing.assert_array_equal(back["relative_delta"], table["completeness error"])  # pandas writes repr
    np.testing.assert_array_equal(back["probability"], table["P(active)"])
    np.testing.assert_array_equal(back["attribution: halogen on aromatic"], table["halogen on aromatic: attribution"])
    assert [column.removeprefix("attribution: ") for column in back.columns[10:]] == molecule_runs.GROUPS


def test_the_run_names_its_model_among_the_family_s(runs):
    [model_key] = store.listing(runs / RUN).model_key.dropna().unique()
    sources = FAMILY.sources()
    assert molecule_runs.model_source_name(model_key, sources) == "shipped: w2n2"
    other_weights = model_key.rsplit(":", 1)[0] + ":" + "0" * 16
    assert other_weights != model_key and molecule_runs.model_source_name(other_weights, sources) is None


# --- the page (AppTest) ---------------------------------------------------------------------------------------

@pytest.fixture
def page(runs, shared_data, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(RUNS_DIR.name, str(runs))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["scan_settings"] = ScanSettings(rule="trapezoid", steps=4)  # the Molecules page's scan
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at) -> dict:
    """The page's tables by their first column."""
    return {d.value.columns[0]: d.value for d in at.dataframe}


def apply(at) -> None:
    """The filter form's button (of the latest run: elements are not reused across runs)."""
    [button] = [b for b in at.button if b.label == "Apply"]
    button.click().run()


def test_page_task_filter_statistics_and_exports(page, biggest_task):
    target, name, task = biggest_task
    at = page
    assert at.selectbox(key="molecule_runs_run").value == "nothing"  # runs by name: the skipped one first
    assert any("no explained rows (1 skipped)" in w.value for w in at.warning)
    at.selectbox(key="molecule_runs_run").set_value(RUN).run()
    at.selectbox(key="molecule_runs_task").set_value(name).run()
    assert [h.value for h in at.subheader] == [f"{len(task.molecules)} of {len(task.molecules)} rows of {name}",
                                               f"Across the {len(task.molecules)} molecules of the selection"]
    at.text_input(key="molecule_runs_smarts").input("c1ccccc1(")
    apply(at)
    assert not at.exception and any("'c1ccccc1(' is not a valid SMARTS pattern" in e.value for e in at.error)
    assert not at.dataframe  # nothing else under a refused filter
    at.text_input(key="molecule_runs_smarts").input("[Cl,Br,I]")
    at.selectbox(key="molecule_runs_group").set_value("halogen on aromatic")
    at.selectbox(key="molecule_runs_sort").set_value("group attribution")
    apply(at)
    assert not at.exception and not at.error, [e.value for e in at.error]
    expected = [k for k, m in enumerate(task.molecules)
                if any(atom.GetSymbol() in ("Cl", "Br", "I") for atom in m.mol.GetAtoms())]
    assert at.subheader[0].value == (f"{len(expected)} of {len(task.molecules)} rows of {escape_markdown(name)} "
                                     f"containing {escape_markdown('[Cl,Br,I]')}")  # AppTest reads Markdown
    tables = shown(at)
    rows = tables["item"]
    assert sorted(rows["item"]) == sorted(task.rows.item_id[expected])
    assert rows["halogen on aromatic: attribution"].dropna().is_monotonic_decreasing
    groups, atoms = tables["group"], tables["atom type"]
    pd.testing.assert_frame_equal(groups, molecule_runs.group_statistics(task, np.array(expected)))
    pd.testing.assert_frame_equal(atoms, molecule_runs.atom_type_statistics(task, np.array(expected)))
    assert [b.label for b in at.get("download_button")] == ["Selection (SDF, per-atom scores)", "Selection (CSV)"]


def test_a_clicked_row_opens_on_the_molecules_page_and_the_run_page_stays(page, biggest_task):
    target, name, task = biggest_task
    at = page
    at.selectbox(key="molecule_runs_run").set_value(RUN).run()
    at.selectbox(key="molecule_runs_task").set_value(name).run()
    top = shown(at)["item"].iloc[0]  # sorted by prediction, high first
    at.session_state["molecule_runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}  # a click
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Molecules: which atoms and bonds drive the prediction"
    assert at.selectbox(key="molecules_model").value == "shipped: w2n2"  # the run's model
    [task_box] = [s for s in at.selectbox if s.key and s.key.startswith("mol_task:")]
    assert task_box.value == name
    label = escape_markdown(f"{RUN}: {top['item']}")  # AppTest reads the heading's Markdown
    assert at.subheader[0].value.startswith(f"{label}: {escape_markdown(name)}, log-odds(active) = ")
    smiles = task.rows.source[task.rows.item_id == top["item"]].iloc[0]
    assert any(Chem.MolToSmiles(Chem.MolFromSmiles(smiles)) in c for img in at.get("image") for c in img.captions)
    at.switch_page(PAGE).run()  # back: the choices are kept, the old click does not open the molecule again
    assert at.title[0].value == "Molecules: a run's actives" and not at.exception
    assert at.selectbox(key="molecule_runs_run").value == RUN
    assert at.selectbox(key="molecule_runs_task").value == name


# --- the page in a real browser -------------------------------------------------------------------------------

@pytest.fixture
def server(runs, shared_data, tmp_path):
    require_chromium()
    with streamlit_server(tmp_path, IG_RUNS_DIR=str(runs), IG_DATA_DIR=str(shared_data)) as url:
        yield url


def choose(page, label: str, option) -> None:
    """An option of the select box labelled `label` (an exact name or a pattern)."""
    page.locator("[data-testid='stSelectbox']").filter(has_text=label).click()
    page.get_by_role("option", name=option).click()
    wait_idle(page)


def test_browser_filter_statistics_exports_and_open(server, biggest_task):
    from playwright.sync_api import expect

    target, name, task = biggest_task
    halogens = [k for k, m in enumerate(task.molecules)
                if any(atom.GetSymbol() in ("Cl", "Br", "I") for atom in m.mol.GetAtoms())]
    with browser_page("molecules-runs") as page:
        page.goto(server)
        main_area = page.locator("[data-testid='stMain']")
        use_fast_settings(page)  # the Molecules page explains the opened molecule with these
        open_page(page, "Molecules: a run's actives")
        expect(main_area.get_by_text("no explained rows (1 skipped)", exact=False)).to_be_visible()
        choose(page, "Run", re.compile(f"^{RUN} "))
        choose(page, "Task", re.compile(f"^{re.escape(name)} \\("))
        smarts = main_area.get_by_role("textbox", name="SMARTS filter")
        smarts.fill("c1ccccc1(")
        main_area.get_by_role("button", name="Apply").click()
        expect(main_area.get_by_text("'c1ccccc1(' is not a valid SMARTS pattern", exact=False)).to_be_visible()
        assert main_area.locator("[data-testid='stException']").count() == 0
        smarts.fill("[Cl,Br,I]")
        main_area.get_by_role("button", name="Apply").click()
        expect(main_area.get_by_text(f"{len(halogens)} of {len(task.molecules)} rows of {name} containing [Cl,Br,I]",
                                     exact=True)).to_be_visible()
        expect(main_area.get_by_text(f"Across the {len(halogens)} molecules of the selection")).to_be_visible()
        wait_idle(page)
        expect(main_area.locator("[data-testid='stVegaLiteChart']")).to_have_count(2)
        with page.expect_download() as download:
            main_area.get_by_role("button", name="Selection (SDF, per-atom scores)").click()
        supplier = Chem.SDMolSupplier(str(download.value.path()))
        assert sorted(record.GetProp("_Name") for record in supplier) == sorted(task.rows.item_id[halogens])
        expect(main_area.get_by_role("button", name="Selection (CSV)")).to_be_visible()
        assert main_area.locator("[data-testid='stAlertContentError']").count() == 0
        full_screenshot(page, "molecules-runs.png")
        page.set_viewport_size({"width": 1400, "height": 1000})
        # a click on the first row (its selection box, left of the cells, below the header) opens the molecule
        grid = main_area.locator("[data-testid='stDataFrame']").first
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
        expect(main_area.get_by_text("Molecules: which atoms and bonds drive the prediction")).to_be_visible()
        top = molecule_runs.selection_table(task, np.array(halogens), "benzene ring").iloc[0]
        expect(main_area.get_by_text(f"{RUN}: {top['item']}: {name}, log-odds(active) = ",
                                     exact=False)).to_be_visible()
        wait_idle(page)
        assert main_area.locator("[data-testid='stException']").count() == 0
        full_screenshot(page, "molecules-runs-opened.png")
        page.set_viewport_size({"width": 1400, "height": 1000})
        open_page(page, "Molecules: a run's actives")  # back: the choices are kept, the click is not
        expect(main_area.get_by_text(f"{len(halogens)} of {len(task.molecules)} rows of {name} containing [Cl,Br,I]",
                                     exact=True)).to_be_visible()
        wait_idle(page)
        page.wait_for_timeout(2000)
        expect(page.get_by_role("heading", name="Molecules: a run's actives")).to_be_visible()
        assert main_area.locator("[data-testid='stException']").count() == 0
    assert (ARTIFACTS / "molecules-runs.png").stat().st_size > 30_000


def scored_listing(smiles: list[str], atom_scores, task_name: str) -> molecule_runs.TaskRows:
    """A task's rows whose atoms score as given (bonds and the non-bonded pairs 0)."""
    listing, scores = listing_of(smiles, [0.5] * len(smiles))
    listing["target_name"] = task_name
    mols = [molecule_runs.largest_fragment(s) for s in smiles]
    scores["scores"] = [list(atoms) + [0.0] * (m.GetNumBonds() + 1) for m, atoms in zip(mols, atom_scores)]
    return molecule_runs.task_rows(listing, scores)


def test_a_crippen_task_is_scored_against_crippen_contributions():
    from families.molecules.ground_truth import TASKS, crippen_contributions

    truth = molecule_runs.known_ground_truth("crippen_logp")
    assert truth is TASKS["crippen"] and molecule_runs.known_ground_truth("SR-ARE") is None
    assert molecule_runs.known_ground_truth("Benzene") is TASKS["benzene"]
    smiles = ["CCOc1ccccc1N", "CC(=O)Oc1ccccc1C(=O)O", "C"]
    contributions = [crippen_contributions(molecule_runs.largest_fragment(s)) for s in smiles]
    # the first molecule's scores rank as the truth, the second's in reverse; methane has one atom: undefined
    task = scored_listing(smiles, [3 * contributions[0], -contributions[1], [1.0]], "crippen_logp")
    agreement = molecule_runs.ground_truth_agreement(task, truth)
    assert agreement[0] == 1.0 and agreement[1] == -1.0 and np.isnan(agreement[2])
    table = molecule_runs.selection_table(task, [0, 1, 2], "phenol OH", truth=truth, agreement=agreement)
    assert table.loc[1, "ground truth: Kendall tau-b"] == -1.0


def test_a_benzene_task_is_scored_by_attribution_auroc():
    truth = molecule_runs.known_ground_truth("benzene")
    # phenol: the six ring atoms (1..6) against the oxygen (0); ethanol has no benzene ring
    task = scored_listing(["Oc1ccccc1", "Oc1ccccc1", "CCO"],
                          [[0.0, 1, 1, 1, 1, 1, 1], [1.0, 0, 0, 0, 0, 0, 0], [1.0, 2, 3]], "benzene")
    agreement = molecule_runs.ground_truth_agreement(task, truth)
    assert agreement[0] == 1.0 and agreement[1] == 0.0 and np.isnan(agreement[2])


def test_a_crippen_models_run_shows_each_molecules_agreement_with_the_ground_truth(shared_data, tmp_path,
                                                                                  monkeypatch, one_thread):
    from streamlit.testing.v1 import AppTest

    model = ROOT / "families" / "molecules" / "benchmark_models" / "crippen-weave.pt"
    assert main(["--family", "molecules", "--input", str(shared_data / "molecules" / "tox21_moleculenet.csv"),
                 "--model", str(model), "--targets", "predicted", "--limit", "12", "--rule", "gauss-legendre",
                 "--steps", "4", "--quiet", "--out", str(tmp_path / "crippen")]) == 0
    monkeypatch.setenv(RUNS_DIR.name, str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.switch_page(PAGE).run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    rows = shown(at)["item"]
    column = "ground truth: Kendall tau-b"
    target = int(store.listing(tmp_path / "crippen").target.iloc[0])
    listing = molecule_runs.explained(store.listing(tmp_path / "crippen"))
    task = molecule_runs.task_rows(listing, task_scores(tmp_path / "crippen", target))
    expected = molecule_runs.ground_truth_agreement(task, molecule_runs.known_ground_truth("crippen_logp"))
    by_item = dict(zip(task.rows["item_id"], expected))
    assert len(rows) == 12 and all(rows[column].notna())
    assert all(value == by_item[item] for item, value in zip(rows["item"], rows[column]))
    assert any(c.value.startswith("Ground truth: Kendall tau-b of the atom scores against each atom's Crippen")
               and f"mean {np.mean(expected):.3f} over 12 molecules" in c.value for c in at.caption)
