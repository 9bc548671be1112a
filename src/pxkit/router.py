"""The suite's one writer: a task that reads both hub streams and applies each message to the account's state
and to its instrument."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

from .client.account_state import AccountState
from .client.realtime import MARKET, USER
from .enums import LinkState, UserAction
from .events import EventBus, EventType
from .instrument.context import InstrumentContext
from .messages import (
    AccountPushed,
    ConnectionChanged,
    DepthPushed,
    HubMessage,
    OrderPushed,
    PositionPushed,
    QuotePushed,
    Reconciled,
    ReconcileReport,
    TradesPushed,
    UserTradePushed,
)
from .models import Account, Order, Position, Trade
from .stats import ComponentStats
from .times import to_us

log = logging.getLogger(__name__)

_CONNECTION_EVENTS = {LinkState.CONNECTED: EventType.CONNECTED, LinkState.DISCONNECTED: EventType.DISCONNECTED,
                      LinkState.RECONNECTED: EventType.RECONNECTED}


class Router:
    """Routes every push to the context of its contract, in arrival order, on the suite's loop.

    Market pushes carry the contract id first; a quote's own `symbol` is the symbolId (`F.US.MNQ`), used only
    when the contract id is missing. User pushes of other accounts or contracts are counted, not applied.
    Connection changes and reconciliations travel in the same stream, so they are applied in order.

    The router owns the account's cached state (`state`) and is its only writer: every user push is applied to it
    before the managers see it, and a reconciliation's truth is compared with it, installed, and what the
    managers missed is applied to them as if it had been pushed.
    """

    def __init__(self, account: Account, suite_bus: EventBus, clock: Callable[[], datetime], *,
                 stats: ComponentStats | None = None) -> None:
        self.state = AccountState(account, clock)
        self.primed = asyncio.Event()  # set once the account's first truth has been installed
        self._reconciled_listeners: list[Callable[[ReconcileReport], Any]] = []
        self.suite_bus = suite_bus
        self.clock = clock
        self.stats = stats or ComponentStats("router")
        self.contexts: dict[str, InstrumentContext] = {}  # by contract id
        self._by_symbol_id: dict[str, InstrumentContext] = {}
        self.feed_time_us = 0  # the newest exchange time seen on the market feed
        self.feed_lag = timedelta(0)  # how far that event was behind the exchange clock when it was applied
        self.reconnects = 0

    def add(self, context: InstrumentContext) -> None:
        contract = context.instrument_info
        self.contexts[contract.id] = context
        self._by_symbol_id[contract.symbol_id or ".".join(contract.id.split(".")[1:4])] = context

    def remove(self, context: InstrumentContext) -> None:
        self.contexts.pop(context.instrument_info.id, None)
        self._by_symbol_id = {k: c for k, c in self._by_symbol_id.items() if c is not context}

    async def run(self, stream: AsyncIterator[HubMessage]) -> None:
        """Apply every item of the stream until it ends; a failing item is logged and counted, never fatal."""
        async for item in stream:
            try:
                self.route(item)
            except Exception:
                self.stats.error(type(item).__name__)
                log.exception("routing %r failed", item)

    def route(self, item: HubMessage) -> None:
        """Apply one message; pushes are counted by message type."""
        match item:
            case TradesPushed():
                self.stats.count("TradesPushed")
                self._trades(item)
            case QuotePushed():
                self.stats.count("QuotePushed")
                self._quote(item)
            case DepthPushed():
                self.stats.count("DepthPushed")
                self._depth(item)
            case (OrderPushed(order=model) | PositionPushed(position=model) | UserTradePushed(trade=model)
                  | AccountPushed(account=model)):
                self.stats.count(type(item).__name__)
                self._user(model, item.action, item.received_at)
            case ConnectionChanged():
                self._connection(item)
            case Reconciled():
                self._reconciled(item)

    # ------------------------------------------------------------------ market

    def _trades(self, item: TradesPushed) -> None:
        context = self.contexts.get(item.contract_id) if item.contract_id else None
        if context is None:
            self.stats.count("unrouted")
            return
        taken = context.data.apply_trades(item.trades, item.received_at)  # less the ones stamped far ahead
        if context.orderbook is not None:
            context.orderbook.apply_trade(taken)
        if taken:
            self._feed_time(taken[-1].timestamp)

    def _quote(self, item: QuotePushed) -> None:
        quote = item.quote
        context = self.contexts.get(item.contract_id) if item.contract_id else None
        if context is None:
            context = self._by_symbol_id.get(quote.symbol)
            if context is None:
                self.stats.count("unrouted")
                return
        if context.data.apply_quote(quote, item.received_at) and quote.timestamp is not None:
            self._feed_time(quote.timestamp)

    def _depth(self, item: DepthPushed) -> None:
        context = self.contexts.get(item.contract_id) if item.contract_id else None
        if context is None:
            self.stats.count("unrouted")
            return
        context.data.touch()
        if context.orderbook is not None:
            context.orderbook.apply_depth(item.entries)
            if context.event_bus.wants(EventType.DEPTH_UPDATE):
                context.event_bus.emit_nowait(EventType.DEPTH_UPDATE, item, source=context.symbol)

    def _feed_time(self, stamp: datetime) -> None:
        t = to_us(stamp)
        if t > self.feed_time_us:
            self.feed_time_us = t
            self.feed_lag = max(timedelta(0), self.clock() - stamp)

    # ------------------------------------------------------------------ user

    @property
    def account(self) -> Account:
        """The suite's account, kept current by the user hub."""
        return self.state.account

    def _user(self, model: Any, action: UserAction, received_at: float) -> None:
        if not isinstance(model, Order | Position | Trade | Account) or not self.state.apply(model, action,
                                                                                             received_at):
            self.stats.count("other_account")
            return
        self._manage(model, action)

    def _manage(self, model: Order | Position | Trade | Account, action: UserAction) -> None:
        """Hand one message of the account, already applied to its state, to the manager of its contract."""
        if isinstance(model, Account):
            self.suite_bus.emit_nowait(EventType.ACCOUNT_UPDATE, model, source="account")
            return
        context = self.contexts.get(model.contract_id)
        if context is None:
            self.stats.count("other_contract")
            return
        if isinstance(model, Order):
            context.orders.apply(model, action)
        elif isinstance(model, Position):
            context.positions.apply_position(model, action)
        else:
            context.positions.apply_trade(model)

    def apply_state(self, contract_id: str) -> None:
        """Install the account's working orders and open position of one contract from the state (at start-up)."""
        for order in list(self.state.orders.values()):
            if order.contract_id == contract_id:
                self._manage(order, UserAction.CREATED)
        position = self.state.positions.get(contract_id)
        if position is not None:
            self._manage(position, UserAction.CREATED)

    def _reconciled(self, item: Reconciled) -> None:
        """Install the account's truth and put what the hub missed into the managers, as if it had been pushed:
        the missed fills are booked by the position managers, which ignore a fill they already have."""
        if item.account_id != self.account.id:
            return
        try:
            report = self.state.install(item.truth)
            for trade in report.trades:  # booked first, so the fill events after them see the P&L
                self._manage(trade, UserAction.CREATED)
            for order in (*report.orders_closed, *report.orders_opened, *report.orders_changed):
                self._manage(order, UserAction.UPDATED)
            for position in report.positions_closed:
                self._manage(dataclasses.replace(position, size=0), UserAction.DELETED)
            for position in (*report.positions_opened, *report.positions_changed):
                self._manage(position, UserAction.UPDATED)
            if report.account is not None:
                self._manage(report.account, UserAction.UPDATED)
        finally:
            self.primed.set()
        self.stats.count("reconciliations")
        if report.missed_anything and not item.truth.primed:
            log.info("reconciled account %d: %d orders closed, %d opened, %d positions closed, %d opened, "
                     "%d fills missed", item.account_id, len(report.orders_closed), len(report.orders_opened),
                     len(report.positions_closed), len(report.positions_opened), len(report.trades))
        for listener in list(self._reconciled_listeners):
            listener(report)

    def on_reconciled(self, listener: Callable[[ReconcileReport], Any]) -> None:
        """Call `listener(report)` after each truth of the account is installed (the first, at subscription,
        reports what was open then), with what the managers had not seen."""
        self._reconciled_listeners.append(listener)

    # ------------------------------------------------------------------ connection

    def _connection(self, item: ConnectionChanged) -> None:
        kind = _CONNECTION_EVENTS.get(item.state)
        if item.state is LinkState.RECONNECTED:
            self.reconnects += 1
        if item.hub == USER and item.state is LinkState.DISCONNECTED:
            self.state.lost(item.at)
        if kind is None:
            return
        if item.hub == MARKET and item.state is LinkState.DISCONNECTED:
            for context in self.contexts.values():  # before any push of the next connection reaches the bars
                context.data.feed_lost()
        self.suite_bus.emit_nowait(kind, item, source=item.hub)
        for context in self.contexts.values():
            context.event_bus.emit_nowait(kind, item, source=item.hub)


async def cancel(task: asyncio.Task[Any] | None, timeout: float = 2.0) -> None:
    """Cancel a task and wait (bounded) for it to finish."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait({task}, timeout=timeout)
