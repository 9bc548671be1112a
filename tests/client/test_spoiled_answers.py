"""Spoiled REST answers, endpoint by endpoint: every one ends in a typed PxError naming the endpoint (or a documented
result), in bounded time, never a raw exception.

The client talks to the real simulator through a proxy that replaces the answers of one endpoint (truncated JSON,
HTML, wrong types, missing fields, unknown or string error codes, absurd Retry-After, bad gzip, deep nesting,
non-object JSON, a `success` that is missing or not a bool). Where the gateway acted first, a placed order ends in
its live result or OrderStateUnknownError with its tag; a cancel or close ends done, or in a typed error.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from conftest import ACCOUNT, MNQ
from pxkit.client.http import ProjectX
from pxkit.config import ProjectXConfig
from pxkit.enums import OrderStatus, OrderType
from pxkit.errors import OrderStateUnknownError, PxError
from pxkit.sim import SimConfig, SimServer
from pxkit.sim.ratelimit import Limit
from spoiling import Spoil, SpoilingProxy

pytestmark = pytest.mark.asyncio(loop_scope="module")  # one simulator serves the whole table

TAGS = (f"spoiled-answer-{n}" for n in itertools.count())
FAR_BID = 15000.0  # a buy limit here rests
CONFIG = {"retry_attempts": 2, "retry_base_delay": 0.005, "retry_max_delay": 0.01, "max_retry_after": 0.01,
          "breaker_failure_threshold": 1000}
PAYLOAD_KEYS = ("token", "newToken", "accounts", "contracts", "contract", "bars", "orders", "orderId", "positions",
                "trades")
HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def every_payload(value: Any, **envelope: Any) -> dict[str, Any]:
    """An answer carrying `value` under every payload key of the protocol."""
    return {"success": True, "errorCode": 0, "errorMessage": None, **dict.fromkeys(PAYLOAD_KEYS, value), **envelope}


def raw_payload(literal: str) -> bytes:
    """An answer with a raw JSON literal (NaN, 1e999) under every payload key."""
    return ("{" + ", ".join(f'"{key}": {literal}' for key in PAYLOAD_KEYS) + ', "success": true}').encode()


LOOKS_VALID = {"token": "a.b.c", "newToken": "a.b.c", "accounts": [], "contracts": [], "contract": None, "bars": [],
               "orders": [], "orderId": 1, "positions": [], "trades": [], "errorCode": 0, "errorMessage": None}
SPOILS = {
    "truncated-json": Spoil(200, b'{"success": true, "accounts": [{"id": 10'),
    "html-200": Spoil(200, HTML, {"Content-Type": "text/html"}),
    "html-502": Spoil(502, HTML, {"Content-Type": "text/html"}),
    "empty-503": Spoil(503),
    "empty-200": Spoil(200),
    "wrong-types-object": Spoil.json(every_payload({"id": "x"})),
    "wrong-types-list": Spoil.json(every_payload([{"id": "x", "size": "two"}])),
    "missing-fields": Spoil.json({"success": True, "errorCode": 0, "errorMessage": None}),
    "unknown-error-code": Spoil.json({"success": False, "errorCode": 999, "errorMessage": "?"}),
    "string-error-code": Spoil.json({"success": False, "errorCode": "E_FAIL", "errorMessage": None}),
    "success-missing": Spoil.json(LOOKS_VALID),
    "success-string-true": Spoil.json({**LOOKS_VALID, "success": "true"}),
    "success-one": Spoil.json({**LOOKS_VALID, "success": 1}),
    "nan-literal": Spoil(200, raw_payload("NaN")),
    "infinity-literal": Spoil(200, raw_payload("-Infinity")),
    "overflowing-1e999": Spoil(200, raw_payload("1e999")),
    "deep-nesting": Spoil(200, b"[" * 100_000 + b"]" * 100_000),
    "bad-gzip": Spoil(200, b"\x1f\x8bnot gzip", {"Content-Encoding": "gzip", "Content-Type": "application/json"}),
    "non-object-json": Spoil(200, b"[1, 2, 3]"),
    "retry-after-1e309": Spoil(429, headers={"Retry-After": "1e309"}, processed=False),
    "retry-after-3600": Spoil(429, headers={"Retry-After": "3600"}, processed=False),
    "retry-after-negative": Spoil(429, headers={"Retry-After": "-30"}, processed=False),
    "retry-after-nan": Spoil(429, headers={"Retry-After": "nan"}, processed=False),
    "400-errors-list": Spoil.json({"errors": ["contractId", {"x": 1}], "status": 400}, 400, processed=False),
}

Prepared = Any
Check = Callable[[ProjectX, SimServer, Prepared, Any], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    """How to reach one endpoint; `check` judges a result it may legitimately return despite the spoil."""

    path: str
    call: Callable[[ProjectX, Prepared], Awaitable[Any]]
    prepare: Callable[[ProjectX], Awaitable[Prepared]] | None = None
    check: Check | None = None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[SimServer]:
    """One simulator for every row (each row has its own client, tag and orders); limits no row can reach."""
    unlimited = {"general": Limit(1_000_000, 60.0), "history": Limit(1_000_000, 30.0)}
    async with SimServer(config=SimConfig(seed=1), rate_limits=unlimited) as server:
        yield server


def tagged(sim: SimServer, tag: str) -> list[int]:
    return [o.id for o in sim.sim.exchange.orders.values() if o.custom_tag == tag]


async def resting_order(px: ProjectX) -> int:
    return (await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT, limit_price=FAR_BID)).order_id


async def new_tag(px: ProjectX) -> str:
    await px.get_instrument("MNQ")
    return next(TAGS)


async def long_two(px: ProjectX) -> None:
    await px.place_order("MNQ", "buy", 2)


async def stale_token(px: ProjectX) -> None:
    px.tokens.expires_at = time.time()  # the token looks due: the next call refreshes it through validate


def position(sim: SimServer) -> int:
    return sim.sim.exchange.ledger.position(ACCOUNT, MNQ)


async def logged_in_again(px: ProjectX, sim: SimServer, prepared: Prepared, result: Any) -> None:
    assert [a.id for a in result][:1] == [ACCOUNT] and px.tokens.logins == 2


async def live_order(px: ProjectX, sim: SimServer, tag: Prepared, result: Any) -> None:
    assert tagged(sim, tag) == [result.order_id]


async def modified(px: ProjectX, sim: SimServer, order_id: Prepared, result: Any) -> None:
    assert result is None and sim.sim.exchange.orders[order_id].limit == int(FAR_BID / 0.25) - 4


async def cancelled(px: ProjectX, sim: SimServer, order_id: Prepared, result: Any) -> None:
    assert result is None and sim.sim.exchange.orders[order_id].status is OrderStatus.CANCELLED


async def flat(px: ProjectX, sim: SimServer, prepared: Prepared, result: Any) -> None:
    assert result is None and position(sim) == 0


async def reduced_once(px: ProjectX, sim: SimServer, prepared: Prepared, result: Any) -> None:
    assert result is None and position(sim) == 1


ENDPOINTS = [
    Endpoint("/api/Auth/loginKey", lambda px, _: px.authenticate()),
    Endpoint("/api/Auth/validate", lambda px, _: px.list_accounts(), stale_token, logged_in_again),
    Endpoint("/api/Account/search", lambda px, _: px.list_accounts()),
    Endpoint("/api/Contract/search", lambda px, _: px.get_instrument("MNQ")),
    Endpoint("/api/Contract/searchById", lambda px, _: px.get_instrument(MNQ)),
    Endpoint("/api/History/retrieveBars", lambda px, _: px.get_bars("MNQ", days=0.05),
             lambda px: px.get_instrument("MNQ")),
    Endpoint("/api/Order/place", lambda px, tag: px.place_order("MNQ", "buy", 1, custom_tag=tag), new_tag,
             live_order),
    Endpoint("/api/Order/modify", lambda px, order_id: px.modify_order(order_id, limit_price=FAR_BID - 1),
             resting_order, modified),
    Endpoint("/api/Order/cancel", lambda px, order_id: px.cancel_order(order_id), resting_order, cancelled),
    Endpoint("/api/Order/search", lambda px, _: px.search_orders()),
    Endpoint("/api/Order/searchOpen", lambda px, _: px.search_open_orders()),
    Endpoint("/api/Position/searchOpen", lambda px, _: px.search_open_positions()),
    Endpoint("/api/Position/closeContract", lambda px, _: px.close_position("MNQ"), long_two, flat),
    Endpoint("/api/Position/partialCloseContract", lambda px, _: px.partially_close_position("MNQ", 1), long_two,
             reduced_once),
    Endpoint("/api/Trade/search", lambda px, _: px.search_trades()),
]


def names(error: PxError, path: str) -> bool:
    return path in str(error) or getattr(error, "endpoint", None) == path


@pytest.mark.parametrize("spoil_name", SPOILS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.path.removeprefix("/api/") for e in ENDPOINTS])
async def test_a_spoiled_answer_ends_typed_and_bounded(sim: SimServer, endpoint: Endpoint, spoil_name: str) -> None:
    spoil = SPOILS[spoil_name]
    proxy = SpoilingProxy()
    px = ProjectX(ProjectXConfig.for_simulator(sim.base_url, **CONFIG), transport=proxy)
    try:
        prepared = None
        if endpoint.path != "/api/Auth/loginKey":
            await px.authenticate()
            if position(sim):
                await px.close_position("MNQ")  # every row starts flat
            prepared = endpoint.prepare and await endpoint.prepare(px)
        proxy.spoil(endpoint.path, spoil)
        result, error = None, None
        try:
            result = await asyncio.wait_for(endpoint.call(px, prepared), 5)  # a hang is a failure
        except PxError as exc:
            error = exc
        proxy.clear()
        assert endpoint.path in proxy.spoiled  # the spoil was met
        if error is not None:
            assert names(error, endpoint.path), f"{type(error).__name__} does not name {endpoint.path}: {error}"
            if isinstance(error, OrderStateUnknownError):
                assert error.custom_tag == prepared
            elif endpoint.path == "/api/Order/place":  # a typed refusal: then no order may be live
                assert tagged(sim, prepared) == [], error
        else:
            assert endpoint.check is not None, f"{endpoint.path} returned {result!r} from a spoiled answer"
            await endpoint.check(px, sim, prepared, result)
    finally:
        await px.close()

