"""The base of pxkit's notebook widgets: state on the page's "hello", page callbacks run on the suite's loop."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..enums import OrderSide
from ..errors import InputError
from ..events import EventBus, EventType, Handler
from ..loops import running_loop

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"  # the bundles built from widgets/ (npm run build)
INTERVAL = 0.1  # seconds between two live updates of a page at least: ~10 a second at most
Message = tuple[dict[str, Any], list[bytes]]  # a custom message: JSON content and binary buffers


class LabWidget(anywidget.AnyWidget):
    """An anywidget bound to the event loop a suite runs on.

    - `_uid` names the model on the page (anywidget hands `initialize` and `render` different model proxies).
    - A view sends `{"kind": "hello"}` when it opens; the answer is `state_message()`, the whole state in one
      message, so a view opened late or a reloaded page never shows a gap.
    - Messages from the page may arrive on any thread (JupyterLab runs comms on kernel subshells): each is handled
      on `loop`, so what answers it (trait writes, sends) is made from that loop and the kernel keeps routing the
      widget's messages there.
    - `listen` and `on_close` record what the widget subscribed to; `close()` undoes all of it.
    """

    _uid = traitlets.Unicode().tag(sync=True)
    closed = True  # until the widget is made (a subclass may refuse its arguments first), then again once closed

    def __init__(self, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        self.loop = loop
        self._undo: list[Callable[[], None]] = []
        super().__init__(_uid=uuid.uuid4().hex, **kwargs)
        self.closed = False
        self.on_msg(self._received)

    def listen(self, bus: EventBus, event_type: EventType, handler: Handler) -> None:
        """`bus.on(event_type, handler)` until the widget is closed."""
        bus.on(event_type, handler)
        self.on_close(lambda: bus.off(event_type, handler))

    def on_close(self, undo: Callable[[], None]) -> None:
        """Call `undo` (on the widget's loop) when the widget is closed."""
        self._undo.append(undo)

    def throttle(self, interval: float, flush: Callable[[], bool]) -> Throttle:
        """A `Throttle` of `flush` on the widget's loop, closed with the widget."""
        throttle = Throttle(self.loop, interval, flush)
        self.on_close(throttle.close)
        return throttle

    def on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """`fn(*args)` on the widget's loop: now if this is it, else soon (the caller may be on any thread)."""
        if running_loop() is self.loop:
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def state_message(self) -> Message:
        """The whole state for a view that just said hello."""
        raise NotImplementedError

    def handle(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        """A message from the page other than hello, on the widget's loop (subclasses that take input override it)."""
        log.debug("%s ignored a message of kind %r", type(self).__name__, content.get("kind"))

    def _received(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        """The comm's callback: may run on any thread; the work is done on `loop`."""
        if running_loop() is self.loop:
            self._dispatch(content, buffers)
            return
        try:
            self.loop.call_soon_threadsafe(self._dispatch, content, list(buffers or ()))
        except RuntimeError:  # the loop is closed: the suite is gone, nothing answers
            log.debug("%s: message from the page after its loop closed", type(self).__name__)

    def _dispatch(self, content: Any, buffers: list[Any]) -> None:
        if self.closed or not isinstance(content, dict):
            return
        if content.get("kind") == "hello":
            self.send(*self.state_message())
        else:
            self.handle(content, buffers)

    def close(self) -> None:
        """Undo every subscription (on the widget's loop) and close the widget's comm."""
        if self.closed:
            return
        self.closed = True
        undo, self._undo = self._undo, []
        if running_loop() is self.loop or not self.loop.is_running():
            _run_all(undo)
        else:
            self.loop.call_soon_threadsafe(_run_all, undo)
        super().close()


class Throttle:
    """Runs `flush` on `loop` at most once per `interval` seconds after the sends it made: `poke()` after a change
    asks for a run (at once if the last send is that old already), `pending` says one is due, `close()` drops it
    and ignores the pokes from then on. `flush` returns whether it sent something (a run that sent nothing does not
    delay the next one)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float, flush: Callable[[], bool]) -> None:
        self.loop = loop
        self.interval = interval
        self._flush = flush
        self._timer: asyncio.TimerHandle | None = None
        self._sent_at = -math.inf  # loop time of the last run that sent
        self._closed = False

    @property
    def pending(self) -> bool:
        """Whether a run is due."""
        return self._timer is not None

    def poke(self) -> None:
        """Something shown changed: run with the next slot (one run serves every poke before it)."""
        if self._timer is None and not self._closed:
            self._timer = self.loop.call_later(max(0.0, self._sent_at + self.interval - self.loop.time()), self._run)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._closed = True

    def _run(self) -> None:
        self._timer = None
        if self._flush():
            self._sent_at = self.loop.time()


def side_text(side: OrderSide) -> str:
    """An order side as the pages write it: "buy" or "sell"."""
    return "buy" if side is OrderSide.BUY else "sell"


def _run_all(undo: list[Callable[[], None]]) -> None:
    for step in reversed(undo):
        step()


def suite_loop(suite: Any) -> asyncio.AbstractEventLoop:
    """The loop a suite runs on: its instruments' owner, else the one running here (a suite whose instruments all
    failed); an InputError off any loop."""
    for ctx in suite.contexts.values():
        return ctx.positions.loop
    loop = running_loop()
    if loop is None:
        raise InputError("make the widget on the suite's event loop (in a notebook cell)")
    return loop
