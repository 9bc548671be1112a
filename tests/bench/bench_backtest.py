"""Benchmark: backtests through the full pipeline (simulated market and matching engine, in-process gateway, router,
bars, book, order and position managers) with a strategy attached (BarMomentum, a bracket per bar when flat).

Prints three figures:
- trades per second on a busy market (MNQ at 6,000 trades per minute for 10 simulated minutes, ~60,000 trades);
- seconds to backtest one simulated trading day (the 23-hour session) of MNQ at the default 60 trades per minute;
- a sweep's speed-up from 1 to 2 Dask workers (8 backtests of an hour each), cluster start included.
`--short` shrinks each (2 minutes, 1 hour, 4 backtests of 10 minutes) so CI proves the script still works.

    python tests/bench/bench_backtest.py [--short]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

from pxkit.research import backtest
from pxkit.research.examples import BarMomentum
from pxkit.research.sweep import sweep

START = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)


async def busy(minutes: float) -> None:
    began = time.perf_counter()
    result = await backtest(BarMomentum(), "MNQ", start=START, end=START + timedelta(minutes=minutes),
                            trades_per_minute=6000)
    seconds = time.perf_counter() - began
    print(f"busy market: {result.market_trades:,} trades in {seconds:.2f} s = "
          f"{result.market_trades / seconds:,.0f} trades/s with a strategy attached "
          f"({int(result.stats['fills'])} fills)")


async def one_day(short: bool) -> None:
    began = time.perf_counter()
    if short:
        result = await backtest(BarMomentum(), "MNQ", start=START, end=START + timedelta(hours=1))
    else:
        result = await backtest(BarMomentum(), "MNQ", day="2026-03-03")
    seconds = time.perf_counter() - began
    span = (result.end - result.start).total_seconds() / 3600
    print(f"{'one hour' if short else 'one trading day'} of MNQ ({span:.0f} h, {result.market_trades:,} trades, "
          f"{int(result.stats['fills'])} fills): {seconds:.1f} s")


async def speed_up(short: bool) -> None:
    grid = {"stop": [6, 10], "target": [6, 10]} if short else {"stop": [4, 6, 8, 12], "target": [6, 10]}
    between = ("09:30", "09:40") if short else ("09:30", "10:30")
    times = {}
    for workers in (1, 2):
        began = time.perf_counter()
        frame = await sweep(BarMomentum, grid, ["2026-03-03"], "MNQ", between=between, workers=workers,
                            progress=False)
        times[workers] = time.perf_counter() - began
    print(f"sweep of {frame.height} backtests: 1 worker {times[1]:.1f} s, 2 workers {times[2]:.1f} s, "
          f"speed-up {times[1] / times[2]:.2f}x")


async def main(short: bool) -> None:
    await busy(2 if short else 10)
    await one_day(short)
    await speed_up(short)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a quick run that proves the script works")
    asyncio.run(main(parser.parse_args().short))
