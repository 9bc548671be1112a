"""Benchmark: TA-Lib functions through `pxkit.indicators.talib` on a polars frame of 1M bars, beside the same TA-Lib
calls on numpy arrays, and the live chart's recomputation of its default indicators over a month of 1-minute bars.

Bars are a seeded random walk (not timed). Each figure is the best of several runs, in milliseconds, with the
rate in bars per second. `--short` uses 100,000 bars and fewer runs (CI proves the script still works).

    python tests/bench/bench_indicators.py [--short]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import talib as ta

from pxkit.indicators import add_indicators, talib, vwap
from pxkit.lab.charting import DEFAULT_INDICATORS, _with_day

MONTH = 30 * 23 * 60  # one-minute bars in 30 Globex days


def bars(count: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 20_000 + np.cumsum(rng.normal(0, 2.0, count))
    start = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    return pl.DataFrame({
        "timestamp": pl.datetime_range(start, start + timedelta(minutes=count - 1), "1m", eager=True),
        "open": close + rng.uniform(-1, 1, count), "high": close + rng.uniform(0, 3, count),
        "low": close - rng.uniform(0, 3, count), "close": close, "volume": rng.integers(1, 500, count)})


def best_ms(run: Callable[[], object], runs: int) -> float:
    run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="100,000 bars, fewer runs")
    args = parser.parse_args()
    count, runs = (100_000, 3) if args.short else (1_000_000, 7)
    frame = bars(count)
    o, h, lo, c, v = (frame[n].cast(pl.Float64).to_numpy() for n in ("open", "high", "low", "close", "volume"))
    cases = {
        "SMA(20)": (talib("SMA", timeperiod=20), lambda: ta.SMA(c, 20)),
        "RSI(14)": (talib("RSI"), lambda: ta.RSI(c, 14)),
        "MACD": (talib("MACD"), lambda: ta.MACD(c)),
        "BBANDS": (talib("BBANDS"), lambda: ta.BBANDS(c)),
        "ADX(14)": (talib("ADX"), lambda: ta.ADX(h, lo, c, 14)),
        "MFI(14)": (talib("MFI"), lambda: ta.MFI(h, lo, c, v, 14)),
        "CDLENGULFING": (talib("CDLENGULFING"), lambda: ta.CDLENGULFING(o, h, lo, c)),
    }
    print(f"{count:,} bars: pxkit talib() on a polars frame | TA-Lib on numpy arrays")
    for name, (expr, raw) in cases.items():
        ms = best_ms(lambda expr=expr: frame.with_columns(expr), runs)
        print(f"  {name:13s} {ms:8.2f} ms ({count / ms * 1000:13,.0f} bars/s) | {best_ms(raw, runs):8.2f} ms")
    month = _with_day(bars(MONTH))
    specs = [vwap(by="day") if spec == "vwap" else spec for spec in DEFAULT_INDICATORS]
    ms = best_ms(lambda: add_indicators(month, *specs), runs * 4)
    print(f"chart recompute of {', '.join(DEFAULT_INDICATORS)} over {MONTH:,} one-minute bars: {ms:.2f} ms")


if __name__ == "__main__":
    main()
