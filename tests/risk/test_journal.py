"""The risk store off the event loop, and the intent journal telling what each caller was told."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCOUNT
from pxkit import EventType, OrderSide, RiskStateError
from pxkit.client.http import ProjectX
from pxkit.client.orders import build_order_request
from pxkit.config import ProjectXConfig
from pxkit.errors import OrderStateUnknownError
from pxkit.events import EventBus
from pxkit.instrument.orders import OrderManager
from pxkit.models import Contract
from pxkit.risk.manager import RiskManager
from pxkit.risk.rules import RiskConfig
from pxkit.risk.store import IntentState, RiskStore
from pxkit.risk.writer import StoreWriter
from pxkit.sim import SimServer
from suites import open_suite
from waiting import until

MNQ_ID = "CON.F.US.MNQ.H26"
MNQ = Contract(MNQ_ID, "MNQH6", "Micro E-mini Nasdaq-100: March 2026", 0.25, 0.5, True, "F.US.MNQ")


def order_places(sim: SimServer) -> int:
    return sum(1 for r in sim.requests if r.path.endswith("/Order/place"))


@contextlib.contextmanager
def locked(db: Path) -> Iterator[sqlite3.Connection]:
    """Another connection (as another process would) holding the file's write lock until the block ends."""
    other = sqlite3.connect(db, isolation_level=None, timeout=5)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield other
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_a_locked_store_never_stalls_the_loop(sim: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "risk.sqlite3"
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"], risk={"db_path": db}) as suite:
        mnq, loop, seen = suite["MNQ"], asyncio.get_running_loop(), []
        sent = order_places(sim)
        with locked(db):
            placing = asyncio.create_task(mnq.orders.place_market_order(OrderSide.BUY, 1))
            loop.call_later(0.01, seen.append, "timer")
            ticked = mnq.event_bus.wait_for(EventType.TICK, timeout=10)
            await sim.advance(30)
            await ticked  # a simulator push, routed to the instrument
            seen.append("push")
            await until(lambda: "timer" in seen, "the timer callback")
            assert not placing.done() and order_places(sim) == sent  # its journal write waits for the lock
        handle = await placing  # the lock is gone: journaled, then sent
        await handle.wait_filled(timeout=10)
        assert order_places(sim) == sent + 1


async def test_a_store_locked_after_the_place_still_gives_the_caller_its_order(sim: SimServer,
                                                                              tmp_path: Path) -> None:
    db = tmp_path / "risk.sqlite3"
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"], risk={"db_path": db}) as suite:
        mnq, exchange, lock = suite["MNQ"], sim.sim.exchange, contextlib.ExitStack()
        place = exchange.place

        def lock_then_place(request: Any) -> int:  # the file locks while the gateway takes the order
            lock.enter_context(locked(db))
            return place(request)

        exchange.place = lock_then_place
        with lock:
            handle = await mnq.orders.place_market_order(OrderSide.BUY, 1)
            exchange.place = place
            filled = await handle.wait_filled(timeout=10)
            assert exchange.orders[handle.id].custom_tag == filled.custom_tag
        record = await suite.risk.writer.run(suite.risk.store.intent, filled.custom_tag)  # after the queued writes
        assert (record.state, record.order_id) == (IntentState.ACKNOWLEDGED, handle.id)


async def test_a_failed_background_write_is_kept_logged_and_retried(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "risk.sqlite3"
    contract_request = build_order_request(MNQ, ACCOUNT, OrderSide.BUY, 1, 2, custom_tag="kept")
    store = RiskStore(db, busy_timeout=0.05)
    store.journal_intent(contract_request)
    store.mark_sent("kept")
    writer = StoreWriter(retry_after=0.05)
    with caplog.at_level(logging.ERROR, "pxkit.risk.writer"), locked(db):
        writer.submit("the acknowledgement of kept", store.mark_acknowledged, "kept", 7)
        await until(lambda: writer.kept == 1, "the failed write kept")
        assert "kept to try again" in caplog.text
    await until(lambda: writer.kept == 0, "the kept write landing once the lock is gone")
    assert (await writer.run(store.intent, "kept")).state is IntentState.ACKNOWLEDGED
    await writer.aclose(then=store.close)


@contextlib.asynccontextmanager
async def gated(sim: SimServer, db: Path, **options: Any) -> AsyncIterator[tuple[RiskManager, OrderManager]]:
    """A risk manager with a fast-failing store, and an MNQ order manager behind it, on the simulator."""
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url)) as px:
        await px.authenticate()
        manager = RiskManager(RiskConfig(db_path=db), px, ACCOUNT, clock=sim.sim.clock.now,
                              store=RiskStore(db, busy_timeout=0.05), **options)
        await manager.start({}, EventBus("suite"))
        orders = OrderManager(px, await px.get_instrument("MNQ"), EventBus("MNQ"), account_id=ACCOUNT, symbol="MNQ",
                              gate=manager)
        try:
            yield manager, orders
        finally:
            await manager.aclose()


async def test_an_intent_that_cannot_be_journaled_is_not_sent(sim: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "risk.sqlite3"
    async with gated(sim, db) as (manager, orders):
        sent = order_places(sim)
        with locked(db), pytest.raises(RiskStateError, match="locked"):
            await orders.place_market_order(OrderSide.BUY, 1)
        assert order_places(sim) == sent and manager.exposure.reserved == {}


async def test_an_order_of_unknown_fate_is_journaled_unknown_and_settled_by_its_tag(sim: SimServer,
                                                                                  tmp_path: Path) -> None:
    db = tmp_path / "risk.sqlite3"
    async with gated(sim, db, recheck_interval=0.05, intent_grace=1.0) as (manager, orders):
        late, lost = (build_order_request(orders.contract, ACCOUNT, OrderSide.BUY, 1, 2, custom_tag=tag)
                      for tag in ("comes-late", "never-comes"))
        for request in (late, lost):
            await manager.admit(request)
            manager.settled(request, None, OrderStateUnknownError("lost", custom_tag=request.custom_tag))
        journal = {tag: await manager.writer.run(manager.store.intent, tag) for tag in ("comes-late", "never-comes")}
        assert {r.state for r in journal.values()} == {IntentState.UNKNOWN}
        assert set(manager.exposure.reserved) == {"comes-late", "never-comes"}  # counted while unknown
        placed = await manager.client.place_order(MNQ_ID, OrderSide.BUY, 1, custom_tag="comes-late")  # acted late
        await until(lambda: "never-comes" not in manager.exposure.reserved, "the grace period to pass")
        late_record = await manager.writer.run(manager.store.intent, "comes-late")
        lost_record = await manager.writer.run(manager.store.intent, "never-comes")
        assert (late_record.state, late_record.order_id) == (IntentState.ACKNOWLEDGED, placed.order_id)
        assert lost_record.state is IntentState.FAILED and "not on the gateway" in lost_record.error


async def test_an_intent_the_gateway_acts_on_after_a_restart_is_acknowledged_not_failed(sim: SimServer,
                                                                                      tmp_path: Path) -> None:
    db = tmp_path / "risk.sqlite3"
    tag = "acted-on-late"
    with RiskStore(db) as store:
        low = round(sim.sim.market.price(MNQ_ID, sim.sim.market.last_trade(MNQ_ID, sim.sim.clock.now_us())[0]) - 50)
        request = build_order_request(MNQ, ACCOUNT, OrderSide.BUY, 1, 1, limit_price=float(low),
                                      custom_tag=tag)
        store.journal_intent(request, at=sim.sim.clock.now())
        store.mark_sent(tag, at=sim.sim.clock.now())  # the process died here; the gateway has not acted yet
    risk = {"max_open_orders": 1, "db_path": db}
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"], risk=risk) as suite:
        assert set(suite.risk.exposure.reserved) == {tag}  # counted as exposure while unresolved
        with pytest.raises(Exception, match="working orders"):
            await suite["MNQ"].orders.place_limit_order(OrderSide.BUY, 1, float(low - 1))
        placed = await suite.client.place_order(MNQ_ID, OrderSide.BUY, 1, order_type=1, limit_price=float(low),
                                                custom_tag=tag)  # the gateway acts on the old request now
        await until(lambda: tag not in suite.risk.exposure.reserved, "the pushed order to settle the intent")
        record = await suite.risk.writer.run(suite.risk.store.intent, tag)
        assert (record.state, record.order_id) == (IntentState.ACKNOWLEDGED, placed.order_id)
