"""Benchmark: throughput of 100 concurrent REST reads vs the same 100 reads one by one.

The simulated gateway runs in its own process (rate limits off, so only the transport is measured),
once on plain loopback and once with 25 ms of added latency per answer, a stand-in for a real network
round trip. Prints one line per figure. `--short` runs fewer calls (CI proves the script still works).

    python tests/bench/bench_rest_concurrency.py [--short]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

from pxkit import ProjectX, ProjectXConfig

SERVE = "--serve"


async def serve(latency: float) -> None:
    from pxkit.sim import SimServer

    async with SimServer(rate_limits={}) as sim:
        sim.faults.add_latency(latency)
        print(sim.base_url, flush=True)
        await asyncio.Event().wait()


async def measure(base_url: str, calls: int) -> tuple[float, float]:
    config = ProjectXConfig.for_simulator(base_url, general_rate_limit=(100_000, 60.0))
    async with ProjectX(config) as px:
        reads = [px.search_open_orders, px.search_open_positions, px.list_accounts, px.search_trades]
        await asyncio.gather(*(reads[i % len(reads)]() for i in range(8)))  # warm the connection pool
        started = time.perf_counter()
        for i in range(calls):
            await reads[i % len(reads)]()
        sequential = calls / (time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.gather(*(reads[i % len(reads)]() for i in range(calls)))
        concurrent = calls / (time.perf_counter() - started)
    return sequential, concurrent


def run(latency: float, calls: int) -> None:
    server = subprocess.Popen([sys.executable, __file__, SERVE, str(latency)], stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        sequential, concurrent = asyncio.run(measure(base_url, calls))
    finally:
        server.terminate()
        server.wait(10)
    print(f"rest reads, +{latency * 1000:.0f} ms latency: {sequential:,.0f} calls/s one by one, "
          f"{concurrent:,.0f} calls/s with {calls} concurrent ({concurrent / sequential:.1f}x)")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == SERVE:
        asyncio.run(serve(float(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="a quick run for CI")
    args = parser.parse_args()
    calls = 20 if args.short else 100
    for latency in (0.0, 0.025):
        run(latency, calls)


if __name__ == "__main__":
    main()
