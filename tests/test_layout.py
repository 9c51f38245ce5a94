"""The layout's rules, read from the source with `ast` (imports inside functions included):

- the layers import downwards only: ig_core <- families <- runs <- dashboard (app.py belongs to the dashboard);
- no module imports itself back through others (no cycle);
- nothing imports a private name (`_name`) from another package; bench and tests may import anything public;
- the sizes that keep files readable: no source file over 500 lines, no function over 80, no page over 200.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = ("ig_core", "families", "runs", "dashboard")
ENTRY_POINTS = {"app": "dashboard", "serve": "dashboard"}
CLIENTS = ("bench", "tests")  # may import anything public of any layer
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
MAX_PAGE_LINES = 200


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files(tops=LAYERS) -> dict[str, pathlib.Path]:
    files = {module_name(p): p for top in tops for p in (ROOT / top).rglob("*.py")}
    if tops == LAYERS:
        files.update({name: ROOT / f"{name}.py" for name in ENTRY_POINTS})
    return files


def package_of(module: str, path: pathlib.Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imports_of(module: str, path: pathlib.Path, known) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every import of a project module in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name in known]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_of(module, path).split(".")
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in known:
                    found.append((submodule, "", node.lineno))
                elif source in known:
                    found.append((source, alias.name, node.lineno))
    return found


def layer_of(module: str) -> str:
    top = module.split(".")[0]
    return ENTRY_POINTS.get(top, top)


def import_graph() -> dict[str, list[tuple[str, str, int]]]:
    files = project_files()
    return {module: imports_of(module, path, files) for module, path in files.items()}


def test_layers_import_downwards_only():
    wrong = []
    for module, imports in import_graph().items():
        rank = LAYERS.index(layer_of(module))
        wrong += [f"{module}:{line} imports {imported}" for imported, _, line in imports
                  if LAYERS.index(layer_of(imported)) > rank]
    assert not wrong, "\n".join(wrong)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as its modules in order, or None (depth-first search with colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                return stack[stack.index(successor):] + [successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    graph = {module: {imported for imported, _, _ in imports if imported != module}
             for module, imports in import_graph().items()}
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_no_private_names_imported_across_packages():
    files = project_files()
    clients = project_files(CLIENTS)
    wrong = []
    for module, path in {**files, **clients}.items():
        for imported, name, line in imports_of(module, path, files):
            private = name.startswith("_") or any(part.startswith("_") and part != "__init__"
                                                   for part in imported.split("."))
            same_package = package_of(module, path) == package_of(imported, files[imported])
            if private and not same_package:
                wrong.append(f"{module}:{line} imports {imported}.{name}")
    assert not wrong, "\n".join(wrong)


def test_import_reader_sees_imports_inside_functions(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("def late():\n    from families.contract import ModelFamily\n    import runs.store\n")
    assert imports_of("probe", path, {"families.contract", "runs.store"}) == [
        ("families.contract", "ModelFamily", 2), ("runs.store", "", 3)]


def function_lengths(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("top", LAYERS)
def test_files_and_functions_stay_small(top):
    wrong = []
    for module, path in project_files((top,)).items():
        lines = len(path.read_text().splitlines())
        limit = MAX_PAGE_LINES if module.startswith("dashboard.pages.") else MAX_FILE_LINES
        if lines > limit:
            wrong.append(f"{module}: {lines} lines (at most {limit})")
        wrong += [f"{module}:{line} {name}: {length} lines (at most {MAX_FUNCTION_LINES})"
                  for name, line, length in function_lengths(path) if length > MAX_FUNCTION_LINES]
    assert not wrong, "\n".join(wrong)
