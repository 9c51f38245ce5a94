"""User text on the Molecules pages: SMILES, SMARTS and run names are shown as typed (AppTest sees the Markdown
source, so the rendering is checked in chromium), and a molecule opened from another page is the one the SMILES box
holds."""
from __future__ import annotations

import pathlib
import re

import pytest
import torch
from rdkit import Chem
from streamlit_browser import browser_page, open_page, require_chromium, streamlit_server, use_fast_settings, wait_idle

from families.molecules import Featurizer
from families.molecules import run_rows as molecule_runs
from ig_core import ScanSettings
from runs.runner import main as run_dataset

ROOT = pathlib.Path(__file__).resolve().parents[1]
NITRO = "O=[N+]([O-])c1cc(C(F)(F)F)cc([N+](=O)[O-])c1Cl"  # bracket atoms right before branches: "[N+](" reads as a link
SALT = "[Na+].O=C([O-])[C@@H](N)Cc1ccccc1"  # a stereo centre and a fragment warning that quotes SMILES
NITRO_SMARTS = "[N+](=O)[O-]"
# folder names Markdown would read as emphasis, an entity and an emoji
RUNS = ("nitro_*w1n2*", "nitro_x :o: w2n2 &amp; *final*")  # in this order by name
TASK = "NR-AR"


def drawn(smiles: str) -> str:
    """The SMILES the drawing's caption shows: RDKit's, of the largest fragment."""
    return Featurizer().from_smiles(smiles).smiles


# --- the SMILES box follows the molecule another page opened (AppTest) -----------------------------------------

def shown_atoms(at) -> int:
    return len(next(d.value for d in at.dataframe if list(d.value.columns[:2]) == ["atom", "element"]))


def task_box(at):
    [box] = [s for s in at.selectbox if s.key and s.key.startswith("mol_task:")]
    return box


@pytest.mark.parametrize("page, opened", [
    ("molecules_browse", {"kind": "Tox21", "molecules": [("Tox21 row 7", NITRO, [])]}),  # its Open button
    ("molecules_runs", {"kind": "run nitro", "molecules": [("nitro: row 0", NITRO, [])], "model": "shipped: w1n2"}),
])
def test_an_opened_molecule_fills_the_smiles_box_and_explain_keeps_it(shared_data, page, opened):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = ScanSettings(rule="trapezoid", steps=4)
    at.run()
    at.switch_page("dashboard/pages/molecules.py").run()
    assert at.text_input[0].value == "CC(=O)Oc1ccccc1C(=O)O"  # the example, before another page opens a molecule
    at.switch_page(f"dashboard/pages/{page}.py").run()
    # that page's handoff (dashboard/sections/molecules_shared.py's store_input), then its st.switch_page
    at.session_state["mol_input"] = {**opened, "skipped": [], "truncated": 0, "error": None}
    at.session_state["mol_open_task"] = "NR-AhR"
    at.switch_page("dashboard/pages/molecules.py").run()
    assert not at.exception, [e.value for e in at.exception]
    model = at.sidebar.selectbox(key="molecules_model").value
    assert shown_atoms(at) == Chem.MolFromSmiles(NITRO).GetNumAtoms() and task_box(at).value == "NR-AhR"
    assert at.text_input[0].value == NITRO
    at.button(key="FormSubmitter:mol_smiles_form-Explain").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert at.session_state["mol_input"]["molecules"] == [(NITRO, NITRO, [])]
    assert shown_atoms(at) == Chem.MolFromSmiles(NITRO).GetNumAtoms()  # the nitro compound, not aspirin
    assert task_box(at).value == "NR-AhR" and at.sidebar.selectbox(key="molecules_model").value == model
    assert at.text_input[0].value == NITRO
    at.text_input[0].input("c1ccccc1O")  # and the next molecule typed is the next one explained
    at.button(key="FormSubmitter:mol_smiles_form-Explain").click().run()
    assert shown_atoms(at) == 7 and at.text_input[0].value == "c1ccccc1O"


# --- what chromium shows ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs_folder(shared_data, tmp_path_factory):
    """Two runs of three molecules (all active on NR-AR), by W1N2 and W2N2."""
    folder = tmp_path_factory.mktemp("runs")
    table = folder / "molecules.csv"
    table.write_text(f"smiles,{TASK}\n{NITRO},1\n{drawn(SALT)},1\nCC(=O)Oc1ccccc1C(=O)O,1\n")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores
    try:
        for run in RUNS:
            model = re.search(r"w\dn2", run).group()
            assert run_dataset(["--family", "molecules", "--input", str(table), "--model", model, "--targets",
                                "actives", "--rule", "trapezoid", "--steps", "4", "--quiet",
                                "--out", str(folder / run)]) == 0
    finally:
        torch.set_num_threads(before)
    table.unlink()
    return folder


@pytest.fixture
def server(runs_folder, shared_data, tmp_path):
    require_chromium()
    with streamlit_server(tmp_path, IG_RUNS_DIR=str(runs_folder), IG_DATA_DIR=str(shared_data)) as url:
        yield url


def texts(main, test_id: str) -> list[str]:
    wait_idle(main.page)
    return [text.strip() for text in main.locator(f"[data-testid='{test_id}']").all_inner_texts()]


def explain(main, smiles: str) -> None:
    from playwright.sync_api import expect

    box = main.get_by_role("textbox", name="SMILES", exact=True)
    box.fill(smiles)
    box.press("Tab")
    main.get_by_role("button", name="Explain", exact=True).first.click()
    expect(main.locator("[data-testid='stImage']").get_by_text(drawn(smiles), exact=True)).to_be_visible()


def choose(page, label: str, option) -> None:
    page.locator("[data-testid='stSelectbox']").filter(has_text=label).click()
    page.get_by_role("option", name=option).click()
    wait_idle(page)


def smarts_filter(main, smarts: str) -> None:
    box = main.get_by_role("textbox", name="SMARTS filter")
    box.fill(smarts)
    main.get_by_role("button", name="Apply").click()
    wait_idle(main.page)


def check_molecules_page(page, main) -> None:
    """Typed SMILES in the heading, the drawing's caption, the fragment warning and the SMILES box."""
    from playwright.sync_api import expect

    open_page(page, "Molecules")
    for smiles in (NITRO, SALT):
        explain(main, smiles)
        [heading] = [h for h in texts(main, "stHeading") if h.startswith(smiles)]
        assert re.fullmatch(re.escape(smiles) + r": NR-[\w-]+, log-odds\(active\) = -?[\d.]+ \(P\(active\) = [\d.]+\)",
                            heading), heading
        assert drawn(smiles) in texts(main, "stImageCaption")
        expect(main.get_by_role("textbox", name="SMILES", exact=True)).to_have_value(smiles)
    assert Featurizer().from_smiles(SALT).warnings[0] in texts(main, "stAlertContentWarning")


def check_debug_page(page, main) -> None:
    """The W1N2 vs W2N2 page starts from the molecule last explained; each model's column warns about the salt."""
    from playwright.sync_api import expect

    open_page(page, "Molecules: W1N2 vs W2N2")
    expect(main.get_by_role("textbox", name="SMILES", exact=True)).to_have_value(SALT)
    main.get_by_role("button", name="Compare").click()
    expect(main.locator("[data-testid='stImage']")).to_have_count(2)
    assert texts(main, "stAlertContentWarning").count(Featurizer().from_smiles(SALT).warnings[0]) == 2


def check_runs_page(page, main) -> None:
    """The SMARTS in the heading, in the no-match note, in the invalid-SMARTS message and in the filter's help; a
    clicked row opens with its SMILES in the box."""
    from playwright.sync_api import expect

    open_page(page, "Molecules: a run's actives")
    choose(page, "Run", re.compile(f"^{re.escape(RUNS[1])} "))
    smarts_filter(main, NITRO_SMARTS)
    assert f"1 of 3 rows of {TASK} containing {NITRO_SMARTS}" in texts(main, "stHeading")
    smarts_filter(main, "[N+](=O)[O-]C")
    assert f"No molecule of the 3 rows of {TASK} contains [N+](=O)[O-]C." in texts(main, "stAlertContentInfo")
    smarts_filter(main, "[N+](=O")
    with pytest.raises(ValueError) as invalid:
        molecule_runs.smarts_pattern("[N+](=O")
    assert str(invalid.value) in texts(main, "stAlertContentError")
    main.locator("[data-testid='stTextInput']").filter(has_text="SMARTS filter") \
        .locator("[data-testid='stTooltipIcon']").hover()
    expect(page.locator("[data-testid='stTooltipContent']")).to_contain_text(f"or {NITRO_SMARTS}. Empty")
    smarts_filter(main, NITRO_SMARTS)
    grid = main.locator("[data-testid='stDataFrame']").first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first row's selection box
    expect(main.get_by_role("textbox", name="SMILES", exact=True)).to_have_value(NITRO)
    headings = texts(main, "stHeading")
    assert any(h.startswith(f"{RUNS[1]}: row 0: {TASK}, log-odds(active) = ") for h in headings), headings
    assert NITRO in texts(main, "stImageCaption")


def check_compare_page(page, main) -> None:
    """Run names (folder names) in the summary and the captions."""
    from playwright.sync_api import expect

    open_page(page, "Compare two runs")
    expect(main.locator("[data-testid='stImage']")).to_have_count(2)
    shown = texts(main, "stMarkdownContainer")
    assert any(f"in A ({RUNS[0]}), 0 in B ({RUNS[1]})" in text for text in shown), shown
    for side, run in zip("AB", RUNS):
        assert any(text.startswith(f"{side}: {run}: ") for text in shown), shown


def test_browser_shows_smiles_smarts_and_run_names_as_typed(server):
    with browser_page("molecule-text") as page:
        page.goto(server)
        main = page.locator("[data-testid='stMain']")
        use_fast_settings(page)
        check_molecules_page(page, main)
        check_debug_page(page, main)
        check_runs_page(page, main)
        check_compare_page(page, main)
        assert main.locator("[data-testid='stException']").count() == 0
