"""Benchmark: trades per second through MultiTimeframeBars (1min, 5min, 1hr), with no slowdown as bars pile up.

Generates seeded synthetic trades up front (not timed): a random walk on a 0.25 tick grid, sizes 1-5,
exchange timestamps 0-100 ms apart (UTC datetimes, as the codec decodes them). Prints one line per
figure: the overall rate, the rate over the first and the last 100,000 trades, the same run with integer
microsecond timestamps, the per-series `on_trade` path that returns events, and the peak RSS.
`--short` runs 100,000 trades (CI proves the script still works).

    python tests/bench/bench_bar_builder.py [--short]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta

from pxkit.instrument.bars import BarSeries, MultiTimeframeBars

TIMEFRAMES = ["1min", "5min", "1hr"]
START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
WINDOW = 100_000


def trades(count: int, seed: int = 7) -> tuple[list[float], list[int], list[datetime], list[int]]:
    """Prices, sizes, datetime stamps and the same stamps in microseconds."""
    rng = random.Random(seed)
    prices, sizes, stamps, micros = [], [], [], []
    ticks, t_us = 100_000, int(START.timestamp()) * 1_000_000
    for _ in range(count):
        ticks += rng.choice((-1, 0, 0, 1))
        t_us += rng.randrange(0, 100_000)
        prices.append(ticks * 0.25)
        sizes.append(rng.randint(1, 5))
        micros.append(t_us)
    base = datetime(1970, 1, 1, tzinfo=UTC)
    stamps = [base + timedelta(microseconds=t) for t in micros]
    return prices, sizes, stamps, micros


def run(on_trade, prices: list[float], sizes: list[int], stamps: list) -> tuple[float, list[float]]:
    """Total seconds and the elapsed time at each WINDOW boundary."""
    marks = []
    clock = time.perf_counter
    begin = clock()
    for start in range(0, len(prices), WINDOW):
        stop = min(start + WINDOW, len(prices))
        for price, size, ts in zip(prices[start:stop], sizes[start:stop], stamps[start:stop], strict=True):
            on_trade(price, size, ts)
        marks.append(clock() - begin)
    return marks[-1], marks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="100,000 trades instead of 1,000,000")
    args = parser.parse_args()
    count = 100_000 if args.short else 1_000_000
    prices, sizes, stamps, micros = trades(count)

    bars = MultiTimeframeBars(TIMEFRAMES, tick_size=0.25, max_bars=5000)
    total, marks = run(bars.on_trade, prices, sizes, stamps)
    first = marks[0]
    last = marks[-1] - (marks[-2] if len(marks) > 1 else 0.0)
    print(f"multi-timeframe {'/'.join(TIMEFRAMES)}, datetime stamps: {count / total:,.0f} ticks/s "
          f"({count:,} trades in {total:.2f} s)")
    print(f"first {WINDOW:,} trades: {WINDOW / first:,.0f} ticks/s")
    print(f"last {WINDOW:,} trades: {WINDOW / last:,.0f} ticks/s")
    volume = sum(sizes)
    built = {tf: sum(b.volume for b in bars[tf].bars(include_forming=True)) for tf in TIMEFRAMES}
    print(f"bars closed: {', '.join(f'{tf} {len(bars[tf])}' for tf in TIMEFRAMES)}; "
          f"volume kept {'exactly' if all(v == volume for v in built.values()) else 'NOT'} ({volume:,})")

    fast = MultiTimeframeBars(TIMEFRAMES, tick_size=0.25, max_bars=5000)
    total_us, _ = run(fast.on_trade, prices, sizes, micros)
    print(f"multi-timeframe, integer-microsecond stamps: {count / total_us:,.0f} ticks/s")

    series = BarSeries("1min", 5000, 0.25)
    total_ev, _ = run(series.on_trade, prices, sizes, stamps)
    print(f"single 1min BarSeries.on_trade with events: {count / total_ev:,.0f} ticks/s")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS: {peak:,.0f} MiB (includes the {count:,} pre-generated trades)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
