"""OrderManager: one contract's orders kept from user-hub pushes, commands through ProjectX, brackets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..client.http import ProjectX
from ..client.orders import PlacedOrder, build_order_request, is_positive_number, order_side
from ..enums import OrderSide, OrderStatus, OrderType, UserAction
from ..errors import (
    InputError,
    OrderEndedError,
    OrderNotFoundError,
    OrderRejectedError,
    PositionNotFoundError,
    PxError,
    UnprotectedPositionError,
)
from ..events import EventBus, EventType
from ..loops import on_loop, running_loop
from ..models import Contract, Order, PlaceOrderRequest

if TYPE_CHECKING:
    from .oco import ClientOCO

log = logging.getLogger(__name__)

TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED})
_ENDED_EVENTS = {OrderStatus.CANCELLED: EventType.ORDER_CANCELLED, OrderStatus.EXPIRED: EventType.ORDER_CANCELLED,
                 OrderStatus.REJECTED: EventType.ORDER_REJECTED}
_ENTRY_TYPES = {"market": (OrderType.MARKET, None), "limit": (OrderType.LIMIT, "limit_price"),
                "stop": (OrderType.STOP, "stop_price")}  # entry_type -> (order type, the field entry_price goes to)
LEG_TYPES = {"stop": OrderType.STOP, "target": OrderType.LIMIT}
BracketMode = Literal["native", "client"]  # who places and links the legs: the gateway, or ClientOCO here
OCO_TAG = "pxkit-oco-"  # customTag prefix of client-side bracket legs (never taken for native legs)


def ended_error(order: Order) -> OrderEndedError:
    """What waiting for the fill of an order that ended unfilled (or part filled) raises."""
    return OrderEndedError(f"order {order.id} ended {order.status.name} with {order.fill_volume}/{order.size} "
                           "filled", order)


def _unprotected_error(entry: Order, missing: list[str], flatten_error: PxError | None,
                       cause: PxError | None) -> UnprotectedPositionError:
    outcome = f"flattening failed: {flatten_error}" if flatten_error else "the position was flattened"
    why = f"could not be placed ({cause})" if cause is not None else "never appeared"
    error = UnprotectedPositionError(f"bracket entry {entry.id} filled {entry.fill_volume} but its "
                                     f"{' and '.join(missing)} {why}; {outcome}",
                                     entry=entry, missing=missing, flatten_error=flatten_error)
    error.__cause__ = cause
    return error


class OrderGate(Protocol):
    """What every new order passes before the wire (the risk manager): `admit` may refuse it by raising."""

    async def admit(self, request: PlaceOrderRequest) -> None: ...

    def settled(self, request: PlaceOrderRequest, order_id: int | None, error: BaseException | None) -> None: ...


@dataclass(frozen=True, slots=True)
class OrderHandle:
    """Live view of one order: reads the latest state its manager was given, awaits the end of the order."""

    _manager: OrderManager
    id: int

    def __repr__(self) -> str:
        order = self.order
        state = f"{order.status.name} {order.fill_volume}/{order.size}" if order else "not seen yet"
        return f"OrderHandle({self.id}, {state})"

    @property
    def order(self) -> Order | None:
        return self._manager._orders.get(self.id)

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
        return self.status in TERMINAL

    async def wait_done(self, timeout: float | None = None) -> Order:
        """The order once it is filled, cancelled, expired or rejected; TimeoutError after `timeout` s."""
        return await on_loop(self._manager.loop, self._manager._wait_ended(self.id, timeout))

    async def wait_filled(self, timeout: float | None = None) -> Order:
        """The completely filled order; OrderEndedError if it ends otherwise, TimeoutError after `timeout` s."""
        order = await self.wait_done(timeout)
        if order.status is not OrderStatus.FILLED:
            raise ended_error(order)
        return order


class BracketHandle:
    """An entry with a stop and/or target, placed on its fill by the gateway (mode "native") or by ClientOCO."""

    def __init__(self, manager: OrderManager, entry_id: int, ticks: dict[str, int],
                 mode: BracketMode = "native") -> None:
        self._manager = manager
        self.mode = mode
        self.entry = OrderHandle(manager, entry_id)
        self.ticks = ticks  # leg name ("stop", "target") -> signed ticks from the entry's fill
        self.leg_ids: dict[str, int] = {}
        self.error: PxError | None = None
        self._settled = asyncio.Event()

    def __repr__(self) -> str:
        return f"BracketHandle({self.mode}, entry={self.entry!r}, stop={self.stop!r}, target={self.target!r})"

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

    def _leg(self, name: str) -> OrderHandle | None:
        leg_id = self.leg_ids.get(name)
        return None if leg_id is None else OrderHandle(self._manager, leg_id)

    async def wait_legs(self, timeout: float | None = None) -> tuple[OrderHandle | None, OrderHandle | None]:
        """(stop, target) once every requested leg exists. Raises OrderEndedError when the entry ended unfilled,
        UnprotectedPositionError when it filled but the legs never came, TimeoutError after `timeout` s."""
        if not self._settled.is_set():
            await on_loop(self._manager.loop, asyncio.wait_for(self._settled.wait(), timeout))
        if self.error is not None:
            raise self.error
        return self.stop, self.target

    def _settle(self, error: PxError | None = None) -> None:
        self.error = error
        self._settled.set()


class OrderManager:
    """Orders of one contract and account: place, modify, cancel, native brackets, and every order seen by id.

    State changes only in `apply`, which the suite's router calls for each user-hub order push (and with REST
    truth after start-up or a reconnect). Commands go through ProjectX and return handles that those pushes
    update; a push may arrive before the command returns, so every order is kept and a late handle starts from
    its latest state. `leg_timeout` bounds how long a filled bracket entry may stay without its legs. Commands
    and waits called from another thread's loop run on the loop the manager was made on (`loop`), so its state
    and its gate are only ever touched there.
    """

    def __init__(self, client: ProjectX, contract: Contract, bus: EventBus, *, account_id: int, symbol: str,
                 leg_timeout: float = 5.0, gate: OrderGate | None = None) -> None:
        self.client = client
        self.gate = gate
        self.contract = contract
        self.bus = bus
        self.account_id = account_id
        self.symbol = symbol
        self.leg_timeout = leg_timeout
        self._orders: dict[int, Order] = {}  # every order of this contract seen, by id, in its latest state
        self._waiters: dict[int, list[asyncio.Future[Order]]] = {}
        self._brackets: list[BracketHandle] = []  # waiting for their legs
        self._claimed: set[int] = set()  # orders already identified as bracket legs
        self._ocos: list[ClientOCO] = []  # client-side brackets being linked, told of every update
        self._tasks: set[asyncio.Task[None]] = set()
        self.loop = running_loop()  # the owner: the loop running at construction

    def __repr__(self) -> str:
        working = sum(o.status.is_working for o in self._orders.values())
        return f"OrderManager({self.symbol!r}, account={self.account_id}, working={working}, seen={len(self._orders)})"

    # ------------------------------------------------------------------ the one writer

    def apply(self, order: Order, action: UserAction) -> None:
        """Apply one order update (hub push or REST truth); stale and repeated updates change nothing."""
        if order.contract_id != self.contract.id or order.account_id != self.account_id:
            return
        if action is UserAction.DELETED and order.status.is_working:
            order = replace(order, status=OrderStatus.CANCELLED)  # removed by the gateway
        previous = self._orders.get(order.id)
        if previous is not None and _stale(previous, order):
            return
        self._orders[order.id] = order
        self._emit(previous, order)
        if order.status in TERMINAL:
            for future in self._waiters.pop(order.id, ()):
                if not future.done():
                    future.set_result(order)
        for bracket in list(self._brackets):  # an entry's fill may come after its legs (REST truth): look again
            for candidate in list(self._orders.values()) if order.id == bracket.entry.id else [order]:
                self._link(bracket, candidate)
        for oco in list(self._ocos):
            oco.on_order(previous, order)

    def _emit(self, previous: Order | None, order: Order) -> None:
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
        stamp = order.update_timestamp or order.creation_timestamp
        for kind in kinds:
            self.bus.emit_nowait(kind, order, source=self.symbol, timestamp=stamp)

    def _link(self, bracket: BracketHandle, candidate: Order) -> None:
        """Claim `candidate` as a leg of `bracket` when it is the order the gateway attaches on the entry's fill."""
        entry = self._orders.get(bracket.entry.id)
        if (entry is None or entry.filled_price is None or candidate.id <= entry.id or candidate.id in self._claimed
                or candidate.side is not entry.side.opposite or (candidate.custom_tag or "").startswith(OCO_TAG)):
            return
        for name, ticks in bracket.ticks.items():
            price = candidate.stop_price if name == "stop" else candidate.limit_price
            expected = entry.filled_price + ticks * self.contract.tick_size
            if (name not in bracket.leg_ids and candidate.type is LEG_TYPES[name] and price is not None
                    and abs(price - expected) <= self.contract.tick_size * 1.5):  # the entry's average may round
                bracket.leg_ids[name] = candidate.id
                self._claimed.add(candidate.id)
                if bracket.protected:
                    self._brackets.remove(bracket)
                    bracket._settle()
                return

    async def _wait_ended(self, order_id: int, timeout: float | None) -> Order:
        """On the manager's loop, where `apply` runs: an order that ended before the wait began is returned."""
        order = self._orders.get(order_id)
        if order is not None and order.status in TERMINAL:
            return order
        return await asyncio.wait_for(self._ended(order_id), timeout)

    def _ended(self, order_id: int) -> asyncio.Future[Order]:
        """A future that `apply` resolves with the order when it ends."""
        future: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        waiting = self._waiters[order_id] = [f for f in self._waiters.get(order_id, ()) if not f.cancelled()]
        waiting.append(future)  # waits that timed out are dropped here, so a long-lived order keeps no garbage
        return future

    def handle(self, order_id: int) -> OrderHandle:
        """A live view of any order of this contract, seen yet or not."""
        return OrderHandle(self, order_id)

    def working(self) -> list[Order]:
        """Working orders, oldest first, as the hub last reported them."""
        return [o for o in self._orders.values() if o.status.is_working]

    async def get_open_orders(self) -> list[Order]:
        """Working orders, oldest first, as the hub last reported them."""
        return self.working()

    async def get_order(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    def is_bracket_leg(self, order_id: int) -> bool:
        """Whether the order is a native bracket leg of this process's brackets (it only ever closes)."""
        return order_id in self._claimed

    def pending_legs(self) -> int:
        """Working orders the gateway may still add by attaching native bracket legs (beyond a working entry)."""
        count = 0
        for bracket in self._brackets:
            entry = self._orders.get(bracket.entry.id)
            working = entry is None or entry.status.is_working  # the entry holds one slot until its legs come
            count += max(0, len(bracket.ticks) - len(bracket.leg_ids) - working)
        return count

    # ------------------------------------------------------------------ commands

    async def place_order(self, side: OrderSide | str, size: int, order_type: OrderType = OrderType.MARKET, *,
                          limit_price: float | None = None, stop_price: float | None = None,
                          trail_price: float | None = None, custom_tag: str | None = None) -> OrderHandle:
        """Place any order type; InputError before the wire for a bad side, size or off-grid price."""
        prices = {"limit_price": limit_price, "stop_price": stop_price, "trail_price": trail_price}
        return await on_loop(self.loop, self._place(side, size, order_type, custom_tag, prices))

    async def _place(self, side: OrderSide | str, size: int, order_type: OrderType, custom_tag: str | None,
                     prices: dict[str, float | None]) -> OrderHandle:
        request = build_order_request(self.contract, self.account_id, side, size, order_type, custom_tag=custom_tag,
                                      **prices)
        placed = await self._send(request, prices)
        return OrderHandle(self, placed.order_id)

    async def _send(self, request: PlaceOrderRequest, fields: dict[str, Any]) -> PlacedOrder:
        """Through the gate (if any), then to the gateway under the request's customTag."""
        if self.gate is not None:
            await self.gate.admit(request)
        try:
            placed = await self.client.place_order(self.contract.id, request.side, request.size,
                                                   order_type=request.type, custom_tag=request.custom_tag,
                                                   account_id=self.account_id, **fields)
        except BaseException as exc:
            self._settled(request, None, exc)
            raise
        self._settled(request, placed.order_id, None)
        return placed

    def _settled(self, request: PlaceOrderRequest, order_id: int | None, error: BaseException | None) -> None:
        """Tell the gate how the placement ended; a gate failing here is logged and never costs the caller the
        order it placed."""
        if self.gate is None:
            return
        try:
            self.gate.settled(request, order_id, error)
        except Exception:
            log.exception("the order gate could not record how order %s ended (order id %s)", request.custom_tag,
                          order_id)

    async def place_market_order(self, side: OrderSide | str, size: int) -> OrderHandle:
        return await self.place_order(side, size, OrderType.MARKET)

    async def place_limit_order(self, side: OrderSide | str, size: int, price: float) -> OrderHandle:
        return await self.place_order(side, size, OrderType.LIMIT, limit_price=price)

    async def place_stop_order(self, side: OrderSide | str, size: int, stop_price: float) -> OrderHandle:
        return await self.place_order(side, size, OrderType.STOP, stop_price=stop_price)

    async def place_trailing_stop_order(self, side: OrderSide | str, size: int, trail_price: float) -> OrderHandle:
        """A stop that follows the market at `trail_price` (a price distance on the tick grid)."""
        return await self.place_order(side, size, OrderType.TRAILING_STOP, trail_price=trail_price)

    async def place_join_bid_order(self, size: int) -> OrderHandle:
        """A buy limit joining the best bid."""
        return await self.place_order(OrderSide.BUY, size, OrderType.JOIN_BID)

    async def place_join_ask_order(self, size: int) -> OrderHandle:
        """A sell limit joining the best ask."""
        return await self.place_order(OrderSide.SELL, size, OrderType.JOIN_ASK)

    async def place_bracket_order(
        self, side: OrderSide | str, size: int, *, entry_type: Literal["market", "limit", "stop"] = "market",
        entry_price: float | None = None, stop_offset: int | None = None, stop_price: float | None = None,
        target_offset: int | None = None, target_price: float | None = None, oco: BracketMode = "native",
    ) -> BracketHandle:
        """An entry with gateway-held stop and/or target legs (OCO), attached by the gateway when the entry fills.

        Offsets are whole ticks from the entry's fill; prices are converted to ticks from `entry_price` (for a
        market entry `entry_price` is only that reference). A market entry is awaited until its legs exist. A filled
        entry whose legs do not appear within `leg_timeout` s is flattened and reported with
        UnprotectedPositionError (raised here for a market entry, by `wait_legs()` otherwise).
        `oco="client"` sends the entry alone and lets ClientOCO place and link the legs (see its caveats).
        """
        return await on_loop(self.loop, self._place_bracket(side, size, entry_type, entry_price, stop_offset,
                                                            stop_price, target_offset, target_price, oco))

    async def _place_bracket(self, side: OrderSide | str, size: int, entry_type: str, entry_price: float | None,
                             stop_offset: int | None, stop_price: float | None, target_offset: int | None,
                             target_price: float | None, oco: BracketMode) -> BracketHandle:
        side = order_side(side)
        if entry_type not in _ENTRY_TYPES:
            raise InputError(f"entry_type must be one of {', '.join(_ENTRY_TYPES)}, got {entry_type!r}")
        order_type, price_field = _ENTRY_TYPES[entry_type]
        stop = self._leg_ticks("stop", side, stop_offset, stop_price, entry_price)
        target = self._leg_ticks("target", side, target_offset, target_price, entry_price)
        if stop is None and target is None:
            raise InputError("a bracket needs a stop or a target (an offset in ticks or a price)")
        if oco not in ("native", "client"):
            raise InputError(f"oco must be 'native' or 'client', got {oco!r}")
        fields = {**({"stop_loss_ticks": stop, "take_profit_ticks": target} if oco == "native" else {}),
                  **({price_field: entry_price} if price_field else {})}
        request = build_order_request(self.contract, self.account_id, side, size, order_type, **fields)
        placed = await self._send(request, fields)
        ticks = {name: t for name, t in (("stop", stop), ("target", target)) if t is not None}
        bracket = BracketHandle(self, placed.order_id, ticks, oco)
        if oco == "client":
            from .oco import ClientOCO  # oco.py builds on this module
            self._ocos.append(linker := ClientOCO(self, bracket))
            self._start(linker.run(), f"pxkit-oco-{placed.order_id}")
        else:
            self._brackets.append(bracket)
            for seen in list(self._orders.values()):
                self._link(bracket, seen)
            if not bracket.protected:
                self._start(self._guard(bracket), f"pxkit-bracket-{placed.order_id}")
        if order_type is OrderType.MARKET:
            await bracket.wait_legs()
        return bracket

    def _leg_ticks(self, name: str, side: OrderSide, offset: int | None, price: float | None,
                   reference: float | None) -> int | None:
        """Signed ticks of a leg from its offset or price (long: stop below, target above; short: the opposite)."""
        direction = -side.sign if name == "stop" else side.sign
        if offset is not None and price is not None:
            raise InputError(f"give {name}_offset or {name}_price, not both")
        if offset is not None:
            if isinstance(offset, bool) or not isinstance(offset, int) or offset <= 0:
                raise InputError(f"{name}_offset must be a whole number of ticks > 0, got {offset!r}")
            return direction * offset
        if price is None:
            return None
        if not is_positive_number(price) or not self.contract.on_grid(price):
            raise InputError(f"{name}_price {price!r} is not a price on the {self.contract.tick_size} tick grid")
        if reference is None or not is_positive_number(reference):
            raise InputError(f"{name}_price needs a price entry_price to measure from (or give {name}_offset)")
        ticks = self.contract.to_ticks(price) - self.contract.to_ticks(reference)
        if ticks * direction <= 0:
            where = "below" if direction < 0 else "above"
            raise InputError(f"{name}_price {price} must be {where} the entry {reference} for a {side.name}")
        return ticks

    def _start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` as a task that `aclose` cancels."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, bracket: BracketHandle) -> None:
        """After the entry ends: no fill -> OrderEndedError; filled but legs missing in time -> flatten."""
        entry = await bracket.entry.wait_done()
        if not entry.fill_volume:
            self._brackets.remove(bracket)
            bracket._settle(ended_error(entry))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bracket._settled.wait(), self.leg_timeout)
        if bracket._settled.is_set():
            return
        self._brackets.remove(bracket)
        await self._abandon(bracket, entry, [name for name in bracket.ticks if name not in bracket.leg_ids])

    async def _abandon(self, bracket: BracketHandle, entry: Order, missing: list[str],
                       cause: PxError | None = None) -> None:
        """Flatten a filled entry left without (some of) its legs; report UnprotectedPositionError on the handle."""
        log.error("bracket entry %d on %s filled without its %s: flattening", entry.id, self.symbol, missing)
        failure: PxError | None = None
        try:
            await self.close_position()
        except PositionNotFoundError:
            pass  # already flat
        except PxError as exc:
            failure = exc
        bracket._settle(_unprotected_error(entry, missing, failure, cause))

    async def modify_order(self, order_id: int | OrderHandle, *, size: int | None = None,
                           limit_price: float | None = None, stop_price: float | None = None,
                           trail_price: float | None = None) -> None:
        """Change a working order; prices must lie on the tick grid (checked before the wire)."""
        for name, value in (("limit_price", limit_price), ("stop_price", stop_price), ("trail_price", trail_price)):
            if value is not None and (not is_positive_number(value) or not self.contract.on_grid(value)):
                raise InputError(f"{name} {value!r} is not a price on the {self.contract.tick_size} tick grid")
        await on_loop(self.loop, self.client.modify_order(
            _order_id(order_id), size=size, limit_price=limit_price, stop_price=stop_price, trail_price=trail_price,
            account_id=self.account_id))

    async def cancel_order(self, order_id: int | OrderHandle) -> None:
        await on_loop(self.loop, self.client.cancel_order(_order_id(order_id), account_id=self.account_id))

    async def cancel_all_orders(self) -> int:
        """Cancel every order of this contract the gateway reports working; returns how many were cancelled."""
        return await on_loop(self.loop, self._cancel_all())

    async def _cancel_all(self) -> int:
        working = [o.id for o in await self.client.search_open_orders(account_id=self.account_id)
                   if o.contract_id == self.contract.id]
        results = await asyncio.gather(*(self.cancel_order(i) for i in working), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, OrderRejectedError | OrderNotFoundError):
                raise result  # ended meanwhile (filled or cancelled) is fine; anything else is not
        return sum(result is None for result in results)

    async def close_position(self) -> None:
        """Flatten this contract's position with a market order."""
        await on_loop(self.loop, self.client.close_position(self.contract.id, account_id=self.account_id))

    async def aclose(self) -> None:
        """Stop watching brackets (native guards, client OCO links) and release every waiter."""
        pending = [b for b in [*self._brackets, *(linker.bracket for linker in self._ocos)] if not b._settled.is_set()]
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for future in [f for futures in self._waiters.values() for f in futures]:
            future.cancel()
        self._waiters.clear()
        for bracket in pending:
            if not bracket._settled.is_set():
                bracket._settle(PxError(f"{self.symbol} order manager closed before the bracket's legs came"))


def _order_id(order: int | OrderHandle) -> int:
    return order.id if isinstance(order, OrderHandle) else order


def _stale(previous: Order, order: Order) -> bool:
    """An update that is older than, or the same as, what is known (a final state is never undone)."""
    older = (previous.update_timestamp is not None and order.update_timestamp is not None
             and order.update_timestamp < previous.update_timestamp)
    return previous == order or previous.status in TERMINAL or order.fill_volume < previous.fill_volume or older
