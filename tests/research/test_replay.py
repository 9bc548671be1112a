"""Backtests on a recording: a session recorded from the simulator over sockets, replayed as the market, gives the
very orders, fills and equity of a backtest on the simulator's own market for the same seed and window; a
recording that lacks an instrument or the window is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pxkit.errors import InputError
from pxkit.research import backtest
from pxkit.research.examples import BarMomentum, RangeFade
from pxkit.sim import SimConfig, SimServer
from suites import caught_up, open_suite
from waiting import until

SEED = 4
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
START, END = T0 + timedelta(minutes=1), T0 + timedelta(minutes=16)


@pytest.fixture
async def recording(tmp_path_factory) -> Path:
    """Sixteen minutes of MNQ and MGC recorded from a suite on the simulator (seed SEED) over sockets."""
    path = tmp_path_factory.mktemp("recording")
    async with SimServer(config=SimConfig(seed=SEED), start=T0) as sim, \
            open_suite(sim, ["MNQ", "MGC"], timeframes=["1min"]) as suite, suite.record(path, flush_interval=0.5):
        while sim.sim.clock.now() < END + timedelta(seconds=5):
            await sim.advance(30)
            await until(lambda: caught_up(sim, suite), "the suite to receive every trade")
    return path


@pytest.mark.parametrize("strategy", [BarMomentum(stop=6, target=10), RangeFade(offset=1)],
                         ids=["brackets", "limits"])
async def test_a_recorded_session_backtests_as_the_market_it_recorded(recording: Path, strategy) -> None:
    replayed = await backtest(strategy, ["MNQ", "MGC"], start=START, end=END, seed=SEED, recording=recording)
    generated = await backtest(strategy, ["MNQ", "MGC"], start=START, end=END, seed=SEED)
    assert replayed.trades.height > 10
    assert replayed.market_trades == generated.market_trades
    assert replayed.orders.equals(generated.orders)
    assert replayed.trades.equals(generated.trades)
    assert replayed.equity.equals(generated.equity)
    assert replayed.prices.equals(generated.prices)
    other_seed = await backtest(strategy, ["MNQ", "MGC"], start=START, end=END, seed=SEED + 1, recording=recording)
    assert other_seed.prices.equals(replayed.prices)  # the recording, not the seed, makes the prints


async def test_a_recording_without_the_instrument_or_the_window_is_refused(recording: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no trades of ES"):
        await backtest(BarMomentum(), ["MNQ", "ES"], start=START, end=END, seed=SEED, recording=recording)
    with pytest.raises(InputError, match="no trades of a known contract"):
        await backtest(BarMomentum(), "MNQ", day="2026-03-20", recording=recording)
    with pytest.raises(InputError, match="no recording directory"):
        await backtest(BarMomentum(), "MNQ", start=START, end=END, recording=tmp_path / "missing")
