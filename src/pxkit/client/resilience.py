"""Resilience primitives for the REST client: sliding-window rate limiter, circuit breaker, retry policy."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from ..errors import CircuitOpenError, RateLimitError, is_transient

log = logging.getLogger(__name__)
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Slot:
    """A request counted by the rate limiter: its (mutable) time stamp in the window, and the wait it took."""

    stamp: list[float] | None
    waited: float


class RateLimiter:
    """Sliding windows per endpoint class; `acquire` waits for a free slot instead of failing.

    A slot is stamped when it is taken and stamped again when the answer arrives (`settle`), so the window
    counts each request from no earlier than the server saw it: requests that queue in the connection pool
    cannot make the client think a slot is free before the server does. `margin` widens each window a little
    more for clock granularity.
    """

    def __init__(self, limits: Mapping[str, tuple[int, float]], classify: Callable[[str], str], *,
                 margin: float = 0.25, clock: Clock = time.monotonic) -> None:
        self.limits = dict(limits)
        self.classify = classify
        self.margin = margin
        self.clock = clock
        self._sent: dict[str, deque[list[float]]] = {kind: deque() for kind in self.limits}
        self._locks: dict[str, asyncio.Lock] = {}
        self.waited = 0.0  # total seconds callers spent waiting

    async def acquire(self, endpoint: str) -> float:
        """Wait until a request to `endpoint` fits its window and count it; returns the seconds waited."""
        return (await self.take(endpoint)).waited

    async def take(self, endpoint: str, *, urgent: bool = False) -> Slot:
        """Like `acquire`, returning the slot so that `settle` can restamp it when the answer arrives.

        An `urgent` request (one that reduces risk) is counted but never waits, neither for a full window
        nor for a `push_back` embargo.
        """
        kind = self.classify(endpoint)
        if kind not in self.limits:
            return Slot(None, 0.0)
        if urgent:
            stamp = [self.clock()]
            self._sent[kind].append(stamp)
            return Slot(stamp, 0.0)
        requests, seconds = self.limits[kind]
        window = seconds + self.margin
        waited = 0.0
        async with self._locks.setdefault(kind, asyncio.Lock()):  # first come, first served
            while True:
                sent = self._sent[kind]  # read again after each pause: a push_back may have replaced it
                now = self.clock()
                while sent and sent[0][0] <= now - window:
                    sent.popleft()
                if len(sent) < requests:
                    stamp = [now]
                    sent.append(stamp)
                    break
                pause = sent[0][0] + window - now
                waited += pause
                await asyncio.sleep(pause)
        if waited:
            self.waited += waited
            log.debug("rate limiter held a %s request for %.3f s", kind, waited)
        return Slot(stamp, waited)

    def settle(self, slot: Slot) -> None:
        """The request's answer (or failure) arrived: count it from now, the latest the server can have seen it."""
        if slot.stamp is not None:
            slot.stamp[0] = max(slot.stamp[0], self.clock())

    def push_back(self, endpoint: str, retry_after: float) -> None:
        """The server said 429: no request for `retry_after` seconds, then slots free up one at a time
        at the configured average rate (not all at once, which would hit the server with a burst)."""
        kind = self.classify(endpoint)
        if kind in self.limits:
            requests, seconds = self.limits[kind]
            first = self.clock() + retry_after - seconds - self.margin
            self._sent[kind] = deque([first + i * seconds / requests] for i in range(requests))


class CircuitState(Enum):
    """State of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """CLOSED -> OPEN after `failure_threshold` consecutive failures; after `reset_timeout` one trial call
    (HALF_OPEN) decides: success closes the circuit, failure opens it again."""

    def __init__(self, failure_threshold: int = 5, reset_timeout: float = 60.0, *, name: str = "gateway",
                 clock: Clock = time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.name = name
        self.clock = clock
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._trial_running = False
        self.listeners: list[Callable[[CircuitState, CircuitState], None]] = []

    def _move(self, state: CircuitState) -> None:
        old, self.state = self.state, state
        if old is not state:
            log.warning("circuit %s: %s -> %s", self.name, old.value, state.value)
            for listener in self.listeners:
                listener(old, state)

    def before_call(self) -> None:
        """Raise CircuitOpenError unless a call may go ahead now."""
        if self.state is CircuitState.OPEN:
            remaining = self.opened_at + self.reset_timeout - self.clock()
            if remaining > 0:
                raise CircuitOpenError(f"circuit {self.name} is open after {self.failures} consecutive failures; "
                                       f"next trial in {remaining:.1f} s")
            self._move(CircuitState.HALF_OPEN)
        if self.state is CircuitState.HALF_OPEN:
            if self._trial_running:
                raise CircuitOpenError(f"circuit {self.name} is half-open and its trial call is still running")
            self._trial_running = True

    def record_success(self) -> None:
        self._trial_running = False
        self.failures = 0
        self._move(CircuitState.CLOSED)

    def record_failure(self) -> None:
        self._trial_running = False
        self.failures += 1
        if self.state is CircuitState.HALF_OPEN or self.failures >= self.failure_threshold:
            self.opened_at = self.clock()
            self._move(CircuitState.OPEN)

    def abandon(self) -> None:
        """The call ended before the server could be judged (cancelled, or failed locally)."""
        self._trial_running = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient errors only; `Retry-After` is honoured as given."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.2  # +/- this fraction of the delay
    connect_window: float = 1.0  # seconds a gateway that cannot be connected to is tried again (see below)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def should_retry(self, attempt: int, error: BaseException) -> bool:
        """`attempt` counts from 1 (the call that just failed)."""
        return attempt < self.attempts and is_transient(error)

    def keeps_connecting(self, unreachable_for: float, delay: float) -> bool:
        """Whether to try a gateway that could not be connected to (refused, unresolved, connect timeout) again
        after `delay`: only while that stays within `connect_window` s of the first such failure. Nothing listens
        there, or the name does not resolve: waiting the whole backoff (8 s by default) would only hide that."""
        return unreachable_for + delay <= self.connect_window

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return error.retry_after
        backoff = self.base_delay * 2 ** (attempt - 1) * (1 + self.rng.uniform(-self.jitter, self.jitter))
        return min(self.max_delay, max(0.0, backoff))
