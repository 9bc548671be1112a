"""RateLimiter, CircuitBreaker and RetryPolicy in isolation: fake clocks, small windows, no sockets."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import pytest

from pxkit.client.answers import retry_after
from pxkit.client.resilience import CircuitBreaker, CircuitState, RateLimiter, RetryPolicy
from pxkit.client.transport import GatewayTransport
from pxkit.config import ProjectXConfig
from pxkit.errors import (
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    ConnectionLostError,
    GatewayError,
    InputError,
    InstrumentNotFoundError,
    OrderRejectedError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    is_transient,
)

WINDOW = 0.1


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(general: tuple[int, float] = (3, WINDOW), history: tuple[int, float] = (1, WINDOW),
            margin: float = 0.02) -> RateLimiter:
    return RateLimiter({"general": general, "history": history},
                       lambda path: {"/bars": "history", "/free": "unlimited"}.get(path, "general"), margin=margin)


# ---------------------------------------------------------------------------------------------- RateLimiter


async def test_limiter_admits_n_per_window_then_waits_for_the_oldest() -> None:
    rl = limiter(margin=0.02)
    started = time.monotonic()
    assert [await rl.acquire("/a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.waited == 0.0
    waited = await rl.acquire("/a")
    elapsed = time.monotonic() - started
    assert 0 < waited <= WINDOW + 0.02 + 1e-3  # at most one window (+ margin)
    assert elapsed >= WINDOW + 0.02  # the oldest had left the widened window
    assert rl.waited == pytest.approx(waited)


async def test_limiter_counts_never_exceed_the_limit_in_any_window() -> None:
    rl = limiter(general=(2, 0.05), margin=0.0)
    stamps = []
    for _ in range(6):
        await rl.acquire("/a")
        stamps.append(time.monotonic())
    for i in range(len(stamps) - 2):
        assert stamps[i + 2] - stamps[i] >= 0.05  # any 3 consecutive sends span at least one window


async def test_limiter_classes_are_independent() -> None:
    rl = limiter()
    assert await rl.acquire("/bars") == 0.0  # history class now full
    assert [await rl.acquire("/a") for _ in range(3)] == [0.0, 0.0, 0.0]  # general unaffected
    assert [await rl.acquire("/free") for _ in range(50)] == [0.0] * 50  # unknown class: never limited
    assert await rl.acquire("/bars") > 0


async def test_push_back_blocks_until_retry_after_then_frees_slots_one_at_a_time() -> None:
    rl = limiter(general=(5, 0.05), margin=0.0)
    before = time.monotonic()
    rl.push_back("/a", 0.12)
    assert await rl.acquire("/bars") == 0.0  # the other class is untouched
    assert await rl.acquire("/a") > 0 and time.monotonic() - before >= 0.12
    for _ in range(4):  # the other slots free up at the average rate, 0.01 s apart: no burst
        await rl.acquire("/a")
    assert time.monotonic() - before >= 0.12 + 0.04
    rl.push_back("/free", 100.0)  # unknown class: no effect
    assert await rl.acquire("/free") == 0.0


async def test_push_back_uses_the_limiter_clock() -> None:
    clock = FakeClock(50.0)
    rl = RateLimiter({"general": (2, 10.0)}, lambda _: "general", margin=0.5, clock=clock)
    rl.push_back("/a", 3.0)  # the first slot frees at exactly 53.0, the second 10 / 2 s later
    clock.now = 52.95
    task = asyncio.create_task(rl.acquire("/a"))
    await asyncio.sleep(0)  # one step: the task computes its pause (0.05 s) and sleeps
    clock.now = 53.0
    assert await task == pytest.approx(0.05)
    clock.now = 58.0
    assert await rl.acquire("/a") == 0.0
    assert rl.waited == pytest.approx(0.05)


async def test_an_urgent_request_is_counted_but_never_waits_for_a_full_window_or_an_embargo() -> None:
    rl = limiter(general=(3, WINDOW), margin=0.0)
    rl.push_back("/a", 60.0)  # a read was told to wait a minute
    slots = [await asyncio.wait_for(rl.take("/a", urgent=True), 1.0) for _ in range(3)]
    assert [slot.waited for slot in slots] == [0.0, 0.0, 0.0] and rl.waited == 0.0
    fresh = limiter(general=(3, WINDOW), margin=0.0)
    for _ in range(3):
        await fresh.take("/a", urgent=True)
    assert await fresh.acquire("/a") > 0  # counted: the window was full


async def test_a_push_back_reaches_a_request_already_waiting_for_its_slot() -> None:
    rl = limiter(general=(1, 0.05), margin=0.0)
    await rl.acquire("/a")
    waiting = asyncio.create_task(rl.acquire("/a"))  # pauses ~0.05 s for the oldest slot
    await asyncio.sleep(0)  # one step: it computes its pause and sleeps
    rl.push_back("/a", 0.3)  # meanwhile a 429 says: nothing for 0.3 s
    assert await waiting >= 0.2  # it honoured the embargo instead of the slot it was waiting for


async def test_concurrent_acquirers_are_served_first_come_first_served() -> None:
    rl = limiter(general=(1, 0.03), margin=0.0)
    served: list[int] = []

    async def take(i: int) -> float:
        waited = await rl.acquire("/a")
        served.append(i)
        return waited

    tasks = [asyncio.create_task(take(i)) for i in range(5)]
    waits = await asyncio.gather(*tasks)
    assert served == [0, 1, 2, 3, 4]
    assert waits[0] == 0.0 and all(w > 0 for w in waits[1:])


# ---------------------------------------------------------------------------------------------- CircuitBreaker


def breaker(threshold: int = 3, reset: float = 60.0) -> tuple[CircuitBreaker, FakeClock, list[tuple[str, str]]]:
    clock = FakeClock()
    cb = CircuitBreaker(threshold, reset, name="rest", clock=clock)
    seen: list[tuple[str, str]] = []
    cb.listeners.append(lambda old, new: seen.append((old.value, new.value)))
    return cb, clock, seen


def fail(cb: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        cb.before_call()
        cb.record_failure()


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    cb, _, seen = breaker(3)
    fail(cb, 2)
    cb.before_call()
    cb.record_success()  # resets the count
    fail(cb, 2)
    assert cb.state is CircuitState.CLOSED and cb.failures == 2 and seen == []
    fail(cb, 1)
    assert cb.state is CircuitState.OPEN and seen == [("closed", "open")]


def test_open_breaker_fails_fast_with_a_clear_message_until_reset_timeout() -> None:
    cb, clock, _ = breaker(3, 60.0)
    fail(cb, 3)
    with pytest.raises(CircuitOpenError) as info:
        cb.before_call()
    assert str(info.value) == "circuit rest is open after 3 consecutive failures; next trial in 60.0 s"
    clock.now += 59.9
    with pytest.raises(CircuitOpenError, match=r"next trial in 0\.1 s"):
        cb.before_call()
    assert cb.state is CircuitState.OPEN
    clock.now += 0.1
    cb.before_call()  # the trial
    assert cb.state is CircuitState.HALF_OPEN


def test_half_open_allows_exactly_one_trial_and_success_closes() -> None:
    cb, clock, seen = breaker(2, 10.0)
    fail(cb, 2)
    clock.now += 10.0
    cb.before_call()
    for _ in range(3):  # a second (concurrent) call is refused while the trial runs
        with pytest.raises(CircuitOpenError, match="half-open and its trial call is still running"):
            cb.before_call()
    cb.record_success()
    assert cb.state is CircuitState.CLOSED and cb.failures == 0
    for _ in range(5):
        cb.before_call()  # closed: no limit on concurrent calls
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_trial_opens_again_for_a_full_reset_timeout() -> None:
    cb, clock, seen = breaker(2, 10.0)
    fail(cb, 2)
    clock.now += 15.0
    cb.before_call()
    cb.record_failure()
    assert cb.state is CircuitState.OPEN and cb.opened_at == clock.now
    clock.now += 9.9
    with pytest.raises(CircuitOpenError, match="after 3 consecutive failures"):
        cb.before_call()
    clock.now += 0.1
    cb.before_call()
    cb.record_success()
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "open"), ("open", "half_open"),
                    ("half_open", "closed")]


def test_an_abandoned_trial_frees_the_half_open_slot_without_a_verdict() -> None:
    cb, clock, seen = breaker(2, 10.0)
    fail(cb, 2)
    clock.now += 10.0
    cb.before_call()
    cb.abandon()  # the trial was cancelled: no verdict on the server
    assert cb.state is CircuitState.HALF_OPEN
    cb.before_call()  # so the next call becomes the trial
    cb.record_success()
    assert cb.state is CircuitState.CLOSED and cb.failures == 0
    assert seen[-1] == ("half_open", "closed")


def test_listeners_see_every_transition_once() -> None:
    cb, clock, seen = breaker(1, 1.0)
    more: list[tuple[CircuitState, CircuitState]] = []
    cb.listeners.append(lambda old, new: more.append((old, new)))
    fail(cb, 1)
    cb.record_failure()  # already open: no new transition
    clock.now += 1.0
    cb.before_call()
    cb.record_success()
    cb.record_success()
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert more == [(CircuitState.CLOSED, CircuitState.OPEN), (CircuitState.OPEN, CircuitState.HALF_OPEN),
                    (CircuitState.HALF_OPEN, CircuitState.CLOSED)]


async def test_cancelled_trial_call_does_not_wedge_the_breaker() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/Auth/loginKey":
            return httpx.Response(200, json={"success": True, "errorCode": 0, "errorMessage": None, "token": "t"})
        if not entered.is_set():
            entered.set()
            await release.wait()  # the trial call hangs until it is cancelled
        return httpx.Response(200, json={"success": True, "errorCode": 0, "errorMessage": None, "accounts": []})

    config = ProjectXConfig.for_simulator("http://gateway.test", breaker_failure_threshold=1,
                                          breaker_reset_timeout=10.0)
    transport = GatewayTransport(config, transport=httpx.MockTransport(handler))
    clock = FakeClock()
    transport.breaker.clock = clock
    transport.breaker.record_failure()  # open
    clock.now += 10.0
    try:
        trial = asyncio.create_task(transport.post("/api/Account/search", {}))
        await entered.wait()
        assert transport.breaker.state is CircuitState.HALF_OPEN
        trial.cancel()  # e.g. the caller's own timeout
        with pytest.raises(asyncio.CancelledError):
            await trial
        clock.now += 10.0  # whatever the cancelled trial counted as, a later call must be allowed by now
        assert (await transport.post("/api/Account/search", {}))["accounts"] == []
        assert transport.breaker.state is CircuitState.CLOSED
    finally:
        await transport.close()


# ---------------------------------------------------------------------------------------------- RetryPolicy


@pytest.mark.parametrize("seed", range(5))
def test_retry_delays_grow_exponentially_within_jitter(seed: int) -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=30.0, jitter=0.2, rng=random.Random(seed))
    for attempt in range(1, 11):
        nominal = min(30.0, 0.5 * 2 ** (attempt - 1))
        assert nominal * 0.8 <= policy.delay(attempt) <= nominal * 1.2


def test_retry_delays_without_jitter_double_then_cap() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=30.0, jitter=0.0)
    assert [policy.delay(a) for a in range(1, 10)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert policy.delay(10, ServerError("x", 503)) == 30.0


class Extreme(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def test_retry_delay_never_exceeds_max_delay() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=30.0, jitter=0.2, rng=Extreme())
    assert policy.delay(1) == pytest.approx(0.6)  # jitter still applies below the cap
    assert policy.delay(9) <= 30.0


@pytest.mark.parametrize("retry_after", [0.0, 2.0, 7.5, 120.0])
@pytest.mark.parametrize("attempt", [1, 4])
def test_retry_after_is_honoured_exactly(retry_after: float, attempt: int) -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.5, max_delay=30.0, jitter=0.2, rng=random.Random(1))
    assert policy.delay(attempt, RateLimitError("429", retry_after=retry_after)) == retry_after


@pytest.mark.parametrize(("header", "expected"), [
    ("2.5", 2.5), ("0", 0.0), ("30", 30.0), ("3600", 30.0), ("1e300", 30.0), ("1e309", 30.0), ("inf", 30.0),
    ("-5", 0.0), ("-inf", 0.0), ("nan", None), ("soon", None), (None, None),
])
def test_retry_after_is_read_within_zero_and_the_cap(header: str | None, expected: float | None) -> None:
    response = httpx.Response(429, headers={} if header is None else {"Retry-After": header})
    assert retry_after(response, 30.0) == expected


def test_rate_limit_without_retry_after_backs_off() -> None:
    policy = RetryPolicy(base_delay=1.0, jitter=0.0)
    assert policy.delay(3, RateLimitError("429")) == 4.0


TRANSIENT: list[BaseException] = [ConnectionLostError("x"), RequestTimeoutError("x"), RateLimitError("x", 1.0),
                                  ServerError("x", 500), ServerError("x", 503), TransportError("x")]
PERMANENT: list[BaseException] = [GatewayError("/p", 2), OrderRejectedError("/p", 2), AuthenticationError("x"),
                                  InputError("x"), InstrumentNotFoundError("x"), CircuitOpenError("x"),
                                  ProtocolError("x"), ConfigError("x"), ValueError("x"), asyncio.CancelledError()]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_should_retry_transient_errors_within_attempts(error: BaseException) -> None:
    assert is_transient(error)
    policy = RetryPolicy(attempts=3)
    assert [policy.should_retry(a, error) for a in (1, 2, 3, 4)] == [True, True, False, False]
    assert not RetryPolicy(attempts=1).should_retry(1, error)


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_should_not_retry_permanent_errors(error: BaseException) -> None:
    assert not is_transient(error)
    assert not RetryPolicy(attempts=5).should_retry(1, error)


def test_transient_errors_say_whether_the_server_may_have_acted() -> None:
    cases: dict[str, Any] = {"refused": ConnectionLostError("x", maybe_processed=False),
                             "dropped": ConnectionLostError("x"), "429": RateLimitError("x"),
                             "500": ServerError("x", 500), "503": ServerError("x", 503)}
    assert {k: e.maybe_processed for k, e in cases.items()} == {
        "refused": False, "dropped": True, "429": False, "500": True, "503": False}


async def test_a_settled_slot_counts_from_when_its_answer_arrived() -> None:
    clock = FakeClock(100.0)
    rl = RateLimiter({"general": (1, 1.0)}, lambda _: "general", margin=0.0, clock=clock)
    slot = await rl.take("/a")
    clock.now = 100.3  # the request sat in the connection pool; its answer arrives 0.3 s later
    rl.settle(slot)
    clock.now = 101.05  # 1.05 s after it was taken, but only 0.75 s after the server can have seen it
    task = asyncio.create_task(rl.acquire("/a"))
    await asyncio.sleep(0)  # one step: the task computes its pause (0.25 s) and sleeps
    clock.now = 101.3
    assert await task == pytest.approx(0.25)
