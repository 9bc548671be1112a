"""Suites on a manual-clock simulator, for the suite-level tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from pxkit import ProjectXConfig, TradingSuite
from pxkit.client.hublink import LinkSettings
from pxkit.sim import SimServer
from pxkit.times import from_us

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
    """Exchange time of the newest trade the simulator has pushed for a contract."""
    now_us = sim.sim.clock.now_us()
    ticks = sim.sim.market.ticks_between(contract_id, now_us - 600_000_000, now_us)
    return from_us(int(ticks.time[-1]))
