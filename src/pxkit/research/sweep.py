"""Parameter sweeps on Dask: every parameter set of a grid backtested on every day, fanned out over a
`distributed` cluster (a LocalCluster of worker processes by default, or any scheduler address), gathered into one
polars frame of parameters x metrics."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

import polars as pl

from ..errors import InputError
from ..events import in_kernel
from ..hours import NEW_YORK
from .backtest import backtest, window
from .stepping import check_step
from .strategy import Strategy

MAX_RUNS = 100_000


def grid_points(strategy: type[Strategy], grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in order (the last parameter varies fastest)."""
    if not isinstance(strategy, type) or not issubclass(strategy, Strategy):
        raise InputError(f"give a Strategy subclass, got {strategy!r}")
    if not isinstance(grid, Mapping) or not grid:
        raise InputError(f"give the grid as a mapping of parameter names to lists of values, got {grid!r}")
    declared = strategy.parameter_names()
    unknown = sorted(set(grid) - set(declared))
    if unknown:
        raise InputError(f"{strategy.__name__} has no parameter {', '.join(unknown)}; it has {list(declared)}")
    for name, values in grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise InputError(f"grid[{name!r}] must be a non-empty list of values, got {values!r}")
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    for params in points:
        strategy(**params)
    return points


def day_windows(days: Sequence[date | str], between: tuple[str | time, str | time] | None
                ) -> list[tuple[date, datetime, datetime]]:
    """(day, start, end) of each trading day: its whole session, or `between` two New York times on that day."""
    if isinstance(days, str | date) or not isinstance(days, Sequence) or not days:
        raise InputError(f"give the days as a non-empty list of dates or YYYY-MM-DD, got {days!r}")
    out = []
    for day in days:
        start, end = window(day, None, None)
        if between is not None:
            opens, closes = (_time(t) for t in between)
            start = datetime.combine(end.date(), opens, NEW_YORK)
            end = datetime.combine(end.date(), closes, NEW_YORK)
            if not start < end:
                raise InputError(f"between must be (earlier, later) New York times, got {between!r}")
        out.append((end.date(), start, end))
    return out


def _time(value: str | time) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise InputError(f"between takes New York times like '09:30', got {value!r}") from None


def run_one(strategy: type[Strategy], params: dict[str, Any], symbols: list[str], day: date, start: datetime,
            end: datetime, seed: int, step: float) -> dict[str, Any]:
    """One backtest of a sweep, as its row (what a worker runs, on a thread of its own)."""
    result = asyncio.run(backtest(strategy(**params), symbols, start=start, end=end, seed=seed, step=step))
    return {**params, "day": day, **result.stats}


async def sweep(strategy: type[Strategy], grid: Mapping[str, Sequence[Any]], days: Sequence[date | str],
                instruments: str | Sequence[str], *, between: tuple[str | time, str | time] | None = None,
                seed: int = 1, step: float = 0.25, scheduler: str | None = None, workers: int = 2,
                progress: bool | None = None) -> pl.DataFrame:
    """Backtest `strategy` with every parameter set of `grid` on every day (optionally only `between` two New York
    times) on Dask, and return one row per (parameter set, day): the parameters, `day`, then the statistics of
    BacktestResult.stats, in grid order then day order.

    `scheduler` is a Dask scheduler address; without it a LocalCluster of `workers` processes runs on this
    machine for the sweep (its workers are spawned processes: in a script, call it under
    `if __name__ == "__main__":`). `progress` shows a bar (default: in a notebook).
    """
    points = grid_points(strategy, grid)
    windows = day_windows(days, between)
    symbols = [instruments] if isinstance(instruments, str) else list(instruments)
    if not symbols or not all(isinstance(s, str) and s.strip() for s in symbols):
        raise InputError(f"give one or more instrument symbols, got {instruments!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    check_step(step)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise InputError(f"workers must be a whole number from 1 to 256, got {workers!r}")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise InputError(f"scheduler must be a Dask scheduler address like 'tcp://host:8786', got {scheduler!r}")
    runs = [(params, *w) for params in points for w in windows]
    if len(runs) > MAX_RUNS:
        raise InputError(f"{len(runs)} backtests is more than a sweep runs ({MAX_RUNS}); narrow the grid or days")
    bar = _bar(len(runs), progress)
    loop = asyncio.get_running_loop()

    def advanced() -> None:
        if bar is not None:
            loop.call_soon_threadsafe(bar.update, 1)

    try:
        rows = await asyncio.to_thread(_on_dask, strategy, runs, symbols, seed, step, scheduler, workers, advanced)
    finally:
        if bar is not None:
            bar.close()
    return pl.DataFrame(rows)


def _bar(total: int, progress: bool | None) -> Any:
    if progress is False or (progress is None and not in_kernel()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="backtests", unit="run")


def _on_dask(strategy: type[Strategy], runs: list[tuple[Any, ...]], symbols: list[str], seed: int, step: float,
             scheduler: str | None, workers: int, advanced: Callable[[], None]) -> list[dict[str, Any]]:
    """Submit every run, count them as they finish, return their rows in submission order."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.ERROR)
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            futures = [client.submit(run_one, strategy, params, symbols, day, start, end, seed, step, pure=False)
                       for params, day, start, end in runs]
            for _ in as_completed(futures):
                advanced()
            return client.gather(futures)
    finally:
        if cluster is not None:
            cluster.close()
