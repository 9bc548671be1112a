"""Server-side rate limits of the simulated gateway: sliding windows per endpoint class."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `requests` per `seconds`."""

    requests: int
    seconds: float


HISTORY_PATH = "/api/History/retrieveBars"
DEFAULT_LIMITS = {"history": Limit(30, 30.0), "general": Limit(200, 60.0)}


class SlidingWindows:
    """One sliding window per (caller, endpoint class); `admit` answers the seconds to wait, or 0."""

    def __init__(self, limits: dict[str, Limit] | None = None) -> None:
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._hits: dict[tuple[str, str], deque[float]] = {}

    @staticmethod
    def endpoint_class(path: str) -> str:
        return "history" if path == HISTORY_PATH else "general"

    def admit(self, caller: str, path: str) -> float:
        kind = self.endpoint_class(path)
        limit = self.limits.get(kind)
        if limit is None:
            return 0.0
        now = time.monotonic()
        hits = self._hits.setdefault((caller, kind), deque())
        while hits and hits[0] <= now - limit.seconds:
            hits.popleft()
        if len(hits) >= limit.requests:
            return max(hits[0] + limit.seconds - now, 0.001)
        hits.append(now)
        return 0.0
