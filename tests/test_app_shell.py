"""The app starts, the home page shows the device and the shared settings; ig_core stays UI-free."""
import ast
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def test_home_page_runs_and_applies_settings():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("Device" in info.value for info in at.info)
    at.selectbox(key="settings_rule").set_value("gauss-legendre")
    at.number_input(key="settings_steps").set_value(32).run()
    assert not at.exception
    settings = at.session_state["scan_settings"]
    assert settings.rule == "gauss-legendre" and settings.steps == 32


def test_a_method_picked_on_home_takes_effect_without_another_button():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.button  # nothing to press: a pick that looks chosen is in force
    at.radio(key="settings_method").set_value("gradient").run()
    assert not at.exception and at.session_state["scan_settings"].method == "gradient"
    assert any("method: Gradient (saliency)" in caption.value for caption in at.caption)
    at.checkbox(key="option_gradient_absolute").check().run()  # the method's options too
    assert at.session_state["scan_settings"].method_options == (("absolute", True),)


def test_home_says_where_dataset_runs_come_from():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert "Dataset runs" in [header.value for header in at.subheader]
    [command] = at.code
    assert command.value.startswith("python -m runs --family ") and "--out results/" in command.value
    text = " ".join(markdown.value for markdown in at.markdown)
    assert "IG_RUNS_DIR" in text and "`results/`" in text and "python -m runs --help" in text
    for page in ("Vision: a run's misclassifications", "Molecules: a run's actives", "Language: a corpus run",
                 "Compare two runs"):
        assert f"**{page}**" in text, page


def imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add((node.module or "").split(".")[0])
    return names


def test_the_layers_below_the_pages_import_no_streamlit():
    """ig_core knows no domain and no UI; the families and the dataset runs know no UI; the renderers are pure."""
    for path in (ROOT / "ig_core").rglob("*.py"):
        assert not imported_packages(path) & {"streamlit", "families", "runs", "dashboard"}, path
    for path in [*(ROOT / "families").rglob("*.py"), *(ROOT / "runs").rglob("*.py")]:
        assert not imported_packages(path) & {"streamlit", "dashboard"}, path
    renderers = [p for p in (ROOT / "dashboard" / "renderers").glob("*.py") if p.name != "__init__.py"]
    assert len(renderers) >= 6
    for path in renderers:
        assert not imported_packages(path) & {"streamlit"}, path


def test_readme_example_runs():
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 12
    namespace: dict = {}
    exec(compile(code, "README example", "exec"), namespace)
    assert namespace["result"].max_relative_delta < 0.01


OPENED: list[str] = []  # paths the process opened or listed while a page ran with a path typed in


def _audit(event: str, args: tuple) -> None:
    if event in {"open", "os.listdir", "os.scandir"} and args and isinstance(args[0], (str, bytes, Path)):
        OPENED.append(str(args[0]))


def test_no_text_input_on_any_page_reads_a_server_path(tmp_path, shared_data, monkeypatch):
    """Every text input and text area of every page, given the path of a real file and folder on the server,
    neither opens nor lists it."""
    import re

    import torch

    secret_file, secret_folder = tmp_path / "secret.pth", tmp_path / "secret_folder"
    torch.save({"weight": torch.zeros(1)}, secret_file)
    secret_folder.mkdir()
    (secret_folder / "photo.png").write_bytes(b"not a photo")
    monkeypatch.setenv("IG_DATA_DIR", str(shared_data))
    monkeypatch.setenv("IG_RUNS_DIR", str(tmp_path / "runs"))  # no runs: the run pages say how to make one
    sys.addaudithook(_audit)  # cannot be removed: it only appends to OPENED
    pages = re.findall(r'st\.Page\("([^"]+)"', (ROOT / "app.py").read_text())
    assert len(pages) == 13
    typed = 0
    for page in pages:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
        at.switch_page(page).run()
        assert not at.exception, page
        for widgets in (at.text_input, at.text_area):
            for i in range(len(widgets)):
                for secret in (secret_file, secret_folder, "../" * 8 + "etc/passwd"):
                    OPENED.clear()
                    widgets[i].set_value(str(secret)).run()
                    typed += 1
                    assert not any("secret" in path or path.endswith("passwd") for path in OPENED), (page, OPENED)
                    assert not at.exception, page
    assert typed >= 2 * 3  # the Molecules SMILES box and the Language text, at least
