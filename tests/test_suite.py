"""TradingSuite end to end on the simulated gateway: three instruments, live bars, books, events, failures."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from pxkit import EventType, OrderSide, OrderStatus, ProjectXConfig, TradingSuite
from pxkit.client.realtime import MARKET
from pxkit.enums import TradeType
from pxkit.errors import ClosedError, InputError, InstrumentNotFoundError
from pxkit.events import Event
from pxkit.messages import TradesPushed
from pxkit.models import Bar, MarketTrade
from pxkit.payloads import BarEvent, FeedStatus
from pxkit.sim import SimServer
from suites import FAST, UNITS, assert_bars_are_the_gateways, caught_up, closed_until, last_trade_time, open_suite
from waiting import until

SYMBOLS = ["MNQ", "ES", "MGC"]
CONTRACTS = {"MNQ": "CON.F.US.MNQ.H26", "ES": "CON.F.US.EP.H26", "MGC": "CON.F.US.MGC.H26"}


async def test_bars_built_live_equal_the_simulator_bars_on_three_instruments(sim: SimServer) -> None:
    timeframes = ["15sec", "1min", "5min", "1hr", "1day"]
    async with open_suite(sim, features=["orderbook"], timeframes=timeframes) as suite:
        assert list(suite) == SYMBOLS and suite.failures == {}
        start = sim.sim.clock.now()
        # 20 minutes, a second at a time, each delivered before the clock moves on: a manual clock jumping further
        # than the suite's bar-close grace closes bars whose last trades are still on the wire.
        for _ in range(20 * 60 + 5):
            await sim.advance(1)
            await until(lambda: caught_up(sim, suite), "the suite to receive every trade")
        end = start + timedelta(minutes=20)
        await until(lambda: closed_until(suite, "5min", end), "the suite to close the 5min bar ending at 14:50")
        await until(lambda: closed_until(suite, "15sec", end), "the 15sec bars up to 14:50")
        for symbol, ctx in suite.items():
            assert ctx.instrument_info.id == CONTRACTS[symbol]
            for tf in UNITS:
                await assert_bars_are_the_gateways(suite, ctx, tf, start - timedelta(hours=1), end)
            # live bars are really live: the newest 20 minutes were built from trades, not fetched
            assert ctx.data.stats.counters["trades"] > 100
            # hours and days build live too (the day from 18:00 New York): the forming bars equal the gateway's
            await until(lambda ctx=ctx: ctx.data.bars.last_ts == last_trade_time(sim, ctx.instrument_info.id),
                        f"{symbol}'s last trade")
            now = sim.sim.clock.now()
            for tf, unit in (("1hr", "hour"), ("1day", "day")):
                truth = await suite.client.get_bars(ctx.instrument_info.id, start_time=now - timedelta(days=2),
                                                    end_time=now + timedelta(seconds=1), unit=unit, partial=True)
                assert ctx.data.bars[tf].forming == Bar(*truth.row(-1)), (symbol, tf)


async def test_book_top_equals_the_simulator_book(sim: SimServer) -> None:
    async with open_suite(sim, features=["orderbook"]) as suite:
        for _ in range(3):
            await sim.advance(30)
            now_us = sim.sim.clock.now_us()
            for symbol, ctx in suite.items():
                expected = sim.sim.market.book_at(ctx.instrument_info.id, now_us)
                price = sim.sim.market.price
                top = (price(ctx.instrument_info.id, expected.bids.best), price(ctx.instrument_info.id,
                                                                                expected.asks.best))
                await until(lambda ctx=ctx, top=top: ctx.orderbook.get_best_bid_ask() == top, f"{symbol} top")
                snapshot = ctx.orderbook.get_orderbook_snapshot(10)
                bids = snapshot.filter(snapshot["side"] == "bid")
                assert bids["size"].to_list() == [v for _, v in expected.bids.levels]


async def test_events_never_leak_to_another_instrument(sim: SimServer) -> None:
    async with open_suite(sim, features=["orderbook"]) as suite:
        seen: dict[str, list[Event]] = {s: [] for s in suite}
        for symbol, ctx in suite.items():
            ctx.event_bus.on_any(seen[symbol].append)
        suite_events: list[Event] = []
        suite.event_bus.on_any(suite_events.append)
        await sim.advance(3 * 60 + 2)
        await until(lambda: all(any(e.type is EventType.NEW_BAR for e in events) for events in seen.values()),
                    "a NEW_BAR on every instrument")
        for symbol, events in seen.items():
            kinds = {e.type for e in events}
            assert {EventType.TICK, EventType.QUOTE_UPDATE, EventType.DEPTH_UPDATE, EventType.NEW_BAR,
                    EventType.BAR_UPDATED} <= kinds
            assert {e.source for e in events} == {symbol}
            symbol_id = ".".join(CONTRACTS[symbol].split(".")[1:4])
            for event in events:
                if event.type is EventType.TICK:
                    assert isinstance(event.data, MarketTrade) and event.data.symbol_id == symbol_id
                elif event.type is EventType.QUOTE_UPDATE:
                    assert event.data.symbol == symbol_id
                elif event.type in (EventType.NEW_BAR, EventType.BAR_UPDATED):
                    assert isinstance(event.data, BarEvent)
        assert not [e for e in suite_events if e.type in (EventType.TICK, EventType.NEW_BAR)]
        stats = await suite.get_stats()
        for symbol, events in seen.items():
            counted = stats["instruments"][symbol]["events"]
            assert counted[EventType.TICK] == sum(1 for e in events if e.type is EventType.TICK)
        assert stats["health"] == 100 and stats["components"]["router"]["counters"]["TradesPushed"] > 0
        # every trade became exactly one TICK, on its own bus
        for symbol, ctx in suite.items():
            ticks = sum(1 for e in seen[symbol] if e.type is EventType.TICK)
            assert ticks == ctx.data.stats.counters["trades"] > 0


async def test_a_bogus_symbol_is_reported_and_the_others_start(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ", "NOPE", "ES"]) as suite:
        assert list(suite) == ["MNQ", "ES"]
        assert isinstance(suite.failures["NOPE"], InstrumentNotFoundError)
        assert "NOPE" in repr(suite)
        stats = await suite.get_stats()
        assert stats["failures"].keys() == {"NOPE"} and stats["health"] < 100
        await sim.advance(61)
        await until(lambda: all(len(ctx.data.bars["1min"]) for ctx in suite.values()), "bars on the good ones")


async def test_all_symbols_bogus_raises_and_leaves_nothing_running(sim: SimServer) -> None:
    before = {t.get_name() for t in asyncio.all_tasks()}
    with pytest.raises(InstrumentNotFoundError):
        await TradingSuite.create(["NOPE"], config=ProjectXConfig.for_simulator(sim.base_url), link_settings=FAST)
    leftover = {t.get_name() for t in asyncio.all_tasks() if not t.done()} - before
    assert not [name for name in leftover if name.startswith("pxkit")]


async def test_container_protocol_and_forwarding(sim: SimServer) -> None:
    async with open_suite(sim, ["mnq"], timeframes=["1min"]) as suite:
        assert len(suite) == 1 and "MNQ" in suite and "mnq" in suite and "ES" not in suite
        assert list(suite.keys()) == ["MNQ"] and list(suite.values()) == [suite["MNQ"]]
        assert dict(suite.items()) == {"MNQ": suite["MNQ"]}
        with pytest.raises(KeyError, match="ES"):
            suite["ES"]
        with pytest.warns(DeprecationWarning, match=r"suite\['MNQ'\]\.data"):
            assert suite.data is suite["MNQ"].data
        with pytest.raises(AttributeError):
            suite.no_such_thing  # noqa: B018
        with pytest.raises(Exception, match=r"frozen|cannot assign"):
            suite["MNQ"].data = None
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"]) as two:
        with pytest.raises(AttributeError, match="exactly one instrument"):
            two.data  # noqa: B018


async def test_same_contract_twice_is_a_failure_not_a_second_context(sim: SimServer) -> None:
    async with open_suite(sim, ["ES", "EP"], timeframes=["1min"]) as suite:
        assert list(suite) == ["ES"] and isinstance(suite.failures["EP"], InputError)


def test_bad_arguments_fail_before_anything_starts() -> None:
    with pytest.raises(InputError):
        TradingSuite.create([])
    with pytest.raises(InputError, match="features"):
        TradingSuite.create("MNQ", features=["nope"])
    with pytest.raises(InputError, match="timeframe"):
        TradingSuite.create("MNQ", timeframes=["7parsecs"])
    for bad in (0, -5.0, "60", True, float("nan")):
        with pytest.raises(InputError, match="max_ahead"):
            TradingSuite.create("MNQ", max_ahead=bad)
    for bad in (0, -1, "1", True, float("nan")):
        with pytest.raises(InputError, match="initial_days"):
            TradingSuite.create("MNQ", initial_days=bad)
    for bad in (0, -3, 1.5, True):
        with pytest.raises(InputError, match="max_bars"):
            TradingSuite.create("MNQ", max_bars=bad)


def _warnings_when_dropped(make: Callable[[], object]) -> list[str]:
    """The warnings given while `make` runs and the starter it made is dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make()
        gc.collect()
    return [f"{w.category.__name__}: {w.message}" for w in caught]


async def test_a_starter_used_as_the_suite_says_to_await_it_and_starts_nothing(sim: SimServer) -> None:
    config = ProjectXConfig.for_simulator(sim.base_url)

    def misuse(use: Callable[[object], object]) -> None:
        starter = TradingSuite.create("MNQ", config=config, timeframes=["1min"])
        with pytest.raises(TypeError, match=r"not awaited.*`suite = await TradingSuite.create\(\.\.\.\)`"):
            use(starter)

    for use in (lambda s: s["MNQ"], lambda s: s.portfolio, list, len):
        assert _warnings_when_dropped(lambda use=use: misuse(use)) == []  # no never-awaited warning piles on
    assert _warnings_when_dropped(lambda: TradingSuite.create("MNQ", config=config)) == [
        "RuntimeWarning: TradingSuite.create(...) was never awaited, so no suite was started"]
    assert sim.requests == []  # nothing was started: no login, no hub


async def test_a_closed_suite_says_so(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"]) as suite:
        assert suite.portfolio.exposures() == {"MNQ": 0.0, "ES": 0.0}
        mnq = suite["MNQ"]
    for use in (lambda: suite["MNQ"], suite.portfolio.exposures, suite.portfolio.get_portfolio_pnl):
        with pytest.raises(ClosedError, match="this suite is closed"):
            use()
    with pytest.raises(ClosedError, match="this suite is closed"):
        await suite.portfolio.correlation_matrix("1min", count=10)
    placed = len([r for r in sim.requests if r.path.endswith("/Order/place")])
    with pytest.raises(ClosedError, match="this suite is closed"):  # a context kept from before the close
        await mnq.orders.place_market_order("buy", 1)
    assert len([r for r in sim.requests if r.path.endswith("/Order/place")]) == placed  # nothing reached the wire


async def test_bar_counts_are_checked_before_reading(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["1min"]) as suite:
        data = suite["MNQ"].data
        assert (await data.get_data("1min", count=3)).height == 3
        for bad in (0, -1, True, 2.5):
            with pytest.raises(InputError, match="count"):
                await data.get_data("1min", count=bad)
            with pytest.raises(InputError, match="count"):
                await data.get_mtf_data(count=bad)


async def test_history_that_max_bars_cannot_hold_warns_once_and_the_default_fits(sim: SimServer) -> None:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("default")  # Python's own: once per place and message
        async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min", "5min"], initial_days=1, max_bars=100) as suite:
            assert all(len(ctx.data.bars["1min"]) == 100 for ctx in suite.values())
    capped = [str(w.message) for w in said if "max_bars" in str(w.message)]
    assert capped == ["initial_days=1 of 1min bars is 1,440 bars, more than max_bars=100: 1min keeps the newest "
                      "100 (0.069 days); pass max_bars=1440 to keep them all"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        async with open_suite(sim, ["MNQ"], timeframes=["1min"], max_bars=100) as suite:
            assert len(suite["MNQ"].data.bars["1min"]) == 100


async def test_quiet_minute_closes_its_bar_on_time(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["1min"]) as suite:
        ctx = suite["MNQ"]
        new_bars: list[BarEvent] = []
        ctx.event_bus.on(EventType.NEW_BAR, lambda e: new_bars.append(e.data))
        await sim.advance(30)
        await until(lambda: ctx.data.bars.last_ts == last_trade_time(sim, ctx.instrument_info.id),
                    "the last trade pushed")
        forming = ctx.data.bars["1min"].forming
        assert forming is not None
        sim.sim.clock.set(sim.sim.clock.now_us() + 40_000_000)  # time passes, nothing is pushed
        await until(lambda: any(b.bar.timestamp == forming.timestamp for b in new_bars), "the quiet bar to close")
        assert ctx.data.bars["1min"].bars()[-1].timestamp == forming.timestamp


async def test_a_bar_closed_while_the_market_hub_is_down_is_announced_as_the_gateways(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["1min"]) as suite:
        ctx = suite["MNQ"]
        contract = ctx.instrument_info.id
        announced: list[Bar] = []
        ctx.event_bus.on(EventType.NEW_BAR, lambda e: announced.append(e.data.bar))
        await sim.advance(30)
        await until(lambda: ctx.data.bars.last_ts == last_trade_time(sim, contract), "the last trade pushed")
        forming = ctx.data.bars["1min"].forming
        lost, back = (suite.event_bus.wait_for(kind, timeout=20, predicate=lambda e: e.source == MARKET)
                      for kind in (EventType.DISCONNECTED, EventType.RECONNECTED))
        sim.refuse_hubs(2.0)
        await lost
        await sim.advance(60)  # the rest of the minute trades while nothing is pushed; its timer closes it
        await until(lambda: announced, "the minute closed while the hub is down")
        truth = await suite.client.get_bars(contract, start_time=forming.timestamp,
                                            end_time=forming.timestamp + timedelta(minutes=1), unit="min")
        assert announced == [Bar(*truth.row(0))] and announced[0].volume > forming.volume
        await back


async def test_stale_feed_is_detected_and_recovers(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["1min"], stale_after=0.3) as suite:
        ctx = suite["MNQ"]
        stale = await ctx.event_bus.wait_for(EventType.STALE_FEED, timeout=5)
        assert isinstance(stale.data, FeedStatus) and stale.data.stale and stale.data.silent_for >= 0.3
        stats = await suite.get_stats()
        assert stats["stale_feeds"] == ["MNQ"] and stats["health"] <= 50
        assert any("stale" in reason for reason in stats["reasons"])
        live = ctx.event_bus.wait_for(EventType.STALE_FEED, timeout=5)
        await sim.advance(15)
        assert not (await live).data.stale
        assert (await suite.get_stats())["stale_feeds"] == []


async def test_subscriptions_survive_a_dropped_connection(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"]) as suite:
        reconnected = suite["ES"].event_bus.wait_for(EventType.RECONNECTED, timeout=10,
                                                     predicate=lambda e: e.source == "market")
        assert sim.drop_hub_connections() == 2
        await reconnected
        start = sim.sim.clock.now()
        await sim.advance(3 * 60 + 2)
        end = start + timedelta(minutes=3)
        await until(lambda: closed_until(suite, "1min", end), "bars after the reconnect")
        for ctx in suite.values():
            await assert_bars_are_the_gateways(suite, ctx, "1min", start, end)
        assert (await suite.get_stats())["reconnects"] >= 1


async def test_close_returns_when_the_gateway_has_gone_silent(sim: SimServer) -> None:
    suite = await TradingSuite.create(["MNQ"], config=ProjectXConfig.for_simulator(sim.base_url),
                                      timeframes=["1min"], link_settings=FAST)
    sim.go_silent()
    await asyncio.wait_for(suite.close(), 10)
    assert all(task.done() for task in suite._tasks)
    assert not suite.realtime.connected("market")


async def test_async_with_create_closes_the_suite(sim: SimServer) -> None:
    async with TradingSuite.create("MNQ", config=ProjectXConfig.for_simulator(sim.base_url),
                                   timeframes=["1min"], link_settings=FAST) as suite:
        assert "MNQ" in suite
    assert suite._closed and all(task.done() for task in suite._tasks)


async def test_no_credentials_start_the_embedded_simulator_and_say_so_once(monkeypatch, caplog) -> None:
    for name in ("PROJECT_X_USERNAME", "PROJECT_X_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.INFO, logger="pxkit")
    async with TradingSuite.create(["MNQ", "ES"], timeframes=["1min"]) as suite:
        assert suite.sim is not None and "simulator" in repr(suite)
        assert suite.account.can_trade
        await suite["MNQ"].event_bus.wait_for(EventType.TICK, timeout=10)
    said = [r for r in caplog.records if "embedded simulator" in r.getMessage()]
    assert len(said) == 1


async def test_a_failing_handler_is_counted_and_never_stops_the_router(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["1min"]) as suite:
        def broken(event: Event) -> None:
            raise RuntimeError("a user's bug")

        suite["MNQ"].event_bus.on(EventType.TICK, broken)
        await sim.advance(62)
        await until(lambda: all(len(ctx.data.bars["1min"]) for ctx in suite.values()), "bars on both")
        stats = await suite.get_stats()
        mnq = stats["instruments"]["MNQ"]
        assert mnq["handler_errors"][EventType.TICK] == mnq["events"][EventType.TICK] > 1
        assert stats["instruments"]["ES"]["handler_errors"] == {}
        assert stats["health"] < 100 and any("errors" in reason for reason in stats["reasons"])


async def test_an_outage_is_repaired_bars_reloaded_and_missed_fills_reconciled(sim: SimServer) -> None:
    async with open_suite(sim, ["MNQ", "ES"], timeframes=["15sec", "1min"]) as suite:
        mnq, contract = suite["MNQ"], CONTRACTS["MNQ"]
        now_us = sim.sim.clock.now_us()
        coming = sim.sim.market.ticks_between(contract, now_us, now_us + 180_000_000)
        limit = sim.sim.market.price(contract, int(coming.price.min()) + 1)  # traded through during the outage
        assert limit < mnq.data.last_price - 1
        resting = await mnq.orders.place_limit_order(OrderSide.BUY, 1, limit)
        await until(lambda: resting.order is not None, "the resting order")
        back = [suite.event_bus.wait_for(EventType.RECONNECTED, timeout=20, predicate=lambda e, h=hub: e.source == h)
                for hub in ("market", "user")]
        announced: list[BarEvent] = []
        mnq.event_bus.on(EventType.NEW_BAR, lambda e: announced.append(e.data) if e.data.timeframe == "1min" else None)
        sim.refuse_hubs(2.0)
        start = sim.sim.clock.now()
        await sim.advance(180)  # the market moves and the order fills while nothing is pushed
        await asyncio.gather(*back)
        await until(lambda: all(ctx.data.stats.counters["resyncs"] for ctx in suite.values()), "bars reloaded")
        end = start + timedelta(minutes=3)
        for ctx in suite.values():
            for tf in ("15sec", "1min"):
                await assert_bars_are_the_gateways(suite, ctx, tf, start - timedelta(minutes=10), end)
        assert [b.bar.timestamp for b in announced] == [start + timedelta(minutes=m) for m in range(3)]  # each once
        filled = await resting.wait_done(timeout=10)
        assert filled.status is OrderStatus.FILLED and filled.filled_price == limit
        await until(lambda: mnq.positions.size == 1, "the position opened during the outage")


async def test_a_future_dated_trade_is_quarantined_and_the_bars_stay_true(sim: SimServer, caplog) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["15sec", "1min"]) as suite:
        mnq, contract = suite["MNQ"], CONTRACTS["MNQ"]
        feed_time = suite.router.feed_time_us
        year_2999 = datetime(2999, 1, 1, tzinfo=UTC)
        bogus = tuple(MarketTrade("F.US.MNQ", 25000.0, year_2999 + timedelta(seconds=i), TradeType.BUY, 1)
                      for i in range(3))
        with caplog.at_level(logging.WARNING, logger="pxkit.instrument.data"):
            suite.router.route(TradesPushed(contract, bogus, time.time()))  # as if pushed
        assert suite.router.feed_time_us == feed_time  # the bar clock is not thrown into the future either
        start = sim.sim.clock.now()
        await sim.advance(2 * 60 + 2)
        end = start + timedelta(minutes=2)
        await until(lambda: closed_until(suite, "15sec", end), "the bars after the bogus trade")
        for tf in ("15sec", "1min"):
            await assert_bars_are_the_gateways(suite, mnq, tf, start - timedelta(minutes=5), end)
        stats = await suite.get_stats()
        assert stats["instruments"]["MNQ"]["quarantined"] == 3 and stats["instruments"]["MNQ"]["late_trades"] == {
            "15sec": 0, "1min": 0}
        assert stats["health"] < 100 and any("ahead of the exchange clock" in r for r in stats["reasons"])
        assert len([r for r in caplog.records if "quarantined" in r.getMessage()]) == 1


async def test_a_reconnect_during_a_reload_reloads_once_more_and_says_so(sim: SimServer, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pxkit.suite")
    async with open_suite(sim, ["MNQ"], timeframes=["15sec", "1min"]) as suite:
        mnq, market = suite["MNQ"], sim.gateway.market_hub

        def reconnected() -> asyncio.Future[Event]:
            return suite.event_bus.wait_for(EventType.RECONNECTED, timeout=10, predicate=lambda e: e.source == MARKET)

        start = sim.sim.clock.now()
        first = reconnected()
        market.refuse_for(3600)
        await sim.advance(30)  # the first gap
        sim.faults.add_latency(2.0)  # the reload after it reads slowly...
        seen = len(sim.requests)
        market.refuse_for(0)
        await first
        await until(lambda: "/api/History/retrieveBars" in [r.path for r in sim.requests[seen:]], "the reload")
        second = reconnected()
        market.refuse_for(3600)  # ...and the feed drops again meanwhile: the second gap
        await sim.advance(60)
        market.refuse_for(0)
        await second
        sim.faults.clear()
        await until(lambda: mnq.data.stats.counters["resyncs"] >= 2, "the reload queued behind the first")
        await sim.advance(32)
        end = start + timedelta(minutes=2)
        await until(lambda: closed_until(suite, "15sec", end), "the bars after both gaps")
        for tf in ("15sec", "1min"):
            await assert_bars_are_the_gateways(suite, mnq, tf, start - timedelta(minutes=5), end)
        said = [r.getMessage() for r in caplog.records if r.name == "pxkit.suite"]
        assert any("reload once more" in m for m in said)  # the second reconnect was queued, and said so
        assert not any("reloaded" in m and "(0 closed" in m for m in said)  # no reload claimed that did not run
