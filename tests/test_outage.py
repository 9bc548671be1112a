"""Outages of the user hub over real sockets: fills made while it is away are booked once, to the cent, and a
reconciliation that fails on REST installs nothing and is tried again."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx

from conftest import ACCOUNT
from pxkit import EventType, TradingSuite
from pxkit.client.account_state import AccountState
from pxkit.sim import SimServer
from suites import open_suite
from waiting import until

ROUND_TRIPS = [("buy", 2, 7), ("sell", 1, 11), ("sell", 3, 5), ("buy", 2, 13)]  # side, size, seconds after


def ledger(sim: SimServer) -> tuple[set[int], float, float]:
    """The simulator's own book of the account: fill ids, realised P&L and fees."""
    fills = [t for t in sim.sim.exchange.ledger.trades if t.account_id == ACCOUNT and not t.voided]
    return ({t.id for t in fills}, round(sum(t.profit_and_loss or 0.0 for t in fills), 2),
            round(sum(t.fees for t in fills), 2))


async def trade(suite: TradingSuite, sim: SimServer, moves: list[tuple[str, int, float]]) -> None:
    for side, size, wait in moves:
        await suite.client.place_order("MNQ", side, size)
        await sim.advance(wait)


async def user_outage(suite: TradingSuite, sim: SimServer) -> None:
    """Refuse the user hub (the market hub stays up) until the caller ends it with `refuse_for(0)`."""
    down = suite.event_bus.wait_for(EventType.DISCONNECTED, timeout=10, predicate=lambda e: e.source == "user")
    sim.gateway.user_hub.refuse_for(3600)
    await down


async def back(suite: TradingSuite, sim: SimServer) -> None:
    """End the user-hub outage and wait until its reconciliation has reached the managers (it comes first)."""
    reconnected = suite.event_bus.wait_for(EventType.RECONNECTED, timeout=20, predicate=lambda e: e.source == "user")
    sim.gateway.user_hub.refuse_for(0)
    await reconnected


async def test_fills_during_a_user_hub_outage_are_booked_once_to_the_cent(sim: SimServer, tmp_path: Path) -> None:
    risk = {"db_path": tmp_path / "risk.sqlite3"}
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], features=["risk_manager"], risk=risk) as suite:
        mnq = suite["MNQ"]
        await trade(suite, sim, [("buy", 1, 9), ("sell", 1, 3)])  # pushed live
        await until(lambda: len(mnq.positions.trades) == 2, "the live fills")
        reports = []
        suite.router.on_reconciled(reports.append)
        for outage in range(2):
            await user_outage(suite, sim)
            await trade(suite, sim, ROUND_TRIPS[2 * outage:2 * outage + 2])
            assert not suite.realtime.connected("user")  # the fills really happened while the hub was away
            await back(suite, sim)
        ids, realized, fees = ledger(sim)
        assert len(ids) == 6 and realized != 0
        assert {t.id for t in mnq.positions.trades} == ids and len(mnq.positions.trades) == len(ids)  # once each
        assert (mnq.positions.realized_pnl, mnq.positions.fees) == (realized, fees)
        assert suite.risk is not None and suite.risk.daily_realized() == (realized, fees)
        assert [len(r.trades) for r in reports] == [2, 2]  # only what the hub missed, not the pushed fills


class SpoiledAnswers(httpx.AsyncBaseTransport):
    """The far side of the fault: the gateway's answers to `path` lose their `key` list `count` times."""

    def __init__(self, path: str, key: str, count: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.path, self.key, self.count = path, key, count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path != self.path or self.count <= 0:
            return response
        self.count -= 1
        body = json.loads(await response.aread())
        del body[self.key]
        return httpx.Response(response.status_code, json=body, headers={"Date": response.headers["Date"]})

    async def aclose(self) -> None:
        await self.inner.aclose()


class Snapshots(logging.Handler):
    """Takes a copy of the cached user state at the moment a failed reconciliation is logged."""

    def __init__(self, state: AccountState) -> None:
        super().__init__(logging.WARNING)
        self.state, self.taken = state, []

    def emit(self, record: logging.LogRecord) -> None:
        if "reconciling account" in record.getMessage():
            self.taken.append((dict(self.state.orders), dict(self.state.positions), dict(self.state.trades)))


async def test_a_partial_answer_installs_nothing_and_the_reconciliation_is_retried(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["1min"]) as suite:
        mnq, transport = suite["MNQ"], suite.client.transport
        state = suite.router.state
        snapshots = Snapshots(state)
        logging.getLogger("pxkit.client.reconcile").addHandler(snapshots)
        spoiled = SpoiledAnswers("/api/Position/searchOpen", "positions", 1)
        wire = transport.http
        transport.http = httpx.AsyncClient(base_url=wire.base_url, headers=wire.headers, timeout=wire.timeout,
                                           transport=spoiled)
        await wire.aclose()
        await user_outage(suite, sim)
        await trade(suite, sim, [("buy", 2, 5)])
        assert state.positions == {} and state.trades == {}  # the cache before the outage
        reconciled = suite.router.stats.counters["reconciliations"]
        await back(suite, sim)
        logging.getLogger("pxkit.client.reconcile").removeHandler(snapshots)
        assert spoiled.count == 0  # the first reconciliation read a positions answer without its list...
        assert snapshots.taken == [({}, {}, {})]  # ...failed, leaving the cache as it was (orders were read)...
        assert suite.router.stats.counters["reconciliations"] == reconciled + 1  # ...and the retry succeeded
        truth = await suite.client.search_open_positions()
        assert state.positions == {p.contract_id: p for p in truth} and mnq.positions.size == 2
        assert {t.id for t in mnq.positions.trades} == ledger(sim)[0] != set()
