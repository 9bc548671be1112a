"""Account state over a long session: 10,000 fills through the real Router and managers leave every per-account
structure within its stated cap, with the position and P&L still right; unsubscribing drops the reconciler."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import ACCOUNT
from pxkit.client import account_state
from pxkit.client.http import ProjectX
from pxkit.client.hublink import LinkSettings
from pxkit.client.realtime import USER, ProjectXRealtimeClient
from pxkit.client.reconcile import StateReconciler
from pxkit.config import ProjectXConfig
from pxkit.enums import LinkState, OrderSide, OrderStatus, OrderType, PositionType, UserAction
from pxkit.events import EventBus
from pxkit.instrument import orders as order_manager
from pxkit.instrument import positions as position_manager
from pxkit.instrument.brackets import Tracking
from pxkit.instrument.context import InstrumentContext
from pxkit.instrument.data import RealtimeDataManager
from pxkit.instrument.orders import OrderManager
from pxkit.instrument.positions import PositionManager
from pxkit.messages import AccountPushed, OrderPushed, PositionPushed, Reconciled, UserTradePushed
from pxkit.models import Account, Contract, Order, Position, Trade
from pxkit.risk import manager as risk_manager
from pxkit.risk.manager import RiskManager
from pxkit.risk.rules import RiskConfig
from pxkit.router import Router
from pxkit.sim import SimServer
from waiting import until

FILLS = 10_000
START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # 09:30 New York: 10,000 fills a second apart stay in one day
PUSHED = {Order: OrderPushed, Position: PositionPushed, Trade: UserTradePushed, Account: AccountPushed}
FAST = LinkSettings(backoff=(0, 0.2, 0.5, 1.0), stale_after=1.5, keepalive_interval=0.5, connect_timeout=3)


class Session:
    """Decoded user pushes of a day of round trips, one fill a second, fed to a router on a clock they move."""

    def __init__(self, router: Router, contract: Contract) -> None:
        self.router, self.contract = router, contract
        self.now = START
        self.received = time.time() - 2 * FILLS  # arrival times, all before anything read from the gateway now
        self.fills: dict[int, Trade] = {}
        self.rng = random.Random(11)

    def push(self, model: Order | Position | Trade | Account, action: UserAction = UserAction.UPDATED) -> None:
        self.received += 0.001
        self.router.route(PUSHED[type(model)](model, action, self.received))

    def fill(self, n: int) -> None:
        """Fill n: a market order filled, its fill, the position it leaves; every 500th voids the fill 10 before."""
        self.now = START + timedelta(seconds=n)
        side = OrderSide.BUY if n % 2 == 0 else OrderSide.SELL
        price = round(20_000 + self.rng.randint(-40, 40) * self.contract.tick_size, 2)
        order = Order(n + 1, ACCOUNT, self.contract.id, self.now, OrderStatus.FILLED, OrderType.MARKET, side, 1,
                      update_timestamp=self.now, fill_volume=1, filled_price=price)
        opening = self.fills.get(n) if side is OrderSide.SELL else None
        pnl = None if opening is None else round((price - opening.price) / self.contract.tick_size
                                                 * self.contract.tick_value, 2)
        trade = Trade(n + 1, ACCOUNT, self.contract.id, self.now, price, 0.37, side, 1, order.id, pnl)
        self.fills[n + 1] = trade
        self.push(order)
        self.push(trade, UserAction.CREATED)
        size = 1 if side is OrderSide.BUY else 0
        self.push(Position(7, ACCOUNT, self.contract.id, START, PositionType.LONG, size, price),
                  UserAction.UPDATED if size else UserAction.DELETED)
        if n % 500 == 499:
            voided = self.fills[n - 9] = Trade(**{**vars_of(self.fills[n - 9]), "voided": True})
            self.push(voided)
        if n % 100 == 0:
            self.push(Account(ACCOUNT, "PRAC-1001", 50_000.0 + n, True, True, True))


def vars_of(trade: Trade) -> dict:
    return {name: getattr(trade, name) for name in Trade.__dataclass_fields__}


async def test_10000_fills_leave_every_account_structure_within_its_cap(sim: SimServer, tmp_path: Path) -> None:
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url)) as px:
        account, contract = await px.authenticate(), await px.get_instrument("MNQ")
        clock: list[datetime] = [START]
        router = Router(account, EventBus("suite"), lambda: clock[0])
        bus = EventBus("MNQ")
        data = RealtimeDataManager(px, contract, bus, symbol="MNQ")
        context = InstrumentContext("MNQ", contract, data,
                                    OrderManager(px, contract, bus, account_id=ACCOUNT, symbol="MNQ"),
                                    PositionManager(px, contract, bus, account_id=ACCOUNT, symbol="MNQ",
                                                    last_price=lambda: None), bus)
        router.add(context)
        risk = RiskManager(RiskConfig(db_path=tmp_path / "risk.sqlite3", max_daily_loss=1e9, max_position_size=100),
                           px, ACCOUNT, clock=lambda: clock[0])  # rules evaluated on every fill, never breached
        await risk.start({"MNQ": context}, router.suite_bus)
        reconciler = StateReconciler(px, ACCOUNT, router.state, pushes_received=lambda kind: 0)
        router.route(Reconciled(USER, ACCOUNT, await reconciler.prime()))  # the gateway's truth to start from
        assert router.primed.is_set() and router.state.known_until is not None
        session = Session(router, contract)
        try:
            for n in range(FILLS):
                clock[0] = START + timedelta(seconds=n)
                session.fill(n)
            assert router.stats.errors == {}
            booked = [t for t in session.fills.values() if not t.voided]
            realised = round(sum(t.profit_and_loss or 0.0 for t in booked), 2)
            fees = round(sum(t.fees for t in booked), 2)
            assert len(booked) == FILLS - FILLS // 500 and realised != 0
            pm = context.positions
            assert (pm.size, pm.realized_pnl, pm.fees) == (0, realised, fees)
            assert risk.daily_realized() == (realised, fees)
            assert router.account.balance == 50_000.0 + (FILLS - 1) // 100 * 100

            state = router.state.sizes()
            window = int(account_state.KEEP.total_seconds()) + 1  # one fill and one order end a second
            assert state["orders"] == state["positions"] == 0
            assert state["trades"] <= min(window, account_state.MAX_TRADES)
            assert state["ended"] <= min(window, account_state.MAX_ENDED)
            assert state["times"] <= state["trades"] + state["ended"] + 2  # the ended orders, a contract, the account
            assert pm.sizes() == {"fills": position_manager.MAX_FILLS, "fill_listeners": 1}
            assert context.orders.tracking() == Tracking(orders=order_manager.MAX_ENDED, ended=order_manager.MAX_ENDED,
                                                         evicted=order_manager.MAX_ENDED, waiters=0, claimed=0,
                                                         brackets=0, links=0, tasks=0)
            sizes = risk.sizes()
            assert sizes["counted_fills"] == risk_manager.MAX_COUNTED_FILLS
            assert (sizes["unknown"], sizes["exposure_reserved"], sizes["exposure_fills"],
                    sizes["exposure_positioned"]) == (0, 0, 0, 0)
        finally:
            await risk.aclose()


async def test_unsubscribing_an_account_drops_its_reconciler(sim: SimServer) -> None:
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url)) as px:
        account = await px.authenticate()
        rt = ProjectXRealtimeClient(px.config, px.tokens, settings=FAST, rest=px)
        router = Router(account, EventBus("suite"), sim.sim.clock.now)
        seen: list[object] = []

        async def route() -> None:
            async for item in rt.stream(USER):
                seen.append(item)
                router.route(item)

        routing = asyncio.create_task(route())
        try:
            await rt.connect()
            await rt.subscribe_user(ACCOUNT, router.state)
            await asyncio.wait_for(router.primed.wait(), 5)

            def reconnected(since: int) -> bool:
                return any(getattr(item, "state", None) is LinkState.RECONNECTED for item in seen[since:])

            since = len(seen)
            assert sim.drop_hub_connections() >= 1
            await until(lambda: reconnected(since), "the user hub back")
            assert [type(item) for item in seen[since:]].count(Reconciled) == 1  # reconciled after the reconnect

            await rt.unsubscribe_user(ACCOUNT)
            since, requests = len(seen), len(sim.requests)
            assert sim.drop_hub_connections() >= 1
            await until(lambda: reconnected(since), "the user hub back")
            assert not any(isinstance(item, Reconciled) for item in seen[since:])  # no reconciler is left
            reads = [r.path for r in sim.requests[requests:]]
            assert not any(path.startswith(("/api/Order", "/api/Position", "/api/Trade")) for path in reads)
        finally:
            await rt.disconnect()
            await asyncio.wait_for(routing, 5)
