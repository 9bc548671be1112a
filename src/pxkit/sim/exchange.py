"""The simulator's matching engine: order lifecycle, fills against the simulated book, brackets (OCO).

No I/O: requests come in as models, user events go out through a sink callback in the order the real
gateway sends them (order Pending -> Filled -> trade(s) -> position -> account).

The exchange keeps Globex hours: while the market is closed, market and join orders and position closes are
refused; limit and stop orders are accepted and rest, and a limit that is marketable at the reopening fills against
the book of the first print, as a new arrival would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..codec import Target
from ..enums import (
    ClosePositionError,
    ModifyOrderError,
    OrderSide,
    OrderStatus,
    OrderType,
    PartialCloseError,
    PlaceOrderError,
    UserAction,
)
from ..hours import globex_open
from ..models import BracketSpec, ModifyOrderRequest, Order, PlaceOrderRequest, Trade
from ..times import from_us, to_us
from .ledger import AccountState, FillResult, Ledger
from .market import Book, Market

UserSink = Callable[[int, str, UserAction, Any], None]
_RESTING = (OrderType.LIMIT, OrderType.JOIN_BID, OrderType.JOIN_ASK)
_LEG_TYPES = (OrderType.LIMIT, OrderType.STOP, OrderType.TRAILING_STOP)
_NEED_MARKET = (OrderType.MARKET, OrderType.JOIN_BID, OrderType.JOIN_ASK)  # refused while the market is closed


class ExchangeError(Exception):
    """A business rejection: becomes HTTP 200 with success:false and this errorCode."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message


@dataclass(slots=True)
class OrderState:
    """Mutable order; prices in ticks."""

    id: int
    account_id: int
    contract_id: str
    type: OrderType
    side: OrderSide
    size: int
    created_us: int
    updated_us: int
    status: OrderStatus
    limit: int | None = None
    stop: int | None = None
    trail: int | None = None
    custom_tag: str | None = None
    fill_volume: int = 0
    fill_value: int = 0  # sum of price ticks x qty
    brackets: tuple[BracketSpec | None, BracketSpec | None] | None = None
    peer: int | None = None  # OCO partner
    parent: int | None = None  # the entry a bracket leg belongs to
    reopening: bool = False  # a limit accepted while the market was closed: matched as new at the first print

    @property
    def remaining(self) -> int:
        return self.size - self.fill_volume


class Exchange:
    """Accounts, orders and positions over a Market; deterministic for the same commands and clock."""

    def __init__(self, market: Market, now_us: Callable[[], int], sink: UserSink, ledger: Ledger | None = None):
        self.market = market
        self.now_us = now_us
        self.sink = sink
        self.ledger = ledger or Ledger.with_accounts()
        self.orders: dict[int, OrderState] = {}
        self._working: dict[str, list[int]] = {}  # contract -> working order ids, in id order
        self._tags: dict[tuple[int, str], int] = {}
        self._next_order_id = 7_000_001

    # ------------------------------------------------------------------ queries

    def accounts(self, only_active: bool) -> list[AccountState]:
        return [a for a in self.ledger.accounts.values() if a.is_visible or not only_active]

    def account(self, account_id: int, code: int) -> AccountState:
        account = self.ledger.accounts.get(account_id)
        if account is None:
            raise ExchangeError(code, f"Account {account_id} not found")
        return account

    def order_model(self, o: OrderState) -> Order:
        m = self.market
        return Order(
            id=o.id, account_id=o.account_id, contract_id=o.contract_id, creation_timestamp=from_us(o.created_us),
            status=o.status, type=o.type, side=o.side, size=o.size, symbol_id=m.spec(o.contract_id).symbol_id,
            update_timestamp=from_us(o.updated_us),
            limit_price=None if o.limit is None else m.price(o.contract_id, o.limit),
            stop_price=None if o.stop is None else m.price(o.contract_id, o.stop),
            fill_volume=o.fill_volume,
            filled_price=round(o.fill_value / o.fill_volume * m.spec(o.contract_id).tick_size, 9)
            if o.fill_volume else None,
            custom_tag=o.custom_tag,
        )

    def search_orders(self, account_id: int, start: datetime, end: datetime | None) -> list[Order]:
        lo, hi = to_us(start), to_us(end) if end else None
        return [self.order_model(o) for o in self.orders.values()
                if o.account_id == account_id and o.created_us >= lo and (hi is None or o.created_us <= hi)]

    def open_orders(self, account_id: int) -> list[Order]:
        return [self.order_model(o) for o in self.orders.values()
                if o.account_id == account_id and o.status.is_working]

    def search_trades(self, account_id: int, start: datetime | None, end: datetime | None) -> list[Trade]:
        return [t for t in self.ledger.trades if t.account_id == account_id
                and (start is None or t.creation_timestamp >= start) and (end is None or t.creation_timestamp <= end)]

    def working_contracts(self) -> list[str]:
        return [c for c, ids in self._working.items() if ids]

    def working_since(self, contract_id: str) -> int | None:
        """Creation time of the oldest working order of a contract."""
        ids = self._working.get(contract_id)
        return min(self.orders[i].created_us for i in ids) if ids else None

    # ------------------------------------------------------------------ commands

    def place(self, req: PlaceOrderRequest) -> int:
        """Validate and accept an order; market and marketable orders fill at once."""
        account = self.account(req.account_id, PlaceOrderError.ACCOUNT_NOT_FOUND)
        contract = self.market.contract(req.contract_id)
        if contract is None:
            raise ExchangeError(PlaceOrderError.CONTRACT_NOT_FOUND, f"Contract {req.contract_id} not found")
        if not account.can_trade:
            raise ExchangeError(PlaceOrderError.ACCOUNT_REJECTED, f"Account {account.id} cannot trade")
        limit, stop, trail = self._validate_prices(req)
        if req.custom_tag is not None and (account.id, req.custom_tag) in self._tags:
            raise ExchangeError(PlaceOrderError.ORDER_REJECTED, "customTag must be unique across the account")
        self._check_brackets(req)
        self._check_margin(account, req.contract_id, req.side, req.size)
        now = self.now_us()
        is_open = globex_open(from_us(now))
        if not is_open and req.type in _NEED_MARKET:
            raise ExchangeError(PlaceOrderError.OUTSIDE_TRADING_HOURS,
                                f"the market is closed: a {req.type.name} order needs it open; limit and stop "
                                "orders rest until it reopens")
        price, side = self.market.last_trade(req.contract_id, now)
        book = self.market.book(req.contract_id, price, side, now)
        if req.type is OrderType.STOP:
            self._check_stop_side(req.contract_id, req.side, stop, now, PlaceOrderError.ORDER_REJECTED)
        if req.type is OrderType.JOIN_BID:
            limit = book.bids.best
        elif req.type is OrderType.JOIN_ASK:
            limit = book.asks.best
        elif req.type is OrderType.TRAILING_STOP:
            stop = price - trail if req.side is OrderSide.SELL else price + trail
        order = self._new_order(req.account_id, req.contract_id, req.type, req.side, req.size, now,
                                limit=limit, stop=stop, trail=trail, tag=req.custom_tag)
        if req.stop_loss_bracket or req.take_profit_bracket:
            order.brackets = (req.stop_loss_bracket, req.take_profit_bracket)
        if req.type is OrderType.MARKET:
            self._fill_from_book(order, book, None, now)
        elif req.type in _RESTING:
            self._match_resting(order, book, now, is_open)
        return order.id

    def cancel(self, account_id: int, order_id: int) -> None:
        order = self._working_order(account_id, order_id)
        self._finish(order, OrderStatus.CANCELLED, self.now_us())

    def modify(self, req: ModifyOrderRequest) -> None:
        order = self._working_order(req.account_id, req.order_id)
        contract = self.market.contract(order.contract_id)
        assert contract is not None
        changes: dict[str, int] = {}
        for name, value in (("limit", req.limit_price), ("stop", req.stop_price), ("trail", req.trail_price)):
            if value is None:
                continue
            if not contract.on_grid(value) or value <= 0:
                raise ExchangeError(ModifyOrderError.REJECTED, f"{name} price {value} is not on the tick grid")
            changes[name] = contract.to_ticks(value)
        if req.size is not None and req.size <= order.fill_volume:
            raise ExchangeError(ModifyOrderError.REJECTED, f"size {req.size} must exceed the filled volume")
        if ("limit" in changes and order.type not in _RESTING) or (
            "stop" in changes and order.type not in (OrderType.STOP, OrderType.TRAILING_STOP)
        ) or ("trail" in changes and order.type is not OrderType.TRAILING_STOP):
            raise ExchangeError(ModifyOrderError.REJECTED, f"cannot change those prices of a {order.type.name} order")
        now = self.now_us()
        if "stop" in changes and order.type is OrderType.STOP:
            self._check_stop_side(order.contract_id, order.side, changes["stop"], now, ModifyOrderError.REJECTED)
        if req.size is not None:
            order.size = req.size
        for name, ticks in changes.items():
            setattr(order, name, ticks)
        order.updated_us = now
        self._emit_order(order, UserAction.UPDATED)
        if order.type in _RESTING:
            self._match_resting(order, self.market.book_at(order.contract_id, now), now, globex_open(from_us(now)))

    def close_position(self, account_id: int, contract_id: str, size: int | None = None) -> None:
        """Flatten (size None) or reduce a position with a market order."""
        partial = size is not None
        errors = PartialCloseError if partial else ClosePositionError
        account = self.account(account_id, errors.ACCOUNT_NOT_FOUND)
        if self.market.contract(contract_id) is None:
            raise ExchangeError(errors.CONTRACT_NOT_FOUND, f"Contract {contract_id} not found")
        if not account.can_trade:
            raise ExchangeError(errors.ACCOUNT_REJECTED, f"Account {account_id} cannot trade")
        net = self.ledger.position(account_id, contract_id)
        if net == 0:
            raise ExchangeError(errors.POSITION_NOT_FOUND, f"No open position in {contract_id}")
        now = self.now_us()
        if not globex_open(from_us(now)):
            raise ExchangeError(errors.ORDER_REJECTED, "the market is closed: a position closes with a market order "
                                                      "once it reopens")
        if partial and not 0 < size <= abs(net):
            raise ExchangeError(PartialCloseError.INVALID_CLOSE_SIZE,
                                f"close size {size} must be between 1 and {abs(net)}")
        qty = size if partial else abs(net)
        side = OrderSide.SELL if net > 0 else OrderSide.BUY
        order = self._new_order(account_id, contract_id, OrderType.MARKET, side, qty, now)
        self._fill_from_book(order, self.market.book_at(contract_id, now), None, now)

    # ------------------------------------------------------------------ market ticks

    def on_tick(self, contract_id: str, t_us: int, price: int, side: int) -> None:
        """Match the working orders of a contract against one trade print."""
        ids = self._working.get(contract_id)
        if not ids:
            return
        book: Book | None = None
        for order_id in list(ids):
            order = self.orders[order_id]
            if not order.status.is_working:
                continue
            buy = order.side is OrderSide.BUY
            if order.reopening:
                order.reopening = False
                book = book or self.market.book(contract_id, price, side, t_us)
                self._fill_from_book(order, book, order.limit, t_us)
            elif order.type in _RESTING:
                if (buy and price < order.limit) or (not buy and price > order.limit):
                    self._fill(order, [(order.limit, order.remaining)], t_us)
            elif order.type in (OrderType.STOP, OrderType.TRAILING_STOP):
                if (buy and price >= order.stop) or (not buy and price <= order.stop):
                    book = book or self.market.book(contract_id, price, side, t_us)
                    self._fill_from_book(order, book, None, t_us)
                elif order.type is OrderType.TRAILING_STOP:
                    moved = max(order.stop, price - order.trail) if not buy else min(order.stop, price + order.trail)
                    if moved != order.stop:
                        order.stop, order.updated_us = moved, t_us
                        self._emit_order(order, UserAction.UPDATED)

    # ------------------------------------------------------------------ internals

    def _validate_prices(self, req: PlaceOrderRequest) -> tuple[int | None, int | None, int | None]:
        contract = self.market.contract(req.contract_id)
        assert contract is not None
        reject = PlaceOrderError.ORDER_REJECTED
        if req.size <= 0:
            raise ExchangeError(reject, f"size must be positive, got {req.size}")
        # an integer outside OrderType or OrderSide binds as itself and is refused here, as the gateway does
        if req.type not in (OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP, *_RESTING):
            raise ExchangeError(reject, f"order type {int(req.type)} cannot be placed")
        if req.side not in (OrderSide.BUY, OrderSide.SELL):
            raise ExchangeError(reject, f"side {int(req.side)} is neither 0 (buy) nor 1 (sell)")
        needed = {OrderType.LIMIT: "limitPrice", OrderType.STOP: "stopPrice", OrderType.TRAILING_STOP: "trailPrice"}
        values = {"limitPrice": req.limit_price, "stopPrice": req.stop_price, "trailPrice": req.trail_price}
        if req.type in needed and values[needed[req.type]] is None:
            raise ExchangeError(reject, f"{needed[req.type]} is required for a {req.type.name} order")
        ticks: dict[str, int | None] = {}
        for name, value in values.items():
            if value is not None and (value <= 0 or not contract.on_grid(value)):
                raise ExchangeError(reject, f"{name} {value} is not on the tick grid of {contract.id}")
            ticks[name] = None if value is None else contract.to_ticks(value)
        limit = ticks["limitPrice"] if req.type is OrderType.LIMIT else None
        stop = ticks["stopPrice"] if req.type is OrderType.STOP else None
        trail = ticks["trailPrice"] if req.type is OrderType.TRAILING_STOP else None
        return limit, stop, trail

    def _check_brackets(self, req: PlaceOrderRequest) -> None:
        direction = req.side.sign
        for name, spec, wanted in (("stopLossBracket", req.stop_loss_bracket, -1),
                                   ("takeProfitBracket", req.take_profit_bracket, 1)):
            if spec is None:
                continue
            if spec.type not in _LEG_TYPES:
                raise ExchangeError(PlaceOrderError.ORDER_REJECTED, f"{name} type {int(spec.type)} is not allowed")
            if spec.ticks == 0 or (spec.ticks > 0) != (wanted * direction > 0):
                raise ExchangeError(PlaceOrderError.ORDER_REJECTED,
                                    f"{name} ticks {spec.ticks} have the wrong sign for a {req.side.name} entry")

    def _check_stop_side(self, contract_id: str, side: OrderSide, stop: int, now: int, code: int) -> None:
        """A buy stop must sit above the last trade, a sell stop below it (else it would trigger at once)."""
        last, _ = self.market.last_trade(contract_id, now)
        if (stop - last) * side.sign <= 0:
            where = "above" if side is OrderSide.BUY else "below"
            raise ExchangeError(code, f"a {side.name} stop must be {where} the last price")

    def _check_margin(self, account: AccountState, contract_id: str, side: OrderSide, size: int) -> None:
        """Reject an order whose added exposure (contracts beyond the current net) the balance cannot carry."""
        net = self.ledger.position(account.id, contract_id)
        added = abs(net + side.sign * size) - abs(net)
        if added <= 0:
            return
        margins = {c: self.market.spec(c).margin for _, c in self.ledger.positions}
        needed = self.ledger.margin_in_use(account.id, margins) + added * self.market.spec(contract_id).margin
        if needed > account.balance:
            raise ExchangeError(PlaceOrderError.INSUFFICIENT_FUNDS,
                                f"needs ${needed:,.2f} margin, balance is ${account.balance:,.2f}")

    def _new_order(self, account_id: int, contract_id: str, type_: OrderType, side: OrderSide, size: int, now: int,
                   *, limit: int | None = None, stop: int | None = None, trail: int | None = None,
                   tag: str | None = None, parent: int | None = None) -> OrderState:
        status = OrderStatus.PENDING if type_ is OrderType.MARKET else OrderStatus.OPEN
        order = OrderState(self._next_order_id, account_id, contract_id, type_, side, size, now, now, status,
                           limit=limit, stop=stop, trail=trail, custom_tag=tag, parent=parent)
        self._next_order_id += 1
        self.orders[order.id] = order
        self._working.setdefault(contract_id, []).append(order.id)
        if tag is not None:
            self._tags[(account_id, tag)] = order.id
        self._emit_order(order, UserAction.CREATED)
        return order

    def _working_order(self, account_id: int, order_id: int) -> OrderState:
        self.account(account_id, ModifyOrderError.ACCOUNT_NOT_FOUND)
        order = self.orders.get(order_id)
        if order is None or order.account_id != account_id:
            raise ExchangeError(ModifyOrderError.ORDER_NOT_FOUND, f"Order {order_id} not found")
        if not order.status.is_working:
            raise ExchangeError(ModifyOrderError.REJECTED, f"Order {order_id} is {order.status.name}, not working")
        return order

    def _match_resting(self, order: OrderState, book: Book, t_us: int, is_open: bool) -> None:
        """Fill a new or repriced limit as far as the book allows; while closed, leave it for the reopening."""
        if is_open:
            self._fill_from_book(order, book, order.limit, t_us)
        else:
            order.reopening = True

    def _fill_from_book(self, order: OrderState, book: Book, limit: int | None, t_us: int) -> None:
        """Walk the opposite side of the book up to `limit` (a market order takes the last level for the rest)."""
        levels = book.asks.levels if order.side is OrderSide.BUY else book.bids.levels
        fills: list[tuple[int, int]] = []
        left = order.remaining
        for price, size in levels:
            if left == 0 or (limit is not None and (price - limit) * order.side.sign > 0):
                break
            take = min(size, left)
            fills.append((price, take))
            left -= take
        if left and limit is None:
            fills.append((levels[-1][0], left))
        if fills:
            self._fill(order, fills, t_us)

    def _fill(self, order: OrderState, fills: list[tuple[int, int]], t_us: int) -> None:
        """Apply fills to the order, then emit order, trade(s), position and account events."""
        spec = self.market.spec(order.contract_id)
        for price, qty in fills:
            order.fill_volume += qty
            order.fill_value += price * qty
        order.updated_us = t_us
        done = order.remaining == 0
        if done:
            order.status = OrderStatus.FILLED
            self._unwork(order)
        elif order.status is OrderStatus.PENDING:
            order.status = OrderStatus.OPEN
        self._emit_order(order, UserAction.UPDATED)
        results: list[FillResult] = [
            self.ledger.apply_fill(order.account_id, order.contract_id, spec, order.id, order.side, price, qty,
                                   self.market.price(order.contract_id, price), t_us)
            for price, qty in fills
        ]
        for r in results:
            self.sink(order.account_id, Target.USER_TRADE, UserAction.CREATED, r.trade)
        last = results[-1]
        self.sink(order.account_id, Target.USER_POSITION,
                  UserAction.CREATED if results[0].opened else UserAction.UPDATED, last.position)
        self.sink(order.account_id, Target.USER_ACCOUNT, UserAction.UPDATED, last.account)
        filled = sum(q for _, q in fills)
        if order.peer is not None:
            self._shrink_peer(order.peer, filled, t_us)
        if done and order.brackets:
            self._attach_brackets(order, t_us)
        self._fit_legs(order.account_id, order.contract_id, t_us)

    def _attach_brackets(self, entry: OrderState, t_us: int) -> None:
        entry_ticks = round(entry.fill_value / entry.fill_volume)
        side = entry.side.opposite
        legs = []
        for spec in entry.brackets or ():
            if spec is None:
                continue
            price = entry_ticks + spec.ticks
            kwargs: dict[str, int] = {}
            if spec.type is OrderType.LIMIT:
                kwargs["limit"] = price
            elif spec.type is OrderType.STOP:
                kwargs["stop"] = price
            else:
                kwargs["trail"], kwargs["stop"] = abs(spec.ticks), price
            legs.append(self._new_order(entry.account_id, entry.contract_id, spec.type, side, entry.size, t_us,
                                        parent=entry.id, **kwargs))
        if len(legs) == 2:
            legs[0].peer, legs[1].peer = legs[1].id, legs[0].id

    def _shrink_peer(self, peer_id: int, filled: int, t_us: int) -> None:
        peer = self.orders[peer_id]
        if not peer.status.is_working:
            return
        if peer.remaining <= filled:
            self._finish(peer, OrderStatus.CANCELLED, t_us)
        else:
            peer.size -= filled
            peer.updated_us = t_us
            self._emit_order(peer, UserAction.UPDATED)

    def _fit_legs(self, account_id: int, contract_id: str, t_us: int) -> None:
        """Bracket legs only ever close the position: shrink them to it, cancel them when it is flat or flipped."""
        net = self.ledger.position(account_id, contract_id)
        for order_id in list(self._working.get(contract_id, ())):
            leg = self.orders[order_id]
            if leg.account_id != account_id or leg.parent is None or not leg.status.is_working:
                continue
            closable = abs(net) if net * leg.side.sign < 0 else 0
            if closable == 0:
                self._finish(leg, OrderStatus.CANCELLED, t_us)
            elif leg.remaining > closable:
                leg.size, leg.updated_us = leg.fill_volume + closable, t_us
                self._emit_order(leg, UserAction.UPDATED)

    def _finish(self, order: OrderState, status: OrderStatus, t_us: int) -> None:
        order.status, order.updated_us = status, t_us
        self._unwork(order)
        self._emit_order(order, UserAction.UPDATED)

    def _unwork(self, order: OrderState) -> None:
        ids = self._working.get(order.contract_id)
        if ids and order.id in ids:
            ids.remove(order.id)

    def _emit_order(self, order: OrderState, action: UserAction) -> None:
        self.sink(order.account_id, Target.USER_ORDER, action, self.order_model(order))
