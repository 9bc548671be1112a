"""Sweeps: a grid of 16 parameter sets x 3 days fanned out on a local Dask cluster of two worker processes gives
the very rows of the same backtests run one by one here; bad grids, days and options are refused before any
cluster starts."""

from __future__ import annotations

import asyncio
from datetime import date

import polars as pl
import pytest

from pxkit.errors import InputError
from pxkit.research.examples import BarMomentum
from pxkit.research.report import heatmap
from pxkit.research.sweep import day_windows, grid_points, run_one, sweep

GRID = {"stop": [4, 6, 8, 12], "target": [4, 6, 8, 12]}
DAYS = ["2026-03-03", "2026-03-04", "2026-03-05"]
BETWEEN = ("09:30", "09:36")


async def test_a_sweep_on_a_local_dask_cluster_equals_the_backtests_run_one_by_one() -> None:
    frame = await sweep(BarMomentum, GRID, DAYS, "MNQ", between=BETWEEN, workers=2, progress=False)
    assert frame.height == 16 * 3
    assert frame.columns[:3] == ["stop", "target", "day"]
    one_by_one = pl.DataFrame([await asyncio.to_thread(run_one, BarMomentum, params, ["MNQ"], day, start, end, 1, 0.25)
                               for params in grid_points(BarMomentum, GRID)
                               for day, start, end in day_windows(DAYS, BETWEEN)])
    assert frame.equals(one_by_one)
    assert frame["day"].unique().sort().to_list() == [date(2026, 3, d) for d in (3, 4, 5)]
    assert frame["fills"].min() > 0 and frame["net_pnl"].n_unique() > 8  # the parameters change what happens
    spec = heatmap(frame, "stop", "target", "net_pnl").to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rect", "text"]
    cells = {(c["stop"], c["target"]): c["net_pnl"] for c in spec["data"]["values"]}
    assert len(cells) == 16  # one cell per parameter set, its days summed
    assert cells[(4, 12)] == pytest.approx(frame.filter(stop=4, target=12)["net_pnl"].sum())


@pytest.mark.parametrize(("grid", "days", "options", "message"), [
    ({"stops": [1]}, DAYS, {}, "has no parameter stops"),
    ({"stop": []}, DAYS, {}, "non-empty list"),
    ({"stop": 4}, DAYS, {}, "non-empty list"),
    ({}, DAYS, {}, "mapping of parameter names"),
    (GRID, [], {}, "non-empty list of dates"),
    (GRID, ["2026-03-07"], {}, "not a trading day"),
    (GRID, ["yesterday"], {}, "YYYY-MM-DD"),
    (GRID, DAYS, {"between": ("10:00", "09:30")}, "earlier, later"),
    (GRID, DAYS, {"between": ("9h", "10h")}, "New York times"),
    (GRID, DAYS, {"workers": 0}, "workers"),
    (GRID, DAYS, {"step": 0}, "step"),
    (GRID, DAYS, {"scheduler": ""}, "scheduler"),
])
async def test_bad_sweeps_are_refused_before_any_cluster_starts(grid, days, options, message) -> None:
    with pytest.raises(InputError, match=message):
        await sweep(BarMomentum, grid, days, "MNQ", progress=False, **options)


async def test_a_sweep_needs_a_strategy_class() -> None:
    with pytest.raises(InputError, match="Strategy subclass"):
        await sweep(BarMomentum(), GRID, DAYS, "MNQ")  # type: ignore[arg-type]
