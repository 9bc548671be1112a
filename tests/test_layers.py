"""The layer rule of the design: no module imports upward; the simulator speaks only the protocol."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pxkit

PACKAGE = Path(pxkit.__file__).parent
LAYERS = {
    "enums": 0, "errors": 0, "loops": 0,
    "models": 1,
    "codec": 2, "config": 2, "indicators": 2,
    "client": 3, "events": 3, "stats": 3,
    "instrument": 4,
    "portfolio": 5, "risk": 5, "router": 5, "sim": 5,
    "suite": 6,
    "lab": 7,
    "cli": 8, "demo": 8, "__init__": 8,
}
SIM_MAY_IMPORT = {"enums", "errors", "models", "codec", "sim"}


def _top(module: Path) -> str:
    """The first component under pxkit/: the layer a file belongs to (`sim/app.py` -> `sim`)."""
    return module.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(module: Path) -> set[str]:
    """Top-level pxkit components a file imports (absolute or relative)."""
    tree = ast.parse(module.read_text())
    depth = len(module.relative_to(PACKAGE).parts) - 1  # package depth of the file
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                up = node.level - 1
                base = list(module.relative_to(PACKAGE).parts[:depth - up]) if up <= depth else None
                if base is None:
                    continue
                parts = base + (node.module.split(".") if node.module else [])
                if parts:
                    found.add(parts[0])
                else:
                    found.update(alias.name for alias in node.names)
            elif node.module and node.module.split(".")[0] == "pxkit":
                parts = node.module.split(".")
                found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "pxkit" and len(parts) > 1:
                    found.add(parts[1])
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_upward(module: Path) -> None:
    own = _top(module)
    imported = _imports(module) - {own}
    if own == "sim":
        assert imported <= SIM_MAY_IMPORT, f"sim may only import {SIM_MAY_IMPORT}, not {imported - SIM_MAY_IMPORT}"
        return
    assert own in LAYERS, f"{own} has no layer: add it to LAYERS in this test"
    for name in imported:
        layer = LAYERS.get(name)
        assert layer is not None, f"{module} imports unknown component {name}"
        assert layer < LAYERS[own] or own in ("cli", "__init__"), f"{own} (layer {LAYERS[own]}) imports {name}"


def test_the_checker_sees_relative_imports() -> None:
    assert _imports(PACKAGE / "sim" / "rest.py") >= {"codec", "models", "enums", "sim"}
    assert _imports(PACKAGE / "codec.py") >= {"models", "enums", "errors"}


def test_public_names_are_sorted_and_importable() -> None:
    assert pxkit.__all__ == sorted(pxkit.__all__)
    for name in pxkit.__all__:
        assert getattr(pxkit, name) is not None


def test_public_names_cover_every_enum_error_and_model() -> None:
    import inspect

    from pxkit import enums, errors, models

    for module in (enums, errors, models):
        public = {name for name, obj in vars(module).items()
                  if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_")}
        assert public <= set(pxkit.__all__), f"missing from pxkit.__all__: {public - set(pxkit.__all__)}"


def _sibling_imports(module: Path) -> set[str]:
    """Modules of the file's own package that it imports (`from .oco import x`, `from pxkit.instrument import oco`)."""
    package = module.relative_to(PACKAGE).parts[:-1]
    dotted = ("pxkit", *package)
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(dotted):
                    continue
                base = dotted[:len(dotted) - node.level + 1]
                target = (*base, *(node.module.split(".") if node.module else []))
            else:
                target = tuple((node.module or "").split("."))
            names = [(*target, alias.name) for alias in node.names] if target == dotted else [target]
        elif isinstance(node, ast.Import):
            names = [tuple(alias.name.split(".")) for alias in node.names]
        else:
            continue
        for name in names:
            if len(name) > len(dotted) and name[:len(dotted)] == dotted:
                sibling = PACKAGE.joinpath(*package, f"{name[len(dotted)]}.py")
                if sibling.is_file() and sibling != module:
                    found.add(sibling.stem)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, as the modules along it, or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name):], name]
        if name in done:
            return None
        for imported in sorted(graph.get(name, ())):
            found = visit(imported, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    return next((c for c in (visit(name, []) for name in sorted(graph)) if c), None)


PACKAGES = sorted({p.parent for p in MODULES})


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_import_cycle_within_a_package(package: Path) -> None:
    graph = {module.stem: _sibling_imports(module) for module in package.glob("*.py")}
    cycle = _cycle(graph)
    assert cycle is None, f"import cycle in {package.name}: {' -> '.join(cycle or [])}"


def test_the_cycle_check_sees_a_cycle() -> None:
    instrument = PACKAGE / "instrument"
    assert {"brackets", "oco"} <= _sibling_imports(instrument / "orders.py")
    assert "brackets" in _sibling_imports(instrument / "oco.py")
    assert _cycle({"orders": {"oco", "brackets"}, "oco": {"brackets", "orders"}, "brackets": set()}) == [
        "oco", "orders", "oco"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
