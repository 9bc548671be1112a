"""The REST client against a misbehaving simulated gateway: expired tokens, rate limits, 5xx storms, lost answers.

Every test drives the real client over a real socket; the simulator's request log is the witness of what reached
the server (status 0 = processed, but the answer was dropped).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from conftest import ACCOUNT, LOCKED_ACCOUNT
from pxkit.client.http import ProjectX
from pxkit.client.resilience import CircuitState
from pxkit.config import ProjectXConfig
from pxkit.enums import OrderSide, OrderStatus, OrderType
from pxkit.errors import CircuitOpenError, OrderRejectedError, ServerError, TransportError
from pxkit.sim import SimConfig, SimServer
from pxkit.sim.ratelimit import Limit

LOGIN, VALIDATE, ACCOUNTS = "/api/Auth/loginKey", "/api/Auth/validate", "/api/Account/search"
PLACE, CANCEL, CLOSE = "/api/Order/place", "/api/Order/cancel", "/api/Position/closeContract"
PARTIAL = "/api/Position/partialCloseContract"
FAST_RETRY = {"retry_attempts": 6, "retry_base_delay": 0.05, "retry_max_delay": 0.5}


def client(sim: SimServer, **overrides: Any) -> ProjectX:
    return ProjectX(ProjectXConfig.for_simulator(sim.base_url, **overrides))


@asynccontextmanager
async def server(**options: Any) -> AsyncIterator[SimServer]:
    async with SimServer(config=SimConfig(seed=1), **options) as sim:
        yield sim


def hits(sim: SimServer, path: str | None = None, status: int | None = None) -> int:
    """Requests the server received (to `path`, answered with `status`)."""
    return sum(1 for r in sim.requests if (path is None or r.path == path) and (status is None or r.status == status))


async def past_open_circuit(call: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Repeat `call` while the circuit refuses it (bounded); returns its result or raises its other error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except CircuitOpenError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------------------------- tokens
@pytest.mark.parametrize("listener_kind", ["sync", "async"])
async def test_expired_token_is_replaced_by_one_login(sim: SimServer, listener_kind: str) -> None:
    heard: list[str] = []

    async def async_listener(token: str) -> None:
        heard.append(token)

    async with client(sim) as px:
        px.tokens.add_listener(heard.append if listener_kind == "sync" else async_listener)
        old = px.tokens.current
        sim.expire_tokens()
        accounts = await px.list_accounts()
        assert [a.id for a in accounts][:1] == [ACCOUNT]
        assert hits(sim, LOGIN) == 2  # the session's login and exactly one re-login
        assert hits(sim, status=401) == 1
        assert px.tokens.refreshes == 1
        assert heard == [px.tokens.current] and heard[0] != old


async def test_fifty_concurrent_calls_during_expiry_share_one_login(sim: SimServer) -> None:
    heard: list[str] = []
    async with client(sim) as px:
        px.tokens.add_listener(heard.append)
        sim.expire_tokens()
        results = await asyncio.gather(*(px.list_accounts() for _ in range(50)))
        assert all(r == results[0] for r in results) and results[0]
        assert hits(sim, LOGIN) == 2
        assert 1 <= hits(sim, status=401) <= 50
        assert hits(sim, ACCOUNTS, 200) == 51  # the session's own search + 50
        assert px.tokens.refreshes == 1 and len(heard) == 1


async def test_a_refresh_buffer_longer_than_the_token_life_is_capped_at_half_of_it() -> None:
    """ttl 60 s with a 120 s buffer: the token is still used for its first half-life, no validate per call."""
    async with server(token_ttl=60) as sim, client(sim, token_refresh_buffer=120) as px:
        before = len(sim.requests)
        await asyncio.gather(*(px.list_accounts() for _ in range(10)))
        assert [(r.path, r.status) for r in sim.requests[before:]] == [(ACCOUNTS, 200)] * 10
        assert px.tokens.refreshes == 0 and hits(sim, status=401) == 0 and hits(sim, LOGIN) == 1


async def test_token_used_while_fresh_then_refreshed_before_expiry() -> None:
    """ttl 2 s, buffer 1 s: calls reuse the token, then one validate replaces it before the server would refuse it."""
    async with server(token_ttl=2) as sim, client(sim, token_refresh_buffer=1) as px:
        deadline = time.monotonic() + 5
        while px.tokens.refreshes == 0:
            assert time.monotonic() < deadline, "the token was never refreshed"
            await px.list_accounts()
            await asyncio.sleep(0.05)
        assert hits(sim, VALIDATE) == 1 and hits(sim, LOGIN) == 1 and hits(sim, status=401) == 0
        assert hits(sim, ACCOUNTS) > 2  # the first token served several calls before the refresh


# ---------------------------------------------------------------------------------------------- rate limits
@pytest.mark.slow
async def test_300_calls_against_the_real_limits_never_see_a_429() -> None:
    """Default server (200 / 60 s) and default client: the client waits instead of being refused (~60 s)."""
    async with server() as sim, client(sim) as px:
        results = await asyncio.gather(*(px.list_accounts() for _ in range(300)))
        assert len(results) == 300 and all(results)
        assert hits(sim, status=429) == 0  # the margin keeps the server from ever refusing one
        assert hits(sim, ACCOUNTS, 200) == 301
        assert px.transport.limiter.waited > 0


async def test_calls_at_a_matching_limit_never_see_a_429() -> None:
    async with server(rate_limits={"general": Limit(20, 2.0)}) as sim, \
            client(sim, general_rate_limit=(20, 2.0)) as px:
        results = await asyncio.gather(*(px.list_accounts() for _ in range(60)))
        assert len(results) == 60 and all(results)
        assert hits(sim, status=429) == 0 and hits(sim, ACCOUNTS, 200) == 61


async def test_stricter_server_limit_429s_are_retried_after_retry_after() -> None:
    """The server allows 5 / s while the client believes 100 / 60 s. After a 429 the client waits the 1 s
    Retry-After, then paces itself at its own average rate (0.6 s a request); a 10 s backoff per 429
    would take far longer than the 10 s bound."""
    async with server(rate_limits={"general": Limit(5, 1.0)}) as sim, \
            client(sim, general_rate_limit=(100, 60.0), retry_base_delay=10.0, retry_max_delay=10.0) as px:
        started = time.monotonic()
        results = await asyncio.gather(*(px.list_accounts() for _ in range(12)))
        elapsed = time.monotonic() - started
        assert len(results) == 12 and all(results)
        assert hits(sim, status=429) > 0
        assert hits(sim, ACCOUNTS, 200) == 13
        assert 1.0 <= elapsed < 10.0


# ---------------------------------------------------------------------------------------------- breaker
async def test_5xx_storm_opens_the_circuit_which_fails_fast_and_closes_when_the_server_heals(sim: SimServer) -> None:
    async with client(sim, breaker_failure_threshold=3, breaker_reset_timeout=0.5, retry_attempts=1) as px:
        breaker = px.transport.breaker
        sim.faults.reject_next(1000, 503)
        for _ in range(3):
            with pytest.raises(ServerError):
                await px.list_accounts()
        assert breaker.state is CircuitState.OPEN
        reached = len(sim.requests)
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(CircuitOpenError, match="is open"):
                await px.list_accounts()
        assert time.monotonic() - started < 0.2 and len(sim.requests) == reached  # never reached the server
        with pytest.raises(ServerError):  # the trial call after the reset timeout fails: open again
            await past_open_circuit(px.list_accounts)
        assert breaker.state is CircuitState.OPEN and len(sim.requests) == reached + 1
        sim.faults.clear()
        accounts = await past_open_circuit(px.list_accounts)
        assert accounts and breaker.state is CircuitState.CLOSED and breaker.failures == 0
        assert len(sim.requests) == reached + 2


@pytest.mark.parametrize(("count", "status"), [(1, 503), (3, 503), (2, 500), (2, 502), (1, 504), (2, 429)])
async def test_transient_errors_below_the_attempt_limit_are_retried_transparently(
        sim: SimServer, count: int, status: int) -> None:
    async with client(sim, retry_attempts=count + 1, retry_base_delay=0.01, breaker_failure_threshold=10) as px:
        before = len(sim.requests)
        sim.faults.reject_next(count, status, retry_after=0 if status == 429 else None)
        assert await px.list_accounts()
        assert [(r.path, r.status) for r in sim.requests[before:]] == [(ACCOUNTS, status)] * count + [(ACCOUNTS, 200)]
        assert px.transport.breaker.state is CircuitState.CLOSED


async def test_a_cancelled_trial_call_does_not_wedge_the_circuit(sim: SimServer) -> None:
    async with client(sim, breaker_failure_threshold=1, breaker_reset_timeout=0.2, retry_attempts=1) as px:
        sim.faults.reject_next(1, 503)
        with pytest.raises(ServerError):
            await px.list_accounts()
        sim.faults.add_latency(3.0)
        with pytest.raises(TimeoutError):  # the caller gives up on the slow trial call
            await past_open_circuit(lambda: asyncio.wait_for(px.list_accounts(), 0.2))
        sim.faults.clear()
        assert await past_open_circuit(px.list_accounts, timeout=2.0)
        assert px.transport.breaker.state is CircuitState.CLOSED


# ---------------------------------------------------------------------------------------------- orders
async def _lose_place(sim: SimServer) -> None:
    sim.faults.lose_next_responses(1, PLACE)


async def _lose_place_and_lookup(sim: SimServer) -> None:
    sim.faults.lose_next_responses(2)  # Order/place, then the Order/search that looks the tag up


async def _refuse(sim: SimServer) -> None:
    await sim.refuse_connections(0.3)


def _reject(status: int) -> Callable[[SimServer], Awaitable[None]]:
    async def fault(sim: SimServer) -> None:
        sim.faults.reject_next(1, status)
    return fault


@pytest.mark.parametrize(("fault", "bracket", "places"), [
    (_lose_place, False, 1), (_lose_place, True, 1), (_lose_place_and_lookup, False, 1),
    (_lose_place_and_lookup, True, 1), (_refuse, False, 1), (_refuse, True, 1),
    (_reject(503), False, 2), (_reject(500), False, 2),
], ids=["lost", "lost-bracket", "lost-twice", "lost-twice-bracket", "refused", "refused-bracket", "503", "500"])
async def test_place_order_after_a_fault_places_exactly_once(
        sim: SimServer, fault: Callable[[SimServer], Awaitable[None]], bracket: bool, places: int) -> None:
    async with client(sim, **FAST_RETRY) as px:
        await px.get_instrument("MNQ")  # resolved before the fault, so the fault hits Order/place itself
        await fault(sim)
        legs = {"stop_loss_ticks": 40, "take_profit_ticks": 80} if bracket else {}
        placed = await px.place_order("MNQ", "buy", 1, **legs)
        orders = await px.search_orders()
        tagged = [o for o in orders if o.custom_tag == placed.custom_tag]
        assert [o.id for o in tagged] == [placed.order_id]
        assert tagged[0].status is OrderStatus.FILLED
        assert hits(sim, PLACE) == places and hits(sim, PLACE, 200) + hits(sim, PLACE, 0) == 1  # processed once
        others = sorted((o.type, o.side, o.status) for o in orders if o.id != placed.order_id)
        expected = [(OrderType.LIMIT, OrderSide.SELL, OrderStatus.OPEN),
                    (OrderType.STOP, OrderSide.SELL, OrderStatus.OPEN)] if bracket else []
        assert others == expected  # one entry, its two legs, no duplicates
        position = await px.search_open_positions()
        assert [p.size for p in position] == [1]


@pytest.mark.parametrize("path", [CANCEL, CLOSE])
async def test_a_lost_cancel_or_close_is_looked_up_not_resent(sim: SimServer, path: str) -> None:
    """The gateway acted, the answer was lost: the open orders / positions show it is done, nothing is sent again."""
    async with client(sim, **FAST_RETRY) as px:
        if path == CANCEL:
            placed = await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=15000.0)
            action = px.cancel_order(placed.order_id)
        else:
            await px.place_order("MNQ", "buy", 1)
            action = px.close_position("MNQ")
        sim.faults.lose_next_responses(1, path)
        assert await action is None
        assert hits(sim, path) == 1 and hits(sim, path, 0) == 1
        assert await px.search_open_orders() == [] and await px.search_open_positions() == []  # it did act


async def test_a_partial_close_whose_answer_was_lost_is_never_sent_twice(sim: SimServer) -> None:
    async with client(sim, **FAST_RETRY) as px:
        await px.place_order("MNQ", "buy", 3)
        sim.faults.lose_next_responses(1, PARTIAL)
        with pytest.raises(TransportError) as caught:
            await px.partially_close_position("MNQ", 1)
        assert caught.value.maybe_processed is True
        assert hits(sim, PARTIAL) == 1 and hits(sim, PARTIAL, 0) == 1
        assert [p.size for p in await px.search_open_positions()] == [2]  # reduced once


async def test_business_errors_are_not_retried_and_do_not_trip_the_breaker(sim: SimServer) -> None:
    async with client(sim, breaker_failure_threshold=3, **FAST_RETRY) as px:
        for _ in range(10):
            with pytest.raises(OrderRejectedError, match="cannot trade"):
                await px.place_order("MNQ", "buy", 1, account_id=LOCKED_ACCOUNT)
        assert hits(sim, PLACE) == 10 and hits(sim, PLACE, 200) == 10
        assert px.transport.breaker.state is CircuitState.CLOSED and px.transport.breaker.failures == 0
        assert await px.list_accounts()
