"""The Molecules page's accounting (Section 3.1): which part of F(molecule) - F(baseline) the atoms, the bonded
pairs and the non-bonded pairs carry, as a table and a chart, on the shipped W2N2 model and real Tox21 rows."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

from dashboard.renderers import colours
from dashboard.renderers import molecules as molecule_views
from families.molecules import CHECKPOINT_DIR, load_weave
from families.molecules.attribution import explain_molecule
from ig_core import AttributionEngine, ScanSettings

ROOT = pathlib.Path(__file__).resolve().parents[1]
# the table's and the chart's unit, named in their headers
PERCENT_OF_DIFFERENCE = "% of F(molecule) - F(baseline)"
PERCENT_OF_PREDICTION = "% of F(molecule)"
PARTS = ["atoms", "bonded pairs", "non-bonded pairs", "completeness gap"]
# Tox21 rows (tox21_moleculenet.csv) and the task the page opens them at (W2N2's most likely one), from the family's
# default baseline
CANCELLING = 528
ROWS = {
    CANCELLING: ("CC(C)(C)C(=O)Cl", "NR-ER"),  # F(molecule) - F(baseline) = -0.0006: the parts cancel
    2: ("CC[C@]1(O)CC[C@H]2[C@@H]3CCC4=CCCC[C@@H]4[C@H]3CC[C@@]21C", "NR-AR"),  # F(molecule) > F(baseline)
    3: ("CCCN(CC)C(CC)C(=O)Nc1c(C)cccc1C", "NR-ER"),  # F(molecule) < F(baseline), clearly
}


@pytest.fixture(scope="module")
def explained(single_thread):
    if not (CHECKPOINT_DIR / "w2n2.pt").is_file():
        pytest.skip(f"the shipped W2N2 checkpoint is not in {CHECKPOINT_DIR}")
    engine, model = AttributionEngine(device="cpu"), load_weave("w2n2")
    return {row: explain_molecule(engine, model, smiles, task, ScanSettings()) for row, (smiles, task) in ROWS.items()}


def drawn_bars(chart) -> list[dict]:
    spec = chart.to_dict()
    return spec["datasets"][spec["data"]["name"]]


def bar_colours(chart) -> dict[str, str]:
    """Each bar's colour, as the chart's colour scale maps it."""
    colour = chart.to_dict()["encoding"]["color"]
    palette = dict(zip(colour["scale"]["domain"], colour["scale"]["range"]))
    return {bar["part"]: palette[bar[colour["field"]]] for bar in drawn_bars(chart)}


def test_the_rows_are_tox21s(shared_data):
    from families.molecules.tox21 import tox21_frame

    frame = tox21_frame()
    assert {row: frame.smiles.iloc[row] for row in ROWS} == {row: smiles for row, (smiles, _) in ROWS.items()}


def test_every_bar_carries_its_own_label(explained):
    chart = molecule_views.accounting_chart(explained[2].accounting())
    spec = chart.to_dict()
    assert [bar["part"] for bar in drawn_bars(chart)] == PARTS
    y = spec["encoding"]["y"]
    assert y["field"] == "part"
    # Streamlit's theme hides overlapping labels (every other one of four thin bars): the chart keeps them all,
    # on bands taller than a label
    assert y["axis"]["labelOverlap"] is False
    assert spec["height"]["step"] >= 20


@pytest.mark.parametrize("row", [2, 3])
def test_colour_follows_the_sign_of_the_attribution(explained, row):
    e = explained[row]
    accounting = e.accounting().set_index("part")
    red, blue = colours.hex_colour(colours.POSITIVE), colours.hex_colour(colours.NEGATIVE)
    # the drawing's legend: blue lowers, red raises, whichever side of F(baseline) the molecule scores on
    expected = {part: red if accounting.loc[part, "attribution"] >= 0 else blue for part in PARTS}
    assert bar_colours(molecule_views.accounting_chart(e.accounting())) == expected
    if row == 3:  # the shares flip sign: the atoms lower F yet carry a positive share
        assert e.difference < 0 and accounting.loc["atoms", "attribution"] < 0
        assert accounting.loc["atoms", PERCENT_OF_DIFFERENCE] > 0 and expected["atoms"] == blue


def test_the_legend_names_what_the_colours_mean(explained):
    colour = molecule_views.accounting_chart(explained[3].accounting()).to_dict()["encoding"]["color"]
    meaning = dict(zip(colour["scale"]["domain"], colour["scale"]["range"]))
    assert meaning == {"raises F": colours.hex_colour(colours.POSITIVE),
                       "lowers F": colours.hex_colour(colours.NEGATIVE)}


def test_table_and_chart_share_one_unit_percent(explained):
    e = explained[2]
    accounting = e.accounting().set_index("part")
    attribution = accounting["attribution"]
    assert accounting.loc[PARTS, PERCENT_OF_DIFFERENCE].to_numpy() == pytest.approx(
        100 * attribution[PARTS].to_numpy() / e.difference)
    assert accounting[PERCENT_OF_PREDICTION].to_numpy() == pytest.approx(
        100 * attribution.to_numpy() / e.task_score_input)
    assert accounting.loc[PARTS + ["F(baseline)"], PERCENT_OF_PREDICTION].sum() == pytest.approx(100, abs=1e-6)
    chart = molecule_views.accounting_chart(e.accounting())
    x = chart.to_dict()["encoding"]["x"]
    assert x["field"] == x["title"] == PERCENT_OF_DIFFERENCE
    assert [bar[x["field"]] for bar in drawn_bars(chart)] == pytest.approx(
        accounting.loc[PARTS, PERCENT_OF_DIFFERENCE].to_list())


def test_a_molecule_that_scores_like_its_baseline_shows_attributions_not_shares(explained):
    e = explained[CANCELLING]
    gross = abs(e.atom_scores.sum()) + abs(e.bond_scores.sum()) + abs(e.nonbonded_total)
    assert abs(e.difference) < 0.01 and abs(e.difference) < 0.02 * gross  # shares would be about +-5,000%
    assert e.explains_little
    accounting = e.accounting()
    assert accounting[PERCENT_OF_DIFFERENCE].isna().all()
    chart = molecule_views.accounting_chart(accounting)
    x = chart.to_dict()["encoding"]["x"]
    assert x["field"] == "attribution" and "%" not in x["title"]
    assert [bar["attribution"] for bar in drawn_bars(chart)] == pytest.approx(
        accounting.set_index("part").loc[PARTS, "attribution"].to_list())
    assert bar_colours(chart)["atoms"] == colours.hex_colour(colours.NEGATIVE)
    note = molecule_views.accounting_note(e)
    assert "baseline scores like the molecule" in note and "explain little" in note
    assert f"{e.difference:+.3g}" in note


@pytest.mark.parametrize("row", [2, 3])
def test_a_clear_difference_is_shared_out(explained, row):
    e = explained[row]
    assert not e.explains_little and molecule_views.accounting_note(e) is None
    assert np.isfinite(e.accounting().set_index("part").loc[PARTS, PERCENT_OF_DIFFERENCE]).all()


def test_page_says_so_and_hides_the_shares(shared_data, explained, monkeypatch):
    """Tox21 row 528 on the Molecules page (shipped W2N2, default settings): the warning, and no share columns."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IG_WEAVE_CHECKPOINTS", str(CHECKPOINT_DIR))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("dashboard/pages/molecules.py").run()
    at.text_input[0].input(ROWS[CANCELLING][0])
    [b for b in at.button if b.label == "Explain"][0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert any("explain little" in w.value for w in at.warning), [w.value for w in at.warning]
    tables = [d.value for d in at.dataframe]
    [accounting] = [t for t in tables if "part" in t.columns]
    assert PERCENT_OF_DIFFERENCE not in accounting.columns and PERCENT_OF_PREDICTION in accounting.columns
    atoms_and_bonds = [t for t in tables if t.columns[0] in ("atom", "bond")]
    assert len(atoms_and_bonds) == 2 and all("share" not in t.columns for t in atoms_and_bonds)


@pytest.mark.parametrize("row", [CANCELLING, 2])
def test_the_table_shows_n_a_with_its_reason_never_none(explained, row):
    accounting = explained[row].accounting()
    table = molecule_views.accounting_table(accounting)
    assert not table.isna().any().any() and "None" not in table.to_string()
    shown = table.set_index("part")
    if row == 2:  # F(baseline) and F(molecule) are no parts of the difference: n/a, and the note says why
        assert list(shown.loc[["F(baseline)", "F(molecule)"], PERCENT_OF_DIFFERENCE]) == ["n/a", "n/a"]
        assert float(shown.loc["atoms", PERCENT_OF_DIFFERENCE]) == pytest.approx(
            accounting.set_index("part").loc["atoms", PERCENT_OF_DIFFERENCE], rel=1e-3)
        assert "F(baseline) and F(molecule) are not parts" in molecule_views.accounting_table_note(table)
    else:  # no percent of a difference the attributions explain little of: the column goes, accounting_note says why
        assert PERCENT_OF_DIFFERENCE not in table.columns
        assert molecule_views.accounting_table_note(table) is None
    assert shown["attribution"].dtype.kind == "f"  # a column without a missing value stays numbers
