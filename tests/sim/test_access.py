"""Who can reach the simulator and act on it: loopback by default, every token bound to the user it was issued to."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from conftest import ACCOUNT, MNQ
from pxkit.codec import Target
from pxkit.sim import SimServer
from signalr_probe import HubError, HubProbe

INTRUDER = "mallory"  # a user the simulator signs tokens for but who owns none of its accounts
SINCE = "2026-03-01T00:00:00Z"
MARKET = {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": 0, "size": 1}
RESTING = {**MARKET, "type": 1, "limitPrice": 15000.0}


@asynccontextmanager
async def client(sim: SimServer, token: str):
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


async def post(c: httpx.AsyncClient, path: str, body: Any = None) -> dict[str, Any]:
    response = await c.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_simulator_listens_on_loopback_only_by_default():
    async with SimServer() as sim:
        assert sim.host == "127.0.0.1" and sim.base_url.startswith("http://127.0.0.1:")
        sockets = sim._site._server.sockets
        assert sockets and {s.getsockname()[0] for s in sockets} == {"127.0.0.1"}


async def test_a_token_of_another_user_sees_and_touches_none_of_the_accounts(sim: SimServer):
    async with client(sim, sim.login()) as owner, client(sim, sim.gateway.tokens.issue(INTRUDER)) as other:
        resting = (await post(owner, "/api/Order/place", RESTING))["orderId"]
        await post(owner, "/api/Order/place", MARKET)
        await sim.advance(1)
        trades_before = len(sim.sim.exchange.ledger.trades)

        assert (await post(other, "/api/Account/search", {"onlyActiveAccounts": False}))["accounts"] == []
        refused = {
            "/api/Order/place": ({**MARKET, "customTag": "theirs"}, "orderId"),
            "/api/Order/search": ({"accountId": ACCOUNT, "startTimestamp": SINCE}, "orders"),
            "/api/Order/searchOpen": ({"accountId": ACCOUNT}, "orders"),
            "/api/Order/cancel": ({"accountId": ACCOUNT, "orderId": resting}, None),
            "/api/Order/modify": ({"accountId": ACCOUNT, "orderId": resting, "limitPrice": 15001.0}, None),
            "/api/Position/searchOpen": ({"accountId": ACCOUNT}, "positions"),
            "/api/Position/closeContract": ({"accountId": ACCOUNT, "contractId": MNQ}, None),
            "/api/Position/partialCloseContract": ({"accountId": ACCOUNT, "contractId": MNQ, "size": 1}, None),
            "/api/Trade/search": ({"accountId": ACCOUNT, "startTimestamp": SINCE}, "trades"),
        }
        for path, (body, key) in refused.items():
            answer = await post(other, path, body)
            assert (answer["success"], answer["errorCode"]) == (False, 1), (path, answer)
            assert answer["errorMessage"] == f"Account {ACCOUNT} not found"
            assert key is None or (key in answer and answer[key] is None), (path, answer)

        # nothing moved: the owner's order still rests at its price, the position and the fills are untouched
        [still] = (await post(owner, "/api/Order/searchOpen", {"accountId": ACCOUNT}))["orders"]
        assert (still["id"], still["limitPrice"]) == (resting, 15000.0)
        [position] = (await post(owner, "/api/Position/searchOpen", {"accountId": ACCOUNT}))["positions"]
        assert position["size"] == 1
        assert len(sim.sim.exchange.ledger.trades) == trades_before
        assert all(o.custom_tag != "theirs" for o in sim.sim.exchange.orders.values())
        assert [a["id"] for a in (await post(owner, "/api/Account/search", {"onlyActiveAccounts": True}))
                ["accounts"]] == [1001, 1002, 1003]


async def test_validate_renews_a_token_for_its_own_user_only(sim: SimServer):
    async with client(sim, sim.gateway.tokens.issue(INTRUDER)) as other:
        renewed = (await post(other, "/api/Auth/validate"))["newToken"]
    assert sim.gateway.tokens.user_of(renewed) == INTRUDER
    async with client(sim, renewed) as other:
        assert (await post(other, "/api/Account/search", {"onlyActiveAccounts": True}))["accounts"] == []
    async with client(sim, sim.login()) as owner:
        renewed = (await post(owner, "/api/Auth/validate"))["newToken"]
    assert sim.gateway.tokens.user_of(renewed) == sim.credentials.user_name


async def test_the_user_hub_serves_a_token_only_its_own_accounts(sim: SimServer):
    targets = [Target.USER_ACCOUNT, Target.USER_ORDER]
    other = await HubProbe(sim.user_hub_url, sim.gateway.tokens.issue(INTRUDER), targets).start()
    owner = await HubProbe(sim.user_hub_url, sim.login(), targets).start()
    try:
        for method in ("SubscribeOrders", "SubscribePositions", "SubscribeTrades"):
            with pytest.raises(HubError, match=f"Account {ACCOUNT} not found"):
                await other.invoke(method, [ACCOUNT])
        await other.invoke("SubscribeAccounts", [])
        await owner.invoke("SubscribeAccounts", [])
        await owner.invoke("SubscribeOrders", [ACCOUNT])
        async with client(sim, sim.login()) as rest:
            await post(rest, "/api/Order/place", MARKET)
        await sim.advance(1)
        await owner.wait_for(lambda events: {name for name, _ in events} == set(targets))
        assert other.events == []  # owner's pushes arrived; none reached the other user
        assert [c.user for c in sim.gateway.user_hub.connections] == [INTRUDER, sim.credentials.user_name]
    finally:
        await other.stop()
        await owner.stop()


async def test_a_token_of_another_user_still_reads_the_market(sim: SimServer):
    token = sim.gateway.tokens.issue(INTRUDER)
    probe = await HubProbe(sim.market_hub_url, token, [Target.QUOTE]).start()
    try:
        await probe.invoke("SubscribeContractQuotes", [MNQ])
        await probe.wait_for(lambda events: len(events) >= 1)
    finally:
        await probe.stop()
    async with client(sim, token) as other:
        assert (await post(other, "/api/Contract/searchById", {"contractId": MNQ}))["contract"]["id"] == MNQ
