"""Strategy: trading logic as hooks on typed events, and the runner that drives it on any suite, live or backtest."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import InputError
from ..events import Event, EventType

if TYPE_CHECKING:
    from ..instrument.context import InstrumentContext
    from ..suite import TradingSuite

log = logging.getLogger(__name__)

MARKET, ACCOUNT = 0, 1  # the order hooks of one step run in: market data first, then the account's own events
_ORDER_EVENTS = (EventType.ORDER_PLACED, EventType.ORDER_FILLED, EventType.ORDER_PARTIAL_FILL,
                 EventType.ORDER_CANCELLED, EventType.ORDER_REJECTED, EventType.ORDER_MODIFIED)
# hook -> (events it hears, group)
_HOOKS: dict[str, tuple[tuple[EventType, ...], int]] = {
    "on_bar": ((EventType.NEW_BAR,), MARKET),
    "on_trade": ((EventType.TICK,), MARKET),
    "on_quote": ((EventType.QUOTE_UPDATE,), MARKET),
    "on_order": (_ORDER_EVENTS, ACCOUNT),
    "on_fill": ((EventType.ORDER_FILLED, EventType.ORDER_PARTIAL_FILL), ACCOUNT),
    "on_position": ((EventType.POSITION_OPENED, EventType.POSITION_CHANGED, EventType.POSITION_CLOSED), ACCOUNT),
}


class Strategy:
    """Trading logic: subclass it, declare parameters as annotated class attributes, override the hooks you need.

    Hooks may be plain or async functions; each gets the InstrumentContext its event belongs to and trades
    through `ctx.orders` exactly as code on a live suite does: `on_start(ctx)`, `on_bar(ctx, bar)` (closed bars of
    `timeframe`), `on_trade(ctx, trade)`, `on_quote(ctx, quote)`, `on_order(ctx, order)` (every order event),
    `on_fill(ctx, order)`, `on_position(ctx, position)`, `on_stop(ctx)`. `self.suite` is the suite it runs on.
    The same class runs on a live suite (StrategyRunner), on the simulator, and in `backtest`.
    """

    timeframe: str = "1min"
    suite: ClassVar[Any] = None  # set on the instance by the runner

    def __init__(self, **params: Any) -> None:
        declared = self.parameter_names()
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise InputError(f"{type(self).__name__} has no parameter {', '.join(unknown)}; it has {list(declared)}")
        for name, value in params.items():
            setattr(self, name, value)

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """The parameters: annotated class attributes of the strategy and its bases (not ClassVars)."""
        names: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            for name, annotation in vars(klass).get("__annotations__", {}).items():
                if not name.startswith("_") and "ClassVar" not in str(annotation):
                    names[name] = None
        return tuple(names)

    @property
    def params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.parameter_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def on_start(self, ctx: InstrumentContext) -> Any:
        """Called once per instrument before any other hook."""

    def on_stop(self, ctx: InstrumentContext) -> Any:
        """Called once per instrument when the run ends."""


def _overridden(strategy: Strategy, hook: str) -> bool:
    return hasattr(strategy, hook) and getattr(type(strategy), hook, None) is not getattr(Strategy, hook, None)


class StrategyRunner:
    """Runs one Strategy on a suite's instruments: every event it hooks, one hook at a time, in order.

    By default a task runs hooks as their events arrive; a hook that raises is logged and counted in `errors`,
    and the strategy goes on. `stepped=True` is for a clock the caller drives (backtests, replays): hooks wait
    until `run_due()` runs those queued so far, market data first, then the account's own events, each group in
    arrival order, and a hook that raises stops the run by raising there.
    Use it as `async with StrategyRunner(MyStrategy(fast=5), suite): ...` or start() / stop().
    """

    def __init__(self, strategy: Strategy, suite: TradingSuite, *, symbols: Sequence[str] | None = None,
                 stepped: bool = False) -> None:
        if not isinstance(strategy, Strategy):
            raise InputError(f"give a Strategy instance, got {strategy!r}")
        self.strategy = strategy
        self.suite = suite
        self.symbols = [s.upper() for s in symbols] if symbols is not None else list(suite)
        for symbol in self.symbols:
            suite[symbol]  # a KeyError names the suite's instruments
        self.stepped = stepped
        self.errors: list[BaseException] = []
        self.hooks_run = 0
        self._due: tuple[deque[tuple[Callable[..., Any], tuple[Any, ...]]], ...] = (deque(), deque())
        self._wake = asyncio.Event()
        self._quiet = asyncio.Event()  # set while nothing is queued or running
        self._quiet.set()
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._handlers: list[tuple[Any, EventType, Callable[[Event], None]]] = []

    async def start(self) -> StrategyRunner:
        """Call on_start for every instrument, then hear their events."""
        self.strategy.suite = self.suite
        for symbol in self.symbols:
            await _call(self.strategy.on_start, self.suite[symbol])
        for symbol in self.symbols:
            self._listen(self.suite[symbol])
        if not self.stepped:
            self._task = asyncio.create_task(self._work(), name=f"pxkit-strategy-{type(self.strategy).__name__}")
        return self

    def _listen(self, ctx: InstrumentContext) -> None:
        for hook, (kinds, group) in _HOOKS.items():
            if not _overridden(self.strategy, hook):
                continue
            call = getattr(self.strategy, hook)
            for kind in kinds:
                handler = self._handler(ctx, call, group, kind)
                ctx.event_bus.on(kind, handler)
                self._handlers.append((ctx.event_bus, kind, handler))

    def _handler(self, ctx: InstrumentContext, call: Callable[..., Any], group: int,
                 kind: EventType) -> Callable[[Event], None]:
        due = self._due[group]
        wake, quiet = self._wake, self._quiet
        if kind is EventType.NEW_BAR:
            timeframe = self.strategy.timeframe

            def on_bar(event: Event) -> None:
                if event.data.timeframe == timeframe:
                    due.append((call, (ctx, event.data.bar)))
                    quiet.clear()
                    wake.set()
            return on_bar

        def on_event(event: Event) -> None:
            due.append((call, (ctx, event.data)))
            quiet.clear()
            wake.set()
        return on_event

    @property
    def pending(self) -> int:
        """Hooks queued and not yet run (and the one running, if any)."""
        return len(self._due[MARKET]) + len(self._due[ACCOUNT]) + self._busy

    async def run_due(self) -> int:
        """Run the hooks queued so far, market data first; returns how many ran (stepped runners)."""
        batch = [*self._due[MARKET], *self._due[ACCOUNT]]
        self._due[MARKET].clear()
        self._due[ACCOUNT].clear()
        self._quiet.set()
        for call, args in batch:
            await _call(call, *args)
        self.hooks_run += len(batch)
        return len(batch)

    async def idle(self) -> None:
        """Wait until every hook queued so far has run (runners with their own task)."""
        await self._quiet.wait()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for group in (MARKET, ACCOUNT):
                due = self._due[group]
                while due:
                    call, args = due.popleft()
                    self._busy = True
                    try:
                        await _call(call, *args)
                    except Exception as exc:
                        self.errors.append(exc)
                        log.exception("strategy %s: %s failed", type(self.strategy).__name__, call.__name__)
                    finally:
                        self._busy = False
                        self.hooks_run += 1
            if not self.pending:
                self._quiet.set()

    async def stop(self) -> None:
        """Stop hearing events, let the queued hooks run, then call on_stop for every instrument."""
        for bus, kind, handler in self._handlers:
            bus.off(kind, handler)
        self._handlers.clear()
        if self._task is not None:
            await self.idle()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        else:
            await self.run_due()
        for symbol in self.symbols:
            await _call(self.strategy.on_stop, self.suite[symbol])

    async def __aenter__(self) -> StrategyRunner:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def _call(call: Callable[..., Any], *args: Any) -> None:
    result = call(*args)
    if inspect.isawaitable(result):
        await result
