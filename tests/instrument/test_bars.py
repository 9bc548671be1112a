"""Tick-to-bar aggregation: timeframes, alignment, exchange stamps, quotes, quiet periods, bounds, the simulator."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import polars as pl
import pytest

from pxkit.client.bars import UNIT_SPELLINGS, bar_unit
from pxkit.client.http import ProjectX
from pxkit.codec import Target, decode_records
from pxkit.config import ProjectXConfig
from pxkit.enums import BarUnit
from pxkit.errors import InputError
from pxkit.instrument.bars import BAR_SCHEMA, BarSeries, MultiTimeframeBars, Timeframe
from pxkit.models import Bar, MarketTrade
from pxkit.sim import SimServer
from pxkit.sim.clock import SimClock
from pxkit.sim.engine import SimConfig, Simulator
from pxkit.times import to_us

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # a Monday, 09:30 New York (EST)
MNQ = "CON.F.US.MNQ.H26"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# ------------------------------------------------------------------ timeframes


@pytest.mark.parametrize(("spec", "unit", "count", "seconds", "name"), [
    ("1sec", BarUnit.SECOND, 1, 1, "1sec"), ("5sec", BarUnit.SECOND, 5, 5, "5sec"),
    ("15sec", BarUnit.SECOND, 15, 15, "15sec"), ("30sec", BarUnit.SECOND, 30, 30, "30sec"),
    ("1min", BarUnit.MINUTE, 1, 60, "1min"), ("2min", BarUnit.MINUTE, 2, 120, "2min"),
    ("5min", BarUnit.MINUTE, 5, 300, "5min"), ("15min", BarUnit.MINUTE, 15, 900, "15min"),
    ("30min", BarUnit.MINUTE, 30, 1800, "30min"), ("1hr", BarUnit.HOUR, 1, 3600, "1hr"),
    ("2hr", BarUnit.HOUR, 2, 7200, "2hr"), ("4hr", BarUnit.HOUR, 4, 14400, "4hr"),
    ("1day", BarUnit.DAY, 1, 86400, "1day"), (" 5 Minutes ", BarUnit.MINUTE, 5, 300, "5min"),
])
def test_timeframe_parsing(spec: str, unit: BarUnit, count: int, seconds: int, name: str) -> None:
    tf = Timeframe.parse(spec)
    assert tuple(tf) == (unit, count, seconds)
    assert tf.name == name
    assert Timeframe.parse(tf) is tf


@pytest.mark.parametrize("spec", ["", "5", "min", "1week", "0min", "2day", "1 fortnight", "-1min", None, 5, "5ms",
                                  "1M", "1mo"])
def test_unknown_timeframes_are_input_errors(spec: object) -> None:
    with pytest.raises(InputError):
        Timeframe.parse(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(("unit", "spellings"), list(UNIT_SPELLINGS.items()), ids=lambda v: str(v))
def test_timeframes_and_get_bars_take_the_same_unit_spellings(unit: BarUnit, spellings: tuple[str, ...]) -> None:
    cased = [*spellings, *(c for s in spellings if s != "m" for c in (s.upper(), s.title()))]  # "M" is refused
    for spelling in cased:
        assert bar_unit(spelling) is unit, spelling
        if unit in (BarUnit.WEEK, BarUnit.MONTH):  # history only: the refusal points to get_bars
            with pytest.raises(InputError, match="get_bars"):
                Timeframe.parse(f"1{spelling}")
        else:
            assert Timeframe.parse(f"1{spelling}").unit is unit, spelling


@pytest.mark.parametrize("spec", ["1M", "5 M", " 15M "])
def test_a_capital_m_is_refused_as_ambiguous_by_both(spec: str) -> None:
    with pytest.raises(InputError, match=r"ambiguous.*'min' or 'month'"):
        Timeframe.parse(spec)
    with pytest.raises(InputError, match="ambiguous"):
        bar_unit("M")


def test_an_unknown_unit_lists_the_accepted_spellings() -> None:
    for refuse in (lambda: bar_unit("ms"), lambda: Timeframe.parse("5ms")):
        with pytest.raises(InputError) as caught:
            refuse()
        assert all(f"{unit.name.lower()}: {', '.join(spellings)}" in str(caught.value)
                   for unit, spellings in UNIT_SPELLINGS.items())


async def test_get_bars_takes_hr_and_refuses_m_before_the_wire() -> None:
    async with SimServer(config=SimConfig(seed=1)) as sim, ProjectX(ProjectXConfig.for_simulator(sim.base_url)) as px:
        end = sim.sim.clock.now()
        hourly = await px.get_bars(MNQ, start_time=end - timedelta(hours=6), end_time=end, unit="hr")
        assert hourly.height >= 5 and (hourly["timestamp"].diff().drop_nulls() == timedelta(hours=1)).all()
        asked = [r.body for r in sim.requests if r.path == "/api/History/retrieveBars"]
        assert asked[-1]["unit"] == BarUnit.HOUR
        with pytest.raises(InputError, match="ambiguous"):
            await px.get_bars(MNQ, days=1, unit="M")
        assert len([r for r in sim.requests if r.path == "/api/History/retrieveBars"]) == len(asked)


def test_bad_construction_is_rejected() -> None:
    for kwargs in ({"max_bars": 0, "tick_size": 0.25}, {"max_bars": 10, "tick_size": 0.0}):
        with pytest.raises(InputError):
            BarSeries("1min", **kwargs)
    with pytest.raises(InputError):
        BarSeries("1day", 10, 0.25, day_tz="Mars/Olympus_Mons")
    with pytest.raises(InputError):
        MultiTimeframeBars(["1min"], 0.25)["5min"]


# ------------------------------------------------------------------ alignment


@pytest.mark.parametrize(("spec", "start", "end"), [
    ("1sec", "2026-03-02T14:37:29+00:00", "2026-03-02T14:37:30+00:00"),
    ("15sec", "2026-03-02T14:37:15+00:00", "2026-03-02T14:37:30+00:00"),
    ("1min", "2026-03-02T14:37:00+00:00", "2026-03-02T14:38:00+00:00"),
    ("5min", "2026-03-02T14:35:00+00:00", "2026-03-02T14:40:00+00:00"),
    ("15min", "2026-03-02T14:30:00+00:00", "2026-03-02T14:45:00+00:00"),
    ("1hr", "2026-03-02T14:00:00+00:00", "2026-03-02T15:00:00+00:00"),
    ("2hr", "2026-03-02T14:00:00+00:00", "2026-03-02T16:00:00+00:00"),
    ("4hr", "2026-03-02T12:00:00+00:00", "2026-03-02T16:00:00+00:00"),  # UTC multiples of 4 h, not 1 h
])
def test_intraday_buckets_align_to_utc_epoch_multiples(spec: str, start: str, end: str) -> None:
    series = BarSeries(spec, 10, 0.25)
    t = to_us(utc("2026-03-02T14:37:29.5+00:00"))
    assert series.bucket(t) == (to_us(utc(start)), to_us(utc(end)))


def test_four_hour_bars_span_four_hours() -> None:
    series = BarSeries("4hr", 10, 0.25)
    for minutes in range(0, 8 * 60, 30):  # 12:00 .. 19:30 UTC, a trade every half hour
        series.on_trade(100.0 + minutes / 60, 1, utc("2026-03-02T12:00:00+00:00") + timedelta(minutes=minutes))
    (bar,) = series.bars()
    assert bar.timestamp == utc("2026-03-02T12:00:00+00:00")
    assert bar.volume == 8 and bar.open == 100.0 and bar.close == 103.5
    assert series.forming is not None and series.forming.timestamp == utc("2026-03-02T16:00:00+00:00")


def test_daily_bars_start_at_18_new_york_across_the_dst_change() -> None:
    series = BarSeries("1day", 10, 0.25)  # defaults: 18:00 America/New_York
    stamps = [
        "2026-03-05T23:00:00+00:00",  # Thu 18:00 EST: the Friday trading day opens
        "2026-03-06T21:59:59+00:00",  # Fri 16:59:59 EST: same trading day
        "2026-03-08T22:00:00+00:00",  # Sun 18:00 EDT (DST began 02:00 that morning): Monday's day opens
        "2026-03-09T21:59:59+00:00",  # Mon 17:59:59 EDT: same day
        "2026-03-09T22:00:00+00:00",  # Mon 18:00 EDT: Tuesday's day
    ]
    for i, stamp in enumerate(stamps):
        series.on_trade(100.0 + i, 1, utc(stamp))
    assert [(b.timestamp, b.open, b.close, b.volume) for b in series.bars(include_forming=True)] == [
        (utc("2026-03-05T23:00:00+00:00"), 100.0, 101.0, 2),
        (utc("2026-03-08T22:00:00+00:00"), 102.0, 103.0, 2),
        (utc("2026-03-09T22:00:00+00:00"), 104.0, 104.0, 1),
    ]
    start, end = series.bucket(to_us(utc("2026-03-08T12:00:00+00:00")))  # the Sunday the clocks moved
    assert (start, end) == (to_us(utc("2026-03-07T23:00:00+00:00")), to_us(utc("2026-03-08T22:00:00+00:00")))
    assert end - start == 23 * 3600 * 1_000_000


def test_daily_bars_can_follow_the_utc_calendar_day() -> None:
    series = BarSeries("1day", 10, 0.25, day_tz="UTC", day_start=time(0))
    series.on_trade(100.0, 1, utc("2026-03-08T23:59:59+00:00"))
    series.on_trade(101.0, 1, utc("2026-03-09T00:00:00+00:00"))
    assert [b.timestamp for b in series.bars(include_forming=True)] == [
        utc("2026-03-08T00:00:00+00:00"), utc("2026-03-09T00:00:00+00:00")]


# ------------------------------------------------------------------ stamping, quotes, late trades


def test_bars_are_stamped_with_the_exchange_timestamp_not_the_wall_clock() -> None:
    series = BarSeries("1min", 10, 0.25)
    old = datetime(2020, 1, 6, 9, 15, 42, 123456, tzinfo=UTC)
    events = series.on_trade(5000.0, 3, old)
    assert events == [("updated", Bar(datetime(2020, 1, 6, 9, 15, tzinfo=UTC), 5000.0, 5000.0, 5000.0, 5000.0, 3))]
    events = series.on_trade(5000.25, 1, old + timedelta(minutes=1))
    assert [kind for kind, _ in events] == ["closed", "updated"]
    assert events[0][1].timestamp == datetime(2020, 1, 6, 9, 15, tzinfo=UTC)
    assert events[1][1].timestamp == datetime(2020, 1, 6, 9, 16, tzinfo=UTC)
    assert series.last_ts == old + timedelta(minutes=1)
    naive = BarSeries("1min", 10, 0.25)
    naive.on_trade(1.0, 1, old.replace(tzinfo=None))  # naive means UTC
    assert naive.forming is not None and naive.forming.timestamp == datetime(2020, 1, 6, 9, 15, tzinfo=UTC)


def test_quotes_never_move_high_low_or_volume() -> None:
    bars = MultiTimeframeBars(["1min", "5min"], 0.25)
    series = BarSeries("1min", 10, 0.25)
    for target in (bars, series):
        target.on_trade(100.0, 2, T0)
        target.on_quote(150.0, T0 + timedelta(seconds=1))
        target.on_quote(50.0, T0 + timedelta(seconds=2))
        assert target.last_price == 50.0 and target.last_ts == T0 + timedelta(seconds=2)
    for forming in (bars.forming("1min"), bars.forming("5min"), series.forming):
        assert forming == Bar(T0, 100.0, 100.0, 100.0, 100.0, 2)
    assert series.close_due(T0 + timedelta(minutes=5)) == [Bar(T0, 100.0, 100.0, 100.0, 100.0, 2)]


def test_a_quiet_period_closes_the_bar_on_time_and_empty_buckets_make_no_bar() -> None:
    series = BarSeries("1min", 10, 0.25)
    series.on_trade(100.0, 1, T0 + timedelta(seconds=5))
    series.on_trade(101.0, 2, T0 + timedelta(seconds=50))
    assert series.close_due(T0 + timedelta(seconds=59, microseconds=999_999)) == []
    assert series.close_due(T0 + timedelta(minutes=1)) == [Bar(T0, 100.0, 101.0, 100.0, 101.0, 3)]
    assert series.forming is None and series.close_due(T0 + timedelta(minutes=9)) == []
    assert series.on_trade(99.0, 1, T0 + timedelta(seconds=55)) == []  # its bar is closed: late, counted
    assert (series.late, series.late_volume) == (1, 1)
    series.on_trade(102.0, 1, T0 + timedelta(minutes=4, seconds=1))  # minutes 1-3 had no trades: no bars
    assert [b.timestamp for b in series.bars(include_forming=True)] == [T0, T0 + timedelta(minutes=4)]


def test_out_of_order_trades_inside_the_forming_bar_are_applied() -> None:
    series = BarSeries("1min", 10, 0.25)
    series.on_trade(100.0, 1, T0 + timedelta(seconds=10))
    series.on_trade(101.0, 1, T0 + timedelta(seconds=30))
    series.on_trade(98.0, 4, T0 + timedelta(seconds=20))  # arrives late, still inside the bucket
    assert series.forming == Bar(T0, 100.0, 101.0, 98.0, 101.0, 6)  # close follows the latest timestamp
    assert series.late == 0


def test_no_tick_is_dropped() -> None:
    rng = random.Random(3)
    bars = MultiTimeframeBars(["1sec", "1min", "5min", "4hr", "1day"], 0.25, max_bars=100_000)
    t, price, total, closed = to_us(T0), 20000.0, 0, 0
    for _ in range(20_000):
        t += rng.choice((0, 0, 0, 1, 250, 20_000, 3_000_000))  # bursts in the same microsecond, and gaps
        price += rng.choice((-0.25, 0.0, 0.25))
        size = rng.randint(1, 9)
        total += size
        closed += len(bars.on_trade(price, size, t))
    for name in bars:
        assert sum(b.volume for b in bars[name].bars(include_forming=True)) == total, name
        assert bars[name].late == 0
    assert closed == sum(len(bars[name]) for name in bars)


def test_ring_buffer_is_bounded_and_frames_are_materialised_on_read() -> None:
    series = BarSeries("1min", 5, 0.25)
    for minute in range(100):
        series.on_trade(100.0 + minute, 1, T0 + timedelta(minutes=minute))
    assert len(series) == 5
    frame = series.frame()
    assert frame.schema == pl.Schema(BAR_SCHEMA)
    assert frame["open"].to_list() == [194.0, 195.0, 196.0, 197.0, 198.0]
    assert frame["timestamp"].to_list()[-1] == T0 + timedelta(minutes=98)
    last = series.frame(2, include_forming=True)
    assert last["close"].to_list() == [198.0, 199.0] and last["volume"].to_list() == [1, 1]
    assert series.frame(0).height == 0 and BarSeries("1min", 5, 0.25).frame().schema == pl.Schema(BAR_SCHEMA)


def test_prices_are_rounded_to_the_tick_grid() -> None:
    series = BarSeries("1min", 5, 0.1)
    series.on_trade(0.1 + 0.2, 1, T0)  # 0.30000000000000004
    series.on_trade(100.30000000000001, 1, T0 + timedelta(seconds=1))
    assert series.forming == Bar(T0, 0.3, 100.3, 0.3, 100.3, 2)
    assert series.frame(include_forming=True)["high"].to_list() == [100.3]
    assert series.last_price == 100.3


def test_restore_takes_the_history_as_truth_for_the_buckets_it_covers() -> None:
    series = BarSeries("1min", 10, 0.25)
    series.on_trade(10.0, 1, T0 + timedelta(seconds=5))  # 14:30 built live from one trade only
    gap = [Bar(T0 + timedelta(minutes=m), 10.0, 12.0, 9.0, 11.0, 20 + m) for m in range(3)]  # 14:30-14:32
    forming = Bar(T0 + timedelta(minutes=3), 11.0, 11.5, 11.0, 11.25, 4)
    fresh = series.restore([*gap, forming], T0 + timedelta(minutes=3, seconds=20))
    assert fresh == gap  # none of them was closed here: each is announced once
    assert series.bars() == gap and series.forming == forming  # the live-built 14:30 was replaced
    series.on_trade(11.5, 2, T0 + timedelta(minutes=3, seconds=30))  # live trades continue the history's bar
    assert series.forming == Bar(forming.timestamp, 11.0, 11.5, 11.0, 11.5, 6)
    again = series.restore([gap[-1], Bar(forming.timestamp, 11.0, 11.75, 11.0, 11.5, 9)], T0 + timedelta(minutes=4))
    assert again == [Bar(forming.timestamp, 11.0, 11.75, 11.0, 11.5, 9)]  # closed by the history, once
    assert series.forming is None and series.bars()[-1].volume == 9
    assert series.on_trade(1.0, 1, T0 + timedelta(minutes=3, seconds=59)) == [] and series.late == 1
    with pytest.raises(InputError):
        series.restore([Bar(T0 + timedelta(seconds=30), 1.0, 1.0, 1.0, 1.0, 1)], T0 + timedelta(minutes=5))


def test_restore_keeps_a_bar_the_gateway_closed_after_now() -> None:
    series = BarSeries("1min", 10, 0.25)
    series.on_trade(10.0, 1, T0 + timedelta(seconds=5))
    # read at 14:30:59.5 for the minute up to 14:31:00.5; the gateway answered at 14:31:20, in the next minute
    closed = Bar(T0, 10.0, 12.0, 9.0, 11.0, 30)
    forming = Bar(T0 + timedelta(minutes=1), 11.0, 11.5, 11.0, 11.25, 4)
    assert series.restore([closed, forming], T0 + timedelta(seconds=59.5)) == [closed]
    assert series.bars() == [closed] and series.forming == forming


def test_seed_preloads_history_and_live_data_wins() -> None:
    history = [Bar(T0 + timedelta(minutes=m), 10.0, 11.0, 9.0, 10.5, 7) for m in range(-3, 1)]
    series = BarSeries("1min", 3, 0.25)
    assert series.seed(history) == 4 and len(series) == 3  # bounded: the oldest falls out
    assert series.on_trade(12.0, 1, T0 + timedelta(seconds=30)) == []  # already covered by the seeded bar
    assert series.late == 1
    series.on_trade(12.0, 1, T0 + timedelta(minutes=1))
    series.on_trade(12.5, 1, T0 + timedelta(minutes=2))
    assert series.seed([Bar(T0 + timedelta(minutes=1), 1.0, 1.0, 1.0, 1.0, 1)]) == 0  # live bar kept
    assert [b.close for b in series.bars(include_forming=True)] == [10.5, 10.5, 12.0, 12.5]
    with pytest.raises(InputError):
        BarSeries("5min", 3, 0.25).seed([Bar(T0 + timedelta(minutes=1), 1.0, 1.0, 1.0, 1.0, 1)])


def test_multi_timeframe_fans_out_and_reports_closed_bars() -> None:
    bars = MultiTimeframeBars(["1min", "5min", "1min"], 0.25, max_bars=50)
    assert list(bars) == ["1min", "5min"] and len(bars) == 2
    bars.on_trade(100.0, 1, T0)
    bars.on_trade(100.5, 1, T0 + timedelta(minutes=1))
    closed = bars.on_trade(99.0, 2, T0 + timedelta(minutes=5))
    assert closed == [("1min", Bar(T0 + timedelta(minutes=1), 100.5, 100.5, 100.5, 100.5, 1)),
                      ("5min", Bar(T0, 100.0, 100.5, 100.0, 100.5, 2))]
    assert bars.close_due(T0 + timedelta(minutes=6)) == [
        ("1min", Bar(T0 + timedelta(minutes=5), 99.0, 99.0, 99.0, 99.0, 2))]
    assert bars.frame("5min", include_forming=True)["volume"].to_list() == [2, 2]
    assert bars.late == {"1min": 0, "5min": 0}


# ------------------------------------------------------------------ against the simulator


class Recorder:
    """A hub connection stand-in: keeps every push."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, list]] = []

    def send(self, target: str, arguments: list) -> None:
        self.pushes.append((target, arguments))


def test_bars_from_the_simulated_trade_stream_match_the_gateway_history() -> None:
    sim = Simulator(SimConfig(seed=1), SimClock())
    recorder = Recorder()
    sim.subscribe("trades", MNQ, recorder)
    sim.advance(1800)
    now_us = sim.clock.now_us()
    specs = {"1min": 1, "5min": 5, "15min": 15}
    bars = MultiTimeframeBars(list(specs), tick_size=0.25, day_tz="UTC", day_start=time(0))
    trades = [trade for target, args in recorder.pushes if target == Target.TRADE
              for trade in decode_records(MarketTrade, args[1])]
    assert len(trades) > 1000
    for trade in trades:
        bars.on_trade(trade.price, trade.volume, trade.timestamp)
    bars.close_due(now_us)
    assert sum(b.volume for b in bars["1min"].bars(include_forming=True)) == sum(t.volume for t in trades)
    first_us = to_us(trades[0].timestamp)
    for name, minutes in specs.items():
        width = minutes * 60_000_000
        start = first_us - first_us % width + width  # the first bucket was only partly streamed
        end = now_us - now_us % width  # the bucket forming at now is not whole
        built = [b for b in bars[name].bars() if start <= to_us(b.timestamp) and to_us(b.timestamp) + width <= end]
        expected = sim.market.bars(MNQ, start, end, now_us, BarUnit.MINUTE, minutes, False)
        assert len(expected) == (end - start) // width >= 1, name
        assert built == expected, name


@pytest.mark.parametrize(("price", "size", "stamp"), [
    (1e300, 1, T0), (20000.0, 1e21, T0), (float("nan"), 1, T0), (20000.0, float("inf"), T0), (20000.0, -3, T0),
    (20000.0, 1, datetime(9999, 12, 31, 23, 59, tzinfo=UTC)), (20000.0, 1, datetime(1, 1, 1, tzinfo=UTC)),
], ids=["huge-price", "huge-size", "nan-price", "infinite-size", "negative-size", "year-9999", "year-1"])
def test_a_trade_no_bar_can_hold_is_refused_and_every_frame_stays_readable(price, size, stamp) -> None:
    bars = MultiTimeframeBars(["1sec", "1min", "1day"], 0.25)
    single = BarSeries("1day", 10, 0.25)
    quote_refused = price != 20000.0 or stamp != T0  # a quote carries no size: only its price and time count
    for book in (bars, single):
        book.on_trade(20000.0, 2, T0)
        assert book.on_trade(price, size, stamp) == []
        book.on_quote(price, stamp)
        book.on_trade(20001.0, 3, T0 + timedelta(seconds=1))
        assert book.rejected == 1 + quote_refused and book.last_price == 20001.0
    for name in bars:
        frame = bars.frame(name, include_forming=True)
        assert frame.schema == BAR_SCHEMA and frame["volume"].sum() == 5 and frame["high"].max() == 20001.0
    assert single.frame(include_forming=True)["volume"].to_list() == [5]
