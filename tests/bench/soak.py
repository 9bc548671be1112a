"""Soak: the chaos scenario of tests/test_chaos.py over eight simulated hours, with the process's memory watched.

Runs `run_chaos` on a manual-clock simulator: three instruments, a hub drop every 1-6 simulated minutes, one
token expiry, one 10 s hub outage, REST fault bursts and a few hundred seeded orders. Prints the RSS after the
warm-up and at the end, suite and simulator still up (the growth must stay under 10 %), then one line per
figure; exits 1 when the suite's view differs from the simulator's books, a task or thread is left behind, or
memory grew too much.
`--short` runs one simulated hour (CI proves the script still works).

    python tests/bench/soak.py [--short]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the scenario and its helpers

from test_chaos import ChaosPlan, run_chaos

MAX_GROWTH = 0.10


def rss_mb() -> float:
    """Resident set size of this process now, in MB (Linux /proc)."""
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kb / 1024


async def soak(hours: float) -> int:
    plan = ChaosPlan(seed=11, duration=hours * 3600, drop_gap=(60.0, 360.0), orders=int(100 * max(hours, 1) / 2),
                     bursts=int(6 * max(hours, 1)), warm_up=0.25)
    rss: dict[str, float] = {}

    def measure(phase: str) -> None:
        gc.collect()
        rss[phase] = rss_mb()
        print(f"soak: RSS at {phase} ({plan.warm_up:.0%} of {hours:g} simulated hours) {rss[phase]:.1f} MB"
              if phase == "warm-up" else f"soak: RSS at the end {rss[phase]:.1f} MB "
              f"({rss[phase] / rss['warm-up'] - 1:+.1%} since the warm-up)", flush=True)

    report = await run_chaos(plan, on_phase=measure)
    growth = rss["end"] / rss["warm-up"] - 1 if len(rss) == 2 else float("nan")
    for line in report.lines():
        print(line.replace("chaos:", "soak:", 1))
    for problem in report.mismatches + [f"left running: {name}" for name in report.leaked]:
        print(f"soak: MISMATCH {problem}")
    return 0 if not report.mismatches and not report.leaked and growth < MAX_GROWTH else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="one simulated hour instead of eight")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(soak(1.0 if args.short else 8.0)))


if __name__ == "__main__":
    main()
