"""`lab.ladder(ctx)`: a live price ladder (DOM) of one instrument: depth, own working orders, last trade, average."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, Protocol

import traitlets

from ..enums import OrderSide
from ..errors import InputError
from ..events import Event, EventType
from ..instrument.context import InstrumentContext
from ..models import MarketTrade, Order, tick_decimals
from .widget import INTERVAL, STATIC, LabWidget, Message, side_text

log = logging.getLogger(__name__)

EDGE_ROWS = 2  # the ladder re-centres once the last price comes within this many rows of its top or bottom
MAX_LEVELS = 100  # rows above and below the centre, at most
_POSITION_EVENTS = (EventType.POSITION_OPENED, EventType.POSITION_CHANGED, EventType.POSITION_CLOSED)


class Stager(Protocol):
    """What a ladder hands a picked price to: `stage(price)` stages a limit order at that price."""

    def stage(self, price: float) -> Any: ...


def ladder(ctx: InstrumentContext, levels: int = 10, ticket: Stager | None = None) -> Ladder:
    """A live price ladder of `ctx`: `levels` rows above and below the centre price, each with the book's bid and
    ask size at that price and the user's working orders there; the last trade and the position's average price
    are marked. Clicking a row stages a limit order at its price on `ticket` (see `Ladder.link`); the cancel button in a
    row's orders cell cancels the orders working there. Display the returned widget.

    Sizes come from the level-2 book: open the suite with `features=["orderbook"]` (without it the ladder shows
    prices, orders, the last trade and the average price, with no depth).
    """
    return Ladder(ctx, levels, ticket)


def centre_for(centre: int | None, last: int, levels: int) -> int:
    """The centre (in ticks) of a ladder of `levels` rows each side once the last price is `last` (in ticks): kept
    while the last price stays more than EDGE_ROWS rows (fewer for a short ladder) inside an edge, else `last`."""
    margin = min(EDGE_ROWS, levels // 2)
    if centre is None or abs(last - centre) >= levels - margin:
        return last
    return centre


class Ladder(LabWidget):
    """The widget `lab.ladder` returns: rows of bid size | price | ask size | last trade size | own orders,
    highest price on top, re-centred on the last price with hysteresis (`centre_for`).

    The page gets the whole ladder as JSON lists (`prices`, `bids`, `asks`, `buys`, `sells`, and `orders` as
    [id, "buy"|"sell", size, price]) plus `last`, `last_size`, `avg`, `best_bid`, `best_ask` when it says hello,
    then deltas holding only the keys that changed, at most one per INTERVAL, each with its `seq`. A page message
    {kind: "pick", price} stages that price on the linked ticket; {kind: "cancel", order_id} cancels a working
    order shown; a refusal or a failure goes back as {kind: "notice", text}. `updates_sent` counts the deltas.
    """

    _esm = STATIC / "ladder.js"
    _css = STATIC / "ladder.css"
    symbol = traitlets.Unicode().tag(sync=True)
    levels = traitlets.Int().tag(sync=True)
    tick_size = traitlets.Float().tag(sync=True)
    decimals = traitlets.Int().tag(sync=True)

    def __init__(self, ctx: InstrumentContext, levels: int = 10, ticket: Stager | None = None) -> None:
        if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= MAX_LEVELS:
            raise InputError(f"levels must be a whole number from 1 to {MAX_LEVELS}, got {levels!r}")
        _check_ticket(ticket)
        self.ctx = ctx
        self.ticket = ticket
        self.updates_sent = 0
        info = ctx.instrument_info
        self._tick = info.tick_size
        self._decimals = tick_decimals(info.tick_size)
        self._centre: int | None = None  # in ticks; None until a price is known
        self._last: float | None = ctx.data.last_price
        self._last_size: int | None = None  # known from the first trade print seen
        self._shown: dict[str, Any] = {}  # the view as the pages last got it
        self._seq = 0  # of the last message that changed the view
        self._greeted = False  # a view has asked for the state: deltas are worth sending from then on
        self._tasks: set[asyncio.Task[None]] = set()  # cancels on their way
        super().__init__(ctx.positions.loop, symbol=ctx.symbol, levels=levels, tick_size=info.tick_size,
                         decimals=self._decimals)
        self._throttle = self.throttle(INTERVAL, self._flush)
        self.listen(ctx.event_bus, EventType.TICK, self._on_trade)
        self.listen(ctx.event_bus, EventType.DEPTH_UPDATE if ctx.orderbook is not None else EventType.QUOTE_UPDATE,
                    self._on_market)
        for kind in _POSITION_EVENTS:
            self.listen(ctx.event_bus, kind, self._on_market)
        self.on_close(ctx.orders.observe(self._on_order))

    def __repr__(self) -> str:
        return f"Ladder({self.symbol}, {self.levels} levels each side)"

    # ------------------------------------------------------------------ the ticket

    def link(self, ticket: Stager | None) -> None:
        """Stage picked prices on `ticket` (anything with a `stage(price)` method) from now on; None unlinks."""
        _check_ticket(ticket)
        self.ticket = ticket

    def pick(self, price: float) -> float:
        """Stage `price`, snapped to the tick grid, on the linked ticket and return it; InputError for a price that
        is not on the ladder as last shown (as it is now if no view has opened yet), or when no ticket is linked."""
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price):
            raise InputError(f"a picked price must be a finite number, got {price!r}")
        ticks = round(price / self._tick)
        prices = (self._shown or self.view())["prices"]
        if not prices or not self._to_ticks(prices[-1]) <= ticks <= self._to_ticks(prices[0]):
            raise InputError(f"{price!r} is not on the {self.symbol} ladder")
        if self.ticket is None:
            raise InputError(f"no ticket is linked to the {self.symbol} ladder: ladder.link(ticket) first")
        snapped = self._price(ticks)
        self.ticket.stage(snapped)
        return snapped

    # ------------------------------------------------------------------ what the page is sent

    def view(self) -> dict[str, Any]:
        """The ladder as it is now, as the page is sent it; re-centred first if the last price (the best bid or ask
        before any trade) says so."""
        ctx = self.ctx
        best_bid, best_ask = ctx.book_top()
        near = next((p for p in (self._last, best_bid, best_ask) if p is not None), None)  # the last trade if any
        if near is not None:
            self._centre = centre_for(self._centre, self._to_ticks(near), self.levels)
        view: dict[str, Any] = {"last": self._last, "last_size": self._last_size,
                                "avg": ctx.positions.average_price, "best_bid": best_bid, "best_ask": best_ask}
        if self._centre is None:
            return {**view, "prices": [], "bids": [], "asks": [], "buys": [], "sells": [], "orders": []}
        ticks = range(self._centre + self.levels, self._centre - self.levels - 1, -1)
        top, bottom = ticks[0], ticks[-1]
        book = ctx.orderbook  # only the rows shown are read; no depth without the orderbook feature
        depth = (book.sizes_between(self._price(top), self._price(bottom)) if book is not None
                 else [(0.0, 0, 0)] * len(ticks))
        buys: dict[int, int] = {}
        sells: dict[int, int] = {}
        orders = []
        for order in ctx.orders.working():
            price = _price_of(order)
            at = None if price is None else self._to_ticks(price)
            if at is None or not bottom <= at <= top:
                continue
            left = order.size - order.fill_volume
            side = buys if order.side is OrderSide.BUY else sells
            side[at] = side.get(at, 0) + left
            orders.append([order.id, side_text(order.side), left, self._price(at)])
        view.update(prices=[self._price(t) for t in ticks],
                    bids=[int(bid) for _, bid, _ in depth], asks=[int(ask) for _, _, ask in depth],
                    buys=[buys.get(t, 0) for t in ticks], sells=[sells.get(t, 0) for t in ticks], orders=orders)
        return view

    def state_message(self) -> Message:
        """The whole ladder; a change the other views have not had yet moves `seq` on, so they ask again."""
        self._greeted = True
        view = self.view()
        if view != self._shown:
            self._seq += 1 if self._shown else 0
            self._shown = view
        return {"kind": "state", "seq": self._seq, **view}, []

    def _flush(self) -> bool:
        """Send what changed since the last message as one delta (nothing when nothing shown changed); whether it
        did."""
        if self.closed:
            return False
        view = self.view()
        changed = {key: value for key, value in view.items() if self._shown.get(key) != value}
        if not changed:
            return False
        self._shown = view
        self._seq += 1
        self.send({"kind": "delta", "seq": self._seq, **changed}, [])
        self.updates_sent += 1
        return True

    def _changed(self) -> None:
        """Something shown may have changed: look with the next delta, at most one per INTERVAL."""
        if self._greeted:
            self._throttle.poke()

    def _notice(self, text: str) -> None:
        log.info("%s ladder: %s", self.symbol, text)
        self.send({"kind": "notice", "text": text}, [])

    # ------------------------------------------------------------------ what the page asks

    def handle(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        kind = content.get("kind")
        if kind == "pick":
            try:
                self.pick(content.get("price"))  # type: ignore[arg-type]
            except InputError as exc:
                self._notice(str(exc))
            except Exception as exc:  # the ticket's own failure: the page says so, the kernel logs it
                log.exception("%s ladder: the ticket refused %r", self.symbol, content.get("price"))
                self._notice(f"the ticket could not stage {content.get('price')!r}: {exc}")
        elif kind == "cancel":
            self._cancel(content.get("order_id"))
        else:
            super().handle(content, buffers)

    def _cancel(self, order_id: Any) -> None:
        """Cancel a working order the ladder shows; the order's fate is what the user hub then reports."""
        shown = {entry[0] for entry in self._shown.get("orders", ())}
        if isinstance(order_id, bool) or not isinstance(order_id, int) or order_id not in shown:
            self._notice(f"order {order_id!r} is not working on the {self.symbol} ladder")
            return
        task = self.loop.create_task(self._send_cancel(order_id), name=f"pxkit-ladder-cancel-{order_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_cancel(self, order_id: int) -> None:
        try:
            await self.ctx.orders.cancel_order(order_id)
        except Exception as exc:
            log.warning("%s ladder: cancelling order %s failed", self.symbol, order_id, exc_info=True)
            if not self.closed:
                self._notice(f"cancel of order {order_id} not confirmed ({type(exc).__name__}: {exc}); the ladder "
                             f"shows the order as the gateway reports it")

    # ------------------------------------------------------------------ what the suite tells the ladder

    def _on_trade(self, event: Event[MarketTrade]) -> None:
        self._last = event.data.price
        self._last_size = int(event.data.volume)
        self._changed()

    def _on_market(self, _event: Event[Any]) -> None:
        self._changed()

    def _on_order(self, _previous: Order | None, _order: Order) -> None:
        self._changed()

    def _to_ticks(self, price: float) -> int:
        return round(price / self._tick)

    def _price(self, ticks: int) -> float:
        return round(ticks * self._tick, self._decimals)


def _price_of(order: Order) -> float | None:
    """Where a working order rests on the ladder: its limit price, else its stop price (None for a market order)."""
    return order.limit_price if order.limit_price is not None else order.stop_price


def _check_ticket(ticket: object) -> None:
    if ticket is not None and not callable(getattr(ticket, "stage", None)):
        raise InputError(f"a ladder's ticket needs a stage(price) method, got {type(ticket).__name__}")
