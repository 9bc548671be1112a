"""Backtest a Strategy on the simulator's seeded market: the suite, router, bars, book, order and position managers
and matching engine of a live run, in-process on a virtual clock, as fast as the CPU allows."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import polars as pl

from ..client.http import ProjectX
from ..client.realtime import ProjectXRealtimeClient
from ..config import ProjectXConfig
from ..errors import InputError
from ..hours import is_trading_day, session_bounds, trading_day
from ..instrument.bars import Timeframe
from ..sim.clock import DEFAULT_START, SimClock
from ..sim.engine import SimConfig, Simulator
from ..sim.inprocess import InProcessGateway
from ..suite import SuiteOptions, TradingSuite
from ..times import to_us
from .links import InProcessLink
from .replay import check_replayed, replay_into
from .results import BacktestResult, EquityCurve, orders_frame, summary, trades_frame
from .stepping import Settle, Stepper, check_step, routed
from .strategy import Strategy, StrategyRunner

_SEARCH_TAIL = timedelta(minutes=1)
_UNLIMITED = (1_000_000_000, 1.0)  # the in-process gateway limits no rate, and wall-clock windows mean nothing here


def window(day: date | str | None, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """[start, end) of a backtest: a trading day's session (18:00 New York the evening before to 17:00), or an
    explicit pair of aware datetimes; by default the trading day of the simulator's default start."""
    if day is not None and (start is not None or end is not None):
        raise InputError("give either day= or start= and end=, not both")
    if start is not None or end is not None:
        aware = isinstance(start, datetime) and isinstance(end, datetime) and None not in (start.tzinfo, end.tzinfo)
        if not aware:
            raise InputError(f"start and end must both be timezone-aware datetimes, got {start!r} and {end!r}")
        if not start < end:
            raise InputError(f"start ({start}) must come before end ({end})")
        return start.astimezone(UTC), end.astimezone(UTC)
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise InputError(f"day must be a date or YYYY-MM-DD, got {day!r}") from None
    if day is None:
        day = trading_day(DEFAULT_START)
    if not isinstance(day, date) or isinstance(day, datetime):
        raise InputError(f"day must be a date or YYYY-MM-DD, got {day!r}")
    if not is_trading_day(day):
        raise InputError(f"{day} is not a trading day (a weekend or exchange holiday)")
    opens, closes = session_bounds(day)
    return opens.astimezone(UTC), closes.astimezone(UTC)


def _symbols(symbols: str | Sequence[str]) -> list[str]:
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    if not names or not all(isinstance(s, str) and s.strip() for s in names):
        raise InputError(f"give one or more instrument symbols, got {symbols!r}")
    return list(dict.fromkeys(s.strip().upper() for s in names))


def suite_options(strategy: Strategy, start: datetime, end: datetime, timeframes: Sequence[str] = ()
                  ) -> SuiteOptions:
    """The options of a stepped suite for `strategy`: its timeframe and 1min (the report's prices), bars kept for
    the whole window, timers off (the stepper ticks)."""
    wanted = tuple(dict.fromkeys(["1min", strategy.timeframe, *timeframes]))
    for tf in wanted:
        Timeframe.parse(tf)
    minutes = int((end - start).total_seconds() // 60) + 60
    return SuiteOptions(timeframes=wanted, max_bars=max(2000, minutes), initial_days=1.0, timers=False)


async def run_stepped(strategy: Strategy, suite: TradingSuite, sim: Simulator, settle: Settle, *, end: datetime,
                      step: float = 0.25, seed: int = 1) -> BacktestResult:
    """Run `strategy` on a suite over `sim` (manual clock, at the window's start) until `end`; the same loop for
    a backtest in process and for a run over sockets. The suite stays open."""
    start = sim.clock.now()
    balance = suite.router.account.balance
    runner = StrategyRunner(strategy, suite, stepped=True)
    curve = EquityCurve(suite, balance)
    stepper = Stepper(sim, suite, runner, settle, step=step, after_step=curve)
    await runner.start()
    await stepper.run(end)
    await runner.stop()
    await settle()
    curve.final(sim.clock.now_us())
    symbols = {ctx.instrument_info.id: symbol for symbol, ctx in suite.items()}
    orders = await suite.client.search_orders(start, end + _SEARCH_TAIL)
    fills = await suite.client.search_trades(start, end + _SEARCH_TAIL)
    trades, equity = trades_frame(fills, symbols), curve.frame()
    prices = pl.concat([ctx.data.bars["1min"].frame().filter(pl.col("timestamp") >= start, pl.col("timestamp") < end)
                        .select(pl.lit(symbol).alias("symbol"), pl.all()) for symbol, ctx in suite.items()])
    return BacktestResult(type(strategy).__name__, strategy.params, tuple(suite), start, end, seed, balance,
                          orders_frame(orders, symbols), trades, equity, prices, stepper.ticks,
                          summary(trades, equity, balance))


async def backtest(strategy: Strategy, symbols: str | Sequence[str], *, day: date | str | None = None,
                   start: datetime | None = None, end: datetime | None = None, seed: int = 1, step: float = 0.25,
                   timeframes: Sequence[str] = (), trades_per_minute: float = 60.0,
                   recording: str | os.PathLike[str] | None = None) -> BacktestResult:
    """Backtest `strategy` on `symbols` over one trading day (`day`, default the simulator's default day) or
    [start, end) of the simulator's market with `seed` (`trades_per_minute` per instrument on average),
    stepping its clock by `step` seconds. With `recording` (a directory `suite.record` or `pxkit record` wrote)
    the recorded prints are the market instead, from the first of them if the window starts earlier.

    >>> result = await backtest(MyStrategy(fast=5), ["MNQ", "MGC"], day="2026-03-03")  # doctest: +SKIP
    """
    if not isinstance(strategy, Strategy):
        raise InputError(f"give a Strategy instance, got {strategy!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    names = _symbols(symbols)
    start, end = window(day, start, end)
    check_step(step)
    if (isinstance(trades_per_minute, bool) or not isinstance(trades_per_minute, int | float)
            or not 1 <= trades_per_minute <= 100_000):
        raise InputError(f"trades_per_minute must be a number from 1 to 100,000, got {trades_per_minute!r}")
    options = suite_options(strategy, start, end, timeframes)
    sim = Simulator(SimConfig(seed=seed, trades_per_minute=trades_per_minute, step_seconds=step), SimClock(start))
    if recording is not None:
        start = replay_into(sim.market, recording, start, end)
        sim.clock.set(to_us(start))
    gateway = InProcessGateway(sim)
    config = ProjectXConfig.for_simulator(f"http://backtest-{seed}.invalid", gateway.credentials.user_name,
                                          gateway.credentials.api_key, general_rate_limit=_UNLIMITED,
                                          history_rate_limit=_UNLIMITED)
    client = ProjectX(config, transport=gateway.transport())
    link = functools.partial(InProcessLink, gateway=gateway, clock=lambda: sim.clock.now_us() / 1e6)
    realtime = ProjectXRealtimeClient(config, client.tokens, rest=client, link=link)
    suite = await TradingSuite.assemble(client, realtime, names, options, clock=sim.clock.now)
    try:
        if suite.failures:
            raise InputError("; ".join(f"{s}: {e}" for s, e in suite.failures.items()))
        if recording is not None:
            check_replayed(sim.market, {symbol: ctx.instrument_info.id for symbol, ctx in suite.items()})
        return await run_stepped(strategy, suite, sim, functools.partial(routed, realtime), end=end, step=step,
                                 seed=seed)
    finally:
        await suite.close()

