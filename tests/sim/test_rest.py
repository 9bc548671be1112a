"""Every REST endpoint of the simulated gateway over a real socket: exact field sets, error codes, validation."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import ACCOUNT, LOCKED_ACCOUNT, MNQ
from pxkit import models
from pxkit.codec import wire_fields
from pxkit.sim import SimConfig, SimServer
from pxkit.sim.instruments import PRODUCTS
from pxkit.sim.ratelimit import Limit
from pxkit.times import parse_ts

HIDDEN_ACCOUNT = 1004
UNKNOWN_ACCOUNT = 999
SINCE = "2026-03-01T00:00:00Z"  # before the simulator's default start (2026-03-02 14:30 UTC)
FAR_BID = 15000.0  # a buy limit far below MNQ (~20,200): it rests

ENVELOPE = {"success", "errorCode", "errorMessage"}
ACCOUNT_KEYS = {"id", "name", "balance", "canTrade", "isVisible", "simulated"}
CONTRACT_KEYS = {"id", "name", "description", "tickSize", "tickValue", "activeContract", "symbolId"}
BAR_KEYS = {"t", "o", "h", "l", "c", "v"}
ORDER_KEYS = {"id", "accountId", "contractId", "symbolId", "creationTimestamp", "updateTimestamp", "status", "type",
              "side", "size", "limitPrice", "stopPrice", "fillVolume", "filledPrice", "customTag"}
POSITION_KEYS = {"id", "accountId", "contractId", "creationTimestamp", "type", "size", "averagePrice"}
TRADE_KEYS = {"id", "accountId", "contractId", "creationTimestamp", "price", "profitAndLoss", "fees", "side", "size",
              "voided", "orderId"}


def bars_body(**over: Any) -> dict[str, Any]:
    return {"contractId": MNQ, "live": False, "startTime": "2026-03-02T13:00:00Z", "endTime": "2026-03-02T15:00:00Z",
            "unit": 2, "unitNumber": 1, "limit": 20, "includePartialBar": True, **over}


def market(size: int = 1, side: int = 0, **over: Any) -> dict[str, Any]:
    return {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": side, "size": size, **over}


def limit_buy(price: float = FAR_BID, **over: Any) -> dict[str, Any]:
    return {**market(), "type": 1, "limitPrice": price, **over}


def window(account: int = ACCOUNT, start: str = SINCE) -> dict[str, Any]:
    return {"accountId": account, "startTimestamp": start}


POS = {"accountId": ACCOUNT, "contractId": MNQ}
SEARCH = "/api/Account/search"

# every endpoint with a body: a complete valid body, and the fields the protocol requires in it
ENDPOINTS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "/api/Auth/loginKey": ({"userName": "demo", "apiKey": "demo"}, ["userName", "apiKey"]),
    "/api/Auth/loginApp": ({"userName": "u", "password": "p", "deviceId": "d", "appId": "a", "verifyKey": "v"},
                           ["userName", "password", "deviceId", "appId", "verifyKey"]),
    "/api/Account/search": ({"onlyActiveAccounts": True}, ["onlyActiveAccounts"]),
    "/api/Contract/search": ({"searchText": "NQ", "live": False}, ["live"]),
    "/api/Contract/searchById": ({"contractId": MNQ}, ["contractId"]),
    "/api/Contract/available": ({"live": False}, []),
    "/api/History/retrieveBars": (bars_body(), list(bars_body())),
    "/api/Order/place": (market(), ["accountId", "contractId", "type", "side", "size"]),
    "/api/Order/search": (window(), ["accountId", "startTimestamp"]),
    "/api/Order/searchOpen": ({"accountId": ACCOUNT}, ["accountId"]),
    "/api/Order/cancel": ({"accountId": ACCOUNT, "orderId": 1}, ["accountId", "orderId"]),
    "/api/Order/modify": ({"accountId": ACCOUNT, "orderId": 1, "limitPrice": FAR_BID}, ["accountId", "orderId"]),
    "/api/Position/searchOpen": ({"accountId": ACCOUNT}, ["accountId"]),
    "/api/Position/closeContract": (POS, ["accountId", "contractId"]),
    "/api/Position/partialCloseContract": ({**POS, "size": 1}, ["accountId", "contractId", "size"]),
    "/api/Trade/search": (window(), ["accountId"]),
}
VALID = {path: body for path, (body, _) in ENDPOINTS.items()}
MISSING = [(path, field) for path, (_, required) in ENDPOINTS.items() for field in required]
AUTHENTICATED = [p for p in VALID if not p.startswith("/api/Auth/login")] + ["/api/Auth/validate", "/api/Auth/logout"]


@asynccontextmanager
async def client(sim: SimServer, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=10, headers=headers) as c:
        yield c


async def ok(c: httpx.AsyncClient, path: str, body: Any = None, key: str | None = None) -> Any:
    """POST, expect a success envelope with exactly `key` as payload; return the payload (or the body)."""
    r = await c.post(path, json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert set(data) == ENVELOPE | ({key} if key else set()), data
    assert (data["success"], data["errorCode"], data["errorMessage"]) == (True, 0, None)
    return data[key] if key else data


async def fail(c: httpx.AsyncClient, path: str, body: Any, code: int, key: str | None = None) -> None:
    """POST, expect HTTP 200, success false, `code`, a message, and exactly `key` (null) as payload."""
    r = await c.post(path, json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert set(data) == ENVELOPE | ({key} if key else set()), data
    assert (data["success"], data["errorCode"]) == (False, code), data
    assert isinstance(data["errorMessage"], str) and data.get(key) is None


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = token.split(".")
    assert len(parts) == 3 and all(parts)
    head, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2])
    return head, claims


# ---------------------------------------------------------------------------------------------- field sets
@pytest.mark.parametrize(("model", "keys"), [
    (models.Account, ACCOUNT_KEYS), (models.Contract, CONTRACT_KEYS), (models.Bar, BAR_KEYS),
    (models.Order, ORDER_KEYS), (models.Position, POSITION_KEYS), (models.Trade, TRADE_KEYS),
])
def test_codec_wire_fields_match_documented_sets(model: type, keys: set[str]) -> None:
    assert set(wire_fields(model)) == keys and len(wire_fields(model)) == len(keys)


# ---------------------------------------------------------------------------------------------- auth
async def test_login_key_issues_a_24h_jwt_that_works(sim: SimServer) -> None:
    async with client(sim) as anon:
        token = await ok(anon, "/api/Auth/loginKey", VALID["/api/Auth/loginKey"], "token")
    head, claims = jwt_parts(token)
    assert head["alg"] == "HS256"
    assert abs(claims["exp"] - (time.time() + 86_400)) < 120
    async with client(sim, token) as authed:
        assert len(await ok(authed, "/api/Account/search", {"onlyActiveAccounts": True}, "accounts")) == 3


async def test_login_failures_are_http_200_with_a_null_token(sim: SimServer) -> None:
    async with client(sim) as anon:
        await fail(anon, "/api/Auth/loginKey", {"userName": "demo", "apiKey": "wrong"}, 3, "token")
        await fail(anon, "/api/Auth/loginApp", VALID["/api/Auth/loginApp"], 4, "token")


async def test_validate_gives_a_working_token_and_logout_revokes_only_that_one(sim: SimServer,
                                                                        rest: httpx.AsyncClient) -> None:
    new = await ok(rest, "/api/Auth/validate", None, "newToken")
    assert new != rest.headers["Authorization"].split()[1]
    assert jwt_parts(new)[1]["exp"] > time.time() + 86_000
    async with client(sim, new) as fresh:
        await ok(fresh, "/api/Account/search", {"onlyActiveAccounts": True}, "accounts")
        await ok(fresh, "/api/Auth/logout")
        assert (await fresh.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code == 401
    await ok(rest, "/api/Account/search", {"onlyActiveAccounts": True}, "accounts")  # other tokens live on


@pytest.mark.parametrize("mode", ["none", "garbage", "not-bearer", "tampered", "expired"])
async def test_bad_credentials_give_a_bare_401(sim: SimServer, mode: str) -> None:
    head, body, sig = sim.login().split(".")
    token = {"none": None, "garbage": "not-a-jwt", "tampered": f"{head}.{body}.{sig[::-1]}"}.get(mode, sim.login())
    async with client(sim, token) as c:
        if mode == "not-bearer":
            c.headers["Authorization"] = f"Basic {token}"
        if mode == "expired":
            sim.expire_tokens()
        r = await c.post("/api/Account/search", json={"onlyActiveAccounts": True})
    assert (r.status_code, r.content) == (401, b"")


@pytest.mark.parametrize("path", AUTHENTICATED)
async def test_every_authenticated_endpoint_checks_the_bearer_before_the_body(sim: SimServer, path: str) -> None:
    async with client(sim) as anon:
        r = await anon.post(path, json={})
    assert (r.status_code, r.content) == (401, b"")


# ---------------------------------------------------------------------------------------------- reference data
@pytest.mark.parametrize(("only_active", "ids"), [(True, [1001, 1002, 1003]), (False, [1001, 1002, 1003, 1004])])
async def test_account_search_hides_invisible_accounts(rest: httpx.AsyncClient, only_active: bool,
                                                       ids: list[int]) -> None:
    accounts = await ok(rest, "/api/Account/search", {"onlyActiveAccounts": only_active}, "accounts")
    assert [a["id"] for a in accounts] == ids
    assert all(set(a) == ACCOUNT_KEYS for a in accounts)
    flags = {a["id"]: (a["canTrade"], a["isVisible"]) for a in accounts}
    assert flags[ACCOUNT] == (True, True) and flags[LOCKED_ACCOUNT] == (False, True)
    assert flags.get(HIDDEN_ACCOUNT, (False, False)) == (False, False)


async def test_contract_search_finds_the_active_mnq_and_enq(rest: httpx.AsyncClient) -> None:
    contracts = await ok(rest, "/api/Contract/search", {"searchText": "NQ", "live": False}, "contracts")
    assert all(set(c) == CONTRACT_KEYS for c in contracts)
    assert sorted(c["id"] for c in contracts) == ["CON.F.US.ENQ.H26", MNQ]
    assert all(c["activeContract"] for c in contracts)
    mnq = next(c for c in contracts if c["id"] == MNQ)
    assert (mnq["name"], mnq["symbolId"], mnq["tickSize"], mnq["tickValue"]) == ("MNQH6", "F.US.MNQ", 0.25, 0.5)


async def test_empty_search_is_capped_and_available_lists_everything(rest: httpx.AsyncClient) -> None:
    page = await ok(rest, "/api/Contract/search", {"searchText": "", "live": False}, "contracts")
    every = await ok(rest, "/api/Contract/available", {"live": False}, "contracts")
    assert 0 < len(page) <= 20 < len(every) == 2 * len(PRODUCTS) == len({c["id"] for c in every})
    assert {c["id"] for c in page} <= {c["id"] for c in every}
    assert all(set(c) == CONTRACT_KEYS for c in every)


async def test_search_by_id(rest: httpx.AsyncClient) -> None:
    contract = await ok(rest, "/api/Contract/searchById", {"contractId": MNQ}, "contract")
    assert set(contract) == CONTRACT_KEYS and contract["id"] == MNQ
    await fail(rest, "/api/Contract/searchById", {"contractId": "CON.F.US.NOPE.H26"}, 1, "contract")


# ---------------------------------------------------------------------------------------------- history
async def test_bars_are_newest_first_capped_and_deterministic(rest: httpx.AsyncClient) -> None:
    bars = await ok(rest, "/api/History/retrieveBars", bars_body(), "bars")
    assert bars == await ok(rest, "/api/History/retrieveBars", bars_body(), "bars")
    assert len(bars) == 20 and all(set(b) == BAR_KEYS for b in bars)
    times = [parse_ts(b["t"]) for b in bars]
    assert times == sorted(times, reverse=True) and len(set(times)) == 20
    assert times[0] == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # the forming bar at the start instant
    assert all(b["l"] <= min(b["o"], b["c"]) <= max(b["o"], b["c"]) <= b["h"] and b["v"] > 0 for b in bars)
    assert len(await ok(rest, "/api/History/retrieveBars", bars_body(limit=3), "bars")) == 3


@pytest.mark.parametrize(("over", "code"), [
    ({"contractId": "CON.F.US.NOPE.H26"}, 1), ({"unit": 0}, 2), ({"unitNumber": 0}, 3),
    ({"limit": 0}, 4), ({"limit": 20_001}, 4),
])
async def test_bars_error_codes(rest: httpx.AsyncClient, over: dict[str, Any], code: int) -> None:
    await fail(rest, "/api/History/retrieveBars", bars_body(**over), code, "bars")


async def test_partial_bar_and_time_moving_forward(sim: SimServer, rest: httpx.AsyncClient) -> None:
    await sim.advance(30)
    whole = bars_body(startTime="2026-03-02T14:00:00Z", limit=1000)
    with_partial = await ok(rest, "/api/History/retrieveBars", whole, "bars")
    without = await ok(rest, "/api/History/retrieveBars", {**whole, "includePartialBar": False}, "bars")
    assert with_partial[1:] == without
    assert parse_ts(with_partial[0]["t"]) == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    assert parse_ts(without[0]["t"]) == datetime(2026, 3, 2, 14, 29, tzinfo=UTC)
    await sim.advance(90)
    later = await ok(rest, "/api/History/retrieveBars", whole, "bars")
    assert parse_ts(later[0]["t"]) - parse_ts(with_partial[0]["t"]) == timedelta(minutes=2)
    assert later[2]["t"] == with_partial[0]["t"] and later[2]["v"] > with_partial[0]["v"]  # the bar completed


# ---------------------------------------------------------------------------------------------- orders
async def test_market_order_fills_and_is_found_by_search(rest: httpx.AsyncClient) -> None:
    order_id = await ok(rest, "/api/Order/place", market(customTag="mkt-1"), "orderId")
    assert isinstance(order_id, int)
    [order] = await ok(rest, "/api/Order/search", window(), "orders")
    assert set(order) == ORDER_KEYS
    expected = {"id": order_id, "accountId": ACCOUNT, "contractId": MNQ, "symbolId": "F.US.MNQ", "status": 2,
                "type": 2, "side": 0, "size": 1, "fillVolume": 1, "customTag": "mkt-1", "limitPrice": None}
    assert {k: order[k] for k in expected} == expected and order["stopPrice"] is None
    assert isinstance(order["filledPrice"], float) and order["filledPrice"] > 0
    assert parse_ts(order["creationTimestamp"]) <= parse_ts(order["updateTimestamp"])
    assert await ok(rest, "/api/Order/searchOpen", {"accountId": ACCOUNT}, "orders") == []
    assert await ok(rest, "/api/Order/search", window(start="2026-03-03T00:00:00Z"), "orders") == []


async def test_limit_order_rests_is_modified_and_cancelled(rest: httpx.AsyncClient) -> None:
    filled = await ok(rest, "/api/Order/place", market(), "orderId")
    resting = await ok(rest, "/api/Order/place", limit_buy(), "orderId")
    [order] = await ok(rest, "/api/Order/searchOpen", {"accountId": ACCOUNT}, "orders")
    assert set(order) == ORDER_KEYS
    assert (order["id"], order["status"], order["limitPrice"], order["fillVolume"]) == (resting, 1, FAR_BID, 0)
    await ok(rest, "/api/Order/modify", {"accountId": ACCOUNT, "orderId": resting, "limitPrice": FAR_BID + 0.25})
    [order] = await ok(rest, "/api/Order/searchOpen", {"accountId": ACCOUNT}, "orders")
    assert (order["id"], order["limitPrice"]) == (resting, FAR_BID + 0.25)
    await ok(rest, "/api/Order/cancel", {"accountId": ACCOUNT, "orderId": resting})
    assert await ok(rest, "/api/Order/searchOpen", {"accountId": ACCOUNT}, "orders") == []
    statuses = {o["id"]: o["status"] for o in await ok(rest, "/api/Order/search", window(), "orders")}
    assert statuses == {filled: 2, resting: 3}
    await fail(rest, "/api/Order/cancel", {"accountId": ACCOUNT, "orderId": resting}, 3)  # no longer working


@pytest.mark.parametrize(("over", "code"), [
    ({"accountId": LOCKED_ACCOUNT}, 10), ({"accountId": UNKNOWN_ACCOUNT}, 1),
    ({"contractId": "CON.F.US.NOPE.H26"}, 8), ({"contractId": "CON.F.US.MNQ.Z25"}, 8),
    ({"stopLossBracket": {"ticks": 10, "type": 4}}, 2),  # a long entry's stop-loss ticks must be negative
], ids=["locked", "unknown-account", "unknown-contract", "expired-contract", "bracket-sign"])
async def test_place_rejections_create_no_order(rest: httpx.AsyncClient, over: dict[str, Any], code: int) -> None:
    await fail(rest, "/api/Order/place", market(**over), code, "orderId")
    for account in (ACCOUNT, LOCKED_ACCOUNT):
        assert await ok(rest, "/api/Order/search", window(account), "orders") == []


async def test_custom_tag_is_unique_per_account(rest: httpx.AsyncClient) -> None:
    await ok(rest, "/api/Order/place", limit_buy(customTag="dup"), "orderId")
    await fail(rest, "/api/Order/place", market(customTag="dup"), 2, "orderId")
    await ok(rest, "/api/Order/place", limit_buy(accountId=1002, customTag="dup"), "orderId")
    assert len(await ok(rest, "/api/Order/search", window(), "orders")) == 1


@pytest.mark.parametrize("path", ["/api/Order/cancel", "/api/Order/modify"])
@pytest.mark.parametrize(("account", "code"), [(ACCOUNT, 2), (UNKNOWN_ACCOUNT, 1)])
async def test_cancel_and_modify_unknown(rest: httpx.AsyncClient, path: str, account: int, code: int) -> None:
    await fail(rest, path, {**VALID[path], "accountId": account, "orderId": 123}, code)


@pytest.mark.parametrize(("path", "body", "key"), [
    ("/api/Order/search", window(UNKNOWN_ACCOUNT), "orders"),
    ("/api/Order/searchOpen", {"accountId": UNKNOWN_ACCOUNT}, "orders"),
    ("/api/Position/searchOpen", {"accountId": UNKNOWN_ACCOUNT}, "positions"),
    ("/api/Trade/search", window(UNKNOWN_ACCOUNT), "trades"),
])
async def test_account_searches_reject_unknown_accounts(rest: httpx.AsyncClient, path: str, body: dict[str, Any],
                                                        key: str) -> None:
    await fail(rest, path, body, 1, key)


# ---------------------------------------------------------------------------------------------- positions, trades
async def test_position_partial_close_close_and_trades(rest: httpx.AsyncClient) -> None:
    partial, close = "/api/Position/partialCloseContract", "/api/Position/closeContract"
    await ok(rest, "/api/Order/place", market(size=3), "orderId")
    [pos] = await ok(rest, "/api/Position/searchOpen", {"accountId": ACCOUNT}, "positions")
    assert set(pos) == POSITION_KEYS
    assert (pos["accountId"], pos["contractId"], pos["type"], pos["size"]) == (ACCOUNT, MNQ, 1, 3)
    await ok(rest, partial, {**POS, "size": 1})
    [pos] = await ok(rest, "/api/Position/searchOpen", {"accountId": ACCOUNT}, "positions")
    assert (pos["type"], pos["size"]) == (1, 2)
    await fail(rest, partial, {**POS, "size": 5}, 5)
    await ok(rest, close, POS)
    assert await ok(rest, "/api/Position/searchOpen", {"accountId": ACCOUNT}, "positions") == []
    await fail(rest, close, POS, 2)
    await fail(rest, partial, {**POS, "size": 1}, 2)

    trades = await ok(rest, "/api/Trade/search", window(), "trades")
    assert all(set(t) == TRADE_KEYS and t["voided"] is False and t["accountId"] == ACCOUNT for t in trades)
    buys, sells = ([t for t in trades if t["side"] == side] for side in (0, 1))
    assert sum(t["size"] for t in buys) == sum(t["size"] for t in sells) == 3
    assert all(t["profitAndLoss"] is None for t in buys)  # opening (half-turn) fills
    assert all(isinstance(t["profitAndLoss"], float) for t in sells)
    orders = await ok(rest, "/api/Order/search", window(), "orders")
    assert {t["orderId"] for t in trades} == {o["id"] for o in orders} and len(orders) == 3


# ---------------------------------------------------------------------------------------------- validation (400)
@pytest.mark.parametrize("path", list(VALID))
async def test_complete_bodies_pass_validation(rest: httpx.AsyncClient, path: str) -> None:
    assert (await rest.post(path, json=VALID[path])).status_code == 200


@pytest.mark.parametrize(("path", "field"), MISSING, ids=lambda v: v.removeprefix("/api/"))
async def test_missing_or_null_required_field_is_400(rest: httpx.AsyncClient, path: str, field: str) -> None:
    absent = {k: v for k, v in VALID[path].items() if k != field}
    for body in (absent, {**absent, field: None}):
        r = await rest.post(path, json=body)
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["status"] == 400 and list(problem["errors"]) == [field]


@pytest.mark.parametrize(("path", "field", "value"), [
    ("/api/Order/place", "size", "one"), ("/api/Order/place", "accountId", 1001.5), ("/api/Order/place", "type", "2"),
    ("/api/Position/partialCloseContract", "size", [1]), ("/api/History/retrieveBars", "limit", "10.0"),
    ("/api/History/retrieveBars", "startTime", "yesterday"), ("/api/Account/search", "onlyActiveAccounts", "true"),
])  # numbers as strings bind (tests/sim/test_binding.py), other kinds do not
async def test_wrong_json_type_is_400(rest: httpx.AsyncClient, path: str, field: str, value: Any) -> None:
    r = await rest.post(path, json={**VALID[path], field: value})
    assert r.status_code == 400 and field in json.dumps(r.json()["errors"])


async def test_close_size_instead_of_size_is_400(rest: httpx.AsyncClient) -> None:
    r = await rest.post("/api/Position/partialCloseContract", json={**POS, "closeSize": 1})
    assert r.status_code == 400 and list(r.json()["errors"]) == ["size"]


@pytest.mark.parametrize("path", ["/api/Auth/loginKey", "/api/Account/search", "/api/Order/place"])
async def test_non_object_body_is_400(rest: httpx.AsyncClient, path: str) -> None:
    for raw in (b"not json", b"{'single': 'quotes'}", b"[1, 2]", b"", b"null"):
        r = await rest.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["errors"], raw


# ---------------------------------------------------------------------------------------------- rate limits
@pytest.mark.parametrize("history_first", [True, False])
async def test_rate_limits_answer_429_with_retry_after_per_class(history_first: bool) -> None:
    limits = {"general": Limit(5, 60), "history": Limit(2, 60)}
    async with SimServer(config=SimConfig(seed=1), rate_limits=limits) as sim, client(sim, sim.login()) as c:

        async def exhaust(path: str, body: dict[str, Any], allowed: int) -> None:
            for _ in range(allowed):
                assert (await c.post(path, json=body)).status_code == 200
            r = await c.post(path, json=body)
            assert r.status_code == 429 and r.content == b""
            assert 1 <= int(r.headers["Retry-After"]) <= 60

        classes = [("/api/History/retrieveBars", bars_body(), 2), ("/api/Account/search", VALID[SEARCH], 5)]
        for path, body, allowed in classes if history_first else classes[::-1]:
            await exhaust(path, body, allowed)
        async with client(sim) as anon:  # login is not limited; the bearer is checked before the limit
            assert (await anon.post("/api/Auth/loginKey", json=VALID["/api/Auth/loginKey"])).status_code == 200
            assert (await anon.post("/api/Account/search", json={})).status_code == 401
