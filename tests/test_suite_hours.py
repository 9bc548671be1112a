"""The suite on the simulator's Globex hours: bars built live across the weekend and across a daily halt equal
History/retrieveBars, and the stale-feed watchdog is quiet while the market is closed, not while it is open."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from pxkit import TradingSuite
from pxkit.hours import globex_open
from pxkit.sim import SimConfig, SimServer
from pxkit.sim.app import HubSettings
from pxkit.times import to_us
from suites import assert_bars_are_the_gateways, caught_up, open_suite
from waiting import until

STALE_AFTER = 2.0  # wall seconds of silence during a session before a feed counts as stale


async def follow(sim: SimServer, suite: TradingSuite, moment: datetime) -> None:
    """Move the market to `moment` a second at a time, each second's trades received before the clock moves on."""
    while sim.sim.clock.now() < moment:
        await sim.advance(1)
        await until(lambda: caught_up(sim, suite), "the suite to receive every trade")


def skip_closed(sim: SimServer, moment: datetime) -> None:
    """Jump the clock over a closed stretch in one step: nothing prints there."""
    assert not globex_open(sim.sim.clock.now()) and not globex_open(moment - timedelta(seconds=1))
    sim.sim.clock.set(to_us(moment))
    assert sim.sim.step() == 0


async def silent_for(suite: TradingSuite, seconds: float) -> None:
    """Wait (bounded) until every feed has been silent for `seconds` of wall time, then run the suite's timers."""
    await until(lambda: all(time.monotonic() - ctx.data.last_event >= seconds for ctx in suite.values()),
                f"{seconds} s without market data", timeout=seconds + 10)
    suite.tick()


@pytest.mark.parametrize(("start", "close", "reopen"), [
    # Friday 16:57 EST; the week closes at 17:00 EST and reopens on Sunday 18:00 EDT, the day DST began
    (datetime(2026, 3, 6, 21, 57, tzinfo=UTC), datetime(2026, 3, 6, 22, 0, tzinfo=UTC),
     datetime(2026, 3, 8, 22, 0, tzinfo=UTC)),
    # Tuesday 16:57 EDT; the daily halt from 17:00 to 18:00 EDT
    (datetime(2026, 3, 10, 20, 57, tzinfo=UTC), datetime(2026, 3, 10, 21, 0, tzinfo=UTC),
     datetime(2026, 3, 10, 22, 0, tzinfo=UTC)),
], ids=["weekend", "daily-halt"])
async def test_bars_built_live_across_a_close_equal_the_gateways_and_the_watchdog_knows_the_hours(
        start: datetime, close: datetime, reopen: datetime) -> None:
    async with SimServer(config=SimConfig(seed=1), start=start, hubs=HubSettings(ping_interval=0.5)) as sim, \
            open_suite(sim, ["MNQ", "MGC"], timeframes=["1min", "5min"], stale_after=STALE_AFTER) as suite:
        await follow(sim, suite, close + timedelta(seconds=2))
        await silent_for(suite, STALE_AFTER + 0.5)
        assert [ctx.data.stale for ctx in suite.values()] == [False, False]  # closed: silence is expected
        skip_closed(sim, reopen - timedelta(seconds=5))
        end = reopen + timedelta(minutes=3)
        await follow(sim, suite, end + timedelta(seconds=2))  # the 1-minute bar of 18:02 closes
        for ctx in suite.values():
            for timeframe in ("1min", "5min"):
                await assert_bars_are_the_gateways(suite, ctx, timeframe, start - timedelta(hours=1),
                                                   end if timeframe == "1min" else close)
            minutes = ctx.data.bars["1min"].frame()["timestamp"].to_list()
            assert not [t for t in minutes if close <= t < reopen]  # nothing was built in the gap
            assert close - timedelta(minutes=1) in minutes and reopen in minutes
        await silent_for(suite, STALE_AFTER + 0.5)
        assert [ctx.data.stale for ctx in suite.values()] == [True, True]  # open and silent: stale
