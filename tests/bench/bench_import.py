"""Benchmark: seconds to `import pxkit` beside seconds to import its three heavy dependencies alone.

Each figure is the best of several fresh interpreters (the import is timed inside the child, so interpreter
start-up is not counted), with pxkit's bytecode cached as in an installed package (in a temporary
PYTHONPYCACHEPREFIX, so the source tree stays clean). The goal is pxkit within 0.1 s of polars, httpx and
signalrcore together.
`--short` takes the best of 3 runs instead of 15 (CI proves the script still works).

    python tests/bench/bench_import.py [--short]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PXKIT = "import pxkit"
DEPENDENCIES = "import polars, httpx, signalrcore"


def import_seconds(statement: str, env: dict[str, str]) -> float:
    """Seconds one fresh interpreter takes to run `statement`."""
    timed = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", timed], capture_output=True, text=True, check=True, env=env)
    return float(done.stdout.strip())


def best(statement: str, runs: int, env: dict[str, str]) -> float:
    import_seconds(statement, env)  # writes the bytecode cache
    return min(import_seconds(statement, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="best of 3 runs instead of 15")
    runs = 3 if parser.parse_args().short else 15
    with tempfile.TemporaryDirectory(prefix="pxkit-pycache-") as cache:
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
        pxkit, dependencies = best(PXKIT, runs, env), best(DEPENDENCIES, runs, env)
    print(f"import polars, httpx, signalrcore: {dependencies:.3f} s (best of {runs})")
    print(f"import pxkit:                      {pxkit:.3f} s (best of {runs})")
    print(f"pxkit over its dependencies:       {pxkit - dependencies:+.3f} s (goal: at most +0.100 s)")


if __name__ == "__main__":
    main()
