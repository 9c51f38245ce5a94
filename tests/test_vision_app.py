"""The Vision page end to end: Streamlit's AppTest (no browser) and a real browser (Playwright + chromium)."""
from __future__ import annotations

import os
import pathlib
import re

import pytest
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
from unsafe_files import RunsCode, torch_bytes

from ig_core import ScanSettings

ROOT = pathlib.Path(__file__).resolve().parents[1]

DATA = pathlib.Path(os.environ["IG_DATA_DIR"]) if os.environ.get("IG_DATA_DIR") else None
MOBILENET = DATA / "models/mobilenet_v2_float/mobilenet_v2_imagenet_dequantized.pth" if DATA else None
SAMPLES = DATA / "imagenet_samples" / "images" if DATA else None
FAST = ScanSettings(rule="trapezoid", steps=4)  # the page's plumbing, not the accuracy (tests/test_vision.py)

needs_data = pytest.mark.skipif(DATA is None or not MOBILENET.is_file(),
                                reason="IG_DATA_DIR is not set (or lacks the MobileNetV2 weights): the Vision page "
                                       "tests need the shared data directory")


# --- AppTest --------------------------------------------------------------------------------------

@pytest.fixture
def page(monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IG_VISION_ARCH", "mobilenet_v2")
    monkeypatch.setenv("IG_VISION_WEIGHTS", str(MOBILENET))
    monkeypatch.delenv("IG_VISION_SAMPLES", raising=False)
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / "vision.py"), default_timeout=300)
    at.session_state["scan_settings"] = FAST
    yield at
    st.cache_data.clear()


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def explain(at):
    [button] = [b for b in at.button if b.label == "Explain"]
    button.click().run()


def assert_results(at, label_expected: str | None = None):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, texts(at.error)
    heads = texts(at.subheader)
    for n in range(1, 8):
        assert any(h.startswith(f"{n}. ") for h in heads), heads
    captions = [c for img in at.get("image") for c in img.captions]
    assert len(captions) >= 8, captions  # original, IG, gradient, grid, alpha picture, comparison, ablation
    for expected in ("Integrated gradients", "Gradient at the image (alpha = 1)",
                     "Interior gradients, alpha = 0.02 ... 1.0", "Interior gradient at alpha", "Ablated"):
        assert any(c.startswith(expected) for c in captions), (expected, captions)
    assert len(at.dataframe) >= 2  # top-5 and completeness
    assert any("add up" in w or "miss" in w for w in texts(at.warning) + texts(at.success))
    assert any("Baseline:" in m for m in texts(at.markdown))
    if label_expected:
        assert any(label_expected in c for c in texts(at.markdown) + [str(d.value) for d in at.dataframe])


@needs_data
def test_page_from_sample_to_results(page):
    at = page.run()
    assert not at.exception and not at.error, texts(at.error)
    at.selectbox(key="vision_sample").set_value("n01440764_tench.JPEG").run()
    assert any("ground truth" in m and "tench" in m for m in texts(at.markdown))
    explain(at)
    assert_results(at)
    assert any("trapezoid rule used 4 steps" in w for w in texts(at.warning))  # the fix is offered
    # view controls rerun only their fragment and keep the results
    at.radio(key="v1_polarity").set_value("positive").run()
    at.select_slider(key="v2_alpha").set_value(0.2).run()
    at.radio(key="v7_method").set_value("a rectangle").run()
    assert_results(at)


@needs_data
def test_a_contrast_is_explained_on_the_logits_and_adds_up(page):
    """"tench rather than goldfish": F is the difference of the two logits, the page says so, and the completeness
    it shows holds for that difference."""
    import numpy as np
    import torch

    from families.vision.family import FAMILY

    page.session_state["scan_settings"] = ScanSettings(rule="adaptive", steps=8, tolerance=0.05, max_steps=128)
    at = page.run()
    at.selectbox(key="vision_sample").set_value("n01440764_tench.JPEG").run()
    boxes = {box.label: box for box in at.selectbox}
    boxes["Explain the label"].set_value(0)
    boxes["Compare with a second label (same scan)"].set_value(-1)
    boxes["... rather than (a contrast)"].set_value(1)
    explain(at)
    assert not at.exception and not at.error, texts(at.error)
    captions = texts(at.caption)
    assert any("F: logit of tench minus logit of goldfish" in c for c in captions), captions
    # the colours' caption: F of the contrast, then of its two labels alone
    assert any("(F: logit of tench minus logit of goldfish; logit of tench; logit of goldfish)" in c for c in captions)
    [frame] = [d.value for d in at.dataframe if "sum of attributions" in d.value.columns]
    row = frame.iloc[0]
    assert row["target"] == "tench rather than goldfish (0)" and bool(row["within tolerance"])
    law = row["F(input) - F(baseline)"]
    assert abs(row["sum of attributions"] - law) <= 0.05 * abs(law)
    assert any("add up" in s for s in texts(at.success))
    assert at.query_params["targets"] == "0" and at.query_params["rather_than"] == "1"  # a link keeps the contrast
    # the misclassification view: the contrast beside its two labels alone, from the same scan
    assert "6. Two labels and their contrast side by side (Figure 6)" in texts(at.subheader)
    captions = [c for image in at.get("image") for c in image.captions]
    for label in ("tench rather than goldfish: logit difference", "tench (ground truth): softmax", "goldfish: softmax"):
        assert any(c.startswith(label) for c in captions), (label, [c for c in captions if "softmax" in c])
    # F(input) is the logit difference the network gives the photo (float32 logits: a few roundings of them)
    model = FAMILY.load(FAMILY.source_named("mobilenet_v2"), torch.device("cpu"))
    photo = FAMILY.parse(model, (SAMPLES / "n01440764_tench.JPEG").read_bytes())
    with torch.no_grad():
        logits = model.module(photo.seen.input)[0].double().numpy()
    # the scan ran the photo in a batch of path points, whose kernels may round otherwise through some 50 layers: 64
    # eps of the largest logit; a difference of probabilities (|.| <= 1) would be far off
    assert abs(row["F(input)"] - (logits[0] - logits[1])) <= 64 * np.finfo(np.float32).eps * np.abs(logits).max()


@needs_data
def test_page_from_upload_to_results(page):
    at = page.run()
    at.radio(key="vision_source").set_value("Upload").run()
    data = (SAMPLES / "n01530575_brambling.JPEG").read_bytes() if (SAMPLES / "n01530575_brambling.JPEG").is_file() \
        else sorted(SAMPLES.iterdir())[3].read_bytes()
    at.file_uploader(key="vision_upload").set_value(("photo.jpg", data, "image/jpeg")).run()
    assert not at.exception and not at.error, texts(at.error)
    explain(at)
    assert_results(at)


@needs_data
def test_bad_upload_shows_a_clear_error(page):
    at = page.run()
    at.radio(key="vision_source").set_value("Upload").run()
    at.file_uploader(key="vision_upload").set_value(("photo.jpg", b"not an image at all", "image/jpeg")).run()
    assert not at.exception
    assert any("cannot use this image" in e and "not a recognised image" in e for e in texts(at.error))
    at.file_uploader(key="vision_upload").set_value(("empty.png", b"", "image/png")).run()
    assert any("empty" in e for e in texts(at.error))


@needs_data
def test_missing_weights_are_shown_not_raised(page, monkeypatch, tmp_path):
    monkeypatch.setenv("IG_VISION_ARCH", "googlenet")
    monkeypatch.setenv("IG_VISION_WEIGHTS", str(tmp_path / "googlenet.pth"))
    at = page.run()
    assert not at.exception
    errors = texts(at.error)
    assert any("No model for googlenet" in e and "does not exist" in e and "IG_VISION_WEIGHTS" in e
               for e in errors), errors


def test_app_registers_the_vision_page():
    assert re.search(r'st\.Page\("dashboard/pages/vision\.py"', (ROOT / "app.py").read_text())


# --- real browser -------------------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path):
    require_chromium()
    with streamlit_server(tmp_path, IG_VISION_ARCH="mobilenet_v2", IG_VISION_WEIGHTS=str(MOBILENET)) as url:
        yield url


@needs_data
def test_browser_upload_shows_heat_maps_and_charts(server):
    from playwright.sync_api import expect

    photo = SAMPLES / "n01440764_tench.JPEG"
    with browser_page("vision") as page:
        page.goto(server)
        main = page.locator("[data-testid='stMain']")
        use_fast_settings(page)
        # the Vision page, through the navigation (a fresh URL would start a new session)
        open_page(page, "Vision")
        expect(main.get_by_text("Top 5 (softmax)")).to_be_visible()
        wait_idle(page)
        main.get_by_text("Upload", exact=True).click()
        wait_idle(page)
        page.locator("input[type='file']").set_input_files(str(photo))
        expect(main.get_by_text(f"{photo.name} as the network sees it")).to_be_visible()
        wait_idle(page)
        main.get_by_role("button", name="Explain", exact=True).click()
        expect(main.get_by_text("7. Ablation check (Figure 1)")).to_be_visible(timeout=240_000)
        # the map's caption (the Compare-methods picker also holds a tag of that name)
        expect(main.get_by_role("paragraph").filter(has_text=re.compile(r"^Integrated gradients$"))).to_be_visible()
        page.wait_for_load_state("networkidle")
        # heat maps: every st.image has loaded pixels
        images = main.locator("[data-testid='stImage'] img")
        assert images.count() >= 8
        for i in range(images.count()):
            images.nth(i).scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=images.nth(i).element_handle())
        # charts: saturation (2), layer distances (2), mean |gradient| (1), drawn by vega
        charts = main.locator("[data-testid='stVegaLiteChart']")
        expect(charts).to_have_count(3)
        for i in range(charts.count()):
            charts.nth(i).scroll_into_view_if_needed()
            expect(charts.nth(i).locator("canvas, svg").first).to_be_visible()
        assert main.locator("[data-testid='stException']").count() == 0
        assert main.locator("[data-testid='stAlertContentError']").count() == 0
        full_screenshot(page, "vision.png")
    assert (ARTIFACTS / "vision.png").stat().st_size > 50_000


# --- the model choice: configured files and uploads, never a path from the browser ---------------------

def server_paths(tmp_path) -> list[str]:
    import torch

    return [str(ROOT), str(DATA.resolve()), str(tmp_path), torch.hub.get_dir()]


def upload_weights(at, name: str, data: bytes):
    at.selectbox(key="vision_weights").set_value("upload a state_dict...").run()
    at.file_uploader(key="vision_weights_upload").set_value((name, data, "application/octet-stream")).run()
    return at


@needs_data
def test_weights_are_chosen_among_configured_files_never_typed(page, monkeypatch, tmp_path):
    (tmp_path / "mine.pth").write_bytes(b"not weights")
    monkeypatch.setenv("IG_MODELS_DIR", str(tmp_path))
    at = page.run()
    assert not at.exception and not at.text_input  # no path is ever typed
    weights = at.selectbox(key="vision_weights")
    known = "models/mobilenet_v2_float/mobilenet_v2_imagenet_dequantized.pth"  # the data folder's known file
    assert weights.options == ["automatic", "mine.pth", known, "upload a state_dict..."]
    assert any(c.value.startswith("Weights: $IG_VISION_WEIGHTS, sha256") for c in at.sidebar.caption)
    weights.set_value("mine.pth").run()
    errors = texts(at.error)
    assert any("No model for mobilenet_v2" in e and "mine.pth is not a PyTorch weights file" in e
               for e in errors), errors
    assert not any(path in e for e in errors for path in server_paths(tmp_path))


@needs_data
def test_weights_environment_is_read_at_every_run(page, monkeypatch, tmp_path):
    at = page.run()
    assert not at.error
    monkeypatch.setenv("IG_VISION_WEIGHTS", str(tmp_path / "gone.pth"))
    at.run()
    errors = texts(at.error)
    assert any("$IG_VISION_WEIGHTS does not exist" in e for e in errors), errors
    assert not any(str(tmp_path) in e for e in errors)


@needs_data
def test_uploaded_state_dict_loads_and_explains(page):
    at = upload_weights(page.run(), "my_mobilenet.pth", MOBILENET.read_bytes())
    assert not at.exception and not at.error, texts(at.error)
    assert any(c.value.startswith("Weights: my_mobilenet.pth, sha256") for c in at.sidebar.caption)
    at.selectbox(key="vision_sample").set_value("n01440764_tench.JPEG").run()
    explain(at)
    assert_results(at)


@needs_data
@pytest.mark.parametrize("data, message", [
    (lambda: torch_bytes({"features.0.0.weight": RunsCode()}),
     "holds Python objects or code that safe loading refuses"),
    (lambda: torch_bytes(__import__("torchvision").models.squeezenet1_1().state_dict()),
     "not a state_dict for mobilenet_v2"),
    (lambda: b"random garbage bytes", "not a PyTorch weights file"),
])
def test_bad_weight_uploads_give_clear_errors(page, tmp_path, data, message):
    at = upload_weights(page.run(), "upload.pth", data())
    assert not at.exception
    errors = texts(at.error)
    assert any("No model for mobilenet_v2" in e and "upload.pth" in e and message in e for e in errors), errors
    assert not any(path in e for e in errors for path in server_paths(tmp_path))


@needs_data
def test_one_file_by_two_routes_is_one_cached_model(page, monkeypatch):
    import streamlit as st

    from families.vision import torchvision_classifiers

    loads = []
    original = torchvision_classifiers.classifier_from_state_dict
    monkeypatch.setattr(torchvision_classifiers, "classifier_from_state_dict",
                        lambda *a, **k: loads.append(a[2]) or original(*a, **k))
    monkeypatch.delenv("IG_MODELS_DIR", raising=False)  # default: the data folder's models, with MobileNetV2
    st.cache_resource.clear()
    at = page.run()  # automatic: $IG_VISION_WEIGHTS
    at.selectbox(key="vision_weights").set_value("mobilenet_v2_float/mobilenet_v2_imagenet_dequantized.pth").run()
    upload_weights(at, "renamed.pth", MOBILENET.read_bytes())
    assert not at.exception and not at.error, texts(at.error)
    assert loads == ["$IG_VISION_WEIGHTS"]  # one load: the cache is keyed by the content's sha256


@needs_data
def test_all_black_photo_with_black_baseline_has_nothing_to_attribute(page):
    import io

    from PIL import Image

    at = page.run()
    at.radio(key="vision_source").set_value("Upload").run()
    black = io.BytesIO()
    Image.new("RGB", (224, 224)).save(black, format="PNG")
    at.file_uploader(key="vision_upload").set_value(("black.png", black.getvalue(), "image/png")).run()
    explain(at)  # the form's baseline is black by default
    assert not at.exception and not at.error, texts(at.error)
    assert any("nothing to attribute" in i for i in texts(at.info)), texts(at.info)
    assert not any("steps" in w or "budget" in w for w in texts(at.warning)), texts(at.warning)


# --- engineers' own models: exported programs (.pt2) and the operator's factories -------------------

def tiny_example():
    import vision_factory_example  # tests/: the tiny CNN, its factory and its exported program

    return vision_factory_example


def upload_program(at, name: str, data: bytes, class_names: str | None, size: int = 32):
    at.selectbox(key="vision_arch").set_value("upload an exported program (.pt2)...").run()
    at.number_input(key="vision_program_size").set_value(size)
    at.number_input(key="vision_program_resize").set_value(36)
    if class_names is not None:
        at.file_uploader(key="vision_classes_upload").set_value(("classes.txt", class_names.encode(), "text/plain"))
    at.file_uploader(key="vision_program_upload").set_value((name, data, "application/octet-stream")).run()
    return at


@needs_data
def test_uploaded_exported_program_with_class_names_explains(page):
    example = tiny_example()
    at = upload_program(page.run(), "tiny.pt2", example.export_bytes(), "\n".join(example.CLASSES))
    assert not at.exception and not at.error, texts(at.error)
    assert any(c.value.startswith("exported program, sha256") and "input 32x32 (resize 36" in c.value
               for c in at.sidebar.caption), texts(at.sidebar.caption)
    at.selectbox(key="vision_sample").set_value("n01440764_tench.JPEG").run()
    explain(at)
    assert_results(at)
    assert any(name in m for m in texts(at.markdown) + [str(d.value) for d in at.dataframe]
               for name in example.CLASSES)
    assert any("No layer was observed" in i for i in texts(at.info))  # a flat graph has no layers to hook
    assert not any("ground truth" in m for m in texts(at.markdown))  # the photos' labels are ImageNet's


@needs_data
@pytest.mark.parametrize("make, class_names, message", [
    (lambda ex: ex.export_bytes(), "a\nb\nc", "tiny.pt2 has 5 outputs but 3 class names were given"),
    (lambda ex: ex.export_bytes(size=16), None, "tiny.pt2 takes [N, 3, 16, 16] but the input size is 32 x 32"),
    (lambda ex: ex.export_bytes(dynamic_batch=False), None, "export it with a dynamic batch dimension"),
    (lambda ex: b"random garbage bytes", None, "tiny.pt2 is not an exported program"),
    (lambda ex: torch_bytes({"w": RunsCode()}), None, "tiny.pt2 is a zip archive but not an exported program"),
], ids=["class-count", "input-shape", "fixed-batch", "garbage", "pickle-renamed"])
def test_bad_program_uploads_give_clear_errors(page, tmp_path, make, class_names, message):
    at = upload_program(page.run(), "tiny.pt2", make(tiny_example()), class_names)
    assert not at.exception
    errors = texts(at.error)
    assert any("No model for the uploaded program" in e and message in e for e in errors), errors
    assert not any(path in e for e in errors for path in server_paths(tmp_path))


@pytest.fixture
def own_models(tmp_path, monkeypatch):
    """A models folder with tiny.pt2 and its sidecar, and the factory of tests/vision_factory_example.py."""
    example = tiny_example()
    (tmp_path / "tiny.pt2").write_bytes(example.export_bytes())
    (tmp_path / "tiny.json").write_text(__import__("json").dumps({"classes": example.CLASSES, "input_size": 32}))
    monkeypatch.setenv("IG_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("IG_VISION_FACTORY", "vision_factory_example:tiny_cnn")
    return example


@needs_data
def test_the_models_folder_program_and_the_factory_are_offered_and_explain(page, own_models):
    at = page.run()
    options = at.selectbox(key="vision_arch").options
    assert options[:3] == ["factory: vision_factory_example:tiny_cnn", "exported: tiny.pt2",
                           "upload an exported program (.pt2)..."], options[:5]
    assert at.selectbox(key="vision_arch").value == "mobilenet_v2"  # the default stays torchvision's
    at.selectbox(key="vision_arch").set_value("exported: tiny.pt2").run()
    assert not at.exception and not at.error, texts(at.error)
    assert any("input 32x32 (resize 37" in c.value for c in at.sidebar.caption), texts(at.sidebar.caption)
    at.selectbox(key="vision_arch").set_value("factory: vision_factory_example:tiny_cnn").run()
    at.selectbox(key="vision_sample").set_value("n01440764_tench.JPEG").run()
    explain(at)
    assert_results(at)
    assert any(c.value.startswith("factory vision_factory_example:tiny_cnn") for c in at.sidebar.caption)


def test_vision_evaluation_runs_on_a_factory_model(own_models, tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image
    from streamlit.testing.v1 import AppTest

    photos = tmp_path / "data" / "imagenet_samples"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(photos / name)
    monkeypatch.setenv("IG_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / "vision_evaluation.py"), default_timeout=300)
    at.session_state["scan_settings"] = FAST
    at.run()
    at.selectbox(key="vision_arch").set_value("factory: vision_factory_example:tiny_cnn").run()
    assert not at.exception and not at.error, texts(at.error)
    inputs = {n.label: n for n in at.number_input}
    inputs["Ablation steps"].set_value(2)
    inputs["Pixels per ablation step"].set_value(100)
    [button] = [b for b in at.button if b.label == "Run evaluation"]
    button.click().run()
    assert not at.exception and not at.error, texts(at.error)
    result = at.session_state["vision_eval_result"]
    assert sorted(result.table.file) == ["a.png", "b.png"]
    assert set(result.table.predicted_name) <= set(own_models.CLASSES)



def network_chosen_by_another_page():
    """The sidebar after another page chose its network (as the runs page does for a run's model)."""
    import streamlit as st

    from dashboard.sections.vision_model_choice import choose_vision_model, select_in_sidebar
    from families.vision.family import FAMILY

    if "chosen" not in st.session_state:
        st.session_state.chosen = True
        select_in_sidebar(FAMILY.source_named("factory: vision_factory_example:tiny_cnn"))
    choose_vision_model()


def test_a_network_another_page_chose_is_taken_without_streamlits_duplicate_default_warning(own_models,
                                                                                          monkeypatch):
    import logging

    from streamlit.elements.lib import policies
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("IG_VISION_ARCH", "mobilenet_v2")  # the default network is not the first one offered
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # Streamlit warns once per process
    warnings = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    policies._LOGGER.addHandler(handler)  # Streamlit's loggers do not propagate
    try:
        at = AppTest.from_function(network_chosen_by_another_page, default_timeout=120).run()
    finally:
        policies._LOGGER.removeHandler(handler)
    assert not at.exception and not at.error, texts(at.error)
    assert at.selectbox(key="vision_arch").value == "factory: vision_factory_example:tiny_cnn"
    assert not [w for w in warnings if "vision_arch" in w], warnings
    at.run()  # and without another page's choice, the sidebar keeps the user's
    assert at.selectbox(key="vision_arch").value == "factory: vision_factory_example:tiny_cnn"

@needs_data
def test_browser_upload_of_an_exported_program_explains(server, tmp_path):
    from playwright.sync_api import expect

    example = tiny_example()
    program, names = tmp_path / "tiny.pt2", tmp_path / "tiny_classes.txt"
    program.write_bytes(example.export_bytes())
    names.write_text("\n".join(example.CLASSES))
    with browser_page("vision_pt2") as page:
        page.goto(server)
        main, sidebar = page.locator("[data-testid='stMain']"), page.locator("[data-testid='stSidebar']")
        use_fast_settings(page)
        open_page(page, "Vision")
        wait_idle(page)
        sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Network").click()
        page.get_by_role("option", name="upload an exported program (.pt2)...", exact=True).click()
        wait_idle(page)
        sidebar.get_by_text("Preprocessing (defaults: ImageNet)").click()
        for label, value in (("Input size (pixels)", "32"), ("Resize the shorter side to", "36")):
            field = sidebar.get_by_label(label)
            field.fill(value)
            field.press("Tab")
            wait_idle(page)
        files = sidebar.locator("input[type='file']")
        files.nth(1).set_input_files(str(names))
        wait_idle(page)
        files.nth(0).set_input_files(str(program))
        expect(sidebar.get_by_text("exported program, sha256", exact=False)).to_be_visible(timeout=60_000)
        expect(main.get_by_text("Top 5 (softmax)")).to_be_visible()
        wait_idle(page)
        main.get_by_role("button", name="Explain", exact=True).click()
        expect(main.get_by_text("7. Ablation check (Figure 1)")).to_be_visible(timeout=240_000)
        # the map's caption (the Compare-methods picker also holds a tag of that name)
        expect(main.get_by_role("paragraph").filter(has_text=re.compile(r"^Integrated gradients$"))).to_be_visible()
        assert main.locator("[data-testid='stException']").count() == 0
        assert main.locator("[data-testid='stAlertContentError']").count() == 0
        full_screenshot(page, "vision_pt2.png")


@needs_data
def test_page_runs_other_methods_and_compares_them(page, own_models):
    page.session_state["scan_settings"] = FAST.with_method("gradient")
    at = page.run()
    at.selectbox(key="vision_arch").set_value("factory: vision_factory_example:tiny_cnn").run()
    at.selectbox(key="vision_sample").set_value("n01440764_tench.JPEG").run()
    explain(at)
    assert not at.exception and not at.error, texts(at.exception) + texts(at.error)
    heads = texts(at.subheader)
    assert "1. Gradient (saliency) beside the gradient at the image (Figure 4)" in heads
    assert not any(h[:2] in ("2.", "3.", "4.") for h in heads) and any(h.startswith("5. ") for h in heads), heads
    assert any(i.startswith("Gradient (saliency) defines no completeness") for i in texts(at.info))
    assert any("straight-line scan of integrated gradients" in c for c in texts(at.caption))
    at.multiselect(key="vision_compare_methods").set_value(["integrated_gradients", "gradient", "smoothgrad"])
    [compare] = [b for b in at.button if b.label == "Compare"]
    compare.click().run()
    assert not at.exception and not at.error, texts(at.exception) + texts(at.error)
    captions = [c for img in at.get("image") for c in img.captions]
    assert any(re.fullmatch(r"Integrated gradients; completeness: [0-9.]+% off F\(input\) - F\(baseline\)", c)
               for c in captions), captions
    assert {"Gradient (saliency); completeness: not defined", "SmoothGrad; completeness: not defined"} <= set(captions)
    agreement = next(d.value for d in at.dataframe if "Spearman (all features)" in d.value.columns)
    assert len(agreement) == 3 and (agreement.k == 32 * 32 // 10).all()  # a tenth of the 32 x 32 pixels
    # expected gradients: the other sample photos are the references, and the table shows its own law
    at.session_state["scan_settings"] = FAST.with_method("expected_gradients", samples=4)
    at.run()
    assert not at.exception and not at.error, texts(at.exception) + texts(at.error)
    assert any("mean F(reference)" in d.value.columns for d in at.dataframe)
    assert any("F(input) - mean F(reference)" in v for v in texts(at.success) + texts(at.warning))
    at.session_state["scan_settings"] = FAST.with_method("xrai")
    at.run()
    assert not at.exception and not at.error, texts(at.exception) + texts(at.error)
    assert any(i.startswith("XRAI (regions) defines no completeness: ") for i in texts(at.info))
    assert "1. XRAI (regions) beside the gradient at the image (Figure 4)" in texts(at.subheader)
