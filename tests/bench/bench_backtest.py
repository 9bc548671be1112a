"""Benchmark: backtests through the full pipeline (simulated market and matching engine, in-process gateway, router,
bars, book, order and position managers) with a strategy attached (BarMomentum, a bracket per bar when flat).

Prints three figures:
- trades per second on a busy market (MNQ at 20,000 trades per minute), from a 10- and a 30-minute backtest;
- seconds to backtest one simulated trading day (the 23-hour session) of MNQ at the default 60 trades per minute;
- a sweep's speed-up from 1 to 2 Dask workers (8 backtests of an hour each), cluster start included.
`--short` shrinks each (1 and 3 minutes, 1 hour, 4 backtests of 10 minutes) so CI proves the script still works.

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
TRADES_PER_MINUTE = 20_000


async def busy(minutes: float) -> None:
    """The rate past the start-up (login, a day of history): two windows, the difference of trades over time."""
    runs = []
    for span in (minutes, 3 * minutes):
        began = time.perf_counter()
        result = await backtest(BarMomentum(), "MNQ", start=START, end=START + timedelta(minutes=span),
                                trades_per_minute=TRADES_PER_MINUTE)
        runs.append((time.perf_counter() - began, result.market_trades, int(result.stats["fills"])))
    (short_s, short_n, _), (long_s, long_n, fills) = runs
    print(f"busy market: {long_n:,} trades in {long_s:.2f} s ({fills} fills), {short_n:,} in {short_s:.2f} s: "
          f"{(long_n - short_n) / (long_s - short_s):,.0f} trades/s with a strategy attached, past the start-up")


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
    await busy(1 if short else 10)
    await one_day(short)
    await speed_up(short)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a quick run that proves the script works")
    asyncio.run(main(parser.parse_args().short))
