"""OrderManager: one contract's orders kept from user-hub pushes, commands through ProjectX, brackets."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from ..client.http import ProjectX
from ..client.orders import PlacedOrder, build_modify_request, build_order_request
from ..enums import OrderSide, OrderStatus, OrderType, UserAction
from ..errors import (
    InputError,
    OrderEvictedError,
    OrderNotFoundError,
    OrderRejectedError,
    PositionNotFoundError,
    PxError,
)
from ..events import EventBus
from ..loops import on_loop, running_loop
from ..models import Contract, Order, PlaceOrderRequest
from .brackets import (
    OCO_TAG,
    TERMINAL,
    BracketHandle,
    BracketMode,
    EntryType,
    OrderGate,
    OrderHandle,
    Tracking,
    bracket_entry,
    ended_error,
    is_stale,
    order_events,
    timeout_error,
    unprotected_error,
)
from .oco import ClientOCO

log = logging.getLogger(__name__)

MAX_ENDED = 1_000  # ended orders an OrderManager keeps by default, least recently ended evicted first
OrderObserver = Callable[[Order | None, Order], None]  # (previous state or None, the update kept)


class OrderManager:
    """Orders of one contract and account: place, modify, cancel, native brackets, and the orders seen by id.

    State changes only in `apply`, which the suite's router calls for each user-hub order push (and with REST
    truth after start-up or a reconnect); observers (`observe`) are told of every update it keeps. Commands go
    through ProjectX and return handles that those pushes update; a push may arrive before the command returns,
    so a late handle starts from the latest state. Working orders are always kept; ended ones up to `max_ended`,
    the least recently ended evicted first (never one a live bracket still watches), and a handle of an evicted
    order says so (`evicted`, OrderEvictedError) for the last `max_ended` evictions. `leg_timeout` bounds how long
    a filled bracket entry may stay without its legs. Commands and waits called from another thread's loop run
    on the loop the manager was made on (`loop`), so its state and its gate are only ever touched there.
    """

    def __init__(self, client: ProjectX, contract: Contract, bus: EventBus, *, account_id: int, symbol: str,
                 leg_timeout: float = 5.0, gate: OrderGate | None = None, max_ended: int = MAX_ENDED) -> None:
        if isinstance(max_ended, bool) or not isinstance(max_ended, int) or max_ended < 1:
            raise InputError(f"max_ended must be a whole number >= 1, got {max_ended!r}")
        self.client = client
        self.gate = gate
        self.contract = contract
        self.bus = bus
        self.account_id = account_id
        self.symbol = symbol
        self.leg_timeout = leg_timeout
        self.max_ended = max_ended
        self._orders: dict[int, Order] = {}  # working and kept ended orders of this contract, by id
        self._ended: dict[int, None] = {}  # ids of the kept ended orders, in the order they ended
        self._working: dict[int, None] = {}  # ids of the working orders, in the order they were first seen working
        self._evicted: dict[int, None] = {}  # ids of the latest evicted orders, oldest first
        self._waiters: dict[int, list[asyncio.Future[Order]]] = {}
        self._brackets: list[BracketHandle] = []  # native brackets waiting for their legs
        self._claimed: set[int] = set()  # orders already identified as native bracket legs
        self._links: list[ClientOCO] = []  # client-side brackets being linked
        self._observers: list[OrderObserver] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.loop = running_loop()  # the owner: the loop running at construction

    def __repr__(self) -> str:
        return (f"OrderManager({self.symbol!r}, account={self.account_id}, working={len(self._working)}, "
                f"seen={len(self._orders)})")

    # ------------------------------------------------------------------ the one writer

    def apply(self, order: Order, action: UserAction) -> None:
        """Apply one order update (hub push or REST truth); stale, repeated and evicted updates change nothing."""
        if order.contract_id != self.contract.id or order.account_id != self.account_id:
            return
        if action is UserAction.DELETED and order.status.is_working:
            order = replace(order, status=OrderStatus.CANCELLED)  # removed by the gateway
        previous = self._orders.get(order.id)
        if (previous is not None and is_stale(previous, order)) or (previous is None and order.id in self._evicted):
            return
        self._orders[order.id] = order
        if order.status.is_working:
            self._working.setdefault(order.id, None)
        else:
            self._working.pop(order.id, None)
        self._emit(previous, order)
        if order.status in TERMINAL:
            self._ended[order.id] = None
            for future in self._waiters.pop(order.id, ()):
                if not future.done():
                    future.set_result(order)
        for bracket in list(self._brackets):  # an entry's fill may come after its legs (REST truth): look again
            for candidate in list(self._orders.values()) if order.id == bracket.entry.id else [order]:
                self._link(bracket, candidate)
        for observer in list(self._observers):
            observer(previous, order)
        if len(self._ended) > self.max_ended:
            self._evict(len(self._ended) - self.max_ended)

    def observe(self, observer: OrderObserver) -> Callable[[], None]:
        """Call `observer(previous, order)` after every update `apply` keeps; returns what stops it."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def _evict(self, count: int) -> None:
        """Forget the `count` least recently ended orders that no live bracket watches."""
        watched = {b.entry.id for b in self._brackets} | {i for link in self._links for i in link.watched}
        oldest = itertools.islice(self._ended, count + len(watched))
        for order_id in [i for i in oldest if i not in watched][:count]:
            del self._ended[order_id], self._orders[order_id]
            self._claimed.discard(order_id)
            self._evicted[order_id] = None
            if len(self._evicted) > self.max_ended:
                del self._evicted[next(iter(self._evicted))]

    def _emit(self, previous: Order | None, order: Order) -> None:
        stamp = order.update_timestamp or order.creation_timestamp
        for kind in order_events(previous, order):
            self.bus.emit_nowait(kind, order, source=self.symbol, timestamp=stamp)

    def _link(self, bracket: BracketHandle, candidate: Order) -> None:
        """Claim `candidate` as a leg of `bracket` when it is the order the gateway attaches on the entry's fill."""
        entry = self._orders.get(bracket.entry.id)
        name = None if entry is None or candidate.id in self._claimed else bracket.native_leg(
            entry, candidate, self.contract.tick_size)
        if name is None:
            return
        bracket.leg_ids[name] = candidate.id
        self._claimed.add(candidate.id)
        if bracket.protected:
            self._brackets.remove(bracket)
            bracket.settle()

    def latest(self, order_id: int) -> Order | None:
        """The latest state of a tracked order; None when not seen yet or evicted."""
        return self._orders.get(order_id)

    def evicted(self, order_id: int) -> bool:
        """Whether the order ended and was evicted (remembered for the last `max_ended` evictions)."""
        return order_id in self._evicted

    async def wait_ended(self, order_id: int, timeout: float | None) -> Order:
        """The order once it ended (at once if it already has); OrderTimeoutError after `timeout` s,
        OrderEvictedError when it is no longer tracked."""
        return await on_loop(self.loop, self._wait_ended(order_id, timeout))

    async def _wait_ended(self, order_id: int, timeout: float | None) -> Order:
        order = self._orders.get(order_id)
        if order is not None and order.status in TERMINAL:
            return order
        if order_id in self._evicted:
            raise OrderEvictedError(f"order {order_id} of {self.symbol} ended and is no longer tracked (the manager "
                                    f"keeps its {self.max_ended} latest ended orders); search_orders has it",
                                    order_id=order_id)
        future: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        waiting = self._waiters.setdefault(order_id, [])
        waiting.append(future)  # resolved by `apply`, on this loop
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise timeout_error(order_id, self._orders.get(order_id), timeout) from None
        finally:
            if future in waiting:
                waiting.remove(future)
                if not waiting and self._waiters.get(order_id) is waiting:
                    del self._waiters[order_id]

    def handle(self, order_id: int) -> OrderHandle:
        """A live view of any order of this contract, seen yet or not."""
        return OrderHandle(self, order_id)

    def working(self) -> list[Order]:
        """Working orders, oldest first, as the hub last reported them."""
        return [self._orders[i] for i in self._working]

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

    def tracking(self) -> Tracking:
        """The size of everything this manager keeps."""
        return Tracking(len(self._orders), len(self._ended), len(self._evicted),
                        sum(len(w) for w in self._waiters.values()), len(self._claimed), len(self._brackets),
                        len(self._links), len(self._tasks))

    # ------------------------------------------------------------------ commands

    async def place_order(self, side: OrderSide | str, size: int, order_type: OrderType = OrderType.MARKET, *,
                          limit_price: float | None = None, stop_price: float | None = None,
                          trail_price: float | None = None, custom_tag: str | None = None) -> OrderHandle:
        """Place any order type; InputError before the wire for a bad side, size or off-grid price."""
        request = build_order_request(self.contract, self.account_id, side, size, order_type, custom_tag=custom_tag,
                                      limit_price=limit_price, stop_price=stop_price, trail_price=trail_price)
        placed = await on_loop(self.loop, self._send(request))
        return OrderHandle(self, placed.order_id)

    async def _send(self, request: PlaceOrderRequest) -> PlacedOrder:
        """Through the gate (if any), then to the gateway under the request's customTag."""
        if self.gate is not None:
            await self.gate.admit(request)
        try:
            placed = await self.client.send_order(request)
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
        self, side: OrderSide | str, size: int, *, entry_type: EntryType = "market",
        entry_price: float | None = None, stop_offset: int | None = None, stop_price: float | None = None,
        target_offset: int | None = None, target_price: float | None = None, oco: BracketMode = "native",
    ) -> BracketHandle:
        """An entry with gateway-held stop and/or target legs (OCO), attached by the gateway when the entry fills.

        Offsets are distances in whole ticks > 0 from the entry's fill, as for `ProjectX.place_order`'s
        `stop_loss_ticks`; prices are converted to ticks from `entry_price` (for a market entry `entry_price` is
        only that reference). A market entry is awaited until its legs exist. A filled entry whose legs do not
        appear within `leg_timeout` s is flattened and reported with UnprotectedPositionError (raised here for a
        market entry, by `wait_legs()` otherwise). `oco="client"` sends the entry alone and lets ClientOCO place
        and link the legs (see its caveats).
        """
        return await on_loop(self.loop, self._place_bracket(side, size, entry_type, entry_price, stop_offset,
                                                            stop_price, target_offset, target_price, oco))

    async def _place_bracket(self, side: OrderSide | str, size: int, entry_type: EntryType, entry_price: float | None,
                             stop_offset: int | None, stop_price: float | None, target_offset: int | None,
                             target_price: float | None, oco: BracketMode) -> BracketHandle:
        request, ticks = bracket_entry(self.contract, self.account_id, side, size, entry_type, entry_price,
                                       {"stop": (stop_offset, stop_price), "target": (target_offset, target_price)},
                                       oco)
        placed = await self._send(request)
        bracket = BracketHandle(self, placed.order_id, ticks, oco)
        if oco == "client":
            self._start_link(ClientOCO(self, bracket))
        else:
            self._brackets.append(bracket)
            for seen in list(self._orders.values()):
                self._link(bracket, seen)
            if not bracket.protected:
                self._start(self._guard(bracket), f"pxkit-bracket-{placed.order_id}")
        if request.type is OrderType.MARKET:
            await bracket.wait_legs()
        return bracket

    def _start(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run `work` as a task that `aclose` cancels."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start_link(self, link: ClientOCO) -> None:
        """Run a client-side bracket's linker, told of every update, until it ends or `aclose` cancels it."""
        self._links.append(link)
        stop_observing = self.observe(link.on_order)

        def unlink(_: asyncio.Task[None]) -> None:
            stop_observing()
            self._links.remove(link)

        self._start(link.run(), f"{OCO_TAG}{link.bracket.entry.id}").add_done_callback(unlink)

    async def _guard(self, bracket: BracketHandle) -> None:
        """After the entry ends: no fill -> OrderEndedError; filled but legs missing in time -> flatten."""
        entry = await bracket.entry.wait_done()
        if not entry.fill_volume:
            self._brackets.remove(bracket)
            bracket.settle(ended_error(entry))
            return
        with contextlib.suppress(TimeoutError, PxError):
            await asyncio.wait_for(bracket.wait_legs(), self.leg_timeout)
        if bracket.settled:
            return
        self._brackets.remove(bracket)
        await self.flatten_unprotected(bracket, entry, [name for name in bracket.ticks if name not in bracket.leg_ids])

    async def flatten_unprotected(self, bracket: BracketHandle, entry: Order, missing: list[str],
                                  cause: PxError | None = None) -> None:
        """Flatten a filled entry left without (some of) its legs; settle the bracket with UnprotectedPositionError."""
        log.error("bracket entry %d on %s filled without its %s: flattening", entry.id, self.symbol, missing)
        failure: PxError | None = None
        try:
            await self.close_position()
        except PositionNotFoundError:
            pass  # already flat
        except PxError as exc:
            failure = exc
        bracket.settle(unprotected_error(entry, missing, failure, cause))

    async def modify_order(self, order_id: int | OrderHandle, *, size: int | None = None,
                           limit_price: float | None = None, stop_price: float | None = None,
                           trail_price: float | None = None) -> None:
        """Change a working order; prices must lie on the tick grid (checked before the wire)."""
        request = build_modify_request(self.account_id, _order_id(order_id), size=size, limit_price=limit_price,
                                       stop_price=stop_price, trail_price=trail_price, contract=self.contract)
        await on_loop(self.loop, self.client.send_modify(request))

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
        pending = [b for b in [*self._brackets, *(link.bracket for link in self._links)] if not b.settled]
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for future in [f for futures in self._waiters.values() for f in futures]:
            future.cancel()
        for bracket in pending:
            if not bracket.settled:
                bracket.settle(PxError(f"{self.symbol} order manager closed before the bracket's legs came"))


def _order_id(order: int | OrderHandle) -> int:
    return order.id if isinstance(order, OrderHandle) else order
