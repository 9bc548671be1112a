"""Backtests in process: results that add up, the exchange's fill rules, the same run twice gives the same frames,
a failing hook stops the run, bad input is refused, the report is self-contained; and the same Strategy class on a
suite of its own (StrategyRunner with its own task)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from pxkit.errors import InputError
from pxkit.research import Strategy, StrategyRunner, backtest
from pxkit.research.examples import BarMomentum, RangeFade
from pxkit.sim import SimServer
from suites import open_suite
from waiting import until

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
END = START + timedelta(minutes=30)


async def test_results_add_up() -> None:
    result = await backtest(BarMomentum(stop=6, target=10), ["MNQ", "MGC"], start=START, end=END, seed=3)
    trades, equity, stats = result.trades, result.equity, result.stats
    assert trades.height == stats["fills"] > 20
    assert stats["fees"] == pytest.approx(trades["fees"].sum())
    last = equity.row(-1, named=True)
    assert last["net"] == pytest.approx(last["realized"] + last["unrealized"] - last["fees"])
    assert stats["net_pnl"] == pytest.approx(last["net"])
    assert last["equity"] == pytest.approx(result.balance + last["net"])
    assert last["realized"] == pytest.approx(trades["pnl"].sum())  # realised P&L is what the closing fills made
    closing = trades.filter(pl.col("pnl").is_not_null())
    assert stats["win_rate"] == pytest.approx((closing["pnl"] > 0).mean())
    assert 0 <= stats["exposure"] <= 1 and stats["max_drawdown"] >= 0
    assert equity["timestamp"].is_sorted() and equity.height == 31  # a row per minute, then the end
    assert set(result.prices["symbol"]) == {"MNQ", "MGC"} and result.prices.height == 60
    assert result.market_trades > 1000
    assert "net" in repr(result) and "Sharpe" in result._repr_html_()


async def test_resting_limits_fill_at_their_price_and_brackets_attach_on_the_entry_fill() -> None:
    limits = await backtest(RangeFade(offset=1), "MNQ", start=START, end=END)
    filled = limits.orders.filter(pl.col("status") == "FILLED")
    assert filled.height >= 4
    fills = limits.trades.join(filled, on="order_id")
    assert (fills["price"] == fills["limit_price"]).all()  # trade-through fills at the limit, never better
    brackets = await backtest(BarMomentum(stop=6, target=10), "MNQ", start=START, end=END)
    orders = brackets.orders
    for entry in orders.filter(pl.col("type") == "MARKET").iter_rows(named=True):
        legs = orders.filter(pl.col("created") == entry["updated"], pl.col("order_id") > entry["order_id"],
                             pl.col("type").is_in(["STOP", "LIMIT"]))
        assert legs.height in (0, 2)  # both legs at the entry's fill (none only for an entry at the very end)
    assert orders.filter(pl.col("type") == "STOP").height >= 3


async def test_the_same_backtest_twice_gives_the_same_frames_and_another_seed_does_not() -> None:
    first = await backtest(RangeFade(), "MGC", start=START, end=END, seed=5)
    again = await backtest(RangeFade(), "MGC", start=START, end=END, seed=5)
    other = await backtest(RangeFade(), "MGC", start=START, end=END, seed=6)
    assert first.trades.equals(again.trades) and first.orders.equals(again.orders)
    assert first.equity.equals(again.equity) and first.stats == again.stats
    assert not first.prices.equals(other.prices)


class Failing(Strategy):
    """Raises on its second bar."""

    bars: int = 0

    def on_bar(self, ctx: Any, bar: Any) -> None:
        self.bars += 1
        if self.bars == 2:
            raise RuntimeError("strategy bug")


async def test_a_hook_that_raises_stops_the_backtest_with_its_error() -> None:
    with pytest.raises(RuntimeError, match="strategy bug"):
        await backtest(Failing(), "MNQ", start=START, end=END)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"start": START.replace(tzinfo=None), "end": END}, "timezone-aware"),
    ({"start": END, "end": START}, "must come before"),
    ({"day": "2026-03-07"}, "not a trading day"),
    ({"day": "March 3"}, "YYYY-MM-DD"),
    ({"day": "2026-03-03", "start": START, "end": END}, "either day"),
    ({"step": 0}, "step"),
    ({"seed": "1"}, "seed"),
    ({"trades_per_minute": 0}, "trades_per_minute"),
])
async def test_bad_backtests_are_refused(kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        await backtest(BarMomentum(), "MNQ", **kwargs)


async def test_bad_strategies_are_refused() -> None:
    with pytest.raises(InputError, match="has no parameter stops"):
        BarMomentum(stops=3)
    with pytest.raises(InputError, match="Strategy instance"):
        await backtest(BarMomentum, "MNQ")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="instrument symbols"):
        await backtest(BarMomentum(), [])


async def test_the_report_is_one_self_contained_spec() -> None:
    result = await backtest(BarMomentum(), ["MNQ", "MGC"], start=START, end=START + timedelta(minutes=10))
    spec = result.report().to_dict()
    assert len(spec["vconcat"]) == 4  # equity, drawdown, then one price panel per instrument
    text = json.dumps(spec)
    assert '"url"' not in text  # every value inline: nothing to fetch
    panel = spec["vconcat"][2]["layer"]
    assert [layer["mark"]["type"] for layer in panel] == ["line", "point"]
    assert len(panel[1]["data"]["values"]) == result.trades.filter(pl.col("symbol") == "MNQ").height


class Counting(Strategy):
    """Counts its hooks; buys one lot on the first bar, raises on the second."""

    timeframe: str = "15sec"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.seen: dict[str, int] = {"start": 0, "bar": 0, "fill": 0, "stop": 0}

    def on_start(self, ctx: Any) -> None:
        self.seen["start"] += 1

    async def on_bar(self, ctx: Any, bar: Any) -> None:
        self.seen["bar"] += 1
        if self.seen["bar"] == 1:
            await ctx.orders.place_market_order("buy", 1)
        elif self.seen["bar"] == 2:
            raise RuntimeError("second bar")

    def on_fill(self, ctx: Any, order: Any) -> None:
        self.seen["fill"] += 1

    def on_stop(self, ctx: Any) -> None:
        self.seen["stop"] += 1


async def test_the_same_strategy_class_runs_on_a_suite_of_its_own() -> None:
    async with SimServer(start=START) as sim, open_suite(sim, ["MNQ"]) as suite:
        strategy = Counting()
        async with StrategyRunner(strategy, suite) as runner:
            assert strategy.seen["start"] == 1 and strategy.suite is suite
            await sim.advance(50)
            await until(lambda: strategy.seen["bar"] >= 3 and strategy.seen["fill"] == 1, "bars and the fill")
            await runner.idle()
            assert suite["MNQ"].positions.size == 1
            assert [str(e) for e in runner.errors] == ["second bar"]  # logged, counted, and the strategy went on
        assert strategy.seen["stop"] == 1
