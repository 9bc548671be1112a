"""Risk limits under concurrency: orders from tasks, another thread and an enforcement, checked on the simulator."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from conftest import ACCOUNT
from pxkit import EventType, OrderSide, RiskViolationError
from pxkit.enums import OrderType
from pxkit.instrument.orders import OrderHandle
from pxkit.payloads import RiskBreach
from pxkit.risk.rules import Rule
from pxkit.risk.store import IntentState
from pxkit.sim import SimServer
from suites import open_suite
from waiting import until

MNQ_ID, ES_ID = "CON.F.US.MNQ.H26", "CON.F.US.EP.H26"


class Peaks:
    """The most the simulator's exchange ever held for the account, measured after every change it pushes."""

    def __init__(self, sim: SimServer) -> None:
        self.exchange = sim.sim.exchange
        self.position: Counter[str] = Counter()  # contract -> the largest absolute position
        self.total = 0  # the most contracts across contracts at once
        self.working = 0  # the most working orders at once
        pushed = self.exchange.sink

        def observed(account_id: int, target: str, action: Any, payload: Any) -> None:
            pushed(account_id, target, action, payload)
            self.measure()

        self.exchange.sink = observed

    def measure(self) -> None:
        held = {p.contract_id: abs(p.size) for p in self.exchange.ledger.open_positions(ACCOUNT)}
        for contract, size in held.items():
            self.position[contract] = max(self.position[contract], size)
        self.total = max(self.total, sum(held.values()))
        self.working = max(self.working, len(self.exchange.open_orders(ACCOUNT)))

    def placed(self) -> Counter[str]:
        """How many orders the exchange accepted under each customTag."""
        return Counter(o.custom_tag for o in self.exchange.orders.values() if o.custom_tag)


async def outcomes(*work: Coroutine[Any, Any, OrderHandle]) -> list[OrderHandle | BaseException]:
    return await asyncio.gather(*work, return_exceptions=True)


async def test_concurrent_market_buys_never_pass_the_position_limit(sim: SimServer, tmp_path: Path) -> None:
    peaks = Peaks(sim)
    risk = {"max_position_size": 4, "db_path": tmp_path / "risk.sqlite3"}
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"], risk=risk) as suite:
        mnq = suite["MNQ"]
        results = await outcomes(*(mnq.orders.place_market_order(OrderSide.BUY, 1) for _ in range(12)))
        placed = [r for r in results if isinstance(r, OrderHandle)]
        assert len(placed) == 4
        assert all(isinstance(r, RiskViolationError) and r.rule == Rule.POSITION_SIZE
                   for r in results if r not in placed)
        await until(lambda: mnq.positions.size == 4, "the position of the four fills")
        assert peaks.position[MNQ_ID] == 4
        assert suite.risk.exposure.reserved == {}  # every reservation ended once its order was held


async def test_concurrent_limit_orders_never_pass_the_open_order_limit(sim: SimServer, tmp_path: Path) -> None:
    peaks = Peaks(sim)
    risk = {"max_open_orders": 10, "db_path": tmp_path / "risk.sqlite3"}
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"], risk=risk) as suite:
        mnq = suite["MNQ"]
        low = mnq.instrument_info.round_price(mnq.data.last_price - 50)
        results = await outcomes(*(mnq.orders.place_limit_order(OrderSide.BUY, 1, low - i) for i in range(20)))
        assert sum(isinstance(r, OrderHandle) for r in results) == 10
        assert sum(isinstance(r, RiskViolationError) and r.rule == Rule.OPEN_ORDERS for r in results) == 10
        await until(lambda: len(mnq.orders.working()) == 10, "the ten working orders")
        assert peaks.working == 10
        with_one_more = await outcomes(mnq.orders.place_limit_order(OrderSide.BUY, 1, low))
        assert isinstance(with_one_more[0], RiskViolationError)


def in_thread(work: Coroutine[Any, Any, list[OrderHandle | BaseException]]) -> tuple[threading.Thread, list]:
    """Run `work` with asyncio.run in a thread of its own (as a notebook widget or a script would)."""
    result: list = []
    thread = threading.Thread(target=lambda: result.extend(asyncio.run(work)), name="other-loop")
    thread.start()
    return thread, result


async def test_twenty_intents_from_tasks_a_thread_and_an_enforcement_hold_every_limit(sim: SimServer,
                                                                                     tmp_path: Path) -> None:
    peaks = Peaks(sim)
    risk = {"max_position_size": 4, "max_total_position_size": 6, "max_open_orders": 10, "lockout_minutes": 1,
            "trading_hours": ["mon-fri 09:00-09:31"], "db_path": tmp_path / "risk.sqlite3"}  # the sim opens 09:30
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"], features=["risk_manager"], risk=risk) as suite:
        mnq, es = suite["MNQ"], suite["ES"]
        mnq_low = mnq.instrument_info.round_price(mnq.data.last_price - 50)
        es_low = es.instrument_info.round_price(es.data.last_price - 20)
        breached = suite.event_bus.wait_for(EventType.RISK_BREACH, timeout=20)

        def market(context: Any, tag: str) -> Coroutine[Any, Any, OrderHandle]:
            return context.orders.place_order(OrderSide.BUY, 1, OrderType.MARKET, custom_tag=tag)

        def limit(context: Any, price: float, tag: str) -> Coroutine[Any, Any, OrderHandle]:
            return context.orders.place_order(OrderSide.BUY, 1, OrderType.LIMIT, limit_price=price, custom_tag=tag)

        thread, from_thread = in_thread(outcomes(*(market(es, f"thread-es-{i}") for i in range(3)),
                                                 *(limit(es, es_low - i, f"thread-es-limit-{i}") for i in range(3))))

        async def close_the_window() -> None:  # the enforcement: past 09:31 every position is flattened
            await until(lambda: mnq.positions.size > 0, "a first fill")
            await sim.advance(61)

        tags = [f"task-mnq-{i}" for i in range(8)] + [f"task-mnq-limit-{i}" for i in range(6)]
        results = await outcomes(*(market(mnq, tag) for tag in tags[:8]),
                                 *(limit(mnq, mnq_low - i, tag) for i, tag in enumerate(tags[8:])))
        await close_the_window()
        await asyncio.to_thread(thread.join, 20)
        assert not thread.is_alive() and len(from_thread) == 6
        thread_tags = [f"thread-es-{i}" for i in range(3)] + [f"thread-es-limit-{i}" for i in range(3)]
        outcome = dict(zip(tags + thread_tags, results + from_thread, strict=True))
        assert all(isinstance(r, OrderHandle | RiskViolationError) for r in outcome.values()), outcome
        admitted = {tag for tag, r in outcome.items() if isinstance(r, OrderHandle)}
        assert sum(t.startswith("task-mnq") for t in admitted) == 4  # the burst stops at the position limit
        assert sum(t.startswith("thread-es") for t in admitted) <= 2  # what the total leaves
        breach: RiskBreach = (await breached).data
        assert breach.violations[0].rule == Rule.TRADING_HOURS
        await until(lambda: not sim.sim.exchange.ledger.open_positions(ACCOUNT)
                    and not sim.sim.exchange.open_orders(ACCOUNT), "the account flattened")
        placed = peaks.placed()
        assert {tag: placed[tag] for tag in outcome} == {tag: int(tag in admitted) for tag in outcome}
        assert max(peaks.position.values()) <= 4 and peaks.total <= 6 and peaks.working <= 10
        store = suite.risk.store
        journal = {tag: await suite.risk.writer.run(store.intent, tag) for tag in outcome}
        assert {t for t, r in journal.items() if r is not None and r.state is IntentState.ACKNOWLEDGED} == admitted
        assert all(journal[t] is None for t in outcome if t not in admitted)  # refused before the journal


async def test_orders_from_another_threads_loop_pass_the_gate_on_the_suites_loop(sim: SimServer,
                                                                                 tmp_path: Path) -> None:
    risk = {"max_position_size": 2, "db_path": tmp_path / "risk.sqlite3"}
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"], risk=risk) as suite:
        mnq, gate = suite["MNQ"], suite.risk
        admitted_on: list[int] = []
        admit = gate.admit

        async def observed(request: Any) -> None:
            admitted_on.append(threading.get_ident())
            await admit(request)

        gate.admit = observed  # observed, not replaced: the real gate still decides

        async def trade() -> tuple[int, list[OrderHandle | BaseException]]:
            handle = await mnq.orders.place_market_order(OrderSide.BUY, 2)
            filled = await handle.wait_filled(timeout=10)
            return filled.fill_volume, await outcomes(mnq.orders.place_market_order(OrderSide.BUY, 1))

        done: list = []
        thread = threading.Thread(target=lambda: done.append(asyncio.run(trade(), debug=True)))
        thread.start()
        await asyncio.to_thread(thread.join, 20)
        (filled, (refused,)), = done
        assert filled == 2 and isinstance(refused, RiskViolationError) and refused.rule == Rule.POSITION_SIZE
        assert admitted_on == [threading.get_ident()] * 2
