"""RealtimeDataManager: history seeded from the simulated gateway and resumed live, trades held until then, and
(without a network) events per trade and batch, bar closes, quote merging, stale-feed detection and reads."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from pxkit.client.bars import BAR_SCHEMA
from pxkit.client.http import ProjectX
from pxkit.config import ProjectXConfig
from pxkit.enums import BarUnit, TradeType
from pxkit.errors import InputError
from pxkit.events import Event, EventBus, EventType
from pxkit.hours import globex_open
from pxkit.instrument.data import RealtimeDataManager
from pxkit.models import Bar, Contract, MarketTrade, Quote
from pxkit.payloads import BarEvent, FeedStatus
from pxkit.sim import SimServer
from pxkit.times import from_us
from waiting import until

MNQ = Contract("CON.F.US.MNQ.H26", "MNQH6", "Micro E-mini Nasdaq-100: March 2026", 0.25, 0.5, True, "F.US.MNQ")
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # the simulator's start, a Monday during the session
HISTORY = {"1min": (BarUnit.MINUTE, 1), "5min": (BarUnit.MINUTE, 5), "1hr": (BarUnit.HOUR, 1), "1day": (BarUnit.DAY, 1)}
TICK, NEW_BAR, BAR_UPDATED = EventType.TICK, EventType.NEW_BAR, EventType.BAR_UPDATED


def at(seconds: float, base: datetime = T0) -> datetime:
    return base + timedelta(seconds=seconds)


def trade(price: float, seconds: float, volume: float = 1, *, base: datetime = T0) -> MarketTrade:
    return MarketTrade(MNQ.symbol_id, price, at(seconds, base), TradeType.BUY, volume)


def manager(bus: EventBus | None = None, **options) -> RealtimeDataManager:
    """A manager without a client, put in the state initialize() leaves when the gateway has no history."""
    data = RealtimeDataManager(None, MNQ, bus or EventBus("MNQ"), symbol="MNQ", **options)
    data.release_pushes()  # live: trades are applied at once instead of held for the history
    return data


def record(bus: EventBus, *kinds: EventType) -> list[Event]:
    events: list[Event] = []
    for kind in kinds:
        bus.on(kind, events.append)
    return events


def closed(events: list[Event]) -> list[tuple[str, Bar]]:
    return [(e.data.timeframe, e.data.bar) for e in events if e.type is NEW_BAR]


# ---------------------------------------------------------------------------------------------- history (simulator)


@pytest.fixture
async def px(sim: SimServer):
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url)) as client:
        yield client


async def gateway_bars(px: ProjectX, timeframe: str, now: datetime, max_bars: int = 2000) -> pl.DataFrame:
    """The gateway's bars of one day up to `now`, the forming one included, as many as the manager keeps."""
    unit, count = HISTORY[timeframe]
    return await px.get_bars(MNQ.id, days=1, end_time=now + timedelta(seconds=1), unit=unit, interval=count,
                             limit=max_bars + 1, partial=True)


async def forming_now(sim: SimServer, px: ProjectX, timeframes) -> tuple[datetime, dict[str, Bar]]:
    """Move the simulator to 14:31:30, inside a bar of every timeframe; returns now and each forming bar."""
    await sim.advance(90)
    now = sim.sim.clock.now()
    return now, {tf: Bar(*(await gateway_bars(px, tf, now)).row(-1)) for tf in timeframes}


@pytest.mark.parametrize(("max_bars", "loaded"), [
    # the day back reaches the session's open on Sunday 18:00 New York (23:00 UTC), 15.5 hours ago
    (2000, {"1min": 932, "5min": 187, "1hr": 16, "1day": 1}),
    (5, {"1min": 6, "5min": 6, "1hr": 6, "1day": 1}),  # max_bars closed ones and the forming one
])
async def test_initialize_seeds_every_timeframe_with_the_gateway_bars(sim, px, max_bars, loaded) -> None:
    now, forming = await forming_now(sim, px, HISTORY)
    data = RealtimeDataManager(px, await px.get_instrument("MNQ"), EventBus("MNQ"), symbol="MNQ",
                               timeframes=list(HISTORY), max_bars=max_bars)
    assert await data.initialize(clock=lambda: now) == loaded
    for tf in HISTORY:
        truth = await gateway_bars(px, tf, now, max_bars)
        built = await data.get_data(tf)
        assert built.schema == truth.schema and built.equals(truth), tf
        assert data.bars[tf].forming == forming[tf] and len(data.bars[tf]) == truth.height - 1, tf
    assert await data.get_current_price() == forming["1min"].close  # the newest history close until a trade


async def test_a_trade_in_the_current_bucket_extends_the_resumed_bars(sim, px) -> None:
    now, before = await forming_now(sim, px, HISTORY)
    bus = EventBus("MNQ")
    data = RealtimeDataManager(px, MNQ, bus, symbol="MNQ", timeframes=list(HISTORY))
    await data.initialize(clock=lambda: now)
    events = record(bus, NEW_BAR, BAR_UPDATED)
    high = max(bar.high for bar in before.values()) + 1.0  # a new high of every timeframe
    data.apply_trades([trade(high, 1, 3, base=now)])
    for tf, bar in before.items():  # open and low unchanged, volume adds: the bar is continued, not restarted
        assert data.bars[tf].forming == Bar(bar.timestamp, bar.open, high, bar.low, high, bar.volume + 3), tf
    assert [e.data.timeframe for e in events if e.type is BAR_UPDATED] == list(HISTORY) and closed(events) == []
    data.apply_trades([trade(high - 2.0, 40, 1, base=now)])  # 14:32:10 closes the resumed minute only
    one = before["1min"]
    # its bucket began before the history was read, so it is checked against the gateway before NEW_BAR
    # (the gateway has no final 14:31 bar yet at its 14:31:30, so the bar built here stands)
    await until(lambda: closed(events), "the checked 14:31 bar")
    assert closed(events) == [("1min", Bar(one.timestamp, one.open, high, one.low, high, one.volume + 3))]


async def test_a_bar_begun_before_the_history_was_read_is_replaced_by_the_gateways_when_it_closes(sim, px):
    now, _ = await forming_now(sim, px, ("1min",))
    bus = EventBus("MNQ")
    data = RealtimeDataManager(px, MNQ, bus, symbol="MNQ", timeframes=["1min"])
    events = record(bus, NEW_BAR)
    await data.initialize(clock=lambda: now)
    await sim.advance(40)  # to 14:32:10: the market trades, and none of it reaches this manager
    assert data.close_due(sim.sim.clock.now()) == 1
    await until(lambda: closed(events), "the checked 14:31 bar")
    final = Bar(*(await px.get_bars(MNQ.id, start_time=at(60), end_time=at(120), unit="min")).row(0))
    assert closed(events) == [("1min", final)] and data.bars["1min"].bars()[-1] == final
    assert data.stats.counters["bars_repaired"] == 1


async def test_trades_before_initialize_are_applied_after_the_history_in_order(sim, px) -> None:
    now, truth = await forming_now(sim, px, ("1min", "5min"))
    bus = EventBus("MNQ")
    data = RealtimeDataManager(px, MNQ, bus, symbol="MNQ", timeframes=["1min", "5min"])
    events = record(bus, TICK, NEW_BAR)
    one, five = truth["1min"], truth["5min"]
    high, low, last = one.high + 1.0, one.low - 1.0, one.close + 0.25
    batches = [[trade(high, 1, 2, base=now)], [trade(low, 10, 1, base=now), None], [trade(last, 40, 4, base=now)]]
    for batch in batches:
        data.apply_trades(batch)
    assert events == [] and await data.get_current_price() is None and data.close_due(at(3600, now)) == 0
    assert (await data.get_data("1min")).height == 0

    await data.initialize(clock=lambda: now)
    assert [e.data.price for e in events if e.type is TICK] == [high, low, last]  # all three, in arrival order
    await until(lambda: closed(events), "the checked 14:31 bar")
    assert closed(events) == [("1min", Bar(one.timestamp, one.open, high, low, low, one.volume + 3))]
    assert data.bars["1min"].forming == Bar(at(120), last, last, last, last, 4)  # 14:32 opened by the third
    assert data.bars["5min"].forming == Bar(five.timestamp, five.open, max(five.high, high), min(five.low, low),
                                            last, five.volume + 7)
    assert await data.get_current_price() == last and data.stats.counters["trades"] == 3


async def test_trades_held_from_before_the_history_was_read_are_not_counted_twice(sim, px) -> None:
    now, truth = await forming_now(sim, px, ("1min",))
    data = RealtimeDataManager(px, MNQ, EventBus("MNQ"), symbol="MNQ", timeframes=["1min"])
    data.apply_trades([trade(truth["1min"].close, -5, 3, base=now), trade(truth["1min"].close, 5, 2, base=now)])
    await data.initialize(clock=lambda: now)
    one = truth["1min"]
    assert data.bars["1min"].forming == Bar(one.timestamp, one.open, one.high, one.low, one.close, one.volume + 2)
    assert data.stats.counters["trades"] == 1


async def test_a_quote_before_initialize_gives_the_last_price_after_it(sim, px) -> None:
    now, truth = await forming_now(sim, px, ("1min",))
    data = RealtimeDataManager(px, MNQ, EventBus("MNQ"), symbol="MNQ", timeframes=["1min"])
    quote = Quote(MNQ.symbol_id, last_price=truth["1min"].high + 5.0, timestamp=now)
    data.apply_quote(quote)
    assert data.quote == quote and await data.get_current_price() is None
    await data.initialize(clock=lambda: now)
    assert await data.get_current_price() == truth["1min"].high + 5.0
    assert data.bars["1min"].forming == truth["1min"]  # the quote's price is not a trade: the bar is untouched


# ---------------------------------------------------------------------------------------------- trades and events


async def test_a_tick_per_trade_only_when_a_handler_listens() -> None:
    bus = EventBus("MNQ")
    data = manager(bus)
    data.apply_trades([trade(20000.0, 1), trade(20000.25, 2)])
    assert bus.emitted[TICK] == 0  # nobody listened: not even built
    ticks = record(bus, TICK)
    batch = [trade(20000.5, 3), None, trade(20000.75, 4, 2)]
    data.apply_trades(batch)
    assert [e.data for e in ticks] == [batch[0], batch[2]]
    assert [(e.source, e.timestamp) for e in ticks] == [("MNQ", at(3)), ("MNQ", at(4))]
    assert data.stats.counters["trades"] == 4


async def test_bar_updated_once_per_batch_and_timeframe_with_the_bar_after_the_batch() -> None:
    bus = EventBus("MNQ")
    data = manager(bus, timeframes=["5min", "1min"])
    updated = record(bus, BAR_UPDATED)
    data.apply_trades([trade(20000.0, 1, 2), trade(20001.0, 2, 3), trade(19999.0, 3, 1)])
    bar = Bar(T0, 20000.0, 20001.0, 19999.0, 19999.0, 6)
    assert [e.data for e in updated] == [BarEvent("1min", bar), BarEvent("5min", bar)]  # finest first
    assert {(e.source, e.timestamp) for e in updated} == {("MNQ", at(3))}
    data.apply_trades([])
    data.apply_trades([None])
    assert len(updated) == 2  # an empty batch updates nothing


async def test_new_bar_when_a_later_trade_closes_a_bar() -> None:
    bus = EventBus("MNQ")
    data = manager(bus, timeframes=["1min", "5min"])
    events = record(bus, TICK, NEW_BAR, BAR_UPDATED)
    data.apply_trades([trade(20000.0, 10), trade(20002.0, 50, 2)])
    events.clear()
    data.apply_trades([trade(20001.0, 65)])
    assert [e.type for e in events] == [TICK, NEW_BAR, BAR_UPDATED, BAR_UPDATED]  # the close follows its trade
    assert closed(events) == [("1min", Bar(T0, 20000.0, 20002.0, 20000.0, 20002.0, 3))]
    assert events[1].timestamp == T0 and events[1].source == "MNQ"
    data.apply_trades([trade(20003.0, 300)])  # 14:35 closes the 14:31 minute and the 14:30 five minutes
    assert closed(events)[1:] == [("1min", Bar(at(60), 20001.0, 20001.0, 20001.0, 20001.0, 1)),
                                  ("5min", Bar(T0, 20000.0, 20002.0, 20000.0, 20001.0, 4))]


async def test_close_due_closes_bars_on_time_once() -> None:
    bus = EventBus("MNQ")
    data = manager(bus, timeframes=["1min", "5min"])
    events = record(bus, NEW_BAR)
    data.apply_trades([trade(20000.0, 10), trade(20001.0, 50)])
    assert data.close_due(at(59.999)) == 0
    assert data.close_due(at(60)) == 1 and data.close_due(at(61)) == 0
    assert closed(events) == [("1min", Bar(T0, 20000.0, 20001.0, 20000.0, 20001.0, 2))]
    data.apply_trades([trade(19990.0, 30)])  # stamped inside the closed minute: late, the bar stays final
    assert data.bars.late == {"1min": 1, "5min": 0} and data.bars["1min"].bars() == [closed(events)[0][1]]
    data.apply_trades([trade(20002.0, 70)])  # opens 14:31 without closing anything again
    assert len(events) == 1
    assert data.close_due(at(300)) == 2  # the 14:31 minute and the 14:30 five minutes
    assert closed(events)[1:] == [("1min", Bar(at(60), 20002.0, 20002.0, 20002.0, 20002.0, 1)),
                                  ("5min", Bar(T0, 20000.0, 20002.0, 19990.0, 20002.0, 4))]


async def test_close_due_does_nothing_before_initialize() -> None:
    data = RealtimeDataManager(None, MNQ, EventBus("MNQ"), symbol="MNQ")
    data.apply_trades([trade(20000.0, 10)])
    assert data.close_due(at(3600)) == 0 and data.bars["1min"].forming is None


# ---------------------------------------------------------------------------------------------- quotes


async def test_quotes_merge_into_the_last_full_quote_and_move_only_the_last_price() -> None:
    bus = EventBus("MNQ")
    data = manager(bus)
    quotes = record(bus, EventType.QUOTE_UPDATE)
    data.apply_trades([trade(20000.0, 1, 5), trade(20001.0, 2)])
    full = Quote(MNQ.symbol_id, "MNQH6", last_price=20001.0, best_bid=20000.75, best_ask=20001.25, change=10.0,
                 change_percent=0.05, open=19990.0, high=20010.0, low=19980.0, volume=12345.0, last_updated=at(2),
                 timestamp=at(2))
    data.apply_quote(full)
    data.apply_quote(Quote(MNQ.symbol_id, best_bid=20001.0, last_price=20005.0, timestamp=at(3)))
    merged = dataclasses.replace(full, best_bid=20001.0, last_price=20005.0, timestamp=at(3))
    assert data.quote == merged
    assert [e.data for e in quotes] == [full, merged] and quotes[-1].timestamp == at(3)
    assert await data.get_current_price() == 20005.0
    data.apply_quote(Quote(MNQ.symbol_id, last_price=19950.1, timestamp=at(4)))  # off the grid: rounded
    assert await data.get_current_price() == 19950.0
    assert data.bars["1min"].forming == Bar(T0, 20000.0, 20001.0, 20000.0, 20001.0, 6)  # no high, low, close, volume
    assert data.stats.counters["quotes"] == 3
    data.apply_trades([trade(20000.5, 5)])
    assert await data.get_current_price() == 20000.5  # the next trade sets it again


async def test_a_quote_without_a_last_price_keeps_the_current_price() -> None:
    data = manager()
    data.apply_quote(Quote(MNQ.symbol_id, last_price=19990.0, best_bid=19989.75, timestamp=at(0)))
    data.apply_trades([trade(20000.0, 1)])
    data.apply_quote(Quote(MNQ.symbol_id, best_bid=19999.75, best_ask=20000.25, timestamp=at(2)))
    assert await data.get_current_price() == 20000.0 and data.quote.best_ask == 20000.25


# ---------------------------------------------------------------------------------------------- stale feed


async def test_a_silent_feed_is_reported_once_during_the_session_and_again_when_it_speaks() -> None:
    bus = EventBus("MNQ")
    data = manager(bus, stale_after=30.0, session=globex_open)
    events = record(bus, EventType.STALE_FEED)
    tuesday = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    data.last_event = 1000.0
    assert data.check_stale(tuesday, monotonic=1029.9) is False
    assert data.check_stale(tuesday, monotonic=1030.0) is True  # silent for exactly stale_after
    assert data.check_stale(tuesday, monotonic=1090.0) is True
    assert [e.data for e in events] == [FeedStatus(True, 30.0)] and events[0].source == "MNQ"
    assert data.stats.counters["stale"] == 1

    data.apply_trades([trade(20000.0, 1)])  # any market event ends it
    assert data.stale is False and [e.data for e in events][1:] == [FeedStatus(False, 0.0)]
    data.apply_quote(Quote(MNQ.symbol_id, last_price=20000.0))
    assert len(events) == 2  # live already: reported once

    assert data.check_stale(tuesday, monotonic=data.last_event + 45.0) is True  # silent again: reported again
    assert [e.data.stale for e in events] == [True, False, True] and data.stats.counters["stale"] == 2
    data.touch()  # depth pushes touch the feed too
    assert [e.data.stale for e in events] == [True, False, True, False]


@pytest.mark.parametrize("now", [
    datetime(2026, 3, 7, 12, 0, tzinfo=UTC),  # Saturday
    datetime(2026, 3, 3, 22, 30, tzinfo=UTC),  # the daily break, 17:30 New York
])
async def test_a_silent_feed_outside_its_session_is_not_stale(now: datetime) -> None:
    bus = EventBus("MNQ")
    data = manager(bus, stale_after=30.0, session=globex_open)
    events = record(bus, EventType.STALE_FEED)
    data.last_event = 1000.0
    assert data.check_stale(now, monotonic=1000.0 + 3600) is False
    assert events == [] and data.stale is False
    assert data.check_stale(datetime(2026, 3, 3, 23, 0, tzinfo=UTC), monotonic=1000.0 + 3601) is True  # reopened


# ---------------------------------------------------------------------------------------------- reads and memory


async def test_reads_before_any_trade_are_empty_frames_with_the_bar_schema() -> None:
    data = manager(timeframes=["1min", "5min"])
    frame = await data.get_data("1min")
    assert frame.height == 0 and frame.schema == pl.Schema(BAR_SCHEMA)
    assert {name: f.height for name, f in (await data.get_mtf_data()).items()} == {"1min": 0, "5min": 0}
    assert await data.get_current_price() is None and data.last_price is None


async def test_get_data_get_mtf_data_and_the_current_price() -> None:
    data = manager(timeframes=["5min", "1min"])
    data.apply_trades([trade(20000.0, 10, 2), trade(20001.25, 70, 3), trade(20000.5, 130, 1)])
    frame = await data.get_data("1min")
    assert frame.schema == pl.Schema(BAR_SCHEMA)
    assert frame.rows() == [(T0, 20000.0, 20000.0, 20000.0, 20000.0, 2), (at(60), 20001.25, 20001.25, 20001.25,
                            20001.25, 3), (at(120), 20000.5, 20000.5, 20000.5, 20000.5, 1)]
    assert (await data.get_data("1min", include_forming=False)).rows() == frame.rows()[:2]
    assert (await data.get_data("1min", 1)).rows() == frame.rows()[2:]
    assert (await data.get_data("5min")).rows() == [(T0, 20000.0, 20001.25, 20000.0, 20000.5, 6)]
    mtf = await data.get_mtf_data(2)
    assert list(mtf) == ["1min", "5min"] and mtf["1min"].equals(frame.tail(2)) and mtf["5min"].height == 1
    price = await data.get_current_price()
    assert price == 20000.5 and isinstance(price, float)
    with pytest.raises(InputError, match="15min"):
        await data.get_data("15min")


async def test_memory_is_bounded_by_max_bars() -> None:
    data = manager(timeframes=["1min"], max_bars=3)
    for minute in range(10):
        data.apply_trades([trade(20000.0 + minute, minute * 60 + 1)])
    assert len(data.bars["1min"]) == 3
    frame = await data.get_data("1min")
    assert frame["timestamp"].to_list() == [at(360), at(420), at(480), at(540)]  # the newest three and the forming
    assert frame["close"].to_list() == [20006.0, 20007.0, 20008.0, 20009.0]


# ---------------------------------------------------------------------------------------------- stamps far ahead


async def test_a_far_future_trade_is_quarantined_and_the_bars_go_on(caplog) -> None:
    now = [at(30)]
    bus = EventBus("MNQ")
    data = manager(bus, timeframes=["1min"], clock=lambda: now[0], max_ahead=60.0)
    events = record(bus, TICK, NEW_BAR)
    year_2999 = datetime(2999, 1, 1, tzinfo=UTC)
    with caplog.at_level("WARNING", logger="pxkit.instrument.data"):
        data.apply_trades([trade(20000.0, 10)])
        data.apply_trades([trade(20001.0, 20), MarketTrade(MNQ.symbol_id, 25000.0, year_2999, TradeType.BUY, 1)])
        data.apply_trades([trade(30000.0, 0, base=year_2999), trade(30000.0, 1, base=year_2999)])  # the same burst
        assert not data.apply_quote(Quote(MNQ.symbol_id, last_price=30000.0, timestamp=year_2999))
        assert data.apply_quote(Quote(MNQ.symbol_id, last_price=20001.0, timestamp=at(89)))  # 59 s ahead: kept
        now[0] = at(70)
        data.apply_trades([trade(20002.0, 65), trade(20003.0, 200)])  # 14:33:20 is 130 s ahead: the next burst
    assert data.quarantined == 5 and data.stats.counters["quarantined"] == 5
    warned = [r for r in caplog.records if r.levelname == "WARNING" and "quarantined" in r.getMessage()]
    assert len(warned) == 2 and "2999-01-01" in warned[0].getMessage()  # once per burst
    assert data.bars["1min"].bars() == [Bar(T0, 20000.0, 20001.0, 20000.0, 20001.0, 2)]  # closed by 14:31:05
    assert data.bars["1min"].forming == Bar(at(60), 20002.0, 20002.0, 20002.0, 20002.0, 1)
    assert data.bars.late == {"1min": 0} and data.last_price == 20002.0
    assert [e.data.price for e in events if e.type is TICK] == [20000.0, 20001.0, 20002.0]


async def test_a_quarantined_push_held_during_a_load_is_never_replayed() -> None:
    data = RealtimeDataManager(None, MNQ, EventBus("MNQ"), symbol="MNQ", timeframes=["1min"], clock=lambda: at(30))
    data.apply_trades([trade(20000.0, 10), trade(25000.0, 0, base=datetime(2999, 1, 1, tzinfo=UTC))])
    data.release_pushes()  # the history loaded (empty): the held pushes are applied
    assert data.bars["1min"].forming == Bar(T0, 20000.0, 20000.0, 20000.0, 20000.0, 1) and data.quarantined == 1


# ---------------------------------------------------------------------------------------------- reconnect in a load


async def test_a_reconnect_during_a_reload_queues_one_more_reload_after_it(sim, px) -> None:
    data = RealtimeDataManager(px, MNQ, EventBus("MNQ"), symbol="MNQ", timeframes=["1min"], clock=sim.sim.clock.now)
    await data.initialize()
    await sim.advance(60)  # the first gap: nothing of it is pushed
    sim.faults.add_latency(1.0)
    seen = len(sim.requests)
    first = asyncio.create_task(data.resync())
    await until(lambda: "/api/History/retrieveBars" in [r.path for r in sim.requests[seen:]], "the reload reading")
    await sim.advance(60)  # the feed drops again while the reload reads: the second gap, after its read
    assert await data.resync() is None  # the second reconnect: queued behind the reload running
    assert await data.resync() is None  # a third one coalesces into the same
    sim.faults.clear()
    assert await first >= 2  # both gaps closed bars, announced by the reloads
    assert data.stats.counters["resyncs"] == 2
    now = sim.sim.clock.now()
    truth = (await gateway_bars(px, "1min", now)).tail(10)  # the minutes of both gaps and the one forming now
    assert (await data.get_data("1min", 10)).equals(truth)


async def test_a_reconnect_while_starting_reloads_once_more_after_the_history(sim, px) -> None:
    data = RealtimeDataManager(px, MNQ, EventBus("MNQ"), symbol="MNQ", timeframes=["1min"], clock=sim.sim.clock.now)
    await sim.advance(30)
    assert await data.resync() is None  # before start-up read anything: noted, not lost
    await data.initialize()
    assert data.stats.counters["resyncs"] == 1


def pushed(sim: SimServer, seconds: float) -> list[MarketTrade]:
    """Advance the simulator by `seconds` and return the trades its market hub would have pushed meanwhile."""
    after = sim.sim.clock.now_us()
    sim.sim.advance(seconds)
    ticks = sim.sim.market.ticks_between(MNQ.id, after, sim.sim.clock.now_us())
    return [MarketTrade(MNQ.symbol_id, price, from_us(t), TradeType(side), float(size)) for t, price, size, side in
            zip(ticks.time.tolist(), sim.sim.market.prices(MNQ.id, ticks.price), ticks.size.tolist(),
                ticks.side.tolist(), strict=True)]


async def test_a_reload_answered_after_the_next_minute_began_keeps_the_minute_before_it(sim, px) -> None:
    data = RealtimeDataManager(px, MNQ, EventBus("MNQ"), symbol="MNQ", timeframes=["1min", "5min"],
                               clock=sim.sim.clock.now)
    await data.initialize()
    await sim.advance(299.5)  # to 14:34:59.5: a gap, nothing of it pushed
    sim.faults.add_latency(1.0)
    seen = len(sim.requests)
    reload = asyncio.create_task(data.resync())
    await until(lambda: "/api/History/retrieveBars" in [r.path for r in sim.requests[seen:]], "the reload reading")
    await sim.advance(20)  # the gateway answers at 14:35:19.5, with the 14:35 bars begun
    sim.faults.clear()
    assert await reload == 6  # the five minutes of the gap and their 5min bar, the 14:34 ones included
    now = sim.sim.clock.now()
    for tf in ("1min", "5min"):
        assert (await data.get_data(tf, 7)).equals((await gateway_bars(px, tf, now)).tail(7)), tf


async def test_a_reload_after_trades_of_the_new_connection_reads_the_whole_gap(sim, px) -> None:
    bus = EventBus("MNQ")
    data = RealtimeDataManager(px, MNQ, bus, symbol="MNQ", timeframes=["1min", "5min"], clock=sim.sim.clock.now)
    events = record(bus, NEW_BAR)
    await data.initialize()
    data.apply_trades(pushed(sim, 30))  # live until 14:30:30
    data.feed_lost()  # the market hub drops
    pushed(sim, 150)  # 14:30:30-14:33:00 never reach this manager
    await until(lambda: data.close_due(sim.sim.clock.now()) or closed(events), "the 14:30 bar closed by its timer")
    data.apply_trades(pushed(sim, 10))  # the new connection's first trades come before the reconnect is heard
    assert await data.resync() == 2  # 14:31 and 14:32: each announced once, by the reload
    now = sim.sim.clock.now()
    for tf in ("1min", "5min"):
        assert (await data.get_data(tf, 5)).equals((await gateway_bars(px, tf, now)).tail(5)), tf
    truth = await gateway_bars(px, "1min", now)
    await until(lambda: len(closed(events)) == 3, "the 14:30 bar checked against the gateway")
    announced = sorted(closed(events), key=lambda e: e[1].timestamp)
    assert announced == [("1min", Bar(*row)) for row in truth.tail(4).head(3).iter_rows()]  # each final, once


async def test_held_pushes_count_toward_staleness_until_they_are_replayed() -> None:
    bus = EventBus("MNQ")
    data = manager(bus, stale_after=5.0, session=lambda now: True)
    events = record(bus, EventType.STALE_FEED)
    data.last_event = time.monotonic() - 10  # the feed was last live 10 s ago
    data.hold_pushes()  # a reload is running: its pushes are held
    data.apply_trades([trade(20000.0, 1)])
    data.apply_quote(Quote(MNQ.symbol_id, last_price=20000.25, timestamp=at(2)))
    data.touch()  # depth
    assert data.check_stale(T0) is True and data.last_price is None  # pushes held: bars and price stand still
    data.release_pushes()  # the reload is over
    assert data.stale is False and data.last_price == 20000.25
    assert [e.data.stale for e in events] == [True, False]
