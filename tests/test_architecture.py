"""The code's shape, checked from its source (every import, module-level or inside a function):

- dependencies point one way: portal -> jobs -> catalog -> catalog/feast_gateway, the only package that
  imports `feast`;
- no import cycle among the modules of catalog/, jobs/ or portal/;
- no module imports another module's `_private` name (inside the gateway package its modules share helpers).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("catalog", "jobs", "portal")


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            out[name] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every absolute import in the file, at any depth."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def _targets(module: str, names: list[str]) -> set[str]:
    """The portal modules an import statement depends on (`from package import submodule`: the submodule)."""
    submodules = {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}
    if module in MODULES and len(submodules) < len(names or [module]):
        submodules.add(module)
    return submodules


def test_dependencies_point_one_way_and_only_the_gateway_imports_feast() -> None:
    allowed = {"portal": set(PACKAGES), "jobs": {"jobs", "catalog"}, "catalog": {"catalog"}}
    problems = []
    for name, path in MODULES.items():
        layer = name.split(".")[0]
        for module, _ in _imports(path):
            top = module.split(".")[0]
            if top in PACKAGES and top not in allowed[layer]:
                problems.append(f"{name} imports {module}")
            if top == "feast" and not name.startswith("catalog.feast_gateway"):
                problems.append(f"{name} imports feast")
    assert not problems, problems


def test_no_import_cycles() -> None:
    graph = {
        name: {t for module, names in _imports(path) for t in _targets(module, names) if t != name}
        for name, path in MODULES.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_no_module_imports_another_modules_private_names() -> None:
    problems = []
    for name, path in MODULES.items():
        for module, names in _imports(path):
            if module.split(".")[0] not in PACKAGES:
                continue
            inside_gateway = name.startswith("catalog.feast_gateway") and module.startswith("catalog.feast_gateway")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and not inside_gateway:
                problems.append(f"{name}: from {module} import {', '.join(private)}")
    assert not problems, problems


def test_the_gateway_exports_public_names_only() -> None:
    from catalog import feast_gateway

    assert not [name for name in feast_gateway.__all__ if name.startswith("_")]
    assert all(hasattr(feast_gateway, name) for name in feast_gateway.__all__)
