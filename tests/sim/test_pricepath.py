"""The seeded price path and the bars: ticks match bars, random access, aligned buckets, no future data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest

from pxkit.enums import BarUnit
from pxkit.hours import globex_open, sessions_between
from pxkit.models import Bar, Contract
from pxkit.sim.clock import DEFAULT_START
from pxkit.sim.market import Market
from pxkit.sim.pricepath import EPOCH, EPOCH_US, BarArrays, PricePath, Ticks
from pxkit.times import from_us, to_us

MNQ = "CON.F.US.MNQ.H26"
NOW = to_us(DEFAULT_START)  # Monday 2026-03-02 14:30 UTC
SEC, MIN = 1_000_000, 60_000_000
HOUR, DAY = 60 * MIN, 1440 * MIN
SECOND, MINUTE, HOUR_U, DAY_U, WEEK, MONTH = (BarUnit(u) for u in range(1, 7))
Row = tuple[int, int, int, int, int, int]
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> int:
    return to_us(datetime(*args, tzinfo=UTC))


MIDNIGHT = utc(2026, 3, 2)


def market(seed: int = 1) -> Market:
    return Market(seed, DEFAULT_START)


def path(seed: int = 1, contract: str = MNQ) -> PricePath:
    """A fresh path (fresh caches) of a contract's product."""
    return market(seed).path(contract)


def rows(b: BarArrays) -> list[Row]:
    return list(zip(*(a.tolist() for a in (b.start, b.open, b.high, b.low, b.close, b.volume)), strict=True))


def tick_rows(t: Ticks) -> list[Row]:
    data = zip(t.time.tolist(), t.price.tolist(), t.size.tolist(), strict=True)
    return [(tm, p, p, p, p, s) for tm, p, s in data]


def bar_ticks(bar: Bar, contract: Contract) -> Row:
    """A Market bar back in (start us, prices in ticks, volume)."""
    prices = (contract.to_ticks(p) for p in (bar.open, bar.high, bar.low, bar.close))
    return (to_us(bar.timestamp), *prices, bar.volume)


def aggregate(data: list[Row], bucket: Callable[[int], int]) -> list[Row]:
    """Group ascending rows by bucket(start): first open, max high, min low, last close, summed volume."""
    out: list[Row] = []
    for start, o, h, lo, c, v in data:
        key = bucket(start)
        if out and out[-1][0] == key:
            k, o0, h0, l0, _, v0 = out[-1]
            out[-1] = (k, o0, max(h0, h), min(l0, lo), c, v0 + v)
        else:
            out.append((key, o, h, lo, c, v))
    return out


def every(width_us: int) -> Callable[[int], int]:
    return lambda t: t - t % width_us


def trading_day_open(t: int, week: bool = False) -> int:
    """The 18:00 New York that opened t's trading day (or, for a week, the Sunday one before it)."""
    local = from_us(t).astimezone(NEW_YORK)
    eve = local.date() - timedelta(days=local.hour < 18)
    if week:
        eve -= timedelta(days=(eve.weekday() + 1) % 7)
    return to_us(datetime.combine(eve, time(18), NEW_YORK))


def calendar(unit: BarUnit, n: int = 1) -> Callable[[int], int]:
    """Bucket start of a time by datetime arithmetic (hour: n-hour steps from UTC midnight; day, week: n=1)."""
    @cache
    def bucket(t: int) -> int:
        if unit in (DAY_U, WEEK):
            return trading_day_open(t, week=unit is WEEK)
        d = from_us(t).replace(minute=0, second=0, microsecond=0)
        if unit is HOUR_U:
            return to_us(d.replace(hour=d.hour - d.hour % n))
        return to_us(d.replace(day=1, hour=0))
    return lambda t: bucket(t - t % HOUR)


def at_18_new_york(d: datetime, weekday: int | None = None) -> bool:
    local = d.astimezone(NEW_YORK)
    return local.time() == time(18) and weekday in (None, local.weekday())


@pytest.mark.parametrize("contract", [MNQ, "CON.F.US.MCLE.H26", "CON.F.US.YM.H26"])
@pytest.mark.parametrize("when", [EPOCH_US, utc(2024, 2, 29, 12, 34), MIDNIGHT - MIN, MIDNIGHT, NOW - MIN],
                         ids=["epoch", "leap-day", "day-end", "day-start", "now"])
def test_the_ticks_of_a_minute_hit_its_bar_exactly(contract, when):
    p, m = path(contract=contract), market()
    day, row = divmod((when - EPOCH_US) // MIN, 1440)
    bars = p.minutes(day)
    ticks = p.ticks_of_minute(day * 1440 + row)
    times = ticks.time.tolist()
    assert times[0] == when and times == sorted(times) and times[-1] < when + MIN
    price = ticks.price
    assert (price[0], price.max(), price.min(), price[-1], ticks.size.sum(), len(ticks)) == (
        bars.open[row], bars.high[row], bars.low[row], bars.close[row], bars.volume[row], bars.count[row])
    assert tick_rows(m.ticks_between(contract, when - 1, when + MIN - 1)) == tick_rows(ticks)
    if row:  # consecutive minutes chain: each opens at the previous close
        assert bars.open[row] == bars.close[row - 1]


WINDOW = (NOW - 210 * MIN, NOW - 90 * MIN)  # 11:00 - 13:00, aligned for every unit below


@pytest.mark.parametrize(("unit", "n"), [(MINUTE, 1), (MINUTE, 15), (HOUR_U, 1), (SECOND, 10), (DAY_U, 1)],
                         ids=["minute", "15-minutes", "hour", "10-seconds", "day"])
def test_bars_are_random_access(unit, n):
    lo, hi = WINDOW if unit is not DAY_U else (MIDNIGHT - 20 * DAY, MIDNIGHT - 10 * DAY)
    alone = rows(path().bars(lo, hi, NOW, unit, n))
    pad = 5 * DAY if unit is DAY_U else 2 * HOUR
    larger = [r for r in rows(path().bars(lo - pad, NOW, NOW, unit, n)) if lo <= r[0] < hi]
    busy = path()
    for other in ((NOW - 400 * DAY, NOW - 400 * DAY + HOUR), (hi - HOUR, NOW), (lo - 2 * HOUR, lo + HOUR)):
        busy.bars(*other, NOW, MINUTE, 1)
        busy.bars(*other, NOW, unit, n)
    busy.ticks_between(lo - 5 * MIN, lo + 5 * MIN)
    later = path().bars(lo, hi, NOW + 30 * DAY, unit, n)  # a past window does not change as time goes on
    assert len(alone) >= 2 and alone == larger == rows(busy.bars(lo, hi, NOW, unit, n)) == rows(later)


def test_second_bars_aggregate_to_the_minute_bars():
    p, (lo, hi) = path(), WINDOW
    seconds = rows(p.bars(lo, hi, NOW, SECOND, 1))
    minutes = rows(p.bars(lo, hi, NOW, MINUTE, 1))
    assert len(minutes) == 120 and len(seconds) > len(minutes)
    assert aggregate(seconds, every(MIN)) == minutes == rows(p.bars(lo, hi, NOW, SECOND, 60))
    assert aggregate(tick_rows(p.ticks_between(lo - 1, hi - 1)), every(SEC)) == seconds


@pytest.mark.parametrize(("unit", "n", "lo", "hi", "aligned"), [
    (HOUR_U, 1, utc(2026, 2, 26), utc(2026, 2, 28, 6), lambda d: (d.minute, d.second) == (0, 0)),
    (HOUR_U, 4, utc(2026, 2, 26), utc(2026, 2, 28), lambda d: (d.hour % 4, d.minute, d.second) == (0, 0, 0)),
    (DAY_U, 1, utc(2026, 2, 1, 23), utc(2026, 2, 19, 23), at_18_new_york),
    (WEEK, 1, utc(2026, 1, 4, 23), utc(2026, 3, 1, 23), lambda d: at_18_new_york(d, weekday=6)),
    (MONTH, 1, utc(2025, 11, 1), utc(2026, 3, 1), lambda d: (d.day, d.hour, d.minute) == (1, 0, 0)),
], ids=["hour", "4-hours", "day", "week", "month"])
def test_calendar_buckets_are_aligned_and_aggregate_the_minute_bars(unit, n, lo, hi, aligned):
    p = path()
    got = rows(p.bars(lo, hi, NOW, unit, n))
    assert got == aggregate(rows(p.bars(lo, hi, NOW, MINUTE, 1)), calendar(unit, n))
    assert len(got) >= 3 and all(aligned(from_us(r[0])) for r in got)
    assert got[0][0] == lo and all(r[0] < hi for r in got)
    assert rows(p.bars(lo + 17 * MIN, hi, NOW, unit, n)) == got[1:]  # a bucket starting before start: out
    bars = market().bars(MNQ, lo, hi, NOW, unit, n, include_partial=False)
    assert [b.timestamp for b in bars] == [from_us(r[0]) for r in got]


@pytest.mark.parametrize(("unit", "n", "span"), [
    (SECOND, 5, 10 * MIN), (MINUTE, 1, HOUR), (MINUTE, 15, 4 * HOUR), (HOUR_U, 1, DAY), (DAY_U, 1, 8 * DAY)],
    ids=["5-seconds", "minute", "15-minutes", "hour", "day"])
def test_bars_end_at_now_and_the_forming_bar_is_optional(unit, n, span):
    m, now = market(), NOW + 37 * SEC + 500_000
    contract = m.contract(MNQ)
    width = {SECOND: SEC, MINUTE: MIN, HOUR_U: HOUR, DAY_U: DAY}[unit] * n  # no DST change in these days
    bucket = calendar(DAY_U) if unit is DAY_U else every(width)
    forming = bucket(now)
    with_partial = m.bars(MNQ, now - span, now + DAY, now, unit, n, include_partial=True)
    closed = m.bars(MNQ, now - span, now + DAY, now, unit, n, include_partial=False)
    assert with_partial[:-1] == closed and len(closed) >= 4
    previous = forming - (3 * DAY if unit is DAY_U else width)  # NOW is a Monday: Friday's trading day before it
    assert to_us(with_partial[-1].timestamp) == forming and to_us(closed[-1].timestamp) == previous
    expected = aggregate(tick_rows(m.ticks_between(MNQ, forming - 1, now)), lambda t: forming)
    assert [bar_ticks(with_partial[-1], contract)] == expected
    assert contract.to_ticks(with_partial[-1].close) == m.last_trade(MNQ, now)[0]
    full = path().bars(forming, forming + width, forming + width, unit, n)
    assert with_partial[-1].volume < full.volume[0]  # the forming bar really stops at now


def test_different_seeds_give_different_paths():
    one, again, two = path(1), path(1), path(2)
    lo, hi = NOW - DAY, NOW
    assert rows(one.bars(lo, hi, NOW, MINUTE, 1)) == rows(again.bars(lo, hi, NOW, MINUTE, 1))
    assert rows(one.bars(lo, hi, NOW, MINUTE, 1)) != rows(two.bars(lo, hi, NOW, MINUTE, 1))
    assert [one.day_open(d) for d in range(30)] != [two.day_open(d) for d in range(30)]
    assert tick_rows(one.ticks_between(NOW - MIN, NOW)) != tick_rows(two.ticks_between(NOW - MIN, NOW))
    assert market(1).last_trade(MNQ, NOW) != market(2).last_trade(MNQ, NOW)


@pytest.mark.parametrize("contract", [c.id for c in market().contracts if c.active_contract])
def test_bar_prices_are_floats_on_the_contract_grid(contract):
    m = market()
    spec = m.contract(contract)
    bars = m.bars(contract, NOW - 3 * HOUR, NOW, NOW, MINUTE, 1, True) + m.bars(
        contract, NOW - 20 * DAY, NOW, NOW, DAY_U, 1, True)
    days = [o for o, _ in sessions_between(from_us(NOW - 20 * DAY), from_us(NOW)) if to_us(o) >= NOW - 20 * DAY]
    assert len(days) == 13  # 20 days back from a Monday: three weekends and Washington's Birthday are closed
    assert len(bars) == 180 + len(days)
    for b in bars:
        prices = (b.open, b.high, b.low, b.close)
        assert all(type(x) is float and spec.on_grid(x) for x in prices), (b, spec.tick_size)
        assert b.low <= min(b.open, b.close) and max(b.open, b.close) <= b.high
        assert type(b.volume) is int and b.volume > 0


@pytest.mark.parametrize(("n", "count"), [(1, 19 * 23 * 60 + 930), (15, 19 * 23 * 4 + 62)])
def test_a_30_day_window_has_a_bar_for_every_open_bucket_once_in_order(n, count):
    starts = path().bars(NOW - 30 * DAY, NOW, NOW, MINUTE, n).start.tolist()
    opens = sorted({t - t % (n * MIN) for t in range(NOW - 30 * DAY, NOW, MIN) if globex_open(from_us(t))})
    # from Saturday 2026-01-31: 19 sessions of 23 hours (Washington's Birthday closed), then 15.5 hours of Monday's
    assert starts == opens and len(starts) == count
    assert starts[0] == utc(2026, 2, 1, 23) and starts[-1] == NOW - n * MIN
    if n > 1:  # the same through Market.bars (slow per bar, so only the 15-minute window)
        bars = market().bars(MNQ, NOW - 30 * DAY, NOW, NOW, MINUTE, n, include_partial=False)
        assert [to_us(b.timestamp) for b in bars] == starts


def test_the_path_starts_at_its_epoch():
    p = path()
    assert EPOCH.weekday() == 0
    first = p.bars(EPOCH_US - DAY, EPOCH_US + 2 * MIN, NOW, MINUTE, 1)
    assert first.start.tolist() == [EPOCH_US, EPOCH_US + MIN]
    assert len(p.ticks_between(EPOCH_US - DAY, EPOCH_US - 1)) == 0



@pytest.mark.parametrize(("unit", "cut"), [(MINUTE, 5 * MIN + 30 * SEC), (HOUR_U, 90 * MIN)],
                         ids=["minute", "hour"])
def test_a_window_ending_inside_a_bar_still_returns_the_whole_bar(unit, cut):
    p, lo = path(), NOW - 150 * MIN  # 12:00, aligned for both units
    whole = [r for r in rows(p.bars(lo, NOW, NOW, unit, 1)) if r[0] < lo + cut]
    assert rows(p.bars(lo, lo + cut, NOW, unit, 1)) == whole


@pytest.mark.parametrize(("lo", "opens"), [
    (utc(2026, 3, 5), [(5, 23), (8, 22), (9, 22), (10, 22), (11, 22)]),  # DST starts on Sunday 2026-03-08
    (utc(2026, 10, 29), [(29, 22), (1, 23), (2, 23), (3, 23), (4, 23)]),  # DST ends on Sunday 2026-11-01
], ids=["dst-start", "dst-end"])
def test_daily_bars_follow_the_new_york_trading_day_across_dst(lo, opens):
    p, now = path(), lo + 10 * DAY
    daily = rows(p.bars(lo, lo + 7 * DAY, now, DAY_U, 1))
    starts = [r[0] for r in daily]
    assert [(from_us(t).day, from_us(t).hour) for t in starts] == opens  # UTC hour of 18:00 New York
    assert all(at_18_new_york(from_us(t)) for t in starts)
    for bar in daily:  # a day is every minute from its 18:00 to 17:00 New York, 23 hours whatever the offset
        end = bar[0] + 23 * HOUR
        minutes = rows(p.bars(bar[0], end + HOUR, now, MINUTE, 1))
        assert [r[0] for r in minutes] == list(range(bar[0], end, MIN))
        assert [bar] == aggregate(minutes, lambda t, start=bar[0]: start)
    bars = market().bars(MNQ, lo, lo + 7 * DAY, now, DAY_U, 1, include_partial=False)
    assert [to_us(b.timestamp) for b in bars] == starts


def test_weeks_are_seven_trading_days_from_sunday_18_00_new_york():
    p, lo, now = path(), utc(2026, 2, 22, 23), utc(2026, 3, 30)
    weekly = rows(p.bars(lo, utc(2026, 3, 22), now, WEEK, 1))
    assert [r[0] for r in weekly] == [lo, utc(2026, 3, 1, 23), utc(2026, 3, 8, 22), utc(2026, 3, 15, 22)]
    daily = rows(p.bars(lo, utc(2026, 3, 22, 22), now, DAY_U, 1))
    assert len(daily) == 4 * 5 and weekly == aggregate(daily, calendar(WEEK))
    pairs = (lo, utc(2026, 3, 8, 22))  # two-week buckets count from the path's first week, 2020-01-05
    two = rows(p.bars(lo - 7 * DAY, utc(2026, 3, 22), now, WEEK, 2))
    assert two == aggregate(weekly, lambda t: max(s for s in pairs if s <= t))
