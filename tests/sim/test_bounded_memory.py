"""The simulator's memory stays bounded over long, busy runs: tick caches, hub backlogs and the request log."""

from __future__ import annotations

import json

import aiohttp
import httpx
import pytest

from pxkit.codec import Target
from pxkit.sim import HubSettings, SimConfig, SimServer
from pxkit.sim import app as gateway_app
from signalr_probe import HubProbe

RS = "\x1e"
MOST_TICKS_CACHED = 600_000  # per product (~15 MB), whatever the trade rate or the length of the run
CONTRACTS = ("CON.F.US.MNQ.H26", "CON.F.US.EP.H26", "CON.F.US.GCE.H26")


def _cached_ticks(sim: SimServer, contract_id: str) -> tuple[int, int]:
    path = sim.sim.market.path(contract_id)
    return sum(map(len, path.ticks_of_minute.values())), sum(len(r[0]) for r in path.tick_runs.values())


async def test_tick_caches_stay_within_budget_over_a_long_busy_run():
    """30 simulated minutes at 50,000 trades per minute on three streamed contracts: the caches hold a bounded part."""
    async with SimServer(config=SimConfig(seed=3, trades_per_minute=50_000)) as sim:
        probe = await HubProbe(sim.market_hub_url, sim.login(), [Target.QUOTE]).start()
        try:
            for contract_id in CONTRACTS:
                await probe.invoke("SubscribeContractQuotes", [contract_id])
            processed = await sim.advance(30 * 60)
        finally:
            await probe.stop()
    assert processed > 3 * 30 * 45_000  # the run really generated millions of ticks
    for contract_id in CONTRACTS:
        ticks, runs = _cached_ticks(sim, contract_id)
        assert 0 < ticks <= MOST_TICKS_CACHED and 0 < runs <= MOST_TICKS_CACHED, (contract_id, ticks, runs)


async def test_a_client_that_stops_reading_is_dropped_before_its_backlog_passes_the_bound():
    limit = 256 * 1024
    settings = HubSettings(max_backlog=limit)
    async with SimServer(config=SimConfig(seed=3, trades_per_minute=60_000), hubs=settings) as sim, \
            aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{sim.market_hub_url}?access_token={sim.login()}", autoping=False,
                                      heartbeat=None, max_msg_size=0)
        await ws.send_str(json.dumps({"protocol": "json", "version": 1}) + RS)
        assert (await ws.receive(timeout=5)).data == "{}" + RS
        await ws.send_str(json.dumps({"type": 1, "invocationId": "1", "target": "SubscribeContractTrades",
                                      "arguments": [CONTRACTS[0]]}) + RS)
        hub = sim.gateway.market_hub
        [conn] = hub.connections
        largest = 0
        for _ in range(10 * 60):  # the client reads nothing more from here on
            await sim.advance(1)
            largest = max(largest, sum(map(len, conn._queue)))
            if conn.closed:
                break
        assert conn.closed and hub.connections == []
        assert largest <= limit + 64 * 1024  # at most one push past the bound before it is cut
        await ws.close()


async def test_the_request_log_keeps_only_the_newest_requests(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(gateway_app, "REQUEST_LOG_SIZE", 20)
    async with SimServer() as sim, httpx.AsyncClient(base_url=sim.base_url, timeout=10) as client:
        client.headers["Authorization"] = f"Bearer {sim.login()}"
        for only_active in [True, False] * 50:
            await client.post("/api/Account/search", json={"onlyActiveAccounts": only_active})
        await client.post("/api/Contract/available", json={"live": False})
    assert 20 <= len(sim.requests) < 40
    assert sim.requests[-1].path == "/api/Contract/available"
    assert [r.body for r in sim.requests[-3:-1]] == [{"onlyActiveAccounts": True}, {"onlyActiveAccounts": False}]
