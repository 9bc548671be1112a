"""`import pxkit` is what every notebook kernel pays at start: it loads no simulator and no heavy optional stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pxkit

SRC = Path(pxkit.__file__).parents[1]
HEAVY = ("pxkit.sim", "aiohttp", "numpy", "talib", "ipywidgets", "altair", "anywidget", "yaml",
         "signalrcore.hub_connection_builder")


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement`."""
    script = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env,
                          timeout=60)
    return set(json.loads(done.stdout))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_import_pxkit_loads_no_simulator_and_no_heavy_stack() -> None:
    modules = _modules_after("import pxkit")
    assert "pxkit.suite" in modules  # the check runs on the real package, eager names included
    assert _heavy(modules) == []


def test_every_public_name_resolves_without_the_simulator() -> None:
    modules = _modules_after("import pxkit\nfor name in pxkit.__all__: getattr(pxkit, name)")
    assert _heavy(modules) == []


def test_the_check_sees_a_heavy_import() -> None:
    assert _heavy(_modules_after("import pxkit.sim")) != []
