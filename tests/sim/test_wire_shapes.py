"""What the simulated gateway puts on the wire, read raw: one timestamp shape everywhere, integer sizes on the hubs.

Timestamps are `+00:00` with 6 fraction digits in every REST body and hub push, unless the `mix_timestamps` fault
mixes shapes within a response (the client still reads those); sizes and volumes in hub pushes are JSON integers.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import pytest
from polars.testing import assert_frame_equal

from conftest import ACCOUNT, MNQ
from pxkit.client.http import ProjectX
from pxkit.codec import Target
from pxkit.config import ProjectXConfig
from pxkit.enums import DomType
from pxkit.sim import SimServer

RS = "\x1e"
ONE_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")
TS_KEYS = {"t", "timestamp", "lastUpdated", "creationTimestamp", "updateTimestamp"}
SINCE = "2026-03-01T00:00:00Z"
BARS = {"contractId": MNQ, "live": False, "startTime": "2026-03-02T13:00:00Z", "endTime": "2026-03-02T15:00:00Z",
        "unit": 2, "unitNumber": 1, "limit": 30, "includePartialBar": True}
MARKET_BUY = {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": 0, "size": 2}
RESTING_BUY = {**MARKET_BUY, "type": 1, "size": 1, "limitPrice": 15000.25}
Event = tuple[str, Any]  # (target, arguments)


def stamps(record: dict[str, Any]) -> list[str]:
    return [value for key, value in record.items() if key in TS_KEYS and value is not None]


def shape(text: str) -> str:
    if text.endswith("Z"):
        return "z"
    if not text.endswith("+00:00"):
        return "naive"
    return "millis" if re.search(r"\.\d{3}\+", text) else "offset"


async def rest_pages(rest: httpx.AsyncClient) -> dict[str, list[dict[str, Any]]]:
    """One page of every REST kind that carries timestamps, after a fill, a resting order and an open position."""
    for body in (MARKET_BUY, RESTING_BUY):
        assert (await rest.post("/api/Order/place", json=body)).json()["success"]
    window = {"accountId": ACCOUNT, "startTimestamp": SINCE}
    calls = {"bars": ("/api/History/retrieveBars", BARS), "orders": ("/api/Order/search", window),
             "open orders": ("/api/Order/searchOpen", {"accountId": ACCOUNT}),
             "positions": ("/api/Position/searchOpen", {"accountId": ACCOUNT}),
             "trades": ("/api/Trade/search", {"accountId": ACCOUNT})}
    pages = {}
    for kind, (path, body) in calls.items():
        answer = (await rest.post(path, json=body)).json()
        pages[kind] = answer["orders" if "orders" in kind else kind]
    return pages


# ---------------------------------------------------------------------------------------------- REST
async def test_every_rest_timestamp_has_the_one_shape(rest: httpx.AsyncClient) -> None:
    pages = await rest_pages(rest)
    for kind, page in pages.items():
        texts = [text for record in page for text in stamps(record)]
        assert texts and all(ONE_SHAPE.fullmatch(text) for text in texts), (kind, texts)
    assert pages["bars"][0]["t"] == "2026-03-02T14:30:00.000000+00:00"  # whole seconds keep their 6 digits
    assert pages["orders"][0]["creationTimestamp"] == "2026-03-02T14:30:00.000000+00:00"


async def test_the_timestamp_fault_mixes_shapes_within_a_response_and_the_client_reads_them(
        sim: SimServer, rest: httpx.AsyncClient) -> None:
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url)) as px:
        start, end = datetime(2026, 3, 2, 13, tzinfo=UTC), datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
        clean = await px.get_bars("MNQ", start_time=start, end_time=end)
        sim.faults.mix_timestamps()
        pages = await rest_pages(rest)
        shapes = {kind: {shape(text) for record in page for text in stamps(record)} for kind, page in pages.items()}
        assert shapes["bars"] == {"offset", "z", "naive", "millis"}
        assert shapes["orders"] == {"offset", "z"}  # two orders, four timestamps: the cycle's first four shapes
        assert_frame_equal(await px.get_bars("MNQ", start_time=start, end_time=end), clean)
        orders = await px.search_orders()
        assert len(orders) == 2 and all(o.creation_timestamp == start.replace(hour=14, minute=30) for o in orders)
        sim.faults.clear()
        assert all(ONE_SHAPE.fullmatch(b["t"]) for b in (await rest_pages(rest))["bars"])


# ---------------------------------------------------------------------------------------------- hubs, read raw
@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


class RawHub:
    """A bare SignalR JSON client: every invocation the hub pushes, exactly as json.loads reads its frame."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[Event] = []
        self.completions: list[dict[str, Any]] = []
        self._next_id = 0

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, url: str, token: str) -> RawHub:
        ws = await session.ws_connect(f"{url}?access_token={token}", autoping=False, heartbeat=None,
                                      max_msg_size=0)
        await ws.send_str(json.dumps({"protocol": "json", "version": 1}) + RS)
        assert (await ws.receive(timeout=5)).data == "{}" + RS
        return cls(ws)

    async def invoke(self, target: str, *args: Any) -> None:
        self._next_id += 1
        invocation = str(self._next_id)
        await self.ws.send_str(json.dumps({"type": 1, "invocationId": invocation, "target": target,
                                           "arguments": list(args)}) + RS)
        await self.wait_for(lambda: any(r["invocationId"] == invocation for r in self.completions))

    async def wait_for(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        """Read frames until `done()`, for at most `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while not done():
                msg = await self.ws.receive()
                assert msg.type is aiohttp.WSMsgType.TEXT, msg
                for text in msg.data.split(RS)[:-1]:
                    record = json.loads(text)
                    if record["type"] == 1:
                        self.events.append((record["target"], record["arguments"]))
                    elif record["type"] == 3:
                        assert "error" not in record, record
                        self.completions.append(record)

    def of(self, target: str) -> list[Any]:
        return [args for name, args in self.events if name == target]


async def test_market_pushes_have_the_one_shape_and_integer_sizes(sim: SimServer, session) -> None:
    hub = await RawHub.open(session, sim.market_hub_url, sim.login())
    for method in ("SubscribeContractQuotes", "SubscribeContractTrades", "SubscribeContractMarketDepth"):
        await hub.invoke(method, MNQ)
    await sim.advance(20)
    await hub.wait_for(lambda: len(hub.of(Target.TRADE)) >= 2 and len(hub.of(Target.QUOTE)) >= 3
                       and len(hub.of(Target.DEPTH)) >= 5)
    quotes = [args[1] for args in hub.of(Target.QUOTE)]
    trades = [record for args in hub.of(Target.TRADE) for record in args[1]]
    depth = [record for args in hub.of(Target.DEPTH) for record in args[1]]
    for record in (*quotes, *trades, *depth):
        assert stamps(record) and all(ONE_SHAPE.fullmatch(text) for text in stamps(record)), record
    assert all(type(r["volume"]) is int for r in trades)
    assert all(type(r["volume"]) is int and type(r["currentVolume"]) is int for r in depth)
    assert type(quotes[0]["volume"]) is int and all(type(q["volume"]) is int for q in quotes if "volume" in q)
    assert any("volume" in q for q in quotes[1:])  # partial quotes carry the session volume as it grows
    reset = depth[0]
    assert reset["type"] == DomType.RESET and (reset["price"], reset["volume"]) == (0, 0)
    assert type(reset["price"]) is int and type(reset["volume"]) is int
    kinds = {r["type"] for r in depth}
    assert {DomType.BID, DomType.ASK, DomType.BEST_BID, DomType.BEST_ASK, DomType.TRADE} <= kinds
    await hub.ws.close()


async def test_user_pushes_have_the_one_shape(sim: SimServer, rest: httpx.AsyncClient, session) -> None:
    hub = await RawHub.open(session, sim.user_hub_url, sim.login())
    await hub.invoke("SubscribeAccounts")
    for method in ("SubscribeOrders", "SubscribePositions", "SubscribeTrades"):
        await hub.invoke(method, ACCOUNT)
    assert (await rest.post("/api/Order/place", json=MARKET_BUY)).json()["success"]
    targets = (Target.USER_ORDER, Target.USER_TRADE, Target.USER_POSITION, Target.USER_ACCOUNT)
    await hub.wait_for(lambda: all(hub.of(target) for target in targets))
    for target in targets[:3]:  # accounts carry no timestamp
        for args in hub.of(target):
            data = args[0]["data"]
            assert data["creationTimestamp"] == "2026-03-02T14:30:00.000000+00:00", (target, data)
            assert all(ONE_SHAPE.fullmatch(text) for text in stamps(data)), (target, data)
            assert type(data["size"]) is int
    assert all(type(args[0]["data"]["fillVolume"]) is int for args in hub.of(Target.USER_ORDER))
    await hub.ws.close()
