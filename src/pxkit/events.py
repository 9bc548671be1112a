"""Per-instrument event bus: typed events, prioritised sync/async handlers, wait_for and a UI throttle.

Every event type has one payload type, `event.data` (the table is `PAYLOADS`):

| event type                                    | data                                              |
|-----------------------------------------------|---------------------------------------------------|
| NEW_BAR, BAR_UPDATED                          | BarEvent: timeframe name and the bar              |
| TICK                                          | MarketTrade: one trade print                      |
| QUOTE_UPDATE                                  | Quote: the last quote, pushed fields merged in    |
| DEPTH_UPDATE                                  | DepthPushed: the level-2 records of one push      |
| ORDER_PLACED ... ORDER_MODIFIED (6 types)     | Order: the order as it is now                     |
| POSITION_OPENED, _CHANGED, _CLOSED            | Position: the position as it is now (0 = closed)  |
| ACCOUNT_UPDATE                                | Account: balance and flags                        |
| CONNECTED, DISCONNECTED, RECONNECTED          | ConnectionChanged: which hub, its state, when     |
| RISK_BREACH                                   | RiskBreach: rules broken, actions taken, lockout  |
| STALE_FEED                                    | FeedStatus: stale or live again, silent seconds   |
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import heapq
import inspect
import logging
import sys
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from .errors import InputError
from .messages import ConnectionChanged, DepthPushed
from .models import Account, MarketTrade, Order, Position, Quote
from .payloads import BarEvent, FeedStatus, RiskBreach

logger = logging.getLogger(__name__)
Handler = Callable[["Event"], Any]  # returns None, or an awaitable that the bus awaits (emit) or schedules


class EventType(StrEnum):
    """Everything a bus carries (a str and an Enum); values are stable snake_case names."""

    NEW_BAR = "new_bar"
    BAR_UPDATED = "bar_updated"
    TICK = "tick"
    QUOTE_UPDATE = "quote_update"
    DEPTH_UPDATE = "depth_update"
    ORDER_PLACED = "order_placed"
    ORDER_FILLED = "order_filled"
    ORDER_PARTIAL_FILL = "order_partial_fill"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_REJECTED = "order_rejected"
    ORDER_MODIFIED = "order_modified"
    POSITION_OPENED = "position_opened"
    POSITION_CHANGED = "position_changed"
    POSITION_CLOSED = "position_closed"
    ACCOUNT_UPDATE = "account_update"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTED = "reconnected"
    RISK_BREACH = "risk_breach"
    STALE_FEED = "stale_feed"


PAYLOADS: dict[EventType, type] = {
    EventType.NEW_BAR: BarEvent, EventType.BAR_UPDATED: BarEvent,
    EventType.TICK: MarketTrade, EventType.QUOTE_UPDATE: Quote, EventType.DEPTH_UPDATE: DepthPushed,
    **dict.fromkeys((EventType.ORDER_PLACED, EventType.ORDER_FILLED, EventType.ORDER_PARTIAL_FILL,
                     EventType.ORDER_CANCELLED, EventType.ORDER_REJECTED, EventType.ORDER_MODIFIED), Order),
    **dict.fromkeys((EventType.POSITION_OPENED, EventType.POSITION_CHANGED, EventType.POSITION_CLOSED), Position),
    EventType.ACCOUNT_UPDATE: Account,
    **dict.fromkeys((EventType.CONNECTED, EventType.DISCONNECTED, EventType.RECONNECTED), ConnectionChanged),
    EventType.RISK_BREACH: RiskBreach, EventType.STALE_FEED: FeedStatus,
}
P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Event(Generic[P]):
    """One emitted event: `data` is of the type `PAYLOADS` gives for `type` (annotate a handler's argument as, say,
    `Event[BarEvent]`); `timestamp` is the exchange/event time given by the emitter, `seq` is set by the bus."""

    type: EventType
    data: P = None  # type: ignore[assignment]
    source: str | None = None
    timestamp: datetime | None = None
    seq: int = 0


# The bus fills an event's slots directly: the frozen dataclass __init__ is about twice as slow, once per event.
_put_type, _put_data, _put_source, _put_timestamp, _put_seq = (getattr(Event, f.name).__set__ for f in fields(Event))


@dataclass(order=True, slots=True)
class _Entry:
    """One registration, ordered and compared by its unique key (-priority, registration number)."""
    key: tuple[int, int]
    callback: Handler = field(compare=False)
    event_type: EventType | None = field(compare=False)  # None: a wildcard (on_any)
    once: bool = field(compare=False)
    call: Handler = field(compare=False)  # the callback itself, or it run in the notebook cell that registered it
    active: bool = field(default=True, compare=False)


class EventBus:
    """Event bus of one asyncio loop (no locks: use it only on that loop). Handlers run by priority (highest first),
    then registration order, wildcards merged in. A handler that raises is logged and counted, never propagated."""

    def __init__(self, name: str = "events") -> None:
        self.name = name
        self.emitted: Counter[EventType] = Counter()
        self.handler_errors: Counter[EventType] = Counter()
        self._handlers: dict[EventType | None, list[_Entry]] = {}  # key None: the wildcard handlers
        self._due_cache: dict[EventType, tuple[_Entry, ...]] = {}  # per type: its handlers and the wildcards, merged
        self._order = self._seq = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._throttles: weakref.WeakSet[Throttle] = weakref.WeakSet()

    def on(self, event_type: EventType | str, handler: Handler | None = None, *, priority: int = 0) -> Any:
        """Register `handler` for one event type and return it; without `handler`, return a decorator."""
        return self._register(EventType(event_type), handler, priority, once=False)

    def once(self, event_type: EventType | str, handler: Handler | None = None, *, priority: int = 0) -> Any:
        """Like `on`, but the handler is removed just before its first call."""
        return self._register(EventType(event_type), handler, priority, once=True)

    def on_any(self, handler: Handler | None = None, *, priority: int = 0) -> Any:
        """Register `handler` for every event type (remove it with `off_any`)."""
        return self._register(None, handler, priority, once=False)

    def off(self, event_type: EventType | str, handler: Handler) -> bool:
        """Remove every registration of `handler` for `event_type` (takes effect even mid-emit); True if found."""
        return self._unregister(EventType(event_type), handler)

    def off_any(self, handler: Handler) -> bool:
        """Remove a wildcard handler; True if found."""
        return self._unregister(None, handler)

    def clear(self) -> None:
        """Remove every handler (counters and the sequence number are kept)."""
        for entry in [entry for entries in self._handlers.values() for entry in entries]:
            entry.active = False
        self._handlers.clear()
        self._due_cache.clear()

    def handler_count(self, event_type: EventType | str | None = None) -> int:
        """Handlers registered for one type, or all of them (wildcards included) when `event_type` is None."""
        return sum(len(entries) for key, entries in self._handlers.items() if event_type in (None, key))

    def wants(self, event_type: EventType) -> bool:
        """Whether an event of this type would reach any handler (lets hot paths skip building it)."""
        return bool(self._handlers_of(event_type))

    def _handlers_of(self, event_type: EventType) -> tuple[_Entry, ...]:
        """The snapshot of `_due`, cached until a handler comes or goes (an empty one too)."""
        due = self._due_cache.get(event_type)
        return due if due is not None else self._due(event_type)

    async def emit(self, event_type: EventType | str, data: Any = None, *, source: str | None = None,
                   timestamp: datetime | None = None) -> Event:
        """Deliver an event: sync handlers inline, async handlers awaited in order; returns the event."""
        event = self._make(event_type, data, source, timestamp)
        for entry in self._handlers_of(event.type):
            if not self._still_due(entry):
                continue
            try:
                result = entry.call(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self._failed(entry.callback, event)
        return event

    def emit_nowait(self, event_type: EventType | str, data: Any = None, *, source: str | None = None,
                    timestamp: datetime | None = None) -> Event:
        """Deliver an event from sync code running on the loop; async handlers become tasks awaited by `aclose()`."""
        asyncio.get_running_loop()  # fail fast off the loop, before any handler runs
        event = self._make(event_type, data, source, timestamp)
        for entry in self._handlers_of(event.type):
            if entry.active and (not entry.once or self._still_due(entry)):
                self._deliver_nowait(entry.call, event, entry.callback)
        return event

    def wait_for(self, event_type: EventType | str, timeout: float | None = None,
                 predicate: Callable[[Event], bool] | None = None) -> asyncio.Task[Event]:
        """Register now (nothing emitted after this call is missed); await the task for the first match, TimeoutError
        after `timeout` s. The handler goes once the match arrives, the time runs out or the task is cancelled."""
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()

        def match(event: Event) -> None:  # a predicate that raises is a handler error: logged, counted, skipped
            if not future.done() and (predicate is None or predicate(event)):
                future.set_result(event)

        self.on(event_type, match)
        task = asyncio.ensure_future(asyncio.wait_for(future, timeout))
        task.add_done_callback(lambda _: self.off(event_type, match))  # runs before any awaiter of the task resumes
        return task

    def throttle(self, handler: Handler, interval: float) -> Throttle:
        """Wrap `handler` for UIs: at most one delivery per `interval` seconds, the latest event always delivered."""
        return Throttle(self, handler, interval)

    async def aclose(self) -> None:
        """Flush pending throttled events, await every scheduled async handler, then remove all handlers."""
        for throttle in list(self._throttles):
            throttle.flush()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.clear()

    def _register(self, event_type: EventType | None, handler: Handler | None, priority: int, *, once: bool) -> Any:
        if handler is None:
            return lambda fn: self._register(event_type, fn, priority, once=once)
        if not callable(handler):
            raise InputError(f"event handler must be callable, got {handler!r}")
        self._order += 1
        call = _in_cell(self, handler) if in_kernel() else handler
        entry = _Entry((-priority, self._order), handler, event_type, once, call)
        bisect.insort(self._handlers.setdefault(event_type, []), entry)
        self._due_cache.clear()
        return handler

    def _unregister(self, event_type: EventType | None, handler: Handler) -> bool:
        found = [entry for entry in self._handlers.get(event_type, []) if entry.callback == handler]  # bound methods
        for entry in found:
            self._drop(entry)
        return bool(found)

    def _drop(self, entry: _Entry) -> None:
        entry.active = False
        if entry in (entries := self._handlers.get(entry.event_type, [])):
            entries.remove(entry)
            self._due_cache.clear()

    def _make(self, event_type: EventType | str, data: Any, source: str | None, timestamp: datetime | None) -> Event:
        kind = event_type if type(event_type) is EventType else EventType(event_type)  # validated before the seq
        self._seq = seq = self._seq + 1
        emitted = self.emitted
        emitted[kind] = emitted.get(kind, 0) + 1  # Counter's own += goes through __missing__ for a new type
        event: Event[Any] = object.__new__(Event)
        _put_type(event, kind)
        _put_data(event, data)
        _put_source(event, source)
        _put_timestamp(event, timestamp)
        _put_seq(event, seq)
        return event

    def _due(self, event_type: EventType) -> tuple[_Entry, ...]:
        """The handlers of a type and the wildcards, in calling order; kept until a handler comes or goes, so an
        emit runs over a snapshot (one removed while earlier ones run is skipped by `_still_due`)."""
        typed, wild = self._handlers.get(event_type), self._handlers.get(None)
        due = tuple(heapq.merge(typed, wild)) if typed and wild else tuple(typed or wild or ())
        self._due_cache[event_type] = due
        return due

    def _still_due(self, entry: _Entry) -> bool:
        """Whether a handler of the snapshot is still registered; a `once` one is dropped before its call."""
        if not entry.active:
            return False
        if entry.once:
            self._drop(entry)
        return True

    def _deliver_nowait(self, call: Handler, event: Event, callback: Handler) -> None:
        try:
            result = call(event)
        except Exception:
            self._failed(callback, event)
            return
        if result is not None and inspect.isawaitable(result):
            task = asyncio.get_running_loop().create_task(self._guard(result, callback, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _guard(self, awaitable: Awaitable[Any], callback: Handler, event: Event) -> None:
        try:
            await awaitable
        except Exception:
            self._failed(callback, event)

    def _failed(self, callback: Handler, event: Event) -> None:
        self.handler_errors[event.type] += 1
        if not isinstance(sys.exc_info()[1], _Reported):
            self._log_failure(callback, event)

    def _log_failure(self, callback: Handler, event: Event) -> None:
        logger.exception("event bus %s: handler %s failed on %s (seq %d)", self.name,
                         getattr(callback, "__qualname__", None) or repr(callback), event.type.value, event.seq)


def in_kernel() -> bool:
    """Whether this process is a running Jupyter kernel (looked up, never imported: cheap and import-free)."""
    app = sys.modules.get("ipykernel.kernelapp")
    return app is not None and app.IPKernelApp.initialized()


class _Reported(Exception):
    """A handler failure already logged from the handler's own cell: the bus only counts it."""


def _in_cell(bus: EventBus, handler: Handler) -> Handler:
    """In a Jupyter kernel the cell an output belongs to is held in context variables: run `handler` in a copy of
    the context it was registered from, so what it prints, displays or raises shows under that cell."""
    cell = contextvars.copy_context()

    def in_cell(event: Event) -> Any:
        return cell.copy().run(_run_reported, bus, handler, event)  # a copy: a nested emit may enter it again

    return in_cell


def _run_reported(bus: EventBus, handler: Handler, event: Event) -> Any:
    try:
        result = handler(event)
    except Exception:
        bus._log_failure(handler, event)
        raise _Reported from None
    if result is not None and inspect.isawaitable(result):
        return asyncio.ensure_future(_await_reported(bus, handler, event, result))  # runs in the cell's context
    return result


async def _await_reported(bus: EventBus, handler: Handler, event: Event, awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except Exception:
        bus._log_failure(handler, event)
        raise _Reported from None


class Throttle:
    """UI handler wrapper: first event at once, then the latest at each interval end; the last is never dropped."""

    def __init__(self, bus: EventBus, handler: Handler, interval: float) -> None:
        if not callable(handler) or interval <= 0:
            raise InputError(f"throttle needs a callable and a positive interval, got {handler!r}, {interval!r}")
        self._bus, self.handler, self.interval = bus, handler, interval
        bus._throttles.add(self)  # so that aclose() flushes it
        self._pending: Event | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, event: Event) -> None:
        if self._timer is None:  # idle: deliver now and open an interval
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)
            self._bus._deliver_nowait(self.handler, event, self.handler)
        else:
            self._pending = event  # inside an interval: keep only the latest

    def flush(self) -> None:
        """Deliver the pending event now, if any (a new interval then starts)."""
        if self._timer is not None:
            self._timer.cancel()
            self._tick()

    def _tick(self) -> None:
        self._timer = None
        event, self._pending = self._pending, None
        if event is not None:
            self(event)

