"""The app starts, the home page shows the device and the shared settings; ig_core stays UI-free."""
import ast
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def test_home_page_runs_and_applies_settings():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("Device" in info.value for info in at.info)
    at.selectbox[0].set_value("gauss-legendre")
    at.number_input[0].set_value(32)
    at.button[0].click().run()
    assert not at.exception
    settings = at.session_state["scan_settings"]
    assert settings.rule == "gauss-legendre" and settings.steps == 32


def test_ig_core_imports_neither_streamlit_nor_models():
    for path in (ROOT / "ig_core").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.split(".")[0] in {"streamlit", "models", "views", "app_pages"}, (path, name)


def test_readme_example_runs():
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 12
    namespace: dict = {}
    exec(compile(code, "README example", "exec"), namespace)
    assert namespace["result"].max_relative_delta < 0.01
