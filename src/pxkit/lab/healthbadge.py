"""`lab.health(suite)`: a small badge of the suite's connection health: hubs, stale feeds, reconnects."""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import InputError
from ..events import Event, EventType
from ..suite import TradingSuite
from .widget import STATIC, LabWidget, Message, suite_loop

POLL = 1.0  # seconds between two looks at the suite's stats
INTERVAL = 0.1  # seconds: a burst of connection events makes one look
OK_FROM, DEGRADED_FROM = 95, 60  # health scores: the suite's own badge turns orange below 95 and red below 60
_CONNECTION_EVENTS = (EventType.CONNECTED, EventType.DISCONNECTED, EventType.RECONNECTED)


def health(suite: TradingSuite) -> Health:
    """A badge of `suite`'s health: ok, degraded or down, each hub's state, stale feeds and reconnects, from
    `suite.get_stats()` every second and on each connection or stale-feed event. Display the widget."""
    return Health(suite)


def level(score: int) -> str:
    """A health score (0-100) as the badge names it: "ok", "degraded" or "down"."""
    return "ok" if score >= OK_FROM else "degraded" if score >= DEGRADED_FROM else "down"


class Health(LabWidget):
    """The widget `lab.health` returns. The page gets a "state" message when it says hello and another whenever
    what the badge shows changes: `health`, `score`, `reasons`, `hubs` ({hub: connected}), `stale` (symbols) and
    `reconnects`. `state` is the newest of them; `looks` counts the reads of the stats."""

    _esm = STATIC / "health.js"
    _css = STATIC / "health.css"

    def __init__(self, suite: TradingSuite) -> None:
        if not isinstance(suite, TradingSuite):
            raise InputError(f"give the suite (lab.health(suite)), got {type(suite).__name__}")
        self.suite = suite
        self._greeted = False
        self._poll: asyncio.TimerHandle | None = None
        self._soon: asyncio.TimerHandle | None = None
        self.state: dict[str, Any] = {}
        self.looks = 0
        super().__init__(suite_loop(suite))
        for kind in _CONNECTION_EVENTS:
            self.listen(suite.event_bus, kind, self._on_event)
        for ctx in suite.contexts.values():
            self.listen(ctx.event_bus, EventType.STALE_FEED, self._on_event)
        self.on_close(self._stop)
        self.on_loop(self._look)

    def __repr__(self) -> str:
        return f"Health({self.state.get('health', 'unknown')}, {self.state.get('score', '?')})"

    def state_message(self) -> Message:
        self._greeted = True
        self.state = self._read()
        return dict(self.state), []

    def _read(self) -> dict[str, Any]:
        if self.suite._closed:
            return {"kind": "state", "health": "down", "score": 0, "reasons": ["the suite is closed"], "hubs": {},
                    "stale": [], "reconnects": 0}
        stats = self.suite._stats()
        return {"kind": "state", "health": level(stats["health"]), "score": stats["health"],
                "reasons": list(stats["reasons"]), "hubs": dict(stats["hubs"]), "stale": list(stats["stale_feeds"]),
                "reconnects": stats["reconnects"]}

    def _look(self) -> None:
        """Read the stats, send them if they changed, look again in POLL seconds."""
        if self.closed:
            return
        if self._poll is not None:
            self._poll.cancel()
        self._poll = self._soon = None
        now = self._read()
        self.looks += 1
        if now != self.state:
            self.state = now
            if self._greeted:
                self.send(dict(now))
        if not self.suite._closed:  # a closed suite's health never changes again
            self._poll = self.loop.call_later(POLL, self._look)

    def _on_event(self, _event: Event[Any]) -> None:
        if self._soon is None and not self.closed:
            self._soon = self.loop.call_later(INTERVAL, self._look)

    def _stop(self) -> None:
        for timer in (self._poll, self._soon):
            if timer is not None:
                timer.cancel()
        self._poll = self._soon = None
