"""dashboard.url_state: a page's choices written into its URL come back on a reload or from a copied link, read once
per session; a value that cannot be used is quoted (escaped) in a warning and the default stands. The Vision,
Molecules and Language pages through AppTest (a new AppTest is a new session, as a reload is), and a SMILES through a
real browser's reload."""
from __future__ import annotations

import pathlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from streamlit.testing.v1 import AppTest
from streamlit_browser import browser_page, require_chromium, streamlit_server, wait_idle

from dashboard.renderers.markdown import escape_markdown
from ig_core import ScanSettings

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAST = ScanSettings(rule="trapezoid", steps=4)  # the plumbing, not the accuracy
NITRO = "O=[N+]([O-])c1cc(C(F)(F)F)cc([N+](=O)[O-])c1Cl"  # bracket atoms right before branches


def texts(elements) -> list[str]:
    return [str(element.value) for element in elements]


def link_warnings(at) -> list[str]:
    """The warnings about the link (a fast scan's completeness may warn too)."""
    return [text for text in texts(at.warning) if text.startswith("The link's")]


def page(name: str, link: dict | None = None, settings: ScanSettings | None = None) -> AppTest:
    """A page as a browser opens it in a new session: its file run first, with the link's query parameters."""
    at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / f"{name}.py"), default_timeout=300)
    at.query_params.update(link or {})
    if settings is not None:
        at.session_state["scan_settings"] = settings
    return at.run()


# --- the helper ------------------------------------------------------------------------------------------------------

def linking_page():
    import streamlit as st

    from dashboard.url_state import among, link, linked, whole_number

    chosen = linked("demo", colour=among(["red", "green"], "a colour"), size=whole_number(1, 10))
    st.session_state.setdefault("read", []).append(chosen)
    if "colour" in chosen:
        st.session_state["colour"] = chosen["colour"]
    colour = st.radio("Colour", ["red", "green"], key="colour")
    link(colour=colour, size=chosen.get("size"))


def test_a_link_is_read_once_per_session_and_the_choices_are_written_back():
    at = AppTest.from_function(linking_page, default_timeout=30)
    at.query_params.update(colour="green", size="3")
    at.run()
    assert not at.exception and not at.warning
    assert at.radio(key="colour").value == "green" and at.session_state["read"] == [{"colour": "green", "size": 3}]
    at.radio(key="colour").set_value("red").run()  # the URL still says green: the user's choice stands
    assert at.radio(key="colour").value == "red" and at.session_state["read"][-1] == {}
    assert at.query_params == {"colour": "red"}  # None leaves a parameter out


def test_values_that_cannot_be_used_are_named_escaped_and_the_default_stands():
    at = AppTest.from_function(linking_page, default_timeout=30)
    at.query_params.update(colour="*blue* [x](y)", size="11")
    at.run()
    assert not at.exception and at.radio(key="colour").value == "red"
    warnings = texts(at.warning)
    assert any(escape_markdown("*blue* [x](y)") in w and "not a colour" in w for w in warnings), warnings
    assert any('"11"' in w and "not between 1 and 10" in w for w in warnings), warnings
    assert at.query_params == {"colour": "red"}


def settings_page():
    import streamlit as st

    from dashboard.url_state import settings_in_url

    st.session_state["shown"] = settings_in_url("demo")


def test_the_scan_settings_and_the_methods_own_options_last_in_the_url():
    at = AppTest.from_function(settings_page, default_timeout=30)
    at.session_state["scan_settings"] = ScanSettings(rule="trapezoid", steps=8, tolerance=0.02, max_steps=64) \
        .with_method("smoothgrad", samples=5, base="integrated_gradients")
    at.run()
    link = dict(at.query_params)
    assert link == {"method": "smoothgrad", "options": "base='integrated_gradients';samples=5", "rule": "trapezoid",
                    "steps": "8", "tolerance": "0.02", "budget": "64"}
    reloaded = AppTest.from_function(settings_page, default_timeout=30)
    reloaded.query_params.update(link)
    reloaded.run()
    assert not reloaded.warning
    assert reloaded.session_state["scan_settings"] == at.session_state["scan_settings"] == \
        reloaded.session_state["shown"]
    assert dict(reloaded.query_params) == link


@pytest.mark.parametrize("link, warned", [
    ({"method": "bogus*"}, 'method value "bogus\\*" is not used (not a method)'),
    ({"steps": "abc"}, "steps value \"abc\" is not used (not a whole number)"),
    ({"tolerance": "nan"}, "tolerance value \"nan\" is not used (not between 0.0001 and 0.5)"),
    ({"budget": "9999999"}, "not between 4 and 8192"),
    ({"method": "smoothgrad", "options": "colour=1"}, "The link's scan settings are not used"),
    ({"method": "smoothgrad", "options": "((("}, "not NAME=VALUE pairs"),
])
def test_bad_scan_settings_in_a_link_warn_and_the_settings_in_force_stand(link, warned):
    at = AppTest.from_function(settings_page, default_timeout=30)
    at.query_params.update(link)
    at.run()
    assert not at.exception
    assert any(warned in w for w in texts(at.warning)), texts(at.warning)
    shown = at.session_state["shown"]
    assert shown.method in ("integrated_gradients", "smoothgrad") and shown.steps == ScanSettings().steps
    assert at.query_params["rule"] == ScanSettings().rule and at.query_params["steps"] == str(ScanSettings().steps)


# --- the pages (AppTest) ---------------------------------------------------------------------------------------------

@pytest.fixture
def vision_data(shared_data, monkeypatch):
    import streamlit as st

    weights = shared_data / "models/mobilenet_v2_float/mobilenet_v2_imagenet_dequantized.pth"
    if not weights.is_file():
        pytest.skip("the shared data lacks the MobileNetV2 weights")
    monkeypatch.setenv("IG_VISION_ARCH", "mobilenet_v2")
    monkeypatch.setenv("IG_VISION_WEIGHTS", str(weights))
    monkeypatch.delenv("IG_VISION_SAMPLES", raising=False)
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def form_box(at, label: str):
    [box] = [box for box in at.selectbox if box.label == label]
    return box


def test_a_vision_reload_restores_the_photo_the_labels_and_the_settings(vision_data, single_thread):
    at = page("vision", settings=FAST)
    at.selectbox(key="vision_sample").select_index(2).run()
    photo = at.selectbox(key="vision_sample").value
    form_box(at, "Explain the label").set_value(7)  # not the top prediction
    form_box(at, "Compare with a second label (same scan)").set_value(-1)
    [button] = [b for b in at.button if b.label == "Explain"]
    button.click().run()
    assert not at.exception and not at.error, texts(at.exception) + texts(at.error)
    link = dict(at.query_params)
    assert link["photo"] == photo and link["targets"] == "7" and link["baseline"] == "black"
    assert (link["rule"], link["steps"], link["method"]) == ("trapezoid", "4", "integrated_gradients")

    reloaded = page("vision", link)  # no settings in the session: they come from the link
    assert not reloaded.exception and not reloaded.error and not link_warnings(reloaded)
    assert reloaded.session_state["scan_settings"] == FAST
    assert reloaded.selectbox(key="vision_sample").value == photo
    assert form_box(reloaded, "Explain the label").value == 7
    assert form_box(reloaded, "Compare with a second label (same scan)").value == -1
    assert any(h.startswith("1. ") for h in texts(reloaded.subheader))  # explained at once, as before the reload
    assert dict(reloaded.query_params) == link


def test_a_vision_link_with_bad_values_warns_and_shows_the_defaults(vision_data, single_thread):
    at = page("vision", {"photo": "nope_*x*.jpg", "targets": "5,5000", "layer": "[x](y)", "steps": "many"})
    assert not at.exception
    warnings = texts(at.warning)
    for quoted in ("nope\\_\\*x\\*.jpg", '"5,5000"', "\\[x\\](y)", '"many"'):
        assert any(quoted in w for w in warnings), (quoted, warnings)
    assert at.selectbox(key="vision_sample").index == 0
    assert not any(h.startswith("1. ") for h in texts(at.subheader))  # no request: nothing explained
    assert at.query_params["steps"] == str(ScanSettings().steps) and "targets" not in at.query_params


def test_a_molecules_reload_restores_the_smiles_and_the_task(shared_data, single_thread):
    at = page("molecules", settings=FAST)
    at.text_input(key="mol_smiles").input(NITRO)
    at.button(key="FormSubmitter:mol_smiles_form-Explain").click().run()
    [task] = [box for box in at.selectbox if box.key and box.key.startswith("mol_task:")]
    task.set_value("NR-AhR").run()
    assert not at.exception and not at.error, texts(at.exception) + texts(at.error)
    link = dict(at.query_params)
    assert link["smiles"] == NITRO and link["task"] == "NR-AhR" and link["steps"] == "4"

    reloaded = page("molecules", link)
    assert not reloaded.exception and not reloaded.error and not link_warnings(reloaded), link_warnings(reloaded)
    assert reloaded.text_input(key="mol_smiles").value == NITRO
    [task] = [box for box in reloaded.selectbox if box.key and box.key.startswith("mol_task:")]
    assert task.value == "NR-AhR" and reloaded.session_state["scan_settings"] == FAST
    assert reloaded.session_state["mol_input"]["molecules"] == [(NITRO, NITRO, [])]
    assert dict(reloaded.query_params) == link


def test_a_molecules_link_with_a_bad_smiles_or_task_warns_and_shows_the_example(shared_data, single_thread):
    at = page("molecules", {"smiles": "[N+](=O", "task": "NR-*X*"}, settings=FAST)
    assert not at.exception
    warnings = texts(at.warning)
    assert any("\\[N+\\](=O" in w and "is not a valid SMILES string" in w for w in warnings), warnings
    assert any("NR-\\*X\\*" in w and "not one of the model's tasks" in w for w in warnings), warnings
    assert at.text_input(key="mol_smiles").value == "CC(=O)Oc1ccccc1C(=O)O"
    assert at.query_params["smiles"] == "CC(=O)Oc1ccccc1C(=O)O"


def test_a_language_reload_restores_the_text_and_the_words(single_thread):
    at = page("language", settings=FAST)
    at.text_area(key="lang_text").set_value("the shareholders claimed more")
    at.selectbox(key="lang_target").set_value("than")
    at.selectbox(key="lang_second").set_value("of")
    at.selectbox(key="lang_rather_than").set_value("to")
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and not at.error, texts(at.exception) + texts(at.error)
    link = dict(at.query_params)
    assert (link["text"], link["target"], link["second"], link["rather_than"]) == (
        "the shareholders claimed more", "than", "of", "to")

    reloaded = page("language", link)
    assert not reloaded.exception and not reloaded.error and not link_warnings(reloaded), link_warnings(reloaded)
    assert reloaded.text_area(key="lang_text").value == "the shareholders claimed more"
    assert tuple(reloaded.selectbox(key=key).value for key in ("lang_target", "lang_second", "lang_rather_than")) == (
        "than", "of", "to")
    assert any(h.startswith("1. ") for h in texts(reloaded.subheader))  # explained at once
    assert reloaded.session_state["scan_settings"] == FAST and dict(reloaded.query_params) == link


def test_a_language_link_with_a_word_the_model_lacks_warns_and_explains_the_top_word(single_thread):
    at = page("language", {"text": "the shareholders claimed more", "target": "zzz*q*"}, settings=FAST)
    assert not at.exception and not at.error
    assert any("zzz\\*q\\*" in w and "not a word of the model's vocabulary" in w for w in texts(at.warning))
    assert at.selectbox(key="lang_target").value == "(most probable next word)"
    assert any(h.startswith("1. ") for h in texts(at.subheader))
    assert "target" not in at.query_params


# --- a real browser --------------------------------------------------------------------------------------------------

def test_browser_reload_keeps_a_smiles_with_bracket_atoms_and_branches_exactly(tmp_path, shared_data):
    require_chromium()
    from playwright.sync_api import expect

    link = urlencode({"smiles": NITRO, "task": "NR-AhR", "rule": "trapezoid", "steps": "4"})
    with (streamlit_server(tmp_path, IG_DATA_DIR=str(shared_data)) as url,
          browser_page("url-state-smiles") as browser):
        browser.goto(f"{url}/molecules?{link}")
        main = browser.locator("[data-testid='stMain']")
        box = main.get_by_role("textbox", name="SMILES", exact=True)
        for opened in ("link", "reload"):
            expect(box).to_have_value(NITRO)
            expect(main.get_by_role("heading").filter(has_text=f"{NITRO}: NR-AhR")).to_be_visible()
            wait_idle(browser)
            query = parse_qs(urlsplit(browser.url).query)
            assert query["smiles"] == [NITRO] and query["task"] == ["NR-AhR"], (opened, query)
            assert main.locator("[data-testid='stException']").count() == 0
            assert main.locator("[data-testid='stAlertContentWarning']").filter(has_text="link").count() == 0
            browser.reload()
