"""`lab.blotter(suite)`: positions, working orders, fills, balance, the day's P&L and lockouts; cancel, flatten."""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Coroutine
from itertools import chain
from typing import Any

from ..enums import OrderType
from ..errors import InputError, OrderStateUnknownError, PositionNotFoundError, TransportError
from ..events import Event, EventType
from ..instrument.brackets import LEG_TYPES
from ..instrument.context import InstrumentContext
from ..models import Order, Trade, tick_decimals
from ..payloads import RiskBreach
from ..suite import TradingSuite, live_suites
from .widget import INTERVAL, STATIC, LabWidget, Message, side_text, suite_loop

log = logging.getLogger(__name__)

PRICE_INTERVAL = 0.5  # seconds between two looks at open P&L and lockouts (they move with prices and time)
MAX_FILLS = 50  # recent fills shown, the newest
_LEG_NAMES = {kind: name for name, kind in LEG_TYPES.items()} | {OrderType.TRAILING_STOP: "stop"}
_EVENTS = (EventType.ORDER_PLACED, EventType.ORDER_FILLED, EventType.ORDER_PARTIAL_FILL, EventType.ORDER_CANCELLED,
           EventType.ORDER_REJECTED, EventType.ORDER_MODIFIED, EventType.POSITION_OPENED,
           EventType.POSITION_CHANGED, EventType.POSITION_CLOSED)


def blotter(suite: TradingSuite) -> Blotter:
    """A live blotter of `suite`'s account: display the returned widget."""
    return Blotter(suite)


class Blotter(LabWidget):
    """The widget `lab.blotter` returns: every instrument's position with its open P&L, the working orders (each
    with a cancel button), the newest MAX_FILLS fills, the balance, the day's realised P&L, risk lockouts, and a
    flatten-all button that cancels every working order and closes every position through the client.

    The page gets the whole blotter on its hello and again after every change (order, position, fill, account
    and risk events; open P&L at most every PRICE_INTERVAL), at most one update per INTERVAL. `updates_sent`
    counts them. A cancel or a flatten runs as a task on the suite's loop; its outcome is the blotter's `message`.
    """

    _esm = STATIC / "blotter.js"
    _css = STATIC / "blotter.css"

    def __init__(self, suite: TradingSuite) -> None:
        if not isinstance(suite, TradingSuite):
            raise InputError(f"lab.blotter takes a TradingSuite, got {type(suite).__name__}")
        if suite not in live_suites():
            raise InputError("this suite is closed: start one with `await lab.suite([...])`")
        self.suite = suite
        self.contexts: dict[str, InstrumentContext] = dict(suite.contexts)
        self.updates_sent = 0
        self.message: dict[str, Any] | None = None  # the latest outcome told to the page: id, level, text, order_id
        self._seq = 0  # of the last update sent
        self._greeted = False  # a view has asked for the state: updates are worth sending from then on
        self._last: dict[str, Any] | None = None  # the blotter as last sent, to send only what changed
        self._fills: list[dict[str, Any]] | None = None  # the newest fills as rows; None: read them again
        self._breach = ""  # what the latest risk breach broke, to say why a lockout holds
        self._flattening: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.TimerHandle | None = None
        super().__init__(suite_loop(suite))
        self._throttle = self.throttle(INTERVAL, self._flush)
        for ctx in self.contexts.values():
            for kind in _EVENTS:
                self.listen(ctx.event_bus, kind, self._on_event)
            ctx.positions.on_fill(self._on_fill)
            self.on_close(lambda ctx=ctx: ctx.positions.off_fill(self._on_fill))
        self.listen(suite.event_bus, EventType.ACCOUNT_UPDATE, self._on_event)
        self.listen(suite.event_bus, EventType.RISK_BREACH, self._on_breach)
        self.on_close(self._stop)

    def __repr__(self) -> str:
        return f"Blotter({list(self.contexts)}, account={self.suite.account.name!r})"

    @property
    def busy(self) -> bool:
        """Whether a flatten is running."""
        return self._flattening is not None

    # ------------------------------------------------------------------ what the page is sent

    def snapshot(self) -> dict[str, Any]:
        """The blotter as the page shows it (JSON): account, realised P&L, lockouts, positions, orders, fills."""
        account = self.suite.account
        risk = self.suite.risk
        if risk is not None:
            realized, fees = risk.daily_realized()
            scope = "day"  # the gateway's fills since 18:00 New York
        else:
            realized = round(sum(c.positions.realized_pnl for c in self.contexts.values()), 2)
            fees = round(sum(c.positions.fees for c in self.contexts.values()), 2)
            scope = "session"  # the fills since the suite started
        lockouts = []
        until = risk.lockout() if risk is not None else None
        if until is not None:
            lockouts.append({"until": _ms(until), "reason": self._breach or "the risk manager locked trading"})
        if not account.can_trade:
            lockouts.append({"until": None, "reason": "the account cannot trade"})
        if self._fills is None:
            self._fills = self._newest_fills()
        return {
            "busy": self.busy,
            "account": {"name": account.name, "balance": account.balance, "can_trade": account.can_trade},
            "realized": {"value": realized, "fees": fees, "scope": scope},
            "lockouts": lockouts,
            "positions": [self._position(c) for c in self.contexts.values() if c.positions.size],
            "orders": [self._order(c, o) for c in self.contexts.values() for o in c.orders.working()],
            "fills": self._fills,
            "message": self.message,
        }

    @staticmethod
    def _position(ctx: InstrumentContext) -> dict[str, Any]:
        positions = ctx.positions
        return {"symbol": ctx.symbol, "size": positions.size, "avg_price": positions.average_price,
                "last": ctx.data.last_price, "pnl": positions.unrealized_pnl(),
                "decimals": tick_decimals(ctx.instrument_info.tick_size)}

    @staticmethod
    def _order(ctx: InstrumentContext, order: Order) -> dict[str, Any]:
        leg = _LEG_NAMES.get(order.type, "") if ctx.orders.is_bracket_leg(order.id) else ""
        return {"id": order.id, "symbol": ctx.symbol, "side": side_text(order.side), "type": order.type.name.lower(),
                "size": order.size, "filled": order.fill_volume, "price": order.limit_price, "stop": order.stop_price,
                "leg": leg, "decimals": tick_decimals(ctx.instrument_info.tick_size)}

    def _newest_fills(self) -> list[dict[str, Any]]:
        """The newest MAX_FILLS fills booked across the instruments, newest first."""
        symbols = {c.instrument_info.id: (c.symbol, tick_decimals(c.instrument_info.tick_size))
                   for c in self.contexts.values()}
        trades = heapq.nlargest(MAX_FILLS, chain.from_iterable(c.positions.trades for c in self.contexts.values()),
                                key=lambda t: (t.creation_timestamp, t.id))
        return [_fill(t, *symbols[t.contract_id]) for t in trades]

    def state_message(self) -> Message:
        """The whole blotter, for a view that just said hello."""
        self._greeted = True
        if self._ticker is None:
            self._ticker = self.loop.call_later(PRICE_INTERVAL, self._tick)
        self._last = self.snapshot()
        return {"kind": "state", "seq": self._seq, **self._last}, []

    def _flush(self) -> bool:
        """Send the blotter when it changed since the last message; whether it did."""
        if self.closed:
            return False
        content = self.snapshot()
        if content == self._last:
            return False
        self._last = content
        self._seq += 1
        self.send({"kind": "update", "seq": self._seq, **content})
        self.updates_sent += 1
        return True

    def _changed(self) -> None:
        """Something shown may have changed: send the blotter with the next update, at most one per INTERVAL."""
        if self._greeted:
            self._throttle.poke()

    def _tick(self) -> None:
        """Open P&L moves with prices and a lockout ends with time: look again while either is shown (and the
        suite runs)."""
        if self.suite not in live_suites():
            self._ticker = None
            return
        self._ticker = self.loop.call_later(PRICE_INTERVAL, self._tick)
        if self._last is not None and (self._last["positions"] or self._last["lockouts"]):
            self._changed()

    def _stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    # ------------------------------------------------------------------ what the suite tells the blotter

    def _on_event(self, _event: Event[Any]) -> None:
        self._changed()

    def _on_fill(self, _trade: Trade) -> None:
        self._fills = None
        self._changed()

    def _on_breach(self, event: Event[RiskBreach]) -> None:
        self._breach = "; ".join(str(v) for v in event.data.violations)
        self._changed()

    # ------------------------------------------------------------------ what the page asks

    def handle(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        """{kind: "cancel", order_id} or {kind: "flatten"}: started as a task, never awaited here."""
        kind = content.get("kind")
        if kind == "cancel":
            self._cancel(content.get("order_id"))
        elif kind == "flatten":
            self.flatten()
        else:
            self._tell("error", f"the blotter does not know the request {kind!r}")

    def flatten(self) -> asyncio.Task[None] | None:
        """Cancel every working order and close every position of the suite's instruments, concurrently across
        them; the outcome becomes the blotter's message. Call it on the suite's loop; while one runs, another is
        not started (None)."""
        if self._flattening is not None:
            self._tell("info", "a flatten is already running")
            return None
        self._flattening = self._start(self._flatten_all())
        self._changed()
        return self._flattening

    async def _flatten_all(self) -> None:
        try:
            results = await asyncio.gather(*(self._flatten_one(c) for c in self.contexts.values()),
                                           return_exceptions=True)
        finally:
            self._flattening = None
        cancelled, closed = 0, []
        failed: dict[str, list[str]] = {}  # symbol -> what went wrong there
        unknown = False  # whether the gateway may have done something reported as failed
        for symbol, result in zip(self.contexts, results, strict=True):
            count, was_open = (result, result) if isinstance(result, BaseException) else result
            errors = [(step, error) for step, error in (("the cancel", count), ("the close", was_open))
                      if isinstance(error, BaseException)]
            if errors:
                unknown = unknown or any(_maybe_done(e) for _, e in errors)
                failed[symbol] = ([_describe(result)] if isinstance(result, BaseException)
                                  else [f"{step} raised {_describe(e)}" for step, e in errors])
            if not isinstance(count, BaseException):
                cancelled += count
            if was_open is True:
                closed.append(symbol)
        summary = f"cancelled {cancelled} order{'s' * (cancelled != 1)}, closed {', '.join(closed) or 'no position'}"
        if not failed:
            self._tell("ok", f"flat: {summary}")
            return
        why = "; ".join(f"{symbol}: {', and '.join(errors)}" for symbol, errors in failed.items())
        done = [symbol for symbol in self.contexts if symbol not in failed]
        others = f"; {', '.join(done)} done" if done else ""
        self._tell("warn" if unknown else "error", f"flatten failed on {why}{others} ({summary})")

    async def _flatten_one(self, ctx: InstrumentContext) -> tuple[int | Exception, bool | Exception]:
        """For one instrument: (orders cancelled, or why not; whether a position was closed, or why not). Its
        orders first, then flat: the close is tried whatever the cancel did."""
        try:
            cancelled: int | Exception = await ctx.orders.cancel_all_orders()
        except Exception as exc:
            cancelled = exc
        try:
            await ctx.orders.close_position()
        except PositionNotFoundError:
            return cancelled, False  # flat already
        except Exception as exc:
            return cancelled, exc
        return cancelled, True

    def _cancel(self, order_id: object) -> None:
        if isinstance(order_id, bool) or not isinstance(order_id, int):
            self._tell("error", f"cancel needs an order id (a whole number), got {order_id!r}")
            return
        ctx = next((c for c in self.contexts.values()
                    if (o := c.orders.latest(order_id)) is not None and o.status.is_working), None)
        if ctx is None:
            self._tell("error", f"order {order_id} is not working", order_id)
            return
        self._start(self._cancel_order(ctx, order_id))

    async def _cancel_order(self, ctx: InstrumentContext, order_id: int) -> None:
        try:
            await ctx.orders.cancel_order(order_id)
        except Exception as exc:
            self._tell("warn" if _maybe_done(exc) else "error",
                       f"cancelling {ctx.symbol} order {order_id} failed: {_describe(exc)}", order_id)
        else:
            self._tell("ok", f"cancelled {ctx.symbol} order {order_id}", order_id)

    def _start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` on the loop, kept until it ends (closing the blotter does not stop a command sent)."""
        task = self.loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _tell(self, level: str, text: str, order_id: int | None = None) -> None:
        """Show an outcome on the page (and in the log, for a notebook with no view open); `order_id` names the
        order a cancel's outcome is about (the page re-enables its button)."""
        number = self.message["id"] + 1 if self.message else 1
        self.message = {"id": number, "level": level, "text": text, "order_id": order_id}
        log.log(logging.INFO if level in ("ok", "info") else logging.WARNING, "blotter: %s", text)
        self._changed()


def _ms(stamp: Any) -> int:
    return int(stamp.timestamp() * 1000)


def _fill(trade: Trade, symbol: str, decimals: int) -> dict[str, Any]:
    return {"id": trade.id, "symbol": symbol, "side": side_text(trade.side), "size": trade.size, "price": trade.price,
            "pnl": trade.profit_and_loss, "fees": trade.fees, "order_id": trade.order_id,
            "time": _ms(trade.creation_timestamp), "decimals": decimals}


def _maybe_done(error: BaseException) -> bool:
    """Whether the gateway may have acted although the call failed (its answer was lost)."""
    return isinstance(error, OrderStateUnknownError) or (isinstance(error, TransportError) and error.maybe_processed)


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return f"{text} (the gateway may have done it: check before acting again)" if _maybe_done(error) else text
