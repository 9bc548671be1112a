"""Chaos soak: a three-instrument suite trades through hub drops, a token expiry, a hub outage and REST fault bursts,
then everything it knows equals the simulator's truth and nothing it started is left running.

`run_chaos(plan)` is the whole scenario, seeded and bounded; the test runs the short plan, and
tests/bench/soak.py runs the same scenario over eight simulated hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from pxkit import EventType, OrderSide, ProjectXConfig, TradingSuite
from pxkit.errors import OrderStateUnknownError, PxError
from pxkit.events import Event
from pxkit.sim import HubSettings, Limit, SimConfig, SimServer
from suites import FAST

SYMBOLS = ("MNQ", "ES", "MGC")
TIMEFRAMES = ("1min", "5min")
ACCOUNT = 1001
LIMITS = {"history": Limit(100_000, 1.0), "general": Limit(100_000, 1.0)}  # faults come from the plan, not limits
WAIT = 30.0  # wall seconds any single wait may take


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    """What to do to the suite, in simulated seconds from the start."""

    seed: int = 7
    duration: float = 330.0  # a little over one 5min bar
    drop_gap: tuple[float, float] = (4.0, 12.0)  # simulated seconds between hub drops
    orders: int = 100
    bursts: int = 6  # REST fault bursts (503 and 429, two or three requests each)
    outage: float = 10.0  # wall seconds the hubs refuse connections, once, at 60 % of the run
    warm_up: float = 0.1  # share of the run after which `on_phase("warm-up")` is called


@dataclass
class ChaosReport:
    """What happened, and every difference found between the suite's view and the simulator's truth."""

    drops: int = 0
    reconnects: int = 0
    faults: int = 0
    orders: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # error type -> how many orders it refused
    unknown: int = 0
    cancels: int = 0
    fills: int = 0
    bars: int = 0
    wall_seconds: float = 0.0
    mismatches: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"chaos: reconnects survived {self.reconnects} (hub drops {self.drops}, one outage, one token expiry)",
                f"chaos: faults injected {self.faults} REST rejections",
                f"chaos: orders {self.orders} placed (refused {self.refused or 'none'}, {self.unknown} of unknown "
                f"state, {self.cancels} cancels)",
                f"chaos: fills {self.fills}, closed bars compared {self.bars}, wall {self.wall_seconds:.1f} s"]


def _schedule(plan: ChaosPlan, rng: random.Random) -> list[tuple[float, str, Any]]:
    """Every action of the run at its simulated time, drawn from the seed."""
    events: list[tuple[float, str, Any]] = []
    t = rng.uniform(*plan.drop_gap)
    while t < plan.duration * 0.95:
        events.append((t, "drop", None))
        t += rng.uniform(*plan.drop_gap)
    for _ in range(plan.orders):
        limit = rng.random() < 0.4
        events.append((rng.uniform(2.0, plan.duration * 0.95), "order",
                       (rng.choice(SYMBOLS), rng.choice((OrderSide.BUY, OrderSide.SELL)), rng.choice((1, 1, 2)),
                        rng.randint(-3, 6) if limit else None, rng.random() < 0.25)))
    for n in range(plan.bursts):
        status = 503 if n % 2 == 0 else 429
        events.append((rng.uniform(2.0, plan.duration * 0.95), "burst", (rng.choice((2, 3)), status)))
    events += [(plan.duration * 0.4, "expire", None), (plan.duration * 0.6, "outage", plan.outage),
               (plan.duration * plan.warm_up, "warm", None)]
    return sorted(events, key=lambda e: e[0])


async def _bounded(cond: Callable[[], Any], what: str, timeout: float = WAIT) -> bool:
    """Poll `cond` until true or `timeout` wall seconds pass; answers whether it came true."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class _Run:
    """One chaos run against one suite and its simulator."""

    def __init__(self, plan: ChaosPlan, sim: SimServer, suite: TradingSuite, on_phase: Callable[[str], None]):
        self.plan, self.sim, self.suite, self.on_phase = plan, sim, suite, on_phase
        self.report = ChaosReport()
        self.back = {"market": 0, "user": 0}
        self.resting: list[tuple[str, int]] = []
        suite.event_bus.on(EventType.RECONNECTED, self._reconnected)

    def _reconnected(self, event: Event) -> None:
        if event.source in self.back:
            self.back[event.source] += 1

    async def _advance_to(self, t: float, start_us: int) -> None:
        ahead = start_us + int(t * 1_000_000) - self.sim.sim.clock.now_us()
        if ahead > 0:
            await self.sim.advance(ahead / 1_000_000)

    async def play(self) -> None:
        start_us = self.sim.sim.clock.now_us()
        for t, kind, args in _schedule(self.plan, random.Random(self.plan.seed)):
            await self._advance_to(t, start_us)
            await getattr(self, f"_{kind}")(args)
        await self._advance_to(self.plan.duration, start_us)
        if not await _bounded(self._both_up, "both hubs back at the end"):
            self.report.mismatches.append(f"hubs not back at the end: {self.back}, drops {self.report.drops}")

    def _both_up(self) -> bool:
        drops = self.report.drops
        return min(self.back.values()) >= drops and all(self.suite.realtime.connected(h) for h in self.back)

    async def _drop(self, _: None) -> None:
        if not await _bounded(self._both_up, "both hubs back before the next drop"):
            self.report.mismatches.append(f"hubs not back before drop {self.report.drops + 1}: {self.back}")
            return
        self.report.drops += 1
        self.sim.drop_hub_connections()

    async def _order(self, args: tuple[str, OrderSide, int, int | None, bool]) -> None:
        symbol, side, size, offset, cancel_one = args
        ctx = self.suite[symbol]
        self.report.orders += 1
        try:
            if offset is None:
                await ctx.orders.place_market_order(side, size)
            else:
                tick = ctx.instrument_info.tick_size
                last = self.sim.sim.market.price(ctx.contract_id, self.sim.sim.market.last_trade(
                    ctx.contract_id, self.sim.sim.clock.now_us())[0])
                price = last - side.sign * offset * tick  # positive offsets rest on the passive side
                handle = await ctx.orders.place_limit_order(side, size, ctx.instrument_info.round_price(price))
                self.resting.append((symbol, handle.id))
        except OrderStateUnknownError:
            self.report.unknown += 1
        except PxError as exc:
            name = type(exc).__name__
            self.report.refused[name] = self.report.refused.get(name, 0) + 1
        if cancel_one and self.resting:
            symbol, order_id = self.resting.pop(0)
            self.report.cancels += 1
            with contextlib.suppress(PxError):  # it may have filled or ended meanwhile: the truth check covers it
                await self.suite[symbol].orders.cancel_order(order_id)

    async def _burst(self, args: tuple[int, int]) -> None:
        count, status = args
        self.report.faults += count
        self.sim.faults.reject_next(count, status, retry_after=0.2 if status == 429 else None)

    async def _expire(self, _: None) -> None:
        self.sim.expire_tokens()

    async def _outage(self, seconds: float) -> None:
        if await _bounded(self._both_up, "both hubs up before the outage"):
            self.report.drops += 1  # one more reconnect of each hub to survive
            self.sim.refuse_hubs(seconds)

    async def _warm(self, _: None) -> None:
        self.on_phase("warm-up")


def _truth_mismatches(sim: SimServer, suite: TradingSuite) -> list[str]:
    """Orders, positions, fills, fees and realised P&L the suite holds that differ from the simulator's books."""
    found: list[str] = []
    exchange, ledger = sim.sim.exchange, sim.sim.exchange.ledger
    by_contract = {ctx.contract_id: ctx for ctx in suite.values()}
    for order in exchange.orders.values():
        if order.account_id != ACCOUNT:
            continue
        truth = exchange.order_model(order)
        seen = by_contract[order.contract_id].orders.handle(order.id).order
        view = None if seen is None else (seen.status, seen.fill_volume, seen.filled_price, seen.size)
        if view != (truth.status, truth.fill_volume, truth.filled_price, truth.size):
            found.append(f"order {order.id} {order.contract_id}: suite {view}, simulator "
                         f"{(truth.status, truth.fill_volume, truth.filled_price, truth.size)}")
    for contract_id, ctx in by_contract.items():
        size = ledger.position(ACCOUNT, contract_id)
        state = ledger.positions.get((ACCOUNT, contract_id))
        average = round(state.average_ticks * ctx.instrument_info.tick_size, 9) if size else None
        if (ctx.positions.size, ctx.positions.average_price) != (size, average):
            found.append(f"position {contract_id}: suite {(ctx.positions.size, ctx.positions.average_price)}, "
                         f"simulator {(size, average)}")
        fills = [t for t in ledger.trades if t.account_id == ACCOUNT and t.contract_id == contract_id]
        truth_ids = sorted(t.id for t in fills)
        seen_ids = sorted(t.id for t in ctx.positions.trades)
        if seen_ids != truth_ids:
            found.append(f"fills {contract_id}: missing {sorted(set(truth_ids) - set(seen_ids))}, "
                         f"extra {sorted(set(seen_ids) - set(truth_ids))}")
        fees = round(sum(t.fees for t in fills), 2)
        realised = round(sum(t.profit_and_loss or 0.0 for t in fills), 2)
        if (ctx.positions.fees, ctx.positions.realized_pnl) != (fees, realised):
            found.append(f"fees/realised {contract_id}: suite {(ctx.positions.fees, ctx.positions.realized_pnl)}, "
                         f"simulator {(fees, realised)}")
    return found


async def _bar_mismatches(sim: SimServer, suite: TradingSuite, since: Any, report: ChaosReport) -> list[str]:
    """Closed bars built by the suite since `since` that differ from History/retrieveBars."""
    found: list[str] = []
    now = sim.sim.clock.now()
    for ctx in suite.values():
        for tf in TIMEFRAMES:
            series = ctx.data.bars[tf]
            width = timedelta(seconds=series.timeframe.seconds)
            end = since + ((now - since) // width) * width  # the forming bar starts here at the latest
            closed = await _bounded(lambda s=series, e=end, w=width: bool(s.bars()) and s.bars()[-1].timestamp
                                    >= e - w, f"{ctx.symbol} {tf} closed up to {end}")
            frame = series.frame()
            built = frame.filter((frame["timestamp"] >= since) & (frame["timestamp"] < end))
            unit, n = ("min", 1) if tf == "1min" else ("min", 5)
            truth = await suite.client.get_bars(ctx.contract_id, start_time=since, end_time=end, unit=unit,
                                                interval=n)
            report.bars += built.height
            if not closed or not built.equals(truth):
                found.append(f"bars {ctx.symbol} {tf} [{since}, {end}): suite {built.height} rows "
                             f"(closed in time: {closed}), gateway {truth.height} rows; first differing: "
                             f"{_first_difference(built.rows(), truth.rows())}")
    return found


def _first_difference(built: list[tuple], truth: list[tuple]) -> str:
    for mine, theirs in zip(built, truth, strict=False):
        if mine != theirs:
            return f"suite {mine} vs gateway {theirs}"
    return f"lengths {len(built)} vs {len(truth)}"


def _running() -> tuple[set[str], set[str]]:
    tasks = {f"{t.get_name()}:{t.get_coro().__qualname__}" for t in asyncio.all_tasks() if not t.done()}
    return tasks, {t.name for t in threading.enumerate()}


async def run_chaos(plan: ChaosPlan, on_phase: Callable[[str], None] = lambda phase: None) -> ChaosReport:
    """Run the whole scenario on a fresh simulator; every wait is bounded, so it always returns a report.

    `on_phase` is called with "warm-up" (after `plan.warm_up` of the run) and "end" (the run played and checked,
    the suite and the simulator still up).
    """
    started = time.monotonic()
    tasks_before, threads_before = _running()
    async with SimServer(config=SimConfig(seed=plan.seed), rate_limits=LIMITS,
                         hubs=HubSettings(ping_interval=0.5)) as sim:
        config = ProjectXConfig.for_simulator(sim.base_url).replace(
            history_rate_limit=(100_000, 1.0), general_rate_limit=(100_000, 1.0), retry_base_delay=0.05,
            retry_max_delay=0.5)
        suite = await TradingSuite.create(list(SYMBOLS), config=config, clock=sim.sim.clock.now, link_settings=FAST,
                                          timeframes=list(TIMEFRAMES))
        run = _Run(plan, sim, suite, on_phase)
        try:
            now = sim.sim.clock.now()
            since = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
            await run.play()
            sim.faults.clear()
            await sim.advance(2)
            if not await _bounded(lambda: not _truth_mismatches(sim, suite), "the suite to agree with the books"):
                run.report.mismatches += _truth_mismatches(sim, suite)
            run.report.mismatches += await _bar_mismatches(sim, suite, since, run.report)
            run.report.reconnects = min(run.back.values())
            run.report.fills = sum(len(ctx.positions.trades) for ctx in suite.values())
            on_phase("end")
        finally:
            await asyncio.wait_for(suite.close(), 10)
    # the loop's executor threads (signalrcore's blocking start and stop ran there) must all finish their work
    await asyncio.wait_for(asyncio.get_running_loop().shutdown_default_executor(), 10)
    gone = await _bounded(lambda: _running()[0] <= tasks_before and _running()[1] <= threads_before,
                          "every task and thread of the suite and the simulator to end", timeout=10)
    if not gone:
        tasks, threads = _running()
        run.report.leaked = sorted(tasks - tasks_before) + sorted(threads - threads_before)
    run.report.wall_seconds = time.monotonic() - started
    return run.report


@pytest.mark.timeout(600)  # about 25 s alone; every wait inside is bounded, so only a loaded machine needs more
async def test_a_suite_survives_chaos_and_ends_equal_to_the_simulator():
    report = await run_chaos(ChaosPlan())
    for line in report.lines():
        print(line)
    assert report.drops >= 30 and report.reconnects >= report.drops and report.orders == 100
    assert report.faults >= 12 and report.bars > 0
    assert report.mismatches == []
    assert report.leaked == []
