"""Event payloads that are not gateway models: bars of a timeframe, feed status, risk breaches.

events.py maps every event type to its payload type; the ones defined here are built by the data manager
(BarEvent, FeedStatus) and the risk manager (RiskBreach).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .models import Bar


@dataclass(frozen=True, slots=True)
class BarEvent:
    """Payload of NEW_BAR (a bar closed) and BAR_UPDATED (the forming bar after a batch of trades)."""

    timeframe: str
    bar: Bar


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """Payload of STALE_FEED: sent when a feed goes silent during its session and again when it speaks."""

    stale: bool
    silent_for: float  # seconds since the last market event of the contract


class BrokenRule(Protocol):
    """One risk rule broken, as a breach reports it (`pxkit.risk.rules.Violation` is the implementation)."""

    @property
    def rule(self) -> str: ...

    @property
    def limit(self) -> int | float | str | datetime: ...

    @property
    def value(self) -> int | float | str | datetime: ...

    @property
    def action(self) -> str: ...

    @property
    def contract_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RiskBreach:
    """Payload of RISK_BREACH: what was broken, what was done, whether the gateway confirmed it, the lockout."""

    violations: tuple[BrokenRule, ...]
    actions: tuple[str, ...]
    verified: bool
    lockout_until: datetime | None
