"""The risk manager live on the simulated gateway: refusals before the wire, enforcement after fills, restarts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import ACCOUNT
from pxkit import EventType, OrderSide, RiskStateError, RiskViolationError
from pxkit.client.http import ProjectX
from pxkit.client.orders import build_order_request
from pxkit.config import ProjectXConfig
from pxkit.events import EventBus
from pxkit.hours import trading_day
from pxkit.payloads import RiskBreach
from pxkit.risk.manager import RiskManager
from pxkit.risk.rules import OrderIntent, RiskConfig, Rule, trading_day_bounds
from pxkit.risk.store import IntentState, RiskStore
from pxkit.sim import SimServer
from pxkit.times import to_us
from suites import open_suite
from waiting import until

MNQ_ID = "CON.F.US.MNQ.H26"
CONTRACTS_BY_SYMBOL = {"MNQ": MNQ_ID, "ES": "CON.F.US.EP.H26"}


def order_places(sim: SimServer) -> int:
    return sum(1 for r in sim.requests if r.path.endswith("/Order/place"))


async def test_orders_breaking_a_limit_are_refused_before_the_wire(sim: SimServer, tmp_path: Path) -> None:
    risk = {"max_position_size": 2, "max_open_orders": 1, "db_path": tmp_path / "risk.sqlite3"}
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"], risk=risk) as suite:
        mnq = suite["MNQ"]
        assert mnq.risk_manager is suite.risk
        sent = order_places(sim)
        low = mnq.instrument_info.round_price(mnq.data.last_price - 20)
        resting = await mnq.orders.place_limit_order(OrderSide.BUY, 1, low)
        await until(lambda: resting.order is not None, "the resting order")
        with pytest.raises(RiskViolationError) as too_many:
            await mnq.orders.place_limit_order(OrderSide.BUY, 1, low - 1)
        assert (too_many.value.rule, too_many.value.limit, too_many.value.value) == (Rule.OPEN_ORDERS, 1, 2)
        await mnq.orders.cancel_order(resting)
        await resting.wait_done(timeout=10)
        with pytest.raises(RiskViolationError) as too_big:
            await mnq.orders.place_market_order(OrderSide.BUY, 3)
        assert (too_big.value.rule, too_big.value.limit, too_big.value.value) == (Rule.POSITION_SIZE, 2, 3)
        assert order_places(sim) == sent + 1
        await (await mnq.orders.place_market_order(OrderSide.BUY, 2)).wait_filled(timeout=10)
        await until(lambda: mnq.positions.size == 2, "the position")
        with pytest.raises(RiskViolationError, match="position"):
            await mnq.orders.place_market_order(OrderSide.BUY, 1)
        high = mnq.instrument_info.round_price(mnq.data.last_price + 20)
        target = await mnq.orders.place_limit_order(OrderSide.SELL, 1, high)  # reduces: always allowed
        exit_too = await mnq.orders.place_limit_order(OrderSide.SELL, 1, high + 1)  # past the order limit, reduces
        assert order_places(sim) == sent + 4
        store = suite.risk.store
        await until(lambda: target.order is not None and exit_too.order is not None, "the exits")
        assert store.intent(target.order.custom_tag).state is IntentState.ACKNOWLEDGED
        assert store.intent(resting.order.custom_tag).order_id == resting.id


async def test_a_fill_past_the_daily_loss_is_enforced_within_a_second(sim: SimServer, tmp_path: Path) -> None:
    risk = {"max_daily_loss": 5.0, "db_path": tmp_path / "risk.sqlite3"}
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"], features=["risk_manager"], risk=risk) as suite:
        mnq, es = suite["MNQ"], suite["ES"]
        far = es.instrument_info.round_price(es.data.last_price - 50)
        resting = await es.orders.place_limit_order(OrderSide.BUY, 1, far)
        await until(lambda: resting.order is not None, "the resting ES order")
        marks: dict[str, float] = {}
        mnq.event_bus.on(EventType.ORDER_FILLED, lambda e: marks.setdefault("fill", time.monotonic()))
        breached = suite.event_bus.wait_for(EventType.RISK_BREACH, timeout=10)
        mnq.event_bus.on(EventType.RISK_BREACH, lambda e: marks.setdefault("breach", time.monotonic()))
        await mnq.orders.place_market_order(OrderSide.BUY, 20)  # the fees alone (20 x 0.37) pass 5 USD
        breach: RiskBreach = (await breached).data
        assert marks["breach"] - marks["fill"] < 1.0
        assert breach.verified and breach.violations[0].rule == Rule.DAILY_LOSS
        assert breach.lockout_until == trading_day_bounds(trading_day(sim.sim.clock.now()))[1]
        assert await suite.client.search_open_positions() == []
        assert await suite.client.search_open_orders() == []
        store = suite.risk.store
        assert store.active_lockout(ACCOUNT, sim.sim.clock.now()).rule == Rule.DAILY_LOSS
        log = store.enforcement_log(ACCOUNT)
        assert log[0].rule == Rule.DAILY_LOSS and log[0].outcome == "verified"
        realised, fees = suite.risk.daily_realized()
        day = store.daily_pnl(ACCOUNT, trading_day(sim.sim.clock.now()))
        assert (day.realised, day.fees) == (realised, fees) and realised - fees < -5
        with pytest.raises(RiskViolationError) as locked:
            await es.orders.place_market_order(OrderSide.BUY, 1)
        assert locked.value.rule == Rule.LOCKOUT
        await sim.advance(5)
        assert len(store.enforcement_log(ACCOUNT)) == len(log)  # flat and locked: nothing more to enforce


KILLED_RUN = textwrap.dedent("""
    import asyncio, sys
    from pxkit import EventType, OrderSide, ProjectXConfig, TradingSuite

    async def main():
        suite = await TradingSuite.create(["MNQ"], timeframes=["1min"], features=["risk_manager"],
                                          config=ProjectXConfig.for_simulator(sys.argv[1]),
                                          risk={"max_daily_loss": 5.0, "db_path": sys.argv[2]})
        breached = suite.event_bus.wait_for(EventType.RISK_BREACH, timeout=20)
        await suite["MNQ"].orders.place_market_order(OrderSide.BUY, 20)
        await breached
        print("locked", flush=True)
        await asyncio.Event().wait()  # killed here, never closed

    asyncio.run(main())
""")


async def test_a_lockout_and_the_daily_pnl_survive_a_killed_process(sim: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "risk.sqlite3"
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, sim.base_url, str(db)], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = await asyncio_readline(child)
        assert line.strip() == "locked"
    finally:
        child.kill()
        child.wait(10)
    now = sim.sim.clock.now()
    with RiskStore(db) as store:
        lockout = store.active_lockout(ACCOUNT, now)
        stored = store.daily_pnl(ACCOUNT, trading_day(now))
    assert lockout is not None and stored is not None and stored.net < -5
    risk = {"max_daily_loss": 5.0, "db_path": db}
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"], risk=risk) as suite:
        assert suite.risk.daily_realized() == (stored.realised, stored.fees)
        with pytest.raises(RiskViolationError) as locked:
            await suite["MNQ"].orders.place_market_order(OrderSide.BUY, 1)
        assert locked.value.rule in (Rule.LOCKOUT, Rule.DAILY_LOSS)
        assert suite.risk.lockout() == lockout.until
        sim.sim.clock.set(to_us(lockout.until + timedelta(minutes=1)))  # the next trading day
        placed = await suite["MNQ"].orders.place_market_order(OrderSide.BUY, 1)
        await placed.wait_filled(timeout=10)
        assert suite.risk.lockout() is None


async def test_an_intent_sent_before_a_crash_is_found_by_its_tag_not_placed_again(sim: SimServer,
                                                                                  tmp_path: Path) -> None:
    db = tmp_path / "risk.sqlite3"
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"],
                          risk={"db_path": db}) as suite:
        mnq = suite["MNQ"]
        request_tag = "intent-before-crash"
        request = build_order_request(mnq.instrument_info, ACCOUNT, OrderSide.BUY, 1, 2, custom_tag=request_tag)
        suite.risk.store.journal_intent(request, at=sim.sim.clock.now())
        suite.risk.store.mark_sent(request_tag, at=sim.sim.clock.now())
        await suite.client.place_order(MNQ_ID, OrderSide.BUY, 1, custom_tag=request_tag)  # acknowledged: never
    with RiskStore(db) as store:
        assert store.intent(request_tag).state is IntentState.SENT
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"],
                          risk={"db_path": db}) as suite:
        record = await suite.risk.writer.run(suite.risk.store.intent, request_tag)  # after the queued writes
        assert record.state is IntentState.ACKNOWLEDGED
        orders = [o for o in await suite.client.search_orders() if o.custom_tag == request_tag]
        assert [o.id for o in orders] == [record.order_id]
        with pytest.raises(Exception, match="tag"):
            await suite["MNQ"].orders.place_order(OrderSide.BUY, 1, custom_tag=request_tag)
        assert [o for o in await suite.client.search_orders() if o.custom_tag == request_tag] == orders


async def asyncio_readline(process: subprocess.Popen) -> str:
    """Read one line of a child's stdout without blocking the loop (the simulator runs on it)."""
    return await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)


async def test_a_corrupt_risk_database_stops_the_suite_with_a_clear_error(sim: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "risk.sqlite3"
    db.write_bytes(b"not a database, and certainly not one with a lockout" * 100)
    before = db.read_bytes()
    with pytest.raises(RiskStateError, match=r"risk\.sqlite3"):
        async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"], risk={"db_path": db}):
            pass
    assert db.read_bytes() == before  # never replaced by a fresh, empty store
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("pxkit") and not t.done()]


async def test_when_the_days_trades_cannot_be_read_the_stored_pnl_carries_on(sim: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "risk.sqlite3"
    day = trading_day(sim.sim.clock.now())
    with RiskStore(db) as store:
        store.set_daily_pnl(ACCOUNT, day, -42.5, 3.7)
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url, retry_attempts=1)) as px:
        await px.authenticate()
        manager = RiskManager(RiskConfig(max_daily_loss=40.0, db_path=db), px, ACCOUNT, clock=sim.sim.clock.now)
        sim.faults.reject_next(10, status=503)
        await manager.start({}, EventBus("suite"))
        sim.faults.clear()
        assert manager.daily_realized() == (-42.5, 3.7)
        manager._persist_day()
        stored = await manager.writer.run(manager.store.daily_pnl, ACCOUNT, day)  # after any queued write
        assert stored.net == pytest.approx(-46.2)  # not overwritten with zero
        state = await manager.state()
        assert state.daily_pnl == pytest.approx(-46.2)
        with pytest.raises(RiskViolationError) as refused:
            manager.rules.check_order(OrderIntent(MNQ_ID, OrderSide.BUY, 1), state)
        assert refused.value.rule == Rule.DAILY_LOSS
        await manager.aclose()


async def test_positions_over_the_limits_at_start_up_are_reduced_not_flattened(sim: SimServer, tmp_path: Path) -> None:
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"]) as free:  # no risk manager: no limits
        for symbol, side, size in (("MNQ", OrderSide.BUY, 3), ("ES", OrderSide.SELL, 2)):
            await (await free[symbol].orders.place_market_order(side, size)).wait_filled(timeout=10)
    risk = {"max_total_position_size": 3, "position_limits": {"ES": 1}, "lockout_minutes": 0, "db_path": tmp_path / "r"}
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"], features=["risk_manager"], risk=risk) as suite:
        breach: RiskBreach = (await suite.event_bus.wait_for(EventType.RISK_BREACH, timeout=10)).data
        assert [v.rule for v in breach.violations] == [Rule.POSITION_SIZE, Rule.TOTAL_POSITION_SIZE]
        assert breach.actions == ("reduced ES by 1", "reduced MNQ by 1") and breach.verified
        assert breach.lockout_until is None  # lockout_minutes 0: reduce, do not lock
        positions = {p.contract_id: p.size for p in await suite.client.search_open_positions()}
        assert positions == {CONTRACTS_BY_SYMBOL["MNQ"]: 2, CONTRACTS_BY_SYMBOL["ES"]: 1}
        log = suite.risk.store.enforcement_log(ACCOUNT)
        assert {r.rule for r in log} == {Rule.POSITION_SIZE, Rule.TOTAL_POSITION_SIZE}
        assert all(r.outcome == "verified" for r in log)
