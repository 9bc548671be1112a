"""Both hubs of the simulated gateway driven by the real signalrcore client, with REST commands alongside."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from conftest import ACCOUNT, MNQ
from pxkit import codec, models, times
from pxkit.codec import Target
from pxkit.enums import DomType, OrderStatus, OrderType, PositionType, UserAction
from pxkit.sim import SimConfig, SimServer
from signalr_probe import HubError, HubProbe

MARKET_TARGETS = (Target.QUOTE, Target.TRADE, Target.DEPTH)
USER_TARGETS = (Target.USER_ACCOUNT, Target.USER_ORDER, Target.USER_POSITION, Target.USER_TRADE)
BRACKET_BUY = {"accountId": ACCOUNT, "contractId": MNQ, "type": 2, "side": 0, "size": 2,
               "stopLossBracket": {"ticks": -20, "type": 4}, "takeProfitBracket": {"ticks": 40, "type": 1}}


@pytest.fixture(params=[False, True], ids=["negotiate", "skip-negotiation"])
def skip_negotiation(request):
    return request.param


async def _probe(url: str, token: str, targets, skip: bool) -> HubProbe:
    return await HubProbe(url, token, targets, skip_negotiation=skip).start()


async def test_market_hub_streams_quotes_trades_and_depth_in_protocol_shape(sim, skip_negotiation):
    probe = await _probe(sim.market_hub_url, sim.login(), MARKET_TARGETS, skip_negotiation)
    try:
        for method in ("SubscribeContractQuotes", "SubscribeContractTrades", "SubscribeContractMarketDepth"):
            assert await probe.invoke(method, [MNQ]) is None
        await probe.wait_for(lambda ev: len(ev) >= 4)
        # snapshots: one full quote, then depth Reset -> levels with bests -> session volume at price
        quote_args = probe.of(Target.QUOTE)[0]
        assert quote_args[0] == MNQ
        quote = codec.from_wire(models.Quote, quote_args[1])
        assert quote.symbol == "F.US.MNQ" and quote.best_bid < quote.best_ask
        assert set(quote_args[1]) == set(codec.wire_fields(models.Quote))
        depth = [codec.decode_records(models.DepthEntry, args[1]) for args in probe.of(Target.DEPTH)]
        assert [e.type for e in depth[0]] == [DomType.RESET]
        kinds = {e.type for e in depth[1]}
        assert kinds == {DomType.BID, DomType.ASK, DomType.BEST_BID, DomType.BEST_ASK}
        assert {e.type for batch in depth[2:] for e in batch} == {DomType.TRADE}

        before = len(probe.events)
        await sim.advance(20)
        events = await probe.wait_for(lambda ev: len(probe.of(Target.TRADE)) >= 1 and len(ev) > before + 5)
        trades = [t for args in probe.of(Target.TRADE) for t in codec.decode_records(models.MarketTrade, args[1])]
        assert trades and all(t.symbol_id == "F.US.MNQ" for t in trades)
        assert [t.timestamp for t in trades] == sorted(t.timestamp for t in trades)
        assert all(isinstance(args[1], list) and args[0] == MNQ for args in probe.of(Target.TRADE))
        partial = [args[1] for args in probe.of(Target.QUOTE)[1:]]
        assert partial and all({"symbol", "timestamp"} <= set(q) for q in partial)
        assert any(set(q) < set(quote_args[1]) for q in partial)  # only the fields that changed
        increments = [e for args in probe.of(Target.DEPTH)[len(depth):] for e in
                      codec.decode_records(models.DepthEntry, args[1])]
        assert DomType.TRADE in {e.type for e in increments}
        assert {name for name, _ in events} == set(MARKET_TARGETS)
    finally:
        await probe.stop()


async def test_user_hub_sees_a_bracketed_market_order_in_gateway_order(sim, rest, skip_negotiation):
    probe = await _probe(sim.user_hub_url, sim.login(), USER_TARGETS, skip_negotiation)
    try:
        assert await probe.invoke("SubscribeAccounts", []) is None
        for method in ("SubscribeOrders", "SubscribePositions", "SubscribeTrades"):
            assert await probe.invoke(method, [ACCOUNT]) is None
        body = (await rest.post("/api/Order/place", json=BRACKET_BUY)).json()
        assert body["success"], body
        events = await probe.wait_for(lambda ev: len(ev) >= 7)
        assert all(len(args) == 1 and set(args[0]) == {"action", "data"} for _, args in events)
        assert [name for name, _ in events] == [
            Target.USER_ORDER, Target.USER_ORDER, Target.USER_TRADE, Target.USER_POSITION,
            Target.USER_ACCOUNT, Target.USER_ORDER, Target.USER_ORDER]
        decoded = [codec.unwrap_user_event(codec.USER_EVENT_MODELS[name], args) for name, args in events]
        (a0, pending), (a1, filled), (_, trade), (_, position), (_, account), (_, stop), (_, target) = decoded
        assert (a0, pending.status, pending.id) == (UserAction.CREATED, OrderStatus.PENDING, body["orderId"])
        assert (a1, filled.status, filled.fill_volume) == (UserAction.UPDATED, OrderStatus.FILLED, 2)
        assert trade.order_id == body["orderId"] and trade.profit_and_loss is None and trade.size == 2
        assert (position.type, position.size, position.average_price) == (PositionType.LONG, 2, filled.filled_price)
        assert account.balance == pytest.approx(50_000 - trade.fees)
        assert (stop.type, stop.stop_price) == (OrderType.STOP, filled.filled_price - 20 * 0.25)
        assert (target.type, target.limit_price) == (OrderType.LIMIT, filled.filled_price + 40 * 0.25)
        assert {stop.status, target.status} == {OrderStatus.OPEN} and stop.side == target.side != filled.side
        assert set(events[1][1][0]["data"]) == set(codec.wire_fields(models.Order))
    finally:
        await probe.stop()


async def test_hub_errors_are_error_completions_and_the_connection_survives(sim):
    probe = await _probe(sim.market_hub_url, sim.login(), MARKET_TARGETS, True)
    user = await _probe(sim.user_hub_url, sim.login(), USER_TARGETS, True)
    try:
        with pytest.raises(HubError, match="Unknown hub method 'Nope'"):
            await probe.invoke("Nope", [])
        with pytest.raises(HubError, match="not found"):
            await probe.invoke("SubscribeContractQuotes", ["CON.F.US.XXX.H26"])
        with pytest.raises(HubError, match="expects 1"):
            await probe.invoke("UnsubscribeContractQuotes", [MNQ, "CON.F.US.EP.H26"])
        with pytest.raises(HubError, match="expects 0"):
            await user.invoke("UnsubscribeAccounts", [ACCOUNT])
        assert await probe.invoke("SubscribeContractQuotes", [MNQ]) is None
        await probe.wait_for(lambda ev: len(probe.of(Target.QUOTE)) == 1)
    finally:
        await probe.stop()
        await user.stop()


async def test_hubs_refuse_a_bad_or_expired_token(sim, rest):
    old = sim.login()
    sim.expire_tokens()
    for token in ("garbage", old):
        for url in (sim.user_hub_url, sim.market_hub_url):
            assert (await rest.post(f"{url}/negotiate?access_token={token}")).status_code == 401
    assert (await rest.post(f"{sim.user_hub_url}/negotiate?access_token={sim.login()}")).status_code == 200


async def test_streamed_trades_agree_with_retrieve_bars(sim, rest):
    probe = await _probe(sim.market_hub_url, sim.login(), MARKET_TARGETS, True)
    try:
        await probe.invoke("SubscribeContractTrades", [MNQ])
        await sim.advance(180)  # 14:30:00 -> 14:33:00: minutes 14:31 and 14:32 stream completely
        streamed = []
        await probe.wait_for(lambda ev: _last_trade_minute(probe) >= 33)  # the print at 14:33:00.000
        for args in probe.of(Target.TRADE):
            streamed += codec.decode_records(models.MarketTrade, args[1])
    finally:
        await probe.stop()
    body = (await rest.post("/api/History/retrieveBars", json={
        "contractId": MNQ, "live": False, "startTime": "2026-03-02T14:31:00Z", "endTime": "2026-03-02T14:33:00Z",
        "unit": 2, "unitNumber": 1, "limit": 10, "includePartialBar": False})).json()
    bars = sorted(codec.decode_list(models.Bar, body, "bars"), key=lambda b: b.timestamp)
    assert [b.timestamp.minute for b in bars] == [31, 32]
    for bar in bars:
        prints = [t for t in streamed if t.timestamp.minute == bar.timestamp.minute]
        assert (bar.open, bar.close) == (prints[0].price, prints[-1].price)
        assert (bar.high, bar.low) == (max(t.price for t in prints), min(t.price for t in prints))
        assert bar.volume == sum(t.volume for t in prints)


def _last_trade_minute(probe: HubProbe) -> int:
    trades = probe.of(Target.TRADE)
    return times.parse_ts(trades[-1][1][-1]["timestamp"]).minute if trades else -1


async def _scripted_session(seed: int) -> tuple[list, list, list]:
    """One fixed script of subscriptions, orders and time; returns (user events, market events, bars)."""
    async with SimServer(config=SimConfig(seed=seed)) as server:
        server.sim.event_log = []
        market = await _probe(server.market_hub_url, server.login(), MARKET_TARGETS, True)
        user = await _probe(server.user_hub_url, server.login(), USER_TARGETS, False)
        async with httpx.AsyncClient(base_url=server.base_url,
                                     headers={"Authorization": f"Bearer {server.login()}"}) as client:
            try:
                await user.invoke("SubscribeOrders", [ACCOUNT])
                await user.invoke("SubscribeTrades", [ACCOUNT])
                await market.invoke("SubscribeContractTrades", [MNQ])
                await client.post("/api/Order/place", json=BRACKET_BUY)
                await server.advance(90)
                await client.post("/api/Order/place", json={**BRACKET_BUY, "side": 1, "size": 1,
                                                            "stopLossBracket": {"ticks": 12, "type": 4},
                                                            "takeProfitBracket": {"ticks": -12, "type": 1}})
                await server.advance(600)
                sent = [name for name, _ in server.sim.event_log]
                await user.wait_for(lambda ev: len(ev) == sum(name in USER_TARGETS for name in sent))
                await market.wait_for(lambda ev: len(ev) == sum(name in MARKET_TARGETS for name in sent))
                bars = (await client.post("/api/History/retrieveBars", json={
                    "contractId": MNQ, "live": False, "startTime": "2026-03-02T14:00:00Z",
                    "endTime": "2026-03-02T15:00:00Z", "unit": 2, "unitNumber": 1, "limit": 100,
                    "includePartialBar": True})).json()["bars"]
            finally:
                await market.stop()
                await user.stop()
        return user.events, market.events, bars


async def test_same_seed_and_commands_give_identical_fills_bars_and_events():
    first, second, other = await _scripted_session(5), await _scripted_session(5), await _scripted_session(6)
    assert first == second
    fills = [args for name, args in first[0] if name == Target.USER_TRADE]
    assert len(fills) >= 2
    assert first[2] != other[2] and first[1] != other[1]


async def test_dropped_hub_connections_close_clients_and_release_their_subscriptions(sim):
    market = await _probe(sim.market_hub_url, sim.login(), MARKET_TARGETS, True)
    user = await _probe(sim.user_hub_url, sim.login(), USER_TARGETS, False)
    try:
        await market.invoke("SubscribeContractTrades", [MNQ])
        await user.invoke("SubscribeOrders", [ACCOUNT])
        assert sim.drop_hub_connections() == 2
        async with asyncio.timeout(10):
            await market.closed.wait()
            await user.closed.wait()
            while any(sim.sim.subscribers(topic, key) for topic, key in (("trades", MNQ), ("orders", ACCOUNT))):
                await asyncio.sleep(0.01)  # poll: the server notices the closed sockets on its own
    finally:
        await market.stop()
        await user.stop()


async def test_a_silent_gateway_sends_nothing_more_while_new_connections_work(sim):
    stale = await _probe(sim.market_hub_url, sim.login(), MARKET_TARGETS, True)
    try:
        await stale.invoke("SubscribeContractTrades", [MNQ])
        assert sim.go_silent() == 1
        seen = len(stale.events)
        fresh = await _probe(sim.market_hub_url, sim.login(), MARKET_TARGETS, True)
        try:
            await fresh.invoke("SubscribeContractTrades", [MNQ])
            await sim.advance(30)
            await fresh.wait_for(lambda ev: len(ev) > 0)
            with pytest.raises(TimeoutError):
                await stale.wait_for(lambda ev: len(ev) > seen, timeout=0.5)
            assert not stale.closed.is_set()
        finally:
            await fresh.stop()
    finally:
        await stale.stop()
