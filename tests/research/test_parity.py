"""Parity: a strategy run on the simulator over real sockets (REST over HTTP, both hubs over SignalR) and the same
strategy backtested in-process on the same seed and window place the same orders, get the same fills (prices,
sizes, times) and end with the same P&L.

Both runs step the simulator's manual clock by the same 0.25 s and let every push arrive before the clock moves
on: a real-time clock would let the market run on while a push is in flight, which no two runs repeat.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from pxkit import ProjectXConfig
from pxkit.client.http import ProjectX
from pxkit.client.realtime import ProjectXRealtimeClient
from pxkit.research import BacktestResult, Strategy, backtest
from pxkit.research.backtest import run_stepped, suite_options
from pxkit.research.examples import BarMomentum, RangeFade
from pxkit.research.stepping import over_sockets
from pxkit.sim import SimConfig, SimServer
from pxkit.suite import TradingSuite
from suites import FAST

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
END = START + timedelta(minutes=20)
SYMBOLS = ["MNQ", "MGC"]
SEED = 7


async def over_the_wire(strategy: Strategy, symbols: list[str], start: datetime, end: datetime, seed: int
                        ) -> BacktestResult:
    """`strategy` on a suite connected to a SimServer over HTTP and SignalR, stepped as a backtest is."""
    server = await SimServer(config=SimConfig(seed=seed), start=start).start()
    try:
        server.sim.event_log = []
        config = ProjectXConfig.for_simulator(server.base_url)
        client = ProjectX(config)
        realtime = ProjectXRealtimeClient(config, client.tokens, settings=FAST, rest=client)
        suite = await TradingSuite.assemble(client, realtime, symbols, suite_options(strategy, start, end),
                                            clock=server.sim.clock.now)
        try:
            return await run_stepped(strategy, suite, server.sim, over_sockets(server.sim, realtime), end=end,
                                     seed=seed)
        finally:
            await asyncio.wait_for(suite.close(), 10)
    finally:
        await server.stop()


def assert_same(live: BacktestResult, tested: BacktestResult) -> None:
    assert live.orders.height > 10 and live.trades.height > 10, "the strategy must trade for parity to mean much"
    assert live.orders.equals(tested.orders)
    assert live.trades.equals(tested.trades)
    assert live.equity.equals(tested.equity)
    assert live.stats == pytest.approx(tested.stats, nan_ok=True)
    assert live.prices.equals(tested.prices)
    assert set(live.trades["symbol"]) == set(SYMBOLS)


@pytest.mark.parametrize("strategy", [BarMomentum(stop=6, target=10), RangeFade(offset=1)],
                         ids=["brackets", "limits"])
async def test_a_live_run_over_sockets_and_its_backtest_trade_alike(strategy: Strategy) -> None:
    live = await over_the_wire(strategy, SYMBOLS, START, END, SEED)
    tested = await backtest(type(strategy)(**strategy.params), SYMBOLS, start=START, end=END, seed=SEED)
    assert_same(live, tested)
    if isinstance(strategy, BarMomentum):  # every entry got both legs, and the legs took every position out
        legs = live.orders.filter(pl.col("type").is_in(["STOP", "LIMIT"]))
        entries = live.orders.filter(pl.col("type") == "MARKET")
        assert legs.height >= 2 * entries.height - 2 * len(SYMBOLS)
    else:
        assert set(live.orders["type"]) == {"LIMIT"}
        assert live.orders.filter(pl.col("status") == "CANCELLED").height > 0
