"""Suites on a manual-clock simulator, for the suite-level tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

from pxkit import ProjectXConfig, TradingSuite
from pxkit.client.hublink import LinkSettings
from pxkit.hours import sessions_between
from pxkit.sim import SimServer
from pxkit.times import from_us, to_us

FAST = LinkSettings(backoff=(0, 0.2, 0.5, 1.0), stale_after=1.5, keepalive_interval=0.5, connect_timeout=3)


@contextlib.asynccontextmanager
async def open_suite(sim: SimServer, symbols: Sequence[str] = ("MNQ", "ES", "MGC"), **options
                     ) -> AsyncIterator[TradingSuite]:
    """A suite on `sim`, whose bars close by the simulator's clock; closed (bounded) at the end. The config is
    the simulator's default user unless `config=` is given."""
    options.setdefault("timeframes", ["15sec", "1min", "5min"])
    options.setdefault("config", ProjectXConfig.for_simulator(sim.base_url))
    suite = await TradingSuite.create(list(symbols), clock=sim.sim.clock.now, link_settings=FAST, **options)
    try:
        yield suite
    finally:
        await asyncio.wait_for(suite.close(), 10)


def last_trade_time(sim: SimServer, contract_id: str) -> datetime:
    """Exchange time of the newest trade the simulator has pushed for a contract (before the last session's close
    while the market is closed)."""
    now_us = sim.sim.clock.now_us()
    ticks = sim.sim.market.ticks_between(contract_id, now_us - 600_000_000, now_us)
    if not len(ticks):
        _, closes = sessions_between(from_us(now_us) - timedelta(days=5), from_us(now_us))[-1]
        end = min(to_us(closes), now_us)
        ticks = sim.sim.market.ticks_between(contract_id, end - 600_000_000, end)
    return from_us(int(ticks.time[-1]))


def caught_up(sim: SimServer, suite: TradingSuite) -> bool:
    """Every instrument has received the newest trade the simulator pushed."""
    return all(ctx.data.bars.last_ts == last_trade_time(sim, ctx.instrument_info.id) for ctx in suite.values())


def closed_until(suite: TradingSuite, timeframe: str, end) -> bool:
    """Every instrument has closed its `timeframe` bars up to `end`."""
    for ctx in suite.values():
        bars = ctx.data.bars[timeframe].bars()
        if not bars or bars[-1].timestamp + ctx.data.bars[timeframe].timeframe.seconds * timedelta(seconds=1) < end:
            return False
    return True


UNITS = {"15sec": ("sec", 15), "1min": ("min", 1), "5min": ("min", 5)}


async def assert_bars_are_the_gateways(suite: TradingSuite, ctx, timeframe: str, start, end) -> None:
    """The closed `timeframe` bars the suite built in [start, end) equal History/retrieveBars over that window."""
    frame = ctx.data.bars[timeframe].frame()
    built = frame.filter((frame["timestamp"] >= start) & (frame["timestamp"] < end))
    unit, n = UNITS[timeframe]
    truth = await suite.client.get_bars(ctx.instrument_info.id, start_time=start, end_time=end, unit=unit, interval=n)
    assert built.height == truth.height > 0, (ctx.symbol, timeframe)
    assert built.equals(truth), (ctx.symbol, timeframe)

