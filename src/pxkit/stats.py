"""Per-component counters and latency percentiles, and the 0-100 health score built from them."""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class ComponentStats:
    """Counters, errors and a bounded window of latencies (milliseconds) of one component."""

    __slots__ = ("_latencies", "counters", "errors", "name")

    def __init__(self, name: str, *, window: int = 4096) -> None:
        self.name = name
        self.counters: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._latencies: deque[float] = deque(maxlen=window)

    def count(self, what: str, n: int = 1) -> None:
        self.counters[what] += n

    def error(self, what: str) -> None:
        self.errors[what] += 1

    def latency(self, ms: float) -> None:
        self._latencies.append(ms)

    def percentiles(self, points: Iterable[int] = (50, 95, 99)) -> dict[str, float]:
        """Latency percentiles of the window (nearest rank), e.g. {"p50": 0.4, "p95": 1.2, "p99": 3.1}."""
        ordered = sorted(self._latencies)
        if not ordered:
            return {}
        n = len(ordered)  # nearest rank: the ceil(p% of n)-th smallest (round() took p50 of 5 down to the 2nd)
        return {f"p{p}": round(ordered[min(n - 1, max(0, math.ceil(p * n / 100) - 1))], 3) for p in points}

    def snapshot(self) -> dict[str, Any]:
        return {"counters": dict(self.counters), "errors": dict(self.errors),
                "latency_ms": self.percentiles(), "samples": len(self._latencies)}


@dataclass(frozen=True, slots=True)
class HealthInputs:
    """What the health score is made of, gathered by the suite at the moment it is asked."""

    hubs_connected: int
    hubs_total: int
    stale_feeds: int
    feeds_total: int
    breaker_open: bool
    messages: int
    errors: int
    reconnects: int
    failed_instruments: int = 0
    quarantined: int = 0  # market events refused for a stamp far ahead of the exchange clock
    notes: tuple[str, ...] = field(default=())


def health_score(inputs: HealthInputs) -> tuple[int, list[str]]:
    """0-100 and the reasons it is below 100: a down hub or an open breaker weigh most, then stale feeds, then
    errors and reconnects. A suite whose data stopped is never reported as healthy."""
    score = 100.0
    reasons = list(inputs.notes)
    if inputs.hubs_total and inputs.hubs_connected < inputs.hubs_total:
        down = inputs.hubs_total - inputs.hubs_connected
        score -= 80 * down / inputs.hubs_total
        reasons.append(f"{down} of {inputs.hubs_total} hubs disconnected")
    if inputs.breaker_open:
        score -= 30
        reasons.append("REST circuit breaker open")
    if inputs.feeds_total and inputs.stale_feeds:
        score -= 50 * inputs.stale_feeds / inputs.feeds_total
        reasons.append(f"{inputs.stale_feeds} of {inputs.feeds_total} market feeds stale")
    if inputs.errors:
        rate = inputs.errors / max(1, inputs.messages)
        score -= min(20.0, 2 + 200 * rate)
        reasons.append(f"{inputs.errors} processing errors")
    if inputs.quarantined:
        score -= min(20.0, 5 + 200 * inputs.quarantined / max(1, inputs.messages))
        reasons.append(f"{inputs.quarantined} market events stamped ahead of the exchange clock quarantined")
    if inputs.reconnects:
        score -= min(10, 2 * inputs.reconnects)
        reasons.append(f"{inputs.reconnects} reconnects")
    if inputs.failed_instruments:
        score -= 10
        reasons.append(f"{inputs.failed_instruments} instruments failed to start")
    return max(0, min(100, round(score))), reasons
