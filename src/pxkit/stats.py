"""Per-component counters and latency percentiles, and the 0-100 health score built from them."""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .html import Html, badge, escape, facts, fixed, muted, panel, table


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
        count = inputs.failed_instruments
        reasons.append(f"{count} instrument{'s' if count > 1 else ''} failed to start")
    return max(0, min(100, round(score))), reasons


BULLET = muted("\u2022")


def health_badge(score: int) -> Html:
    """The health score as a badge: green from 95, orange from 60 (something needs a look), red below."""
    return badge(f"health {score}", "ok" if score >= 95 else "warn" if score >= 60 else "bad")


class SuiteStats(dict[str, Any]):
    """What `suite.get_stats()` returns: a plain dict (health, reasons, hubs, components, instruments, ...) that a
    notebook shows as the health with its reasons and the counters in two small tables."""

    def _repr_html_(self) -> str:
        hubs = [(f"{hub} hub", badge("up", "ok") if up else badge("down", "bad")) for hub, up in self["hubs"].items()]
        reasons = self["reasons"] or ["no problems seen"]
        components = [
            (name, _counters(c["counters"]), f"{sum(c['counters'].values()):,}", sum(c["errors"].values()),
             fixed(c["latency_ms"].get("p50"), 3), fixed(c["latency_ms"].get("p99"), 3))
            for name, c in self["components"].items()]
        instruments = [
            (symbol, fixed(i["last_price"], None), f"{sum(i['events'].values()):,}", i["quarantined"],
             sum(i["late_trades"].values()), sum(i["handler_errors"].values()))
            for symbol, i in self["instruments"].items()]
        failures = [(symbol, error) for symbol, error in self["failures"].items()]
        return panel(
            "Suite stats", health_badge(self["health"]),
            Html("".join(f'<div style="margin: 1px 0;">{BULLET} {escape(r)}</div>' for r in reasons)),
            facts([*hubs, ("reconnects", self["reconnects"]), ("decode errors", self["decode_errors"]),
                   ("stale", ", ".join(self["stale_feeds"]) or "none")]),
            table(components, ("component", "counters", "messages", "errors", "p50 ms", "p99 ms"), align="ll"),
            table(instruments, ("instrument", "last", "events", "quarantined", "late", "handler errors")),
            table(failures, ("failed", "why"), align="ll") if failures else "")


def _counters(counters: dict[str, int], shown: int = 4) -> str:
    """The largest counters as `name n`, joined; how many more there are."""
    top = sorted(counters.items(), key=lambda kv: (-kv[1], kv[0]))
    text = " \u00b7 ".join(f"{name} {n:,}" for name, n in top[:shown])
    return text + (f" \u00b7 +{len(top) - shown} more" if len(top) > shown else "")
