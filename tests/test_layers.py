"""The layer rule of the design: no module imports upward; the simulator speaks only the protocol; the public
names are what users call and what they get back."""

from __future__ import annotations

import ast
import inspect
from enum import IntEnum
from pathlib import Path

import pytest

import pxkit
from pxkit import enums, errors, models
from pxkit.events import PAYLOADS

PACKAGE = Path(pxkit.__file__).parent
# Each component may import only components of a lower layer. The suite is the composition root: it wires every
# layer below it and imports the simulator (layer 7) inside the function that starts it, never at module level.
# `__init__` re-exports the public names from below; `demo` drives a suite; `cli` runs the demo or the simulator
# and reads `__version__` from `__init__`; `__main__` (`python -m pxkit`) runs the cli. `research` (recorder,
# backtests) builds on the suite, and `lab`, the Jupyter layer, on both. One upward import is allowed: the suite's
# `record()` loads the recorder inside the method (DEFERRED_UPWARD), so `import pxkit.suite` never loads research.
LAYERS = {
    "enums": 0, "errors": 0, "loops": 0,
    "times": 1, "html": 1, "hours": 1,
    "models": 2,
    "messages": 3, "payloads": 3,
    "codec": 4, "config": 4, "indicators": 4,
    "client": 5, "events": 5, "stats": 5,
    "instrument": 6,
    "portfolio": 7, "risk": 7, "router": 7, "sim": 7,
    "suite": 8,
    "research": 9,
    "lab": 10,
    "__init__": 11, "demo": 11,
    "cli": 12,
    "__main__": 13,
}
DEFERRED_UPWARD = {"suite": {"research"}}  # imported inside a function only, never at module level
SIM_MAY_IMPORT = {"enums", "errors", "models", "codec", "times", "hours", "sim"}


def _top(module: Path) -> str:
    """The first component under pxkit/: the layer a file belongs to (`sim/app.py` -> `sim`)."""
    return module.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _is_component(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def _imports(module: Path, nodes: list[ast.AST] | None = None) -> set[str]:
    """Top-level pxkit components a file imports (absolute or relative), in all of it or in the given nodes."""
    nodes = list(ast.walk(ast.parse(module.read_text()))) if nodes is None else nodes
    depth = len(module.relative_to(PACKAGE).parts) - 1  # package depth of the file
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                up = node.level - 1
                base = list(module.relative_to(PACKAGE).parts[:depth - up]) if up <= depth else None
                if base is None:
                    continue
                parts = base + (node.module.split(".") if node.module else [])
                if parts:
                    found.add(parts[0])
                else:  # `from . import name`: a component, else a name defined in __init__
                    found.update(alias.name if _is_component(alias.name) else "__init__" for alias in node.names)
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
    deferred = DEFERRED_UPWARD.get(own, set())
    assert not deferred & _module_level_imports(module), f"{module} imports {deferred} at module level"
    for name in imported - deferred:
        layer = LAYERS.get(name)
        assert layer is not None, f"{module} imports unknown component {name}"
        assert layer < LAYERS[own], f"{own} (layer {LAYERS[own]}) imports {name} (layer {layer})"


def test_the_checker_sees_relative_imports() -> None:
    assert _imports(PACKAGE / "sim" / "rest.py") >= {"codec", "models", "enums", "sim"}
    assert _imports(PACKAGE / "codec.py") >= {"models", "enums", "errors"}
    assert "__init__" in _imports(PACKAGE / "cli.py")  # `from . import __version__`


def _module_level_imports(module: Path) -> set[str]:
    """Components importing a file loads: imports outside functions and outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(module.read_text())

    def deferred(node: ast.AST) -> bool:
        if isinstance(node, ast.If):
            return ast.unparse(node.test) == "TYPE_CHECKING"
        return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)

    skipped = {id(n) for block in ast.walk(tree) if deferred(block) for n in ast.walk(block) if n is not block}
    return _imports(module, [n for n in ast.walk(tree) if id(n) not in skipped])


def test_only_the_suite_the_cli_and_research_start_the_simulator_and_only_when_asked() -> None:
    starters = {m.name for m in MODULES if _top(m) not in ("sim", "research") and "sim" in _imports(m)}
    assert starters == {"suite.py", "cli.py"}
    eager = [m.name for m in MODULES if _top(m) not in ("sim", "research") and "sim" in _module_level_imports(m)]
    assert eager == [], f"imports the simulator at module level: {eager}"
    # research backtests on the simulator; nothing below it imports research, and `import pxkit` does not load it
    assert not [m.name for m in MODULES if _top(m) != "research" and "research" in _module_level_imports(m)]


def test_public_names_are_sorted_and_importable() -> None:
    def isort_style(name: str) -> tuple[int, str]:  # constants, then classes, then the rest (ruff's RUF022)
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert pxkit.__all__ == sorted(pxkit.__all__, key=isort_style)
    for name in pxkit.__all__:
        assert getattr(pxkit, name) is not None


def _classes(module: object) -> dict[str, type]:
    return {name: obj for name, obj in vars(module).items()
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_")}


def test_public_names_are_what_users_call_and_receive() -> None:
    public = set(pxkit.__all__)
    every_error = set(_classes(errors))
    values = {name for name, cls in _classes(enums).items() if not name.endswith("Error")}
    received = {name for name in _classes(models) if not name.endswith(("Request", "Spec"))}
    assert every_error <= public, f"missing from pxkit.__all__: {every_error - public}"
    assert received <= public, f"missing from pxkit.__all__: {received - public}"
    values.discard("UserAction")  # the user hub's wire action: codec-level
    assert values <= public, f"missing from pxkit.__all__: {values - public}"
    handed_back = {"TradingSuite", "InstrumentContext", "Portfolio", "OrderHandle", "BracketHandle", "PlacedOrder",
                   "ReconcileReport", "RiskConfig", "ProjectX", "ProjectXConfig", "ProjectXRealtimeClient"}
    event_data = {cls.__name__ for cls in PAYLOADS.values()} | {"PAYLOADS"}
    assert event_data <= public, f"event payloads missing from pxkit.__all__: {event_data - public}"
    assert handed_back <= public, f"missing from pxkit.__all__: {handed_back - public}"


def test_wire_bodies_and_error_codes_stay_in_their_modules() -> None:
    public = set(pxkit.__all__)
    bodies = {name for name in _classes(models) if name.endswith(("Request", "Spec"))}
    codes = {name for name, cls in _classes(enums).items() if issubclass(cls, IntEnum) and name.endswith("Error")}
    assert len(bodies) >= 12 and len(codes) >= 9  # the check sees them
    assert not public & (bodies | codes | {"UserAction"}), f"wire-level names exported: {public & (bodies | codes)}"
    for name in bodies:
        assert getattr(models, name) is not None
    for name in codes:
        assert getattr(enums, name) is not None
    assert len(public) <= 68  # one screen


def test_version_comes_from_the_package_metadata() -> None:
    import tomllib
    from importlib.metadata import version

    pyproject = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text())
    assert pxkit.__version__ == version("pxkit") == pyproject["project"]["version"]


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
