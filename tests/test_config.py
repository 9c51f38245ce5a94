"""families.config: every IG_* variable of the families, the runs and the dashboard is declared there, read through
it, and listed in the README's configuration table with its meaning and default."""
import ast
import pathlib
import re

from families import config

ROOT = pathlib.Path(__file__).resolve().parents[1]
DECLARING = ROOT / "families" / "config.py"
VARIABLE = re.compile(r"IG_[A-Z][A-Z0-9_]*")
ENGINE_VARIABLES = {"IG_BATCH_MEMORY_MB"}  # ig_core reads its own: it imports nothing above it


def variable_names_in(path: pathlib.Path) -> set[str]:
    """The IG_* names a module holds as whole string constants (what an environment lookup takes)."""
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and VARIABLE.fullmatch(node.value)}


def test_only_the_configuration_module_names_a_variable():
    named = {str(path.relative_to(ROOT)): variable_names_in(path)
             for top in ("families", "runs", "dashboard") for path in (ROOT / top).rglob("*.py")}
    assert {path: names for path, names in named.items() if names and path != "families/config.py"} == {}
    assert variable_names_in(DECLARING) == {variable.name for variable in config.VARIABLES}
    engine = set().union(*(variable_names_in(path) for path in (ROOT / "ig_core").rglob("*.py")))
    assert engine == ENGINE_VARIABLES


def test_the_readme_lists_every_variable_with_its_meaning_and_default():
    readme = (ROOT / "README.md").read_text().splitlines()
    for variable in config.VARIABLES:
        assert f"| `{variable.name}` | {variable.meaning} | {variable.default} |" in readme, variable.name
    assert any(line.startswith(f"| `{name}` |") for name in ENGINE_VARIABLES for line in readme)


def test_a_variable_is_read_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv(config.MODELS_DIR.name, f" {tmp_path} ")
    assert config.models_dir() == tmp_path.resolve()
    monkeypatch.delenv(config.MODELS_DIR.name)
    monkeypatch.setenv(config.DATA_DIR.name, str(tmp_path))
    assert config.models_dir() == tmp_path.resolve() / "models" and config.MODELS_DIR.path() is None
