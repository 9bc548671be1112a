"""REST fault injection of the simulated gateway: each fault works and is observable over a real socket."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from conftest import ACCOUNT, MNQ
from pxkit.sim import SimServer

SEARCH = "/api/Account/search"
PLACE = "/api/Order/place"
ACTIVE = {"onlyActiveAccounts": True}
SINCE = "2026-03-01T00:00:00Z"


def limit_buy(tag: str) -> dict[str, Any]:
    """A buy limit far below the market: it rests, so Order/searchOpen shows it if it was processed."""
    return {"accountId": ACCOUNT, "contractId": MNQ, "type": 1, "side": 0, "size": 1, "limitPrice": 15000.0,
            "customTag": tag}


async def post_json(c: httpx.AsyncClient, path: str, body: Any) -> Any:
    r = await c.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def orders(c: httpx.AsyncClient, *, open_only: bool = False) -> list[dict[str, Any]]:
    path, body = ("/api/Order/searchOpen", {"accountId": ACCOUNT}) if open_only else (
        "/api/Order/search", {"accountId": ACCOUNT, "startTimestamp": SINCE})
    return (await post_json(c, path, body))["orders"]


async def listening(url: str, timeout: float = 5.0) -> httpx.Response:
    """Poll with fresh connections every 50 ms until the server accepts one (or `timeout` passes)."""
    started = time.monotonic()
    while True:
        async with httpx.AsyncClient(base_url=url, timeout=2) as c:
            try:
                return await c.post("/api/Auth/loginKey", json={"userName": "demo", "apiKey": "demo"})
            except httpx.ConnectError:
                if time.monotonic() - started > timeout:
                    raise
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------------------------- reject_next
@pytest.mark.parametrize(("count", "status", "retry_after", "header"), [
    (3, 503, None, None), (1, 429, 7, "7"), (2, 500, 2.5, "3"), (1, 502, None, None),
])
async def test_reject_next_answers_status_then_recovers(sim: SimServer, rest: httpx.AsyncClient, count: int,
                                                        status: int, retry_after: float | None,
                                                        header: str | None) -> None:
    sim.faults.reject_next(count, status, retry_after=retry_after)
    answers = [await rest.post(SEARCH, json=ACTIVE) for _ in range(count + 1)]
    assert [r.status_code for r in answers] == [status] * count + [200]
    assert all(r.content == b"" and r.headers.get("Retry-After") == header for r in answers[:-1])
    assert [(e.path, e.body, e.status) for e in sim.requests[-count - 1:]] == [(SEARCH, ACTIVE, status)] * count + [
        (SEARCH, ACTIVE, 200)]
    assert len((await post_json(rest, SEARCH, ACTIVE))["accounts"]) == 3


async def test_rejection_comes_before_authentication(sim: SimServer) -> None:
    sim.faults.reject_next(1, 503)
    async with httpx.AsyncClient(base_url=sim.base_url) as anon:
        assert (await anon.post(SEARCH, json=ACTIVE)).status_code == 503
        assert (await anon.post(SEARCH, json=ACTIVE)).status_code == 401


async def test_rejected_requests_are_logged_but_not_processed(sim: SimServer, rest: httpx.AsyncClient) -> None:
    sim.faults.reject_next(2, 503)
    for body in (limit_buy("rejected-1"), {**limit_buy("rejected-2"), "type": 2, "limitPrice": None}):
        r = await rest.post(PLACE, json=body)
        assert (r.status_code, r.content) == (503, b"")
        assert (sim.requests[-1].path, sim.requests[-1].body, sim.requests[-1].status) == (PLACE, body, 503)
    assert await orders(rest, open_only=True) == []
    assert await orders(rest) == []
    assert await post_json(rest, "/api/Trade/search", {"accountId": ACCOUNT, "startTimestamp": SINCE}) == {
        "trades": [], "success": True, "errorCode": 0, "errorMessage": None}
    # the tag was never registered: the same order goes through now
    order_id = (await post_json(rest, PLACE, limit_buy("rejected-1")))["orderId"]
    assert [(o["id"], o["customTag"], o["status"]) for o in await orders(rest, open_only=True)] == [
        (order_id, "rejected-1", 1)]


# ---------------------------------------------------------------------------------------------- lose_next_responses
async def test_lost_response_is_processed_but_never_answered(sim: SimServer, rest: httpx.AsyncClient) -> None:
    sim.faults.lose_next_responses(1, PLACE)
    assert (await rest.post(SEARCH, json=ACTIVE)).status_code == 200  # other paths are answered
    body = {**limit_buy("lost-1"), "type": 2, "limitPrice": None}  # a market order
    with pytest.raises(httpx.TransportError) as caught:
        await rest.post(PLACE, json=body)
    assert isinstance(caught.value, httpx.RemoteProtocolError | httpx.ReadError)
    [entry] = [e for e in sim.requests if e.path == PLACE]
    assert (entry.body, entry.status) == (body, 0)
    [order] = await orders(rest)  # ... yet the order exists, found by its tag
    assert (order["customTag"], order["status"], order["fillVolume"]) == ("lost-1", 2, 1)
    # a blind retry with the same tag is refused (the tag is taken), and the fault is used up
    retry = await post_json(rest, PLACE, body)
    assert (retry["success"], retry["errorCode"]) == (False, 2)
    assert (await post_json(rest, PLACE, limit_buy("after")))["success"] is True
    assert [e.status for e in sim.requests if e.path == PLACE] == [0, 200, 200]


async def test_lost_responses_without_a_path_hit_any_endpoint(sim: SimServer, rest: httpx.AsyncClient) -> None:
    sim.faults.lose_next_responses(2)
    for path, body in ((SEARCH, ACTIVE), (PLACE, limit_buy("any-path"))):
        with pytest.raises(httpx.TransportError):
            await rest.post(path, json=body)
    assert [(e.path, e.status) for e in sim.requests] == [(SEARCH, 0), (PLACE, 0)]
    assert [o["customTag"] for o in await orders(rest, open_only=True)] == ["any-path"]


async def test_a_rejected_request_does_not_use_up_a_loss(sim: SimServer, rest: httpx.AsyncClient) -> None:
    sim.faults.reject_next(1, 503)
    sim.faults.lose_next_responses(1, PLACE)
    assert (await rest.post(PLACE, json=limit_buy("retried"))).status_code == 503  # not processed
    with pytest.raises(httpx.TransportError):  # the retry is processed; its answer must be lost
        await rest.post(PLACE, json=limit_buy("retried"))


# ---------------------------------------------------------------------------------------------- latency
async def test_latency_delays_answers_until_turned_off(sim: SimServer, rest: httpx.AsyncClient) -> None:
    async def timed() -> float:
        started = time.monotonic()
        assert (await rest.post(SEARCH, json=ACTIVE)).status_code == 200
        return time.monotonic() - started

    await timed()  # open the connection first
    sim.faults.add_latency(0.3)
    assert await timed() >= 0.3
    sim.faults.add_latency(0)
    assert await timed() < 0.25


# ---------------------------------------------------------------------------------------------- tokens
async def test_expired_tokens_give_401_and_a_fresh_login_works(sim: SimServer, rest: httpx.AsyncClient) -> None:
    await post_json(rest, SEARCH, ACTIVE)
    sim.expire_tokens()
    for path, body in ((SEARCH, ACTIVE), ("/api/Auth/validate", None)):
        r = await rest.post(path, json=body)
        assert (r.status_code, r.content) == (401, b"")
    async with httpx.AsyncClient(base_url=sim.base_url) as anon:
        login = await post_json(anon, "/api/Auth/loginKey", {"userName": "demo", "apiKey": "demo"})
    for token in (login["token"], sim.login()):
        rest.headers["Authorization"] = f"Bearer {token}"
        assert len((await post_json(rest, SEARCH, ACTIVE))["accounts"]) == 3


# ---------------------------------------------------------------------------------------------- refused connections
async def test_refused_connections_come_back_on_the_same_port(sim: SimServer) -> None:
    port, url = sim.port, sim.base_url
    started = time.monotonic()
    await sim.refuse_connections(0.5)
    async with httpx.AsyncClient(base_url=url) as c:
        with pytest.raises(httpx.ConnectError):
            await c.post("/api/Auth/loginKey", json={"userName": "demo", "apiKey": "demo"})
    answer = await listening(url)
    assert answer.status_code == 200 and answer.json()["success"] is True
    assert (sim.port, sim.base_url) == (port, url)
    assert time.monotonic() - started >= 0.45  # refused for about the time asked, no less


async def test_refusing_again_during_an_outage_extends_it(sim: SimServer) -> None:
    await sim.refuse_connections(0.2)
    await sim.refuse_connections(0.4)
    assert (await listening(sim.base_url)).status_code == 200
