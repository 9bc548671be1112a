"""Trading fixture: a simulator on real sockets, ProjectX, the realtime client, and MNQ order/position managers fed
by the suite's Router."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from conftest import ACCOUNT, MNQ
from pxkit.client.http import ProjectX
from pxkit.client.realtime import MARKET, USER, ProjectXRealtimeClient
from pxkit.config import ProjectXConfig
from pxkit.enums import OrderStatus
from pxkit.events import Event, EventBus, EventType
from pxkit.instrument.context import InstrumentContext
from pxkit.instrument.data import RealtimeDataManager
from pxkit.instrument.orders import OrderManager
from pxkit.instrument.positions import PositionManager
from pxkit.messages import OrderPushed, PositionPushed, UserTradePushed
from pxkit.models import Contract, Order
from pxkit.router import Router, cancel
from pxkit.sim import SimConfig, SimServer
from pxkit.sim.app import HubSettings
from waiting import until


@dataclass
class Trading:
    """Everything a trading test needs; `events` records every event of the MNQ bus, `pushes` every user push."""

    sim: SimServer
    px: ProjectX
    rt: ProjectXRealtimeClient
    contract: Contract
    bus: EventBus
    data: RealtimeDataManager
    orders: OrderManager
    positions: PositionManager
    events: list[Event] = field(default_factory=list)
    pushes: list[OrderPushed | PositionPushed | UserTradePushed] = field(default_factory=list)

    @property
    def last_price(self) -> float | None:
        """The last MNQ price quoted on the market hub."""
        return self.data.last_price

    def of(self, *kinds: EventType, order_id: int | None = None) -> list[EventType]:
        """Types of the recorded bus events of those kinds (all kinds when none given), optionally for one order."""
        return [e.type for e in self.events if (not kinds or e.type in kinds)
                and (order_id is None or getattr(e.data, "id", None) == order_id)]

    def sim_order(self, order_id: int) -> Any:
        """The simulator's own record of an order (its truth, read to drive the clock)."""
        return self.sim.sim.exchange.orders[order_id]

    def last(self) -> float:
        """The simulator's last MNQ trade price now."""
        market = self.sim.sim.market
        return market.price(MNQ, market.last_trade(MNQ, self.sim.sim.clock.now_us())[0])

    def book(self) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        """The simulator's MNQ book now: (bids, asks), each [(price, size)] best first."""
        market = self.sim.sim.market
        book = market.book_at(MNQ, self.sim.sim.clock.now_us())
        return ([(market.price(MNQ, p), n) for p, n in book.bids.levels],
                [(market.price(MNQ, p), n) for p, n in book.asks.levels])

    async def until(self, cond: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
        """Poll `cond` until it is true (hub pushes travel over a socket); fail after `timeout` wall seconds."""
        await until(cond, what, timeout)

    async def advance_until(self, cond: Callable[[], Any], what: str, *, step: float = 5.0,
                            limit: float = 4 * 3600.0) -> float:
        """Move simulated time in `step`s until `cond` holds on the simulator; returns the simulated seconds used."""
        spent = 0.0
        while not cond():
            if spent >= limit:
                pytest.fail(f"{what} did not happen within {limit} simulated seconds")
            await self.sim.advance(step)
            spent += step
        return spent

    async def advance_until_ended(self, order_id: int, **kwargs: Any) -> float:
        """Advance until the simulator ends an order, then until the manager has seen it end."""
        spent = await self.advance_until(lambda: not self.sim_order(order_id).status.is_working,
                                         f"order {order_id} ending", **kwargs)
        await self.until(lambda: self.orders.handle(order_id).done, f"the hub reporting order {order_id} ended")
        return spent

    async def balance(self, account_id: int = ACCOUNT) -> float:
        return next(a.balance for a in await self.px.list_accounts() if a.id == account_id)

    async def seen(self, order_id: int, status: OrderStatus) -> Order:
        """Wait until the manager holds the order in `status`."""
        await self.until(lambda: self.orders.handle(order_id).status is status, f"order {order_id} {status.name}")
        order = self.orders.handle(order_id).order
        assert order is not None
        return order


@pytest.fixture
async def trading():
    """Sim (seed 1, manual clock) + ProjectX + realtime client subscribed to account 1001 and MNQ quotes, both hubs
    streamed into a Router with an MNQ context, as in the suite. Market data has a bus of its own, so `events` holds
    the order and position events only."""
    async with contextlib.AsyncExitStack() as stack:
        sim = await stack.enter_async_context(SimServer(config=SimConfig(seed=1), hubs=HubSettings(ping_interval=0.3)))
        px = await stack.enter_async_context(ProjectX(ProjectXConfig.for_simulator(sim.base_url)))
        rt = ProjectXRealtimeClient(px.config, px.tokens, rest=px)
        stack.push_async_callback(rt.disconnect)
        contract = await px.get_instrument("MNQ")
        assert contract.id == MNQ
        bus = EventBus("MNQ")
        stack.push_async_callback(bus.aclose)
        data = RealtimeDataManager(px, contract, EventBus("MNQ market"), symbol="MNQ", timeframes=["1min"])
        data.release_pushes()  # live at once: no history is loaded here
        orders = OrderManager(px, contract, bus, account_id=ACCOUNT, symbol="MNQ")
        stack.push_async_callback(orders.aclose)
        positions = PositionManager(px, contract, bus, account_id=ACCOUNT, symbol="MNQ",
                                    last_price=lambda: data.last_price)
        env = Trading(sim, px, rt, contract, bus, data, orders, positions)
        bus.on_any(env.events.append)
        account = next(a for a in await px.list_accounts() if a.id == ACCOUNT)
        router = Router(account, EventBus("suite"), sim.sim.clock.now)
        router.add(InstrumentContext("MNQ", contract, data, orders, positions, bus))
        await rt.connect()  # streamed from here: the hubs' first CONNECTED is not an event of the MNQ bus
        task = asyncio.get_running_loop().create_task(router.run(rt.stream(USER, MARKET)))
        stack.push_async_callback(cancel, task)
        rt.on(OrderPushed | PositionPushed | UserTradePushed, env.pushes.append)
        await rt.subscribe_user(ACCOUNT)
        await rt.subscribe_market(MNQ, trades=False)
        await env.until(lambda: env.last_price is not None, "the first MNQ quote")
        yield env
