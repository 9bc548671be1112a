"""ProjectXRealtimeClient against the simulated gateway: real signalrcore, real sockets, nothing mocked.

Waits poll a condition against a bounded deadline (`until`); the manual sim clock keeps the market deterministic.
The hubs' `_authorize`/`_invoke` are wrapped only to record tokens and invocations; their behaviour is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from conftest import ACCOUNT, MNQ
from pxkit.client.http import ProjectX
from pxkit.client.hublink import LinkSettings
from pxkit.client.realtime import ProjectXRealtimeClient
from pxkit.codec import USER_TARGETS, Target, decode_push, decode_records, from_wire
from pxkit.config import ProjectXConfig
from pxkit.enums import LinkState, OrderSide, OrderStatus, OrderType, UserAction
from pxkit.errors import ConnectionLostError, GatewayError, InputError
from pxkit.events import EventBus
from pxkit.messages import (
    AccountPushed,
    ConnectionChanged,
    HubPush,
    MarketPush,
    OrderPushed,
    PositionPushed,
    QuotePushed,
    TradesPushed,
    UserPush,
    UserTradePushed,
)
from pxkit.models import Account, MarketTrade, Order, PlaceOrderRequest, Position, Quote
from pxkit.router import Router
from pxkit.sim import SimConfig, SimServer
from pxkit.sim.app import HubSettings
from waiting import until

CONTRACTS = (MNQ, "CON.F.US.EP.H26", "CON.F.US.GCE.H26", "CON.F.US.CLE.H26")
FAST = LinkSettings(backoff=(0, 0.2, 0.5, 1.0), stale_after=1.5, keepalive_interval=0.5, connect_timeout=3)
HUBS = ("user", "market")
CYCLE = [LinkState.DISCONNECTED, LinkState.RECONNECTING, LinkState.RECONNECTED]
USER_TOPICS = ("accounts", "orders", "positions", "user_trades")
MARKET_TOPICS = ("quotes", "trades", "depth")


def signalr_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("Signalrcore")]


def hub_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("pxkit-hub-")]


@contextlib.asynccontextmanager
async def blackhole():
    """A TCP server that accepts connections and never answers (a hung gateway); yields its base URL."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", held
    finally:
        server.close()
        for writer in held:
            writer.transport.abort()


def busy_in_signalrcore() -> list[str]:
    """Threads (of any name, e.g. executor workers) currently running signalrcore code."""
    frames = sys._current_frames()
    return [t.name for t in threading.enumerate()
            if any("signalrcore" in f.filename for f in traceback.extract_stack(frames.get(t.ident)))]


@dataclass
class Env:
    sim: SimServer
    px: ProjectX
    rt: ProjectXRealtimeClient
    states: list[ConnectionChanged] = field(default_factory=list)
    events: list[HubPush] = field(default_factory=list)
    auth: list[tuple[str, str | None, bool]] = field(default_factory=list)  # (hub, token, accepted)
    calls: list[tuple[str, str, list[Any]]] = field(default_factory=list)  # (hub, method, arguments)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def routed(self, reports: list[Any] | None = None) -> Router:
        """Subscribe the account with a real Router holding its state, fed by the user stream; its reconciliation
        reports (after the first truth, at subscription) go to `reports`."""
        account = next(a for a in await self.px.list_accounts() if a.id == ACCOUNT)
        router = Router(account, EventBus("suite"), self.sim.sim.clock.now)
        routing = asyncio.create_task(router.run(self.rt.stream("user")))  # ends when the client disconnects
        self.tasks.append(routing)
        await self.rt.subscribe_user(ACCOUNT, router.state)
        await asyncio.wait_for(router.primed.wait(), 5)
        if reports is not None:
            router.on_reconciled(reports.append)
        return router

    def states_of(self, hub: str, since: int = 0) -> list[LinkState]:
        return [e.state for e in self.states[since:] if e.hub == hub]

    def of(self, kind: Any) -> list[Any]:
        """The pushes received of a message type (or a union of them)."""
        return [e for e in self.events if isinstance(e, kind)]

    def subscribed(self, topic: str, key: Any) -> bool:
        """Exactly one live connection of the right hub is subscribed to (topic, key) on the server."""
        hub = self.sim.gateway.user_hub if topic in USER_TOPICS else self.sim.gateway.market_hub
        subs = self.sim.sim.subscribers(topic, key)
        return len(subs) == 1 and subs[0] in hub.connections

    async def cycled(self, since: int, timeout: float = 10.0) -> None:
        """Both hubs went down and came back, exactly once each, after state index `since`."""
        await until(lambda: all(LinkState.RECONNECTED in self.states_of(h, since) for h in HUBS), "reconnects", timeout)
        assert [self.states_of(hub, since) for hub in HUBS] == [CYCLE, CYCLE]

    async def flowing(self) -> None:
        """The server has the MNQ quotes subscription again, and quotes it sends from now on reach the client."""
        await until(lambda: self.subscribed("quotes", MNQ), "the quotes subscription")
        log = self.sim.sim.event_log = []
        for _ in range(60):  # simulated seconds until the market trades (the clock is manual)
            await self.sim.advance(1)
            if any(target == Target.QUOTE for target, _ in log):
                break
        self.sim.sim.event_log = None
        stamp = from_wire(Quote, next(a for t, a in reversed(log) if t == Target.QUOTE)[1]).timestamp
        await until(lambda: any(e.quote.timestamp == stamp for e in self.of(QuotePushed)), "fresh quotes")


@pytest.fixture
async def make_env():
    """Build sim + REST client + realtime client (connected); everything is torn down, the client first."""
    async with contextlib.AsyncExitStack() as stack:
        async def make(config: SimConfig | None = None, connect: bool = True, hubs: HubSettings | None = None,
                       **link: Any) -> Env:
            sim = await stack.enter_async_context(
                SimServer(config=config or SimConfig(seed=1), hubs=hubs or HubSettings(ping_interval=0.3)))
            px = await stack.enter_async_context(ProjectX(ProjectXConfig.for_simulator(sim.base_url)))
            rt = ProjectXRealtimeClient(px.config, px.tokens, settings=replace(FAST, **link), rest=px)
            env = Env(sim, px, rt)
            for hub in (sim.gateway.user_hub, sim.gateway.market_hub):
                def checked(token, _name=hub.name, _authorize=hub._authorize):
                    user = _authorize(token)  # the token's user, or nothing when it is refused
                    env.auth.append((_name, token, bool(user)))
                    return user

                def invoked(conn, target, args, _name=hub.name, _invoke=hub._invoke):
                    env.calls.append((_name, target, list(args)))
                    return _invoke(conn, target, args)

                hub._authorize, hub._invoke = checked, invoked
            rt.on_state(env.states.append)
            rt.on(HubPush, env.events.append)
            stack.push_async_callback(rt.disconnect)
            if not connect:
                return env
            await rt.connect()
            assert [(e.hub, e.state) for e in env.states] in (
                [(h, LinkState.CONNECTED) for h in hubs] for hubs in (HUBS, HUBS[::-1]))
            return env

        yield make
    # an unretrieved exception left behind must be reported now, not by a finaliser during a later test
    gc.collect()


async def test_20000_quotes_arrive_complete_in_order_through_callbacks_and_stream(make_env):
    env = await make_env(SimConfig(seed=1, step_seconds=0.01, trades_per_minute=6000))
    streamed: list[Any] = []
    started = asyncio.Event()

    async def consume() -> None:
        started.set()  # the stream registers its queue before this task next yields
        async for item in env.rt.stream("market"):
            streamed.append(item)

    consumer = asyncio.create_task(consume())
    await started.wait()
    for contract in CONTRACTS:
        await env.rt.subscribe_market(contract, trades=False)
    await until(lambda: len(streamed) == len(env.events) == 4, "the snapshots")
    log = env.sim.sim.event_log = []
    while sum(target == Target.QUOTE for target, _ in log) < 20_000:
        await env.sim.advance(10)
    sent = [(args[0], from_wire(Quote, args[1])) for target, args in log if target == Target.QUOTE]
    assert len(sent) >= 20_000 and {c for c, _ in sent} == set(CONTRACTS)
    await until(lambda: len(env.of(QuotePushed)) >= len(sent) + 4 and len(streamed) >= len(sent) + 4,
                f"{len(sent)} quotes", timeout=60)
    consumer.cancel()
    received = [(e.contract_id, e.quote) for e in env.of(QuotePushed)[4:]]
    assert received == sent  # complete, in wire order, nothing duplicated
    for contract in CONTRACTS:
        times = [q.timestamp for c, q in sent if c == contract]
        assert [q.timestamp for c, q in received if c == contract] == times
        assert all(a < b for a, b in itertools.pairwise(times))  # strictly increasing: no duplicate
    assert streamed == env.of(MarketPush)  # same pushes, same order, no states


async def test_events_carry_decoded_models_and_receive_times(make_env):
    env = await make_env()
    await env.rt.subscribe_user(ACCOUNT)
    await env.rt.subscribe_market(MNQ)
    seen = len(env.events)
    env.sim.sim.event_log = []
    before = time.time()
    await env.sim.advance(10)
    placed = await env.px.place_order("MNQ", "buy", 1)
    log = list(env.sim.sim.event_log)
    sent_trades = [decode_records(MarketTrade, args[1]) for target, args in log if target == Target.TRADE]
    sent_user = [decode_push(target, args, 0.0) for target, args in log if target in USER_TARGETS]
    assert sent_trades and len(sent_user) >= 5
    await until(lambda: len(env.of(TradesPushed)) >= len(sent_trades) and len(env.of(UserPush)) >= len(sent_user),
                "every trade and user push")
    trades, user = env.of(TradesPushed), env.of(UserPush)
    assert [list(e.trades) for e in trades] == sent_trades
    assert all(before <= event.received_at <= time.time() for event in env.events[seen:])
    assert all(event.contract_id == MNQ for event in trades + env.of(QuotePushed))
    assert all(isinstance(t, MarketTrade) and t.symbol_id == "F.US.MNQ" for e in trades for t in e.trades)
    assert all(isinstance(e.quote, Quote) for e in env.of(QuotePushed))

    assert [replace(e, received_at=0.0) for e in user] == sent_user
    assert {type(e) for e in user} == {OrderPushed, PositionPushed, AccountPushed, UserTradePushed}
    assert all(isinstance(e.action, UserAction) for e in user)
    assert all(e.order.contract_id == MNQ for e in env.of(OrderPushed))
    orders = env.of(OrderPushed)
    assert orders[0].action is UserAction.CREATED and orders[0].order.id == placed.order_id
    assert orders[-1].order.status is OrderStatus.FILLED
    assert env.rt.pushes_received(Order) == len(orders)  # counted as they arrive, each once


@pytest.mark.parametrize("skip", [False, True], ids=["negotiate", "skip-negotiation"])
async def test_subscriptions_use_the_protocol_layouts(make_env, skip):
    env = await make_env(skip_negotiation=skip)
    # negotiate + WebSocket (both authorised), or the WebSocket alone
    assert [hub for hub, _, ok in env.auth if ok].count("market") == (1 if skip else 2)
    feeds = ("ContractQuotes", "ContractTrades", "ContractMarketDepth")
    await env.rt.subscribe_user(ACCOUNT)
    assert env.calls == [("user", "SubscribeAccounts", [])] + [
        ("user", f"Subscribe{f}", [ACCOUNT]) for f in ("Orders", "Positions", "Trades")]
    assert all(env.subscribed(topic, ACCOUNT) for topic in USER_TOPICS)
    del env.calls[:]
    await env.rt.subscribe_market(MNQ, depth=True)
    assert env.calls == [("market", f"Subscribe{f}", [MNQ]) for f in feeds]
    assert all(env.subscribed(topic, MNQ) for topic in MARKET_TOPICS)
    del env.calls[:]
    await env.rt.unsubscribe_market(MNQ)
    assert env.calls == [("market", f"Unsubscribe{f}", [MNQ]) for f in feeds]
    assert not any(env.sim.sim.subscribers(topic, MNQ) for topic in MARKET_TOPICS)
    del env.calls[:]
    await env.rt.unsubscribe_user(ACCOUNT)
    assert env.calls == [("user", f"Unsubscribe{f}", [ACCOUNT]) for f in ("Orders", "Positions", "Trades")] + [
        ("user", "UnsubscribeAccounts", [])]
    assert not any(env.sim.sim.subscribers(topic, ACCOUNT) for topic in USER_TOPICS)

    with pytest.raises(GatewayError) as info:
        await env.rt.invoke("market", "NoSuchMethod", MNQ)
    assert info.value.gateway_message == "Unknown hub method 'NoSuchMethod'" and "NoSuchMethod" in str(info.value)
    assert env.rt.connected("market") and env.states_of("market", 2) == []  # an error answer is no outage


@pytest.mark.slow
async def test_hub_outages_are_survived_and_subscriptions_restored(make_env):
    env = await make_env()
    reports: list[Any] = []
    await env.routed(reports)
    await env.rt.subscribe_market(MNQ)
    await env.flowing()
    for n, (outage, everything) in enumerate([(0.1, False), (0.5, False), (2.0, True), (5.0, False),
                                              (12.0, False)], 1):
        since, down = len(env.states), time.time()
        if everything:
            await env.sim.refuse_connections(outage)
        else:
            assert env.sim.refuse_hubs(outage) == 2
        await env.sim.advance(1)  # the market moves on while the hubs are away
        await env.cycled(since, timeout=outage + 10)
        assert all(e.at - down >= outage for e in env.states[since:] if e.state is LinkState.RECONNECTED)
        await env.flowing()
        assert all(env.subscribed(topic, ACCOUNT) for topic in USER_TOPICS)
        await until(lambda: len(reports) == n, "the user state to be reconciled")  # noqa: B023
        assert sorted(signalr_threads()) == ["Signalrcore websocket client"] * 2  # one per hub, none leaked


async def test_a_silent_server_is_detected_within_stale_after(make_env):
    env = await make_env()
    await env.rt.subscribe_market(MNQ)
    since = len(env.states)
    silenced = time.time()
    assert env.sim.go_silent() == 2
    await env.cycled(since)
    for hub in HUBS:
        down, _, up = (e.at - silenced for e in env.states[since:] if e.hub == hub)
        # the last message came at most one server ping (0.3 s) before the silence began
        assert FAST.stale_after - 0.4 <= down <= FAST.stale_after + 0.5, (hub, down)
        assert up - down <= FAST.stop_timeout + FAST.backoff[0] + 1.0, (hub, up - down)
    await env.flowing()


async def test_a_fill_and_a_cancel_while_the_user_hub_is_down_are_reconciled(make_env):
    env = await make_env()
    px, reports = env.px, []
    router = await env.routed(reports)
    await env.rt.subscribe_market(MNQ, trades=False)
    await until(lambda: env.of(QuotePushed), "the quote snapshot")
    bid = env.of(QuotePushed)[0].quote.best_bid
    kept, cancelled = [(await px.place_order("MNQ", "buy", 1, order_type=OrderType.LIMIT,
                                             limit_price=bid - offset)).order_id for offset in (100, 120)]
    state = router.state
    await until(lambda: {kept, cancelled} <= set(state.orders), "the limit orders in the cache")
    balance = state.account.balance

    since = len(env.states)
    env.sim.refuse_hubs(1.0)
    await until(lambda: LinkState.DISCONNECTED in env.states_of("user", since), "the user hub to drop")
    await px.cancel_order(cancelled)
    filled = (await px.place_order("MNQ", "buy", 1)).order_id
    assert not env.rt.connected("user")  # both changes really happened while the hub was away
    await until(lambda: reports, "a reconciliation report")

    [report] = reports
    assert {o.id: o.status for o in report.orders_closed} == {cancelled: OrderStatus.CANCELLED,
                                                              filled: OrderStatus.FILLED}
    assert [(p.contract_id, p.size) for p in report.positions_opened] == [(MNQ, 1)]
    assert not (report.orders_opened or report.orders_changed or report.positions_closed)
    server_account = next(a for a in await px.list_accounts() if a.id == ACCOUNT)
    assert report.account == server_account and server_account.balance != balance
    assert state.orders == {o.id: o for o in await px.search_open_orders()} and set(state.orders) == {kept}
    assert state.positions == {p.contract_id: p for p in await px.search_open_positions()}
    assert state.account == server_account


async def test_a_position_pushed_while_reconciling_is_not_taken_back_by_the_report(make_env):
    env = await make_env()
    px, reports = env.px, []
    router = await env.routed(reports)
    state = router.state
    since = len(env.states)
    env.sim.refuse_hubs(1.0)
    await until(lambda: LinkState.DISCONNECTED in env.states_of("user", since), "the user hub to drop")
    missed = (await px.place_order("MNQ", "buy", 2)).order_id  # the reconciliation reads a position of 2
    accounts = px.list_accounts

    async def fill_then_accounts(only_active: bool = True) -> list[Account]:
        """The reconciliation reads the account after the positions: a fill pushed now is newer than that read."""
        pushed = len(env.of(PositionPushed))
        await px.place_order("MNQ", "buy", 1)  # the position is 3
        await until(lambda: len(env.of(PositionPushed)) > pushed, "the newer position's push")
        px.list_accounts = accounts
        return await accounts(only_active)

    px.list_accounts = fill_then_accounts
    await until(lambda: reports, "the reconciliation report")
    gateway = {p.contract_id: p.size for p in await px.search_open_positions()}
    assert gateway == {MNQ: 3} and state.positions[MNQ].size == 3
    # routed after the push, the report must not take the position back to the 2 that was read before it: the
    # push told the managers of the 3 already, and the report adds only the order that filled while away
    [report] = reports
    assert not (report.positions_opened or report.positions_changed or report.positions_closed)
    assert [(o.id, o.status) for o in report.orders_closed] == [(missed, OrderStatus.FILLED)]


async def test_a_position_pushed_while_its_read_is_in_flight_is_read_again(make_env):
    env = await make_env()
    px, reports = env.px, []
    router = await env.routed(reports)
    since = len(env.states)
    env.sim.refuse_hubs(1.0)
    await until(lambda: LinkState.DISCONNECTED in env.states_of("user", since), "the user hub to drop")
    await px.place_order("MNQ", "buy", 2)
    read, reads = px.search_open_positions, []

    async def answer_older_than_a_push(**kwargs: Any) -> list[Position]:
        """The answer is made, then a fill is pushed before it arrives: which is newer cannot be told."""
        found = await read(**kwargs)
        reads.append(found)
        if len(reads) == 1:
            pushed = len(env.of(PositionPushed))
            await px.place_order("MNQ", "buy", 1)
            await until(lambda: len(env.of(PositionPushed)) > pushed, "the position's push")
        return found

    px.search_open_positions = answer_older_than_a_push
    await until(lambda: reports, "the reconciliation report")
    assert [[p.size for p in found] for found in reads] == [[2], [3]]  # read again, and the second is final
    assert router.state.positions[MNQ].size == 3
    # the first answer (2) would have won over the push it preceded: read again, the report has nothing to undo
    [report] = reports
    assert not (report.positions_opened or report.positions_changed or report.positions_closed)


async def test_a_reconciliation_slower_than_the_servers_client_timeout_keeps_the_user_hub_up(make_env, caplog):
    env = await make_env(hubs=HubSettings(ping_interval=0.3, client_timeout=1.0), keepalive_interval=0.2)
    reports: list[Any] = []
    await env.routed(reports)
    since = len(env.states)
    caplog.set_level("INFO", logger="pxkit.sim.hub")
    env.sim.faults.add_latency(0.8)  # the reconciliation's five REST reads take about 4 s: 4 client timeouts
    env.sim.drop_hub_connections()
    await until(lambda: reports, "the reconciliation", timeout=20)
    env.sim.faults.add_latency(0)
    await until(lambda: LinkState.RECONNECTED in env.states_of("user", since), "the user hub back")
    assert not [r.getMessage() for r in caplog.records if "timed out" in r.getMessage()]  # pinged all along
    assert env.states_of("user", since) == CYCLE and env.subscribed("orders", ACCOUNT)


@pytest.mark.parametrize("how", ["expired", "renewed"])
async def test_a_new_token_reconnects_both_hubs_which_keep_streaming(make_env, how):
    env = await make_env()
    await env.rt.subscribe_market(MNQ)
    tokens = env.px.tokens
    old, refreshes = tokens.current, tokens.refreshes
    since, checked = len(env.states), len(env.auth)
    if how == "expired":
        env.sim.expire_tokens()
        assert env.sim.drop_hub_connections() == 2
    else:
        assert await tokens.renew(old) != old
    await env.cycled(since)
    assert tokens.refreshes > refreshes and tokens.current != old
    for hub in HUBS:
        presented = [(token, ok) for h, token, ok in env.auth[checked:] if h == hub]
        assert presented[-1] == (tokens.current, True), hub  # the reconnect used the new token
        assert all(token == old for token, ok in presented if not ok)  # only the expired one was refused
    await env.flowing()


@pytest.mark.parametrize("situation", ["connected", "reconnecting", "silent", "hung-connect"])
async def test_disconnect_is_quick_and_leaves_no_thread_or_task(make_env, situation):
    env = await make_env(skip_negotiation=situation == "hung-connect")
    await env.rt.subscribe_market(MNQ)
    since = len(env.states)
    async with blackhole() as (url, held):
        if situation == "reconnecting":
            env.sim.refuse_hubs(60)
            await until(lambda: all(LinkState.RECONNECTING in env.states_of(h, since) for h in HUBS)
                        and all(link.last_error for link in env.rt.links.values()), "failed reconnect attempts")
        elif situation == "silent":
            assert env.sim.go_silent() == 2
            assert env.states[since:] == []  # not yet found stale
        elif situation == "hung-connect":  # an attempt in flight, waiting for an HTTP 101 that never comes
            env.rt.links["market"].url = f"{url}/hubs/market"
            env.sim.drop_hub_connections()
            await until(lambda: held and LinkState.RECONNECTED in env.states_of("user", since), "a hung attempt")
        started = time.monotonic()
        await env.rt.disconnect()
        assert time.monotonic() - started < 2.0
        assert signalr_threads() == []
        assert hub_tasks() == []
        assert not any(link.connected for link in env.rt.links.values())
        await until(lambda: not busy_in_signalrcore(), "signalrcore calls to return", timeout=1)


async def test_a_failed_connect_raises_and_leaves_no_task_running(make_env):
    env = await make_env(connect=False, connect_timeout=0.3)
    env.sim.refuse_hubs(60)
    with pytest.raises(ConnectionLostError, match="could not connect"):
        await env.rt.connect()  # gives up after 3 x connect_timeout
    assert hub_tasks() == [] and signalr_threads() == []


async def test_disconnect_during_a_hung_negotiate_leaves_no_thread_behind(make_env):
    env = await make_env(connect_timeout=0.5)
    async with blackhole() as (url, held):
        env.rt.links["market"].url = f"{url}/hubs/market"
        env.sim.drop_hub_connections()
        await until(lambda: held, "a negotiate sent to the hung gateway")
        await env.rt.disconnect()
        assert hub_tasks() == []
        await until(lambda: not busy_in_signalrcore(), "signalrcore calls to return", timeout=3)


async def test_an_abandoned_connect_attempt_leaves_no_unretrieved_exception(make_env):
    env = await make_env(skip_negotiation=True, connect_timeout=0.3)
    loop, reported = asyncio.get_running_loop(), []
    loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
    async with blackhole() as (url, held):
        env.rt.links["market"].url = f"{url}/hubs/market"
        env.sim.drop_hub_connections()
        await until(lambda: len(held) >= 3, "attempts timed out and replaced")
        await env.rt.disconnect()
    await until(lambda: not busy_in_signalrcore(), "signalrcore calls to return")
    gc.collect()
    assert reported == []


async def test_an_order_pushed_while_reconciling_stays_in_the_cache(make_env):
    env = await make_env()
    reports: list[Any] = []
    state, market = (await env.routed(reports)).state, env.sim.sim.market
    env.sim.faults.add_latency(0.3)
    seen = len(env.sim.requests)
    assert env.sim.drop_hub_connections() == 2
    # open orders are answered; while the positions are fetched, an order is placed and pushed by the hub
    await until(lambda: "/api/Position/searchOpen" in [r.path for r in env.sim.requests[seen:]], "reconciling")
    price = market.last_trade(MNQ, env.sim.sim.clock.now_us())[0]
    order_id = env.sim.sim.exchange.place(PlaceOrderRequest(ACCOUNT, MNQ, OrderType.LIMIT, OrderSide.BUY, 1,
                                                            limit_price=market.price(MNQ, price - 400)))
    await until(lambda: reports, "the reconciliation")
    env.sim.faults.clear()
    truth = {o.id: o for o in await env.px.search_open_orders()}
    assert set(truth) == {order_id}
    await until(lambda: state.orders == truth, "the cache to hold the working order", timeout=3)


async def test_the_logged_quote_snapshot_is_what_was_sent(make_env):
    env = await make_env()
    log = env.sim.sim.event_log = []
    await env.rt.subscribe_market(MNQ, trades=False)
    while len(log) < 2:  # the snapshot, then the first quote (a few simulated seconds)
        await env.sim.advance(1)
    await until(lambda: len(env.of(QuotePushed)) == len(log) > 1, "the snapshot and a quote")
    assert from_wire(Quote, log[0][1][1]) == env.of(QuotePushed)[0].quote


def _trade_record(price: float, *, kind: int = 0) -> dict[str, Any]:
    return {"symbolId": "F.US.MNQ", "price": price, "timestamp": "2026-03-02T14:30:00+00:00", "type": kind, "volume": 1}


async def test_one_bad_record_costs_only_itself_in_its_batch_and_its_frame(make_env, caplog):
    """One frame of four SignalR records: a batch of 50 trades with one unknown aggressor side, a record that is not
    JSON, an invocation without arguments, then a quote. The 49 good trades and the quote arrive; the three bad
    records are counted once each, by kind, and logged."""
    env = await make_env()
    [conn] = env.sim.gateway.market_hub.connections
    batch = [_trade_record(20000.0 + i * 0.25) for i in range(50)]
    batch[17] = _trade_record(20000.0, kind=7)
    quote = {"symbol": "F.US.MNQ", "lastPrice": 20001.0, "timestamp": "2026-03-02T14:30:01+00:00"}
    records = [json.dumps({"type": 1, "target": Target.TRADE, "arguments": [MNQ, batch]}),
               '{"type": 1, "target": "Gat',
               json.dumps({"type": 1, "target": Target.QUOTE}),
               json.dumps({"type": 1, "target": Target.QUOTE, "arguments": [MNQ, quote]})]
    for record in records:  # queued together: the hub sends them as one frame
        conn._push(record + "\x1e")

    await until(lambda: env.of(QuotePushed), "the quote after the bad records")
    [trades] = [e.trades for e in env.of(TradesPushed)]
    assert [t.price for t in trades] == [r["price"] for i, r in enumerate(batch) if i != 17]
    assert env.of(QuotePushed)[0].quote.last_price == 20001.0
    assert env.rt.decode_errors == 3
    assert env.rt.decode_errors_by_kind == {"market.GatewayTrade": 1, "market.frame": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert sum("record 17" in w for w in warnings) == 1 and sum("malformed record" in w for w in warnings) == 2
    assert env.rt.connected("market")


async def test_a_push_of_an_unknown_target_is_counted_and_logged_once_and_never_streamed(make_env, caplog):
    env = await make_env()
    [conn] = env.sim.gateway.market_hub.connections
    quote = {"symbol": "F.US.MNQ", "lastPrice": 20001.0, "timestamp": "2026-03-02T14:30:01+00:00"}
    for _ in range(3):
        conn._push(json.dumps({"type": 1, "target": "GatewayNews", "arguments": [MNQ, {"headline": "x"}]}) + "\x1e")
    conn._push(json.dumps({"type": 1, "target": Target.USER_ORDER, "arguments": [{}]}) + "\x1e")  # not a market push
    conn._push(json.dumps({"type": 1, "target": Target.QUOTE, "arguments": [MNQ, quote]}) + "\x1e")
    await until(lambda: env.of(QuotePushed), "the quote after the unknown pushes")
    assert env.events == env.of(QuotePushed) and env.rt.decode_errors == 0
    assert env.rt.ignored_pushes == {"market.GatewayNews": 3, "market.GatewayUserOrder": 1}
    warnings = [r.getMessage() for r in caplog.records if "unknown target" in r.getMessage()]
    assert len(warnings) == 2 and "'GatewayNews'" in warnings[0]


async def test_listeners_are_registered_by_push_message_type(make_env):
    env = await make_env(connect=False)
    with pytest.raises(InputError, match="push message type"):
        env.rt.on("GatewayQuote", print)
    with pytest.raises(InputError, match="push message type"):
        env.rt.on(ConnectionChanged, print)  # connection changes have on_state
    quotes: list[QuotePushed] = []
    env.rt.on(QuotePushed | TradesPushed, quotes.append)
    env.rt.off(TradesPushed, quotes.append)
    await env.rt.connect()
    await env.rt.subscribe_market(MNQ)
    await env.sim.advance(10)
    await until(lambda: env.of(TradesPushed) and len(quotes) > 1, "quotes and trades")
    assert quotes == env.of(QuotePushed)


async def test_an_order_placed_during_a_reconciliation_and_ended_while_away_is_reported_closed(make_env):
    env = await make_env()
    reports: list[Any] = []
    await env.routed(reports)
    exchange, market, px = env.sim.sim.exchange, env.sim.sim.market, env.px
    search, placed = px.search_orders, []

    async def placed_between_the_reads(*args: Any, **kwargs: Any) -> list[Order]:
        """The open orders are read; the hub is cut and an order placed (its push lost) before the recent ones."""
        if placed:
            return await search(*args, **kwargs)
        env.sim.drop_hub_connections()
        price = market.last_trade(MNQ, env.sim.sim.clock.now_us())[0]
        placed.append(exchange.place(PlaceOrderRequest(ACCOUNT, MNQ, OrderType.LIMIT, OrderSide.BUY, 1,
                                                       limit_price=market.price(MNQ, price - 400))))
        recent = await search(*args, **kwargs)
        exchange.cancel(ACCOUNT, placed[0])  # ended while the hub is away: its push is lost too
        return recent

    px.search_orders = placed_between_the_reads
    assert env.sim.drop_hub_connections() == 2
    await until(lambda: len(reports) >= 2, "the reconciliations of both connections")
    first = reports[0].orders_opened + reports[0].orders_closed
    assert placed and placed[0] not in [o.id for o in first]  # read working, but not among the open orders
    closed = [(o.id, o.status) for report in reports[1:] for o in report.orders_closed]
    assert closed == [(placed[0], OrderStatus.CANCELLED)]
