"""Router without a network: hub items fed straight to route()/run() reach the context of their contract or account,
the rest is counted; connection changes and reconciliations are applied in order; the feed lag."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from pxkit.client.realtime import MARKET, USER
from pxkit.enums import DomType, LinkState, OrderSide, OrderStatus, OrderType, PositionType, TradeType, UserAction
from pxkit.events import Event, EventBus, EventType
from pxkit.instrument.context import InstrumentContext
from pxkit.instrument.data import RealtimeDataManager
from pxkit.instrument.orderbook import OrderBook
from pxkit.instrument.orders import OrderManager
from pxkit.instrument.positions import PositionManager
from pxkit.messages import (
    AccountPushed,
    AccountTruth,
    ConnectionChanged,
    DepthPushed,
    HubPush,
    OrderPushed,
    PositionPushed,
    QuotePushed,
    Reconciled,
    TradesPushed,
    UserTradePushed,
)
from pxkit.models import Account, Contract, DepthEntry, MarketTrade, Order, Position, Quote, Trade
from pxkit.router import Router
from pxkit.times import to_us

ACCOUNT, OTHER = 1001, 1002
MNQ = Contract("CON.F.US.MNQ.H26", "MNQH6", "Micro E-mini Nasdaq-100: March 2026", 0.25, 0.5, True, "F.US.MNQ")
ES = Contract("CON.F.US.EP.H26", "ESH6", "E-mini S&P 500: March 2026", 0.25, 12.5, True, "F.US.EP")
MGC = Contract("CON.F.US.MGC.J26", "MGCJ6", "Micro Gold: April 2026", 0.1, 1.0, True)  # no symbolId given
NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def context(symbol: str, contract: Contract, *, orderbook: bool = False) -> InstrumentContext:
    """Real managers without a client (nothing here places orders); bars live as after an empty history."""
    bus = EventBus(symbol)
    data = RealtimeDataManager(None, contract, bus, symbol=symbol)
    data.release_pushes()
    return InstrumentContext(
        symbol, contract, data, OrderManager(None, contract, bus, account_id=ACCOUNT, symbol=symbol),
        PositionManager(None, contract, bus, account_id=ACCOUNT, symbol=symbol, last_price=lambda: data.last_price),
        bus, OrderBook(contract) if orderbook else None)


def router(*contexts: InstrumentContext, clock=lambda: NOW) -> Router:
    result = Router(Account(ACCOUNT, "PRAC-1001", 50_000.0, True, True, True), EventBus("suite"), clock)
    for ctx in contexts:
        result.add(ctx)
    return result


def record(bus: EventBus) -> list[Event]:
    events: list[Event] = []
    bus.on_any(events.append)
    return events


def trades(contract_id: str | None, *prices: float, at: datetime = NOW) -> TradesPushed:
    batch = tuple(MarketTrade("?", p, at + timedelta(seconds=i), TradeType.BUY, 1) for i, p in enumerate(prices))
    return TradesPushed(contract_id, batch, time.time())


def quote(contract_id: str | None, symbol_id: str, price: float, at: datetime = NOW) -> QuotePushed:
    return QuotePushed(contract_id, Quote(symbol_id, last_price=price, timestamp=at), time.time())


def order(order_id: int, *, account: int = ACCOUNT, contract: str = MNQ.id, status: OrderStatus = OrderStatus.OPEN,
          fill: int = 0) -> Order:
    return Order(order_id, account, contract, NOW, status, OrderType.LIMIT, OrderSide.BUY, 2, limit_price=20000.0,
                 fill_volume=fill, filled_price=20000.0 if fill else None)


def position(size: int, *, account: int = ACCOUNT, contract: str = MNQ.id) -> Position:
    return Position(7, account, contract, NOW, PositionType.LONG, size, 20000.0)


def truth(*, account_id: int = ACCOUNT, orders: tuple[Order, ...] = (), positions: tuple[Position, ...] = (),
          account: Account | None = None, ended: tuple[Order, ...] = (), fills: tuple[Trade, ...] = (),
          primed: bool = False) -> Reconciled:
    """The gateway's truth of an account, every part read now."""
    now = time.time()
    return Reconciled(USER, account_id, AccountTruth(account_id, orders, positions, account, ended, fills, now, NOW,
                                                     now, now, now, now, primed))


PUSHED = {Order: OrderPushed, Position: PositionPushed, Trade: UserTradePushed, Account: AccountPushed}


def user(model, action: UserAction = UserAction.UPDATED) -> HubPush:
    return PUSHED[type(model)](model, action, time.time())


# ---------------------------------------------------------------------------------------------- market


async def test_market_pushes_go_to_the_context_of_their_contract() -> None:
    mnq, es = context("MNQ", MNQ), context("ES", ES)
    r = router(mnq, es)
    mnq_events, es_events = record(mnq.event_bus), record(es.event_bus)
    r.route(trades(MNQ.id, 20000.0, 20000.5))
    r.route(quote(ES.id, "F.US.EP", 6000.25))
    assert mnq.data.last_price == 20000.5 and mnq.data.stats.counters["trades"] == 2
    assert es.data.quote.last_price == 6000.25 and es.data.stats.counters["trades"] == 0
    assert [e.type for e in mnq_events] == [EventType.TICK] * 2 + [EventType.BAR_UPDATED] * 2  # nothing of ES's
    assert [e.type for e in es_events] == [EventType.QUOTE_UPDATE] and es_events[0].source == "ES"
    assert r.stats.counters == {"TradesPushed": 1, "QuotePushed": 1}


async def test_depth_goes_to_the_book_and_trades_to_its_flow() -> None:
    mnq = context("MNQ", MNQ, orderbook=True)
    r = router(mnq)
    depth = record(mnq.event_bus)
    entries = (DepthEntry(NOW, DomType.BID, 19999.75, 4), DepthEntry(NOW, DomType.ASK, 20000.25, 6))
    mnq.data.stale = True  # depth is market activity too: it ends a stale spell
    pushed = DepthPushed(MNQ.id, entries, time.time())
    r.route(pushed)
    assert mnq.orderbook.get_best_bid_ask() == (19999.75, 20000.25)
    assert [(e.type, e.data) for e in depth][-1] == (EventType.DEPTH_UPDATE, pushed) and mnq.data.stale is False
    r.route(trades(MNQ.id, 20000.25, 20000.5))
    assert mnq.orderbook.trades_applied == 2 and mnq.orderbook.buy_volume == 2


async def test_a_quote_without_contract_id_goes_by_its_symbol_id() -> None:
    mnq, es, mgc = context("MNQ", MNQ), context("ES", ES), context("MGC", MGC)
    r = router(mnq, es, mgc)
    r.route(quote(None, "F.US.EP", 6000.25))
    r.route(quote(None, "F.US.MGC", 2950.1))  # symbolId derived from the contract id
    assert es.data.quote.last_price == 6000.25 and mgc.data.quote.last_price == 2950.1 and mnq.data.quote is None
    assert r.stats.counters["unrouted"] == 0


async def test_pushes_of_unknown_contracts_are_counted_unrouted() -> None:
    mnq, es = context("MNQ", MNQ), context("ES", ES)
    r = router(mnq, es)
    r.route(trades("CON.F.US.ENQ.H26", 21000.0))
    r.route(trades(None, 20000.0))  # only a quote may be matched by its own symbol
    r.route(quote(None, "F.US.ENQ", 21000.0))
    r.remove(es)
    r.route(quote(ES.id, "F.US.EP", 6000.0))
    r.route(quote(None, "F.US.EP", 6000.0))
    assert r.stats.counters["unrouted"] == 5
    assert mnq.data.last_price is None and es.data.quote is None and list(r.contexts) == [MNQ.id]


# ---------------------------------------------------------------------------------------------- user


async def test_user_pushes_go_to_the_managers_of_their_contract() -> None:
    mnq, es = context("MNQ", MNQ), context("ES", ES)
    r = router(mnq, es)
    mnq_events, es_events = record(mnq.event_bus), record(es.event_bus)
    r.route(user(order(1), UserAction.CREATED))
    r.route(user(position(2)))
    r.route(user(Trade(5, ACCOUNT, MNQ.id, NOW, 20000.0, 0.74, OrderSide.BUY, 2, 1)))
    assert mnq.orders.handle(1).status is OrderStatus.OPEN and mnq.positions.size == 2 and mnq.positions.fees == 0.74
    assert [e.type for e in mnq_events] == [EventType.ORDER_PLACED, EventType.POSITION_OPENED] and es_events == []
    r.route(user(order(1, status=OrderStatus.CANCELLED), UserAction.DELETED))
    assert mnq.orders.handle(1).done and mnq_events[-1].type is EventType.ORDER_CANCELLED


async def test_user_pushes_of_other_accounts_or_contracts_are_ignored_and_counted() -> None:
    mnq = context("MNQ", MNQ)
    r = router(mnq)
    events, suite_events = record(mnq.event_bus), record(r.suite_bus)
    r.route(user(order(1, account=OTHER)))
    r.route(user(position(1, account=OTHER)))
    r.route(user(Trade(5, OTHER, MNQ.id, NOW, 20000.0, 0.74, OrderSide.BUY, 1, 1)))
    r.route(user(Account(OTHER, "PRAC-1002", 1.0, True, True, True)))
    r.route(user(order(2, contract=ES.id)))
    assert r.stats.counters["other_account"] == 4 and r.stats.counters["other_contract"] == 1
    assert r.account.id == ACCOUNT and r.account.balance == 50_000.0
    assert events == [] and suite_events == [] and mnq.orders.handle(1).order is None and mnq.positions.size == 0


async def test_an_account_update_replaces_the_account_and_is_announced_on_the_suite_bus() -> None:
    mnq = context("MNQ", MNQ)
    r = router(mnq)
    suite_events, events = record(r.suite_bus), record(mnq.event_bus)
    updated = Account(ACCOUNT, "PRAC-1001", 49_750.5, True, True, True)
    r.route(user(updated))
    assert r.account == updated
    assert [(e.type, e.data, e.source) for e in suite_events] == [(EventType.ACCOUNT_UPDATE, updated, "account")]
    assert events == []


async def test_apply_state_installs_only_that_contracts_orders_and_position() -> None:
    mnq, es = context("MNQ", MNQ), context("ES", ES)
    r = router()
    r.route(truth(orders=(order(1), order(2, contract=ES.id)), positions=(position(3), position(1, contract=ES.id)),
                  primed=True))  # at start-up, before the instruments are built
    assert r.primed.is_set() and set(r.state.orders) == {1, 2} and set(r.state.positions) == {MNQ.id, ES.id}
    r.add(mnq)
    r.add(es)
    r.apply_state(MNQ.id)
    assert [o.id for o in mnq.orders.working()] == [1] and mnq.positions.size == 3
    assert es.orders.working() == [] and es.positions.size == 0


# ---------------------------------------------------------------------------------------------- connection


async def test_connection_changes_reach_the_suite_and_every_instrument() -> None:
    mnq, es = context("MNQ", MNQ), context("ES", ES)
    r = router(mnq, es)
    buses = {"suite": record(r.suite_bus), "MNQ": record(mnq.event_bus), "ES": record(es.event_bus)}
    states = [LinkState.CONNECTED, LinkState.DISCONNECTED, LinkState.RECONNECTING, LinkState.RECONNECTED,
              LinkState.DISCONNECTED, LinkState.RECONNECTED]
    items = [ConnectionChanged(MARKET if i % 2 else USER, state, time.time()) for i, state in enumerate(states)]
    for item in items:
        r.route(item)
    expected = [EventType.CONNECTED, EventType.DISCONNECTED, EventType.RECONNECTED, EventType.DISCONNECTED,
                EventType.RECONNECTED]  # RECONNECTING is not an event
    for name, events in buses.items():
        assert [e.type for e in events] == expected, name
        assert [e.source for e in events] == [USER, MARKET, MARKET, USER, MARKET], name
        assert events[0].data is items[0], name
    assert r.reconnects == 2


# ---------------------------------------------------------------------------------------------- reconciliation


async def test_what_a_reconciliation_finds_missed_is_applied_as_pushes() -> None:
    mnq = context("MNQ", MNQ)
    r, reports = router(mnq), []
    r.on_reconciled(reports.append)
    r.route(user(order(1), UserAction.CREATED))
    r.route(user(position(2)))
    events, suite_events = record(mnq.event_bus), record(r.suite_bus)
    account = Account(ACCOUNT, "PRAC-1001", 50_120.0, True, True, True)
    found = truth(orders=(order(3),), account=account, ended=(order(1, status=OrderStatus.FILLED, fill=2),))
    r.route(truth(account_id=OTHER, orders=(order(3),)))  # another account's truth: not ours
    assert events == [] and r.stats.counters["reconciliations"] == 0 and reports == []
    r.route(found)
    assert [e.type for e in events] == [EventType.ORDER_FILLED, EventType.ORDER_PLACED, EventType.POSITION_CLOSED]
    assert mnq.orders.handle(1).status is OrderStatus.FILLED
    assert [o.id for o in mnq.orders.working()] == [3]
    assert mnq.positions.position is None and events[-1].data.size == 0
    assert r.account == account and [e.type for e in suite_events] == [EventType.ACCOUNT_UPDATE]
    assert r.stats.counters["reconciliations"] == 1
    report = reports[-1]
    assert ([o.id for o in report.orders_closed], [o.id for o in report.orders_opened]) == ([1], [3])
    assert [p.size for p in report.positions_closed] == [2] and report.account == account
    assert (r.state.orders, r.state.positions, 1 in r.state.ended) == ({3: order(3)}, {}, True)

    r.route(truth(orders=(order(3, fill=1),), positions=(position(1),), account=account))
    assert [e.type for e in events[-2:]] == [EventType.ORDER_PARTIAL_FILL, EventType.POSITION_OPENED]
    assert mnq.positions.size == 1 and mnq.orders.handle(3).fill_volume == 1
    assert (reports[-1].orders_changed, reports[-1].positions_opened) == ((order(3, fill=1),), (position(1),))
    r.route(truth(orders=(order(3, fill=1),), positions=(position(1),), account=account))
    assert not reports[-1].missed_anything  # nothing new: nothing applied again
    assert r.stats.counters["reconciliations"] == 3


async def test_missed_fills_of_a_reconciliation_are_booked_once_before_its_orders() -> None:
    mnq = context("MNQ", MNQ)
    r, reports = router(mnq), []
    r.on_reconciled(reports.append)
    opening = Trade(5, ACCOUNT, MNQ.id, NOW, 20000.0, 0.74, OrderSide.BUY, 2, 1)
    closing = Trade(6, ACCOUNT, MNQ.id, NOW + timedelta(seconds=9), 20010.0, 0.74, OrderSide.SELL, 2, 2, 40.0)
    r.route(user(opening))  # pushed before the hub dropped
    pnl_when_filled: list[float] = []
    mnq.event_bus.on(EventType.ORDER_FILLED, lambda e: pnl_when_filled.append(mnq.positions.realized_pnl))
    filled = dataclasses.replace(order(2, status=OrderStatus.FILLED, fill=2), side=OrderSide.SELL)
    found = truth(ended=(filled,), fills=(opening, closing))  # the search overlaps the push
    r.route(found)
    assert reports[-1].trades == (closing,)  # the pushed fill is known
    r.route(found)  # and a second read of the same fills
    assert reports[-1].trades == ()
    assert [t.id for t in mnq.positions.trades] == [5, 6]
    assert (mnq.positions.realized_pnl, mnq.positions.fees) == (40.0, 1.48)
    assert pnl_when_filled == [40.0]  # the fill was booked before its order was announced filled


# ---------------------------------------------------------------------------------------------- run and lag


async def stream(*items) -> AsyncIterator:
    for item in items:
        yield item


async def test_run_logs_and_counts_a_failing_item_and_keeps_going(caplog) -> None:
    mnq = context("MNQ", MNQ)
    r = router(mnq)

    def broken(event: Event) -> None:
        raise RuntimeError("a user's handler bug")

    mnq.event_bus.on(EventType.TICK, broken)
    malformed = TradesPushed(MNQ.id, None, time.time())  # no trade list at all
    with caplog.at_level(logging.ERROR):
        await r.run(stream(trades(MNQ.id, 20000.0), malformed, trades(MNQ.id, 20001.0),
                           quote(MNQ.id, "F.US.MNQ", 20001.25)))
    assert r.stats.errors == {"TradesPushed": 1}
    assert any("routing" in rec.getMessage() and rec.exc_info for rec in caplog.records)
    assert mnq.event_bus.handler_errors[EventType.TICK] == 2  # the bus contained the handler's failures
    assert mnq.data.stats.counters["trades"] == 2 and mnq.data.last_price == 20001.25  # the items after it applied


async def test_feed_lag_is_how_far_the_newest_market_event_was_behind_the_clock() -> None:
    clock = [NOW]
    mnq = context("MNQ", MNQ)
    r = router(mnq, clock=lambda: clock[0])
    assert (r.feed_time_us, r.feed_lag) == (0, timedelta(0))
    r.route(trades(MNQ.id, 20000.0, 20000.25, at=NOW - timedelta(seconds=3)))  # newest stamped NOW - 2 s
    assert r.feed_lag == timedelta(seconds=2) and r.feed_time_us == to_us(NOW - timedelta(seconds=2))
    clock[0] = NOW + timedelta(seconds=10)
    r.route(quote(MNQ.id, "F.US.MNQ", 20000.0, at=NOW - timedelta(seconds=5)))  # older than what was seen
    assert r.feed_lag == timedelta(seconds=2)
    r.route(quote(MNQ.id, "F.US.MNQ", 20000.0, at=NOW + timedelta(seconds=9, milliseconds=500)))
    assert r.feed_lag == timedelta(milliseconds=500)
    r.route(trades(MNQ.id, 20000.0, at=NOW + timedelta(seconds=11)))  # ahead of the clock: no negative lag
    assert r.feed_lag == timedelta(0) and r.feed_time_us == to_us(NOW + timedelta(seconds=11))
    r.route(trades("CON.F.US.ENQ.H26", 21000.0, at=NOW + timedelta(seconds=60)))  # unrouted: not our feed
    assert r.feed_time_us == to_us(NOW + timedelta(seconds=11))
