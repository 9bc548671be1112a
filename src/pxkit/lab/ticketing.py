"""`lab.ticket(ctx)`: an order ticket: side, size, type, price, optional bracket, a confirm step, the order's fate.

Protocol (custom messages; page -> Python, then what Python answers):

- `{kind: "hello"}` -> `{kind: "state", symbol, tick_size, tick_value, decimals, stage, message, form, confirm,
  status, price}`: everything, so a reload or a second view shows the current stage and the last order's status.
- `{kind: "review", side, size, type, price, stop_ticks, target_ticks}` -> `{kind: "confirm", stage, token,
  summary, risk_usd, risk_text}` (exactly what will be sent, and its risk: stop ticks x tick value x size) or
  `{kind: "error", stage: "edit", message}`: input errors never reach the wire (nor a review while the last order
  is still being sent).
- `{kind: "send", token}` places the reviewed order once; a send whose token is not the live one (a double click,
  a review made before an edit) is ignored. -> `{kind: "status", stage, message, outcome, text, order_id, orders}`
  as its state changes (`stage`/`message`: the ticket's; `outcome`/`text`: that order's own, which the ticket's
  stage follows until the user moves on; `orders`: one row per order, for a bracket the entry and its legs). An
  order of unknown fate is followed as soon as the user hub shows its tag.
- `{kind: "back"}` -> back to editing (the token expires); `stage(price)` from Python -> `{kind: "staged", stage,
  form}`: a limit at `price` on the tick grid.
- `{kind: "price", last, bid, ask}`: the live price, at most every INTERVAL s.

Stages: edit, confirm, sending, working (the order or a bracket leg is live), done, error (nothing is live: refused
before the wire, rejected by the gateway, or a bracket flattened), unknown (the order may be live but the gateway's
answer was lost: never reported as failed). Types market, limit, stop, trailing_stop (`price` is the first stop
level: the trail is its distance from the last price), join_bid (buys), join_ask (sells); a bracket (stop and/or
target in ticks from the fill) rides on a market, limit or stop entry.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from typing import Any

import traitlets

from ..enums import OrderStatus
from ..errors import (
    CircuitOpenError,
    ClosedError,
    GatewayError,
    InputError,
    OrderEndedError,
    OrderNotFoundError,
    OrderStateUnknownError,
    RiskViolationError,
    TransportError,
    UnprotectedPositionError,
)
from ..events import Event, EventType
from ..html import fixed
from ..instrument.brackets import BracketHandle, OrderHandle
from ..instrument.context import InstrumentContext
from ..models import tick_decimals
from .ticketform import TYPES, FormReader, Plan, side_name
from .widget import INTERVAL, STATIC, LabWidget, Message

log = logging.getLogger(__name__)

SLOW_ANSWER = 10.0  # seconds without an answer to a placement before the ticket says the order may be live
FOLLOWING = ("sending", "working", "unknown")  # stages in which the ticket's stage follows the order sent
_ORDER_EVENTS = (EventType.ORDER_PLACED, EventType.ORDER_FILLED, EventType.ORDER_PARTIAL_FILL,
                 EventType.ORDER_CANCELLED, EventType.ORDER_REJECTED, EventType.ORDER_MODIFIED)
_WORDS = {OrderStatus.OPEN: "working", OrderStatus.PENDING: "working", OrderStatus.FILLED: "filled",
          OrderStatus.CANCELLED: "cancelled", OrderStatus.EXPIRED: "expired", OrderStatus.REJECTED: "rejected"}


def ticket(ctx: InstrumentContext) -> Ticket:
    """An order ticket for `ctx`'s instrument; display the returned widget."""
    return Ticket(ctx)


class Ticket(LabWidget):
    """The widget `lab.ticket` returns: review an order, confirm it, watch its fate (see the module docstring).

    `review(...)`, `submit(token)` and `back()` are the page's own paths (the page's messages run the same code);
    `stage(price)` puts a limit at `price` in the ticket (the ladder uses it). `step`, `message`, `order_id` and
    `status` read where the ticket is; `prices_sent` counts the live price updates sent to the page.
    """

    _esm = STATIC / "ticket.js"
    _css = STATIC / "ticket.css"
    symbol = traitlets.Unicode().tag(sync=True)
    tick_size = traitlets.Float().tag(sync=True)
    tick_value = traitlets.Float().tag(sync=True)

    def __init__(self, ctx: InstrumentContext) -> None:
        self.ctx = ctx
        self.decimals = tick_decimals(ctx.instrument_info.tick_size)
        self._reader = FormReader(ctx, self.decimals)
        self._step = "edit"
        self._message = ""
        self._form: dict[str, Any] = {"side": "buy", "size": 1, "type": "market", "price": None,
                                      "stop_ticks": None, "target_ticks": None}
        self._token: str | None = None
        self._plan: Plan | None = None
        self._confirm: dict[str, Any] | None = None
        self._handle: OrderHandle | BracketHandle | None = None
        self._status: dict[str, Any] | None = None  # the last order's status: outcome, text, order_id, orders
        self._unknown_tag: str | None = None  # the tag of an order of unknown fate, adopted if it shows up
        self._tags: dict[str, int] = {}  # tag -> id of the orders pushed while the last send awaited its answer
        self._placing: asyncio.Task[None] | None = None  # the placement awaiting its answer
        self._slow: asyncio.TimerHandle | None = None
        self._greeted = False
        self._price_dirty = self._status_dirty = False
        self.prices_sent = 0
        super().__init__(ctx.orders.loop, symbol=ctx.symbol, tick_size=ctx.instrument_info.tick_size,
                         tick_value=ctx.instrument_info.tick_value)
        self._throttle = self.throttle(INTERVAL, self._flush)
        for kind in _ORDER_EVENTS:
            self.listen(ctx.event_bus, kind, self._on_order)
        for kind in (EventType.QUOTE_UPDATE, EventType.BAR_UPDATED):
            self.listen(ctx.event_bus, kind, self._on_market)
        self.on_close(self._stop)

    def __repr__(self) -> str:
        order = f", order {self.order_id}" if self.order_id is not None else ""
        return f"Ticket({self.symbol}, {self._step}{order})"

    # ------------------------------------------------------------------ reading it

    @property
    def step(self) -> str:
        """The ticket's stage: edit, confirm, sending, working, done, error or unknown."""
        return self._step

    @property
    def message(self) -> str:
        return self._message

    @property
    def order_id(self) -> int | None:
        """The id of the last order sent (a bracket's entry), once the gateway gave it."""
        handle = self._handle
        return None if handle is None else handle.entry.id if isinstance(handle, BracketHandle) else handle.id

    @property
    def status(self) -> dict[str, Any] | None:
        """The last order's status: outcome (sending, working, done, error, unknown), text, order_id and orders (one
        row per order: role, id, status, side, type, size, filled, fill_price, price, text); None before any send."""
        return self._status

    # ------------------------------------------------------------------ the page's paths, also Python's

    def review(self, side: str = "buy", size: int = 1, type: str = "market", price: float | None = None,
               stop_ticks: int | None = None, target_ticks: int | None = None) -> None:
        """Review an order as the page does: a "confirm" (with its token) or an "error" is sent to the page."""
        self._from_python({"kind": "review", "side": side, "size": size, "type": type, "price": price,
                           "stop_ticks": stop_ticks, "target_ticks": target_ticks})

    def submit(self, token: str) -> None:
        """Send the reviewed order whose confirm carried `token`, as the page's send button does."""
        self._from_python({"kind": "send", "token": token})

    def back(self) -> None:
        """Back to editing; the confirm's token expires."""
        self._from_python({"kind": "back"})

    def stage(self, price: float, side: str | None = None) -> None:
        """Put a limit order at `price` (snapped to the tick grid) in the ticket, ready to edit; `side` too if given."""
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
            raise InputError(f"price must be a positive number, got {price!r}")
        if side is not None:
            side = side_name(side)
        self.on_loop(self._staged, self.ctx.instrument_info.round_price(price), side)

    def _from_python(self, content: dict[str, Any]) -> None:
        self._received(self, content, [])  # what the comm calls for a page's message, on any thread

    def handle(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        kind = content.get("kind")
        if kind == "review":
            self._review(content)
        elif kind == "send":
            self._on_send(content.get("token"))
        elif kind == "back":
            self._back()
        else:
            super().handle(content, buffers)

    def state_message(self) -> Message:
        self._greeted = True
        return {"kind": "state", "symbol": self.symbol, "tick_size": self.tick_size, "tick_value": self.tick_value,
                "decimals": self.decimals, "stage": self._step, "message": self._message, "form": dict(self._form),
                "confirm": self._confirm, "status": self._status, "price": self._price()}, []

    # ------------------------------------------------------------------ review, send, back

    def _review(self, content: dict[str, Any]) -> None:
        self._expire()
        self._form = {name: content.get(name) for name in self._form}
        try:
            if self._placing is not None:
                raise InputError("the last order is still being sent: wait for the gateway's answer")
            plan = self._reader.plan(content)
        except InputError as exc:
            self._step, self._message = "edit", str(exc)
            self.send({"kind": "error", "stage": "edit", "message": self._message})
            return
        self._plan, self._token = plan, uuid.uuid4().hex
        risk, risk_text = self._reader.risk(plan)
        self._confirm = {"token": self._token, "summary": self._reader.summary(plan), "risk_usd": risk,
                         "risk_text": risk_text}
        self._step, self._message = "confirm", ""
        self.send({"kind": "confirm", "stage": "confirm", **self._confirm})

    def _on_send(self, token: object) -> None:
        if self._step != "confirm" or token is None or token != self._token or self._plan is None:
            log.debug("%r: a send without the live token was ignored", self)
            return
        plan = self._plan
        self._expire()
        self._handle, self._unknown_tag, self._step = None, None, "sending"
        self._tags.clear()
        self._show({"outcome": "sending", "text": f"sending {self._reader.summary(plan)}", "order_id": None,
                    "orders": []})
        self._slow = self.loop.call_later(SLOW_ANSWER, self._slow_answer)
        self._placing = self.loop.create_task(self._place(plan), name=f"pxkit-ticket-{self.symbol}")

    def _back(self) -> None:
        self._expire()
        self._step, self._message = "edit", ""
        self.send({"kind": "staged", "stage": "edit", "form": dict(self._form)})

    def _staged(self, price: float, side: str | None) -> None:
        if self.closed:
            return
        self._expire()
        self._form.update(type="limit", price=price, **({"side": side} if side else {}))
        self._step, self._message = "edit", ""
        self.send({"kind": "staged", "stage": "edit", "form": dict(self._form)})

    def _expire(self) -> None:
        self._token, self._plan, self._confirm = None, None, None

    # ------------------------------------------------------------------ placing and watching the order

    async def _place(self, plan: Plan) -> None:
        try:
            handle = await self._placed(plan)
        except Exception as exc:  # every outcome is shown: refused, rejected, or of unknown fate
            self._answered()
            self._failed(exc)
            return
        self._answered()
        self._handle = handle
        self._show(self._order_status())

    async def _placed(self, plan: Plan) -> OrderHandle | BracketHandle:
        orders = self.ctx.orders
        if plan.bracket:
            return await orders.place_bracket_order(
                plan.side, plan.size, entry_type=plan.type, entry_price=plan.price,  # type: ignore[arg-type]
                stop_offset=plan.stop_ticks, target_offset=plan.target_ticks)
        if plan.type == "join_bid":
            return await orders.place_join_bid_order(plan.size)
        if plan.type == "join_ask":
            return await orders.place_join_ask_order(plan.size)
        return await orders.place_order(plan.side, plan.size, TYPES[plan.type], **self._reader.prices(plan))

    def _answered(self) -> None:
        self._placing = None
        if self._slow is not None:
            self._slow.cancel()
            self._slow = None

    def _slow_answer(self) -> None:
        self._slow = None
        if self._handle is None and self._status is not None and self._status["outcome"] == "sending":
            self._show({**self._status, "text": f"no answer from the gateway after {SLOW_ANSWER:g} s: the order "
                                                "may be live; do not send it again before checking the open orders"})

    def _failed(self, exc: Exception) -> None:
        """Say what became of an order whose placement raised: nothing sent, rejected, or of unknown fate."""
        if isinstance(exc, OrderEndedError):  # a market bracket's entry ended unfilled: nothing is live
            self._handle = self.ctx.orders.handle(exc.order.id)
            self._show(self._order_status())
            return
        if isinstance(exc, UnprotectedPositionError):
            self._handle = self.ctx.orders.handle(exc.entry.id)
            self._show({**self._order_status(), "outcome": "error", "text": f"bracket not protected: {exc}"})
            return
        if isinstance(exc, RiskViolationError):
            outcome, text = "error", f"refused by the risk rules, nothing was sent: {exc}"
        elif isinstance(exc, InputError):
            outcome, text = "error", f"not sent: {exc}"
        elif isinstance(exc, GatewayError) and not isinstance(exc, OrderNotFoundError):
            reason = exc.gateway_message or str(exc)
            outcome, text = "error", f"rejected by the gateway: {reason} (error code {exc.error_code})"
        elif isinstance(exc, CircuitOpenError | ClosedError) or (
                isinstance(exc, TransportError) and not exc.maybe_processed):
            outcome, text = "error", f"not sent, the gateway could not be reached: {exc}"
        else:
            self._unknown_tag = exc.custom_tag if isinstance(exc, OrderStateUnknownError) else None
            tag = f" (tag {self._unknown_tag})" if self._unknown_tag else ""
            outcome, text = "unknown", (f"fate unknown: the order may be live{tag}; check the open orders before "
                                        f"sending it again ({type(exc).__name__}: {exc})")
            log.warning("%r: the fate of an order is unknown: %s", self, exc)
        self._show({"outcome": outcome, "text": text, "order_id": None, "orders": []})
        if self._unknown_tag in self._tags:
            self._adopt(self._tags[self._unknown_tag])

    def _adopt(self, order_id: int) -> None:
        """The order of unknown fate showed up on the user hub (by its tag): follow it from now on."""
        self._handle, self._unknown_tag = self.ctx.orders.handle(order_id), None
        self._show(self._order_status())

    def _show(self, status: dict[str, Any]) -> bool:
        """Record the last order's status and send it if it changed (whether it did); while the ticket follows that
        order, its stage moves too."""
        if self.closed or status == self._status:
            return False
        self._status = status
        if self._step in FOLLOWING:
            self._step = status["outcome"]
            self._message = status["text"] if status["outcome"] in ("error", "unknown") else ""
        self.send({"kind": "status", "stage": self._step, "message": self._message, **status})
        return True

    def _order_status(self) -> dict[str, Any]:
        """The tracked order's status: "working" while it (or a bracket leg) is live or legs are awaited."""
        handle = self._handle
        assert handle is not None
        if isinstance(handle, BracketHandle):
            legs: list[tuple[str, OrderHandle | None]] = [("entry", handle.entry)]
            legs += [(name, getattr(handle, name)) for name in ("stop", "target") if name in handle.ticks]
            entry = handle.entry
        else:
            legs, entry = [("order", handle)], handle
        unfilled = entry.done and not entry.fill_volume  # a bracket's legs will never come
        rows = [self._row(name, leg, unfilled) for name, leg in legs]
        live = any(r["status"] in ("working", "sent") for r in rows)
        awaited = isinstance(handle, BracketHandle) and not handle.settled and entry.status is OrderStatus.FILLED
        error = handle.error if isinstance(handle, BracketHandle) else None
        if isinstance(error, OrderEndedError):
            error = None  # the entry's row says how it ended
        if live or awaited:
            outcome = "working"
        elif entry.status is OrderStatus.REJECTED or error is not None:
            outcome = "error"
        else:
            outcome = "done"
        text = " \u00b7 ".join(r["text"] for r in rows) + (f" \u00b7 {error}" if error is not None else "")
        return {"outcome": outcome, "text": text, "order_id": entry.id, "orders": rows}

    def _row(self, role: str, leg: OrderHandle | None, unfilled: bool = False) -> dict[str, Any]:
        if leg is None:
            status, text = ("unplaced", f"{role} not placed: the entry ended unfilled") if unfilled else (
                "pending", f"{role} not placed yet")
            return {"role": role, "id": None, "status": status, "side": None, "type": None, "size": None,
                    "filled": 0, "fill_price": None, "price": None, "text": text}
        order = leg.order
        if order is None:
            status = "ended" if leg.evicted else "sent"
            return {"role": role, "id": leg.id, "status": status, "side": None, "type": None, "size": None,
                    "filled": 0, "fill_price": None, "price": None, "text": f"{role} {leg.id} {status}"}
        price = order.limit_price if order.limit_price is not None else order.stop_price
        word = _WORDS.get(order.status, order.status.name.lower())
        text = f"{role} {order.id} {order.side.name} {order.size} {order.type.name.lower()}"
        text += f" @ {fixed(price, self.decimals)} {word}" if price is not None else f" {word}"
        if order.fill_volume:
            text += f" {order.fill_volume}/{order.size} @ {fixed(order.filled_price, self.decimals)}"
        return {"role": role, "id": order.id, "status": word, "side": order.side.name.lower(),
                "type": order.type.name.lower(), "size": order.size, "filled": order.fill_volume,
                "fill_price": order.filled_price, "price": price, "text": text}

    # ------------------------------------------------------------------ live updates, at most one per INTERVAL

    def _on_order(self, event: Event[Any]) -> None:
        order = event.data
        if self._handle is None and order.custom_tag:
            if self._status is not None and self._status["outcome"] == "sending":
                self._tags[order.custom_tag] = order.id  # pushed before the placement's answer, maybe instead of it
            elif order.custom_tag == self._unknown_tag:
                self._adopt(order.id)
        if self._handle is not None:
            self._status_dirty = True  # read at the flush: a bracket links its legs after their first event
            self._throttle.poke()

    def _on_market(self, _event: Event[Any]) -> None:
        if self._greeted:
            self._price_dirty = True
            self._throttle.poke()

    def _flush(self) -> bool:
        """Send the order status and the price if they changed; whether anything was sent."""
        if self.closed:
            return False
        sent = False
        if self._status_dirty and self._handle is not None:
            self._status_dirty = False
            sent = self._show(self._order_status())
        if self._price_dirty:
            self._price_dirty = False
            self.send({"kind": "price", **self._price()})
            self.prices_sent += 1
            sent = True
        return sent

    def _price(self) -> dict[str, float | None]:
        bid, ask = self.ctx.book_top()
        return {"last": self.ctx.data.last_price, "bid": bid, "ask": ask}

    def _stop(self) -> None:
        if self._slow is not None:
            self._slow.cancel()
            self._slow = None

