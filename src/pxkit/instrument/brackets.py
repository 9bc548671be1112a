"""Order and bracket handles (live views of the orders a manager tracks) and its Tracking sizes, what an order
update means (stale or news, the events it stands for, a bracket's leg), and the gate new orders pass."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal, Protocol

from ..client.orders import build_order_request, is_positive_number, order_side
from ..enums import OrderSide, OrderStatus, OrderType
from ..errors import InputError, OrderEndedError, OrderTimeoutError, PxError, UnprotectedPositionError
from ..events import EventType
from ..html import Html, badge, escape, facts, fixed, muted, panel, table
from ..loops import on_loop
from ..models import Contract, Order, PlaceOrderRequest, tick_decimals

TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED})
LEG_TYPES = {"stop": OrderType.STOP, "target": OrderType.LIMIT}
BracketMode = Literal["native", "client"]  # who places and links the legs: the gateway, or ClientOCO
EntryType = Literal["market", "limit", "stop"]
_ENTRY_TYPES = {"market": (OrderType.MARKET, None), "limit": (OrderType.LIMIT, "limit_price"),
                "stop": (OrderType.STOP, "stop_price")}  # entry_type -> (order type, the field entry_price goes to)
OCO_TAG = "pxkit-oco-"  # customTag prefix of client-side bracket legs (never taken for native legs)
_STATUS_TONES = {OrderStatus.FILLED: "ok", OrderStatus.OPEN: "live", OrderStatus.PENDING: "live",
                 OrderStatus.REJECTED: "bad"}  # any other status: idle
_ENDED_EVENTS = {OrderStatus.CANCELLED: EventType.ORDER_CANCELLED, OrderStatus.EXPIRED: EventType.ORDER_CANCELLED,
                 OrderStatus.REJECTED: EventType.ORDER_REJECTED}


def is_stale(previous: Order, order: Order) -> bool:
    """An update that is older than, or the same as, what is known (a final state is never undone)."""
    older = (previous.update_timestamp is not None and order.update_timestamp is not None
             and order.update_timestamp < previous.update_timestamp)
    return previous == order or previous.status in TERMINAL or order.fill_volume < previous.fill_volume or older


def order_events(previous: Order | None, order: Order) -> list[EventType]:
    """The events an update that is not stale stands for: placed, (partly) filled, modified, cancelled, rejected."""
    kinds: list[EventType] = []
    if previous is None and order.status.is_working:
        kinds.append(EventType.ORDER_PLACED)
    if order.fill_volume > (previous.fill_volume if previous else 0):
        kinds.append(EventType.ORDER_FILLED if order.status is OrderStatus.FILLED else EventType.ORDER_PARTIAL_FILL)
    elif previous is not None and previous.status.is_working and order.status.is_working and (
            (previous.size, previous.limit_price, previous.stop_price)
            != (order.size, order.limit_price, order.stop_price)):
        kinds.append(EventType.ORDER_MODIFIED)
    if order.status in _ENDED_EVENTS and (previous is None or previous.status is not order.status):
        kinds.append(_ENDED_EVENTS[order.status])
    return kinds


def ended_error(order: Order) -> OrderEndedError:
    """What waiting for the fill of an order that ended unfilled (or part filled) raises."""
    return OrderEndedError(f"order {order.id} ended {order.status.name} with {order.fill_volume}/{order.size} "
                           "filled", order)


def timeout_error(order_id: int, order: Order | None, timeout: float | None) -> OrderTimeoutError:
    """What a wait for the end of an order raises after `timeout` s: the order and its last known state."""
    state = f"last seen {order.status.name} with {order.fill_volume}/{order.size} filled" if order else "never seen"
    return OrderTimeoutError(f"order {order_id} did not end within {timeout} s: {state}", order_id=order_id,
                             order=order, timeout=timeout)


def unprotected_error(entry: Order, missing: list[str], flatten_error: PxError | None,
                      cause: PxError | None) -> UnprotectedPositionError:
    """What a bracket whose entry filled without (some of) its legs reports, once the position was flattened."""
    outcome = f"flattening failed: {flatten_error}" if flatten_error else "the position was flattened"
    why = f"could not be placed ({cause})" if cause is not None else "never appeared"
    error = UnprotectedPositionError(f"bracket entry {entry.id} filled {entry.fill_volume} but its "
                                     f"{' and '.join(missing)} {why}; {outcome}",
                                     entry=entry, missing=missing, flatten_error=flatten_error)
    error.__cause__ = cause
    return error


def leg_ticks(contract: Contract, name: str, side: OrderSide, offset: int | None, price: float | None,
              reference: float | None) -> int | None:
    """Signed ticks of a leg from the entry, from its distance in ticks or its price (long: stop below, target
    above; short: the opposite); None when neither is given, InputError when the leg cannot be."""
    direction = -side.sign if name == "stop" else side.sign
    if offset is not None and price is not None:
        raise InputError(f"give {name}_offset or {name}_price, not both")
    if offset is not None:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset <= 0:
            raise InputError(f"{name}_offset is a distance from the entry in whole ticks > 0 (the side sets its "
                             f"direction), got {offset!r}")
        return direction * offset
    if price is None:
        return None
    if not is_positive_number(price) or not contract.on_grid(price):
        raise InputError(f"{name}_price {price!r} is not a price on the {contract.tick_size} tick grid")
    if reference is None or not is_positive_number(reference):
        raise InputError(f"{name}_price needs a price entry_price to measure from (or give {name}_offset)")
    ticks = contract.to_ticks(price) - contract.to_ticks(reference)
    if ticks * direction <= 0:
        where = "below" if direction < 0 else "above"
        raise InputError(f"{name}_price {price} must be {where} the entry {reference} for a {side.name}")
    return ticks


def bracket_entry(contract: Contract, account_id: int, side: OrderSide | str, size: int, entry_type: EntryType,
                  entry_price: float | None, legs: dict[str, tuple[int | None, float | None]],
                  mode: BracketMode) -> tuple[PlaceOrderRequest, dict[str, int]]:
    """A bracket's entry request and the signed ticks of its legs from `legs` (name -> (offset, price)); the
    native legs ride on the request. InputError names the first problem; nothing is sent."""
    side = order_side(side)
    if entry_type not in _ENTRY_TYPES:
        raise InputError(f"entry_type must be one of {', '.join(_ENTRY_TYPES)}, got {entry_type!r}")
    order_type, price_field = _ENTRY_TYPES[entry_type]
    ticks = {name: t for name, (offset, price) in legs.items()
             if (t := leg_ticks(contract, name, side, offset, price, entry_price)) is not None}
    if not ticks:
        raise InputError("a bracket needs a stop or a target (an offset in ticks or a price)")
    if mode not in ("native", "client"):
        raise InputError(f"oco must be 'native' or 'client', got {mode!r}")
    native = {"stop_loss_ticks": abs(ticks["stop"]) if "stop" in ticks else None,
              "take_profit_ticks": abs(ticks["target"]) if "target" in ticks else None} if mode == "native" else {}
    request = build_order_request(contract, account_id, side, size, order_type, **native,
                                  **({price_field: entry_price} if price_field else {}))
    return request, ticks


@dataclass(frozen=True, slots=True)
class Tracking:
    """How much an OrderManager holds: the size of everything it keeps (each bounded; see OrderManager)."""

    orders: int  # tracked orders, working and ended
    ended: int  # ended orders kept, at most `max_ended`
    evicted: int  # ids of evicted orders remembered, at most `max_ended`
    waiters: int  # futures waiting for an order to end
    claimed: int  # tracked orders identified as native bracket legs
    brackets: int  # native brackets waiting for their legs
    links: int  # client-side brackets being linked
    tasks: int  # running bracket guards and links


class OrderGate(Protocol):
    """What every new order passes before the wire (the risk manager): `admit` may refuse it by raising."""

    async def admit(self, request: PlaceOrderRequest) -> None: ...

    def settled(self, request: PlaceOrderRequest, order_id: int | None, error: BaseException | None) -> None: ...


class OrderSource(Protocol):
    """What a handle reads: the tracked orders of one contract, on the event loop that owns them."""

    symbol: str
    contract: Contract

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None: ...

    def latest(self, order_id: int) -> Order | None: ...

    def evicted(self, order_id: int) -> bool: ...

    async def wait_ended(self, order_id: int, timeout: float | None) -> Order: ...


HANDLE_COLUMNS = ("id", "side", "type", "size", "price", "filled", "status")


@dataclass(frozen=True, slots=True)
class OrderHandle:
    """Live view of one order: reads the latest state its manager was given, awaits the end of the order."""

    source: OrderSource
    id: int

    def _state(self) -> str:
        if self.order is not None:
            return self.order.status.name
        return "ended, no longer tracked" if self.evicted else "not seen yet"

    def _terms(self, decimals: int) -> tuple[str, str, str, str]:
        """(side, type, size, price) of the order as a trader reads them; dashes before its first update."""
        order = self.order
        if order is None:
            return ("", "", "", "")
        price = order.limit_price if order.limit_price is not None else order.stop_price
        return (order.side.name, order.type.name, str(order.size), fixed(price, decimals) if price is not None else "")

    def _fill(self, decimals: int) -> str:
        order = self.order
        if order is None:
            return ""
        text = f"{order.fill_volume}/{order.size}"
        return text if order.filled_price is None else f"{text} @ {fixed(order.filled_price, decimals)}"

    def summary(self) -> str:
        """`12 BUY LIMIT 1 @ 20,950.00 OPEN 0/1`: the order and its live status, read now."""
        decimals = tick_decimals(self.source.contract.tick_size)
        side, kind, size, price = self._terms(decimals)
        terms = " ".join(t for t in (side, kind, size) if t) + (f" @ {price}" if price else "")
        fill = self._fill(decimals)
        return " ".join(t for t in (str(self.id), terms, self._state(), fill) if t)

    def row(self, label: str = "") -> tuple[object, ...]:
        """The order as a table row (see HANDLE_COLUMNS), read now."""
        decimals = tick_decimals(self.source.contract.tick_size)
        status = self.status
        state = badge(self._state(), _STATUS_TONES.get(status, "idle") if status is not None else "idle")
        return (*((label,) if label else ()), self.id, *self._terms(decimals), self._fill(decimals), state)

    def __repr__(self) -> str:
        return f"OrderHandle({self.source.symbol} {self.summary()})"

    def _repr_html_(self) -> str:
        return panel(f"Order {self.id} \u00b7 {self.source.symbol}", table([self.row()], HANDLE_COLUMNS, align="l"))

    @property
    def order(self) -> Order | None:
        """The latest state of the order; None before its first update and once it is evicted (see `evicted`)."""
        return self.source.latest(self.id)

    @property
    def evicted(self) -> bool:
        """The order ended long enough ago that its manager no longer keeps it (see OrderManager `max_ended`)."""
        return self.source.evicted(self.id)

    @property
    def status(self) -> OrderStatus | None:
        return self.order.status if self.order else None

    @property
    def fill_volume(self) -> int:
        return self.order.fill_volume if self.order else 0

    @property
    def filled_price(self) -> float | None:
        return self.order.filled_price if self.order else None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL or self.evicted

    async def wait_done(self, timeout: float | None = None) -> Order:
        """The order once it is filled, cancelled, expired or rejected; OrderTimeoutError (a TimeoutError) after
        `timeout` s; OrderEvictedError when it ended so long ago that it is no longer tracked."""
        return await on_loop(self.source.loop, self.source.wait_ended(self.id, timeout))

    async def wait_filled(self, timeout: float | None = None) -> Order:
        """The completely filled order; OrderEndedError if it ends otherwise, OrderTimeoutError after `timeout` s."""
        order = await self.wait_done(timeout)
        if order.status is not OrderStatus.FILLED:
            raise ended_error(order)
        return order


class BracketHandle:
    """An entry with a stop and/or target, placed on its fill by the gateway (mode "native") or by ClientOCO.

    `ticks` maps each requested leg ("stop", "target") to its signed ticks from the entry's fill; `leg_ids` fills
    in as the legs appear. The bracket settles once: protected, or with the `error` that ended it.
    """

    def __init__(self, source: OrderSource, entry_id: int, ticks: dict[str, int],
                 mode: BracketMode = "native") -> None:
        self.source = source
        self.mode = mode
        self.entry = OrderHandle(source, entry_id)
        self.ticks = ticks
        self.leg_ids: dict[str, int] = {}
        self.error: PxError | None = None
        self._settled = asyncio.Event()

    def _legs(self) -> list[tuple[str, OrderHandle | None]]:
        return [("entry", self.entry), *((name, self._leg(name)) for name in ("stop", "target") if name in self.ticks)]

    def _protection(self) -> str:
        if self.error is not None:
            return type(self.error).__name__
        return "protected" if self.protected else "legs pending"

    def __repr__(self) -> str:
        legs = ", ".join(f"{name} {'pending' if leg is None else leg.summary()}" for name, leg in self._legs())
        return f"BracketHandle({self.source.symbol} {self.mode}, {legs}, {self._protection()})"

    def _repr_html_(self) -> str:
        rows = [leg.row(name) if leg is not None else (name, "", "", "", "", "", "", muted("not placed yet"))
                for name, leg in self._legs()]
        ticks = ", ".join(f"{name} {t:+d} ticks" for name, t in self.ticks.items())
        tone = "bad" if self.error is not None else "ok" if self.protected else "warn"
        parts: list[object] = [facts([("legs", ticks), ("", badge(self._protection(), tone))]),
                               table(rows, ("leg", *HANDLE_COLUMNS), align="ll")]
        if self.error is not None:
            parts.append(Html(f'<div style="margin: 2px 0;">{escape(self.error)}</div>'))
        return panel(f"Bracket \u00b7 {self.source.symbol}", *parts, note=f"{self.mode} OCO")

    @property
    def stop(self) -> OrderHandle | None:
        return self._leg("stop")

    @property
    def target(self) -> OrderHandle | None:
        return self._leg("target")

    @property
    def protected(self) -> bool:
        """Every requested leg has appeared."""
        return self.leg_ids.keys() == self.ticks.keys()

    @property
    def settled(self) -> bool:
        """The legs came, or the bracket ended with `error`."""
        return self._settled.is_set()

    def native_leg(self, entry: Order, candidate: Order, tick_size: float) -> str | None:
        """The leg ("stop", "target") still missing that `candidate` is, when it is the order the gateway attaches
        at the entry's fill ± its ticks; None otherwise. Client-side legs (OCO_TAG) are never native."""
        if (entry.filled_price is None or candidate.id <= entry.id or candidate.side is not entry.side.opposite
                or (candidate.custom_tag or "").startswith(OCO_TAG)):
            return None
        for name, ticks in self.ticks.items():
            price = candidate.stop_price if name == "stop" else candidate.limit_price
            expected = entry.filled_price + ticks * tick_size
            if (name not in self.leg_ids and candidate.type is LEG_TYPES[name] and price is not None
                    and abs(price - expected) <= tick_size * 1.5):  # the entry's average may round
                return name
        return None

    def _leg(self, name: str) -> OrderHandle | None:
        leg_id = self.leg_ids.get(name)
        return None if leg_id is None else OrderHandle(self.source, leg_id)

    async def wait_legs(self, timeout: float | None = None) -> tuple[OrderHandle | None, OrderHandle | None]:
        """(stop, target) once every requested leg exists. Raises OrderEndedError when the entry ended unfilled,
        UnprotectedPositionError when it filled but the legs never came, TimeoutError after `timeout` s."""
        if not self._settled.is_set():
            await on_loop(self.source.loop, asyncio.wait_for(self._settled.wait(), timeout))
        if self.error is not None:
            raise self.error
        return self.stop, self.target

    def settle(self, error: PxError | None = None) -> None:
        """Wake `wait_legs`: the bracket is protected (no `error`), or ended with `error` (a later call's wins)."""
        self.error = error
        self._settled.set()
