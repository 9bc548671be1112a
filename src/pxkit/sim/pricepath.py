"""Seeded, random-access price path of one product: day opens -> minute bars -> trade ticks.

Every level is derived from the one above with its own seeded generator, so any past window can be
rebuilt on demand and always agrees with what was streamed: the ticks of a minute hit exactly that
minute's open, high, low, close and volume. Prices are integers in ticks. The path is generated in UTC
days; daily bars and the quote's session follow the CME trading day, which opens at 18:00 New York. The market
keeps Globex hours (`pxkit.hours`): a minute outside a session has no trades and no bar, while the walk goes on
underneath, so the market reopens where it has drifted to.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np

from ..enums import BarUnit, TradeType
from ..hours import session_bounds, sessions_between
from .instruments import ProductSpec
from .lru import WeightedLru

EPOCH = datetime(2020, 1, 6, tzinfo=UTC)  # a Monday; the path starts here
EPOCH_US = int(EPOCH.timestamp() * 1_000_000)
MINUTE_US = 60_000_000
DAY_MINUTES = 1440
DAY_US = DAY_MINUTES * MINUTE_US
MAX_DAYS = 8192
_UNIT_SECONDS = {BarUnit.SECOND: 1, BarUnit.MINUTE: 60, BarUnit.HOUR: 3600}
_TRADING_DAYS = {BarUnit.DAY: 1, BarUnit.WEEK: 7}  # trading days per bucket of one unit
_EPOCH_DAY = EPOCH_US // DAY_US  # the Monday trading day of EPOCH: multi-day and weekly buckets count from it
TICK_CACHE_BUDGET = 500_000  # ticks of generated minutes kept per product (~12 MB), whatever the trade rate
RUN_CACHE_BUDGET = 250_000  # ticks of running high/low/volume kept per product (~6 MB)
_ENTRY_WEIGHT = 24  # a cached minute's fixed overhead, counted in ticks


@dataclass(frozen=True, slots=True)
class MinuteBars:
    """One UTC day of minute bars (1440 rows, prices in ticks), the unit the path is generated in."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    count: np.ndarray  # trades in the minute (0 outside the trading sessions)


@dataclass(frozen=True, slots=True)
class Ticks:
    """Trade ticks: times (us since the Unix epoch), prices (ticks), sizes and aggressor sides."""

    time: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray

    def __len__(self) -> int:
        return len(self.time)


@dataclass(frozen=True, slots=True)
class BarArrays:
    """Aggregated bars, ascending: bucket start (us) and OHLCV (prices in ticks)."""

    start: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class PricePath:
    """The seeded path of one contract: pinned to its daily opens, with its own prints seeded by `key`."""

    def __init__(
        self, spec: ProductSpec, key: tuple[int, ...], day_opens: np.ndarray, trades_per_minute: float
    ) -> None:
        self.spec = spec
        self._key = key
        self.trades_per_minute = float(trades_per_minute)
        self._minute_sigma = spec.daily_vol * spec.base_price / spec.tick_size / math.sqrt(DAY_MINUTES)
        self._day_open = day_opens
        self.minutes = lru_cache(maxsize=256)(self._minutes)
        self.ticks_of_minute = WeightedLru(self._ticks_of_minute, lambda t: len(t) + _ENTRY_WEIGHT, TICK_CACHE_BUDGET)
        self.tick_runs = WeightedLru(self._tick_runs, lambda r: len(r[0]) + _ENTRY_WEIGHT, RUN_CACHE_BUDGET)
        self.session_before = lru_cache(maxsize=256)(self._session_before)

    # ------------------------------------------------------------------ generation

    def day_open(self, day: int) -> int:
        return int(self._day_open[day])

    def _minutes(self, day: int) -> MinuteBars:
        rng = np.random.default_rng([*self._key, 1, day])
        count = rng.poisson(self.trades_per_minute, DAY_MINUTES) + 4
        volume = count + rng.poisson(0.6 * count)
        start, target = self.day_open(day), self.day_open(day + 1)
        walk = np.cumsum(rng.normal(0.0, self._minute_sigma, DAY_MINUTES))
        walk -= np.arange(1, DAY_MINUTES + 1) / DAY_MINUTES * (walk[-1] - (target - start))
        close = start + np.rint(walk).astype(np.int64)
        close[-1] = target
        open_ = np.concatenate(([start], close[:-1]))
        wick_up = np.rint(np.abs(rng.normal(0.0, 0.6 * self._minute_sigma, DAY_MINUTES))).astype(np.int64)
        wick_down = np.rint(np.abs(rng.normal(0.0, 0.6 * self._minute_sigma, DAY_MINUTES))).astype(np.int64)
        high = np.maximum(open_, close) + wick_up
        low = np.maximum(np.minimum(open_, close) - wick_down, 1)
        closed = ~open_minutes(day)
        count[closed] = 0
        volume[closed] = 0
        return MinuteBars(open_, high, low, close, volume, count)

    def _ticks_of_minute(self, minute: int) -> Ticks:
        day, row = divmod(minute, DAY_MINUTES)
        bars = self.minutes(day)
        n = int(bars.count[row])
        if n == 0:
            return _NO_TICKS
        o, h, lo, c = (int(a[row]) for a in (bars.open, bars.high, bars.low, bars.close))
        rng = np.random.default_rng([*self._key, 2, minute])
        offsets = np.sort(rng.integers(0, MINUTE_US, n))
        offsets[0] = 0
        first, second = np.sort(rng.choice(np.arange(1, n - 1), 2, replace=False))
        anchors = [(0, o), (int(first), h), (int(second), lo), (n - 1, c)]
        if rng.random() < 0.5:
            anchors[1], anchors[2] = (int(first), lo), (int(second), h)
        price = np.empty(n, dtype=np.int64)
        sigma = max(1.0, (h - lo) / math.sqrt(n))
        for (i_a, p_a), (i_b, p_b) in itertools.pairwise(anchors):
            steps = i_b - i_a
            walk = np.cumsum(rng.normal(0.0, sigma, steps))
            walk -= np.arange(1, steps + 1) / steps * (walk[-1] - (p_b - p_a))
            price[i_a] = p_a
            price[i_a + 1 : i_b + 1] = p_a + np.rint(walk).astype(np.int64)
            price[i_b] = p_b
        np.clip(price, lo, h, out=price)
        size = 1 + rng.multinomial(int(bars.volume[row]) - n, np.full(n, 1.0 / n))
        previous = np.concatenate(([o], price[:-1]))
        flip = rng.integers(0, 2, n)
        side = np.where(price > previous, TradeType.BUY, np.where(price < previous, TradeType.SELL, flip))
        time = EPOCH_US + minute * MINUTE_US + offsets
        return Ticks(time, price, size.astype(np.int64), side.astype(np.int8))

    # ------------------------------------------------------------------ queries

    @staticmethod
    def minute_index(t_us: int) -> int:
        return (t_us - EPOCH_US) // MINUTE_US

    def ticks_between(self, after_us: int, until_us: int) -> Ticks:
        """All ticks with after_us < time <= until_us."""
        first = max(self.minute_index(after_us), 0)
        last = self.minute_index(until_us)
        parts = []
        for minute in range(first, last + 1):
            ticks = self.ticks_of_minute(minute)
            lo = np.searchsorted(ticks.time, after_us, "right") if minute == first else 0
            hi = np.searchsorted(ticks.time, until_us, "right") if minute == last else len(ticks)
            if hi > lo:
                parts.append(Ticks(ticks.time[lo:hi], ticks.price[lo:hi], ticks.size[lo:hi], ticks.side[lo:hi]))
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return _NO_TICKS
        return Ticks(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("time", "price", "size", "side")))

    def last_tick_at(self, t_us: int) -> tuple[int, int]:
        """(price in ticks, aggressor side) of the last trade at or before t_us."""
        minute = self.minute_index(t_us)
        ticks = self.ticks_of_minute(minute)
        i = int(np.searchsorted(ticks.time, t_us, "right")) - 1
        if i >= 0:
            return int(ticks.price[i]), int(ticks.side[i])
        prev = self.ticks_of_minute(self._traded_before(minute))
        return int(prev.price[-1]), int(prev.side[-1])

    def _traded_before(self, minute: int) -> int:
        """The last minute before `minute` that has trades (the market may have been closed for days)."""
        day, row = divmod(minute, DAY_MINUTES)
        while day >= 0:
            traded = np.flatnonzero(self.minutes(day).count[:row])
            if len(traded):
                return day * DAY_MINUTES + int(traded[-1])
            day, row = day - 1, DAY_MINUTES
        raise ValueError("no trade before the start of the path")

    def session_minutes(self, t_us: int) -> tuple[np.ndarray, ...]:
        """Start (us) and OHLCV of the trading day's minutes that finished before t_us's minute."""
        start, _ = trading_day_bounds(t_us)
        return self._minute_columns(max(self.minute_index(start), 0), self.minute_index(t_us))

    def _session_before(self, minute: int) -> tuple[int, int, int, int]:
        """(open, high, low, volume) of the trading day before `minute`; its first minute opens it if none."""
        _, open_, high, low, _, volume = self.session_minutes(EPOCH_US + minute * MINUTE_US)
        if len(open_):
            return int(open_[0]), int(high.max()), int(low.min()), int(volume.sum())
        day, row = divmod(minute, DAY_MINUTES)
        first = int(self.minutes(day).open[row])
        return first, first, first, 0

    def session_stats(self, t_us: int) -> tuple[int, int, int, int]:
        """(open, high, low, volume) of the trading day (from 18:00 New York) up to and including t_us.

        Until the first trade of a trading day, the statistics of the last one that traded stand.
        """
        minute = self.minute_index(t_us)
        open_, high, low, volume = self.session_before(minute)
        ticks = self.ticks_of_minute(minute)
        i = int(np.searchsorted(ticks.time, t_us, "right")) - 1
        if i >= 0:
            run_high, run_low, run_size = self.tick_runs(minute)
            high, low, volume = max(high, int(run_high[i])), min(low, int(run_low[i])), volume + int(run_size[i])
        elif volume == 0:
            return self.session_stats(int(self.ticks_of_minute(self._traded_before(minute)).time[-1]))
        return open_, high, low, volume

    def _tick_runs(self, minute: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Running high, low and volume through each tick of a minute."""
        ticks = self.ticks_of_minute(minute)
        return np.maximum.accumulate(ticks.price), np.minimum.accumulate(ticks.price), np.cumsum(ticks.size)

    def bars(self, start_us: int, end_us: int, now_us: int, unit: BarUnit, unit_number: int) -> BarArrays:
        """Bars whose bucket starts in [start_us, end_us), built from data up to now_us, ascending."""
        until = min(bucket_end(end_us - 1, unit, unit_number), now_us)  # the last bar is whole, not cut at end
        if unit is BarUnit.SECOND:
            src = self.ticks_between(max(start_us, EPOCH_US) - 1, until)
            times, o, h, lo, c, v = src.time, src.price, src.price, src.price, src.price, src.size
        else:
            times, o, h, lo, c, v = self._minute_rows(start_us, until)
        buckets = bucket_starts(times, unit, unit_number)
        keep = (buckets >= start_us) & (buckets < end_us)
        times, buckets, o, h, lo, c, v = (a[keep] for a in (times, buckets, o, h, lo, c, v))
        if not len(times):
            empty = np.empty(0, dtype=np.int64)
            return BarArrays(empty, empty, empty, empty, empty, empty)
        edges = np.flatnonzero(np.diff(buckets)) + 1
        firsts = np.concatenate(([0], edges))
        lasts = np.concatenate((edges - 1, [len(buckets) - 1]))
        return BarArrays(
            buckets[firsts], o[firsts], np.maximum.reduceat(h, firsts), np.minimum.reduceat(lo, firsts),
            c[lasts], np.add.reduceat(v, firsts),
        )

    def _minute_columns(self, first: int, last: int) -> tuple[np.ndarray, ...]:
        """Start (us) and OHLCV of the traded minutes first <= minute < last (minute indexes, first >= 0)."""
        cols: list[list[np.ndarray]] = [[] for _ in range(6)]
        for day in range(first // DAY_MINUTES, (last - 1) // DAY_MINUTES + 1):
            bars = self.minutes(day)
            lo = max(first - day * DAY_MINUTES, 0)
            hi = min(last - day * DAY_MINUTES, DAY_MINUTES)
            traded = lo + np.flatnonzero(bars.count[lo:hi])
            for col, arr in zip(cols, (EPOCH_US + (day * DAY_MINUTES + traded) * MINUTE_US, bars.open[traded],
                                        bars.high[traded], bars.low[traded], bars.close[traded],
                                        bars.volume[traded]), strict=True):
                col.append(arr)
        return tuple(np.concatenate(col) if col else np.empty(0, dtype=np.int64) for col in cols)

    def _minute_rows(self, start_us: int, until_us: int) -> tuple[np.ndarray, ...]:
        """Minute bars from start_us's minute up to until_us; the minute in progress is built from ticks."""
        first_min = max(self.minute_index(start_us), 0)
        last_min = self.minute_index(until_us)  # the minute containing `until`, possibly in progress
        cols = self._minute_columns(first_min, last_min)
        partial = self.ticks_between(EPOCH_US + last_min * MINUTE_US - 1, until_us)
        if len(partial) and last_min >= first_min:
            row = (EPOCH_US + last_min * MINUTE_US, partial.price[0], partial.price.max(), partial.price.min(),
                   partial.price[-1], partial.size.sum())
            cols = tuple(np.append(col, value) for col, value in zip(cols, row, strict=True))
        return cols


_NO_TICKS = Ticks(*(np.empty(0, dtype=np.int64) for _ in range(3)), np.empty(0, dtype=np.int8))


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) + EPOCH_US


@lru_cache(maxsize=512)
def open_minutes(day: int) -> np.ndarray:
    """Which minutes of a UTC day (counted from EPOCH) lie inside a trading session (read-only)."""
    start = EPOCH + timedelta(days=day)
    mask = np.zeros(DAY_MINUTES, dtype=bool)
    for opens, closes in sessions_between(start, start + timedelta(days=1)):
        first = max((_us(opens) - _us(start)) // MINUTE_US, 0)
        mask[first:(_us(closes) - _us(start)) // MINUTE_US] = True
    mask.flags.writeable = False
    return mask


@lru_cache(maxsize=16384)
def _trading_day_open(day: int) -> int:
    """Start (us) of a trading day, days counted from the Unix epoch (a weekend or holiday date too)."""
    return _us(session_bounds(date(1970, 1, 1) + timedelta(days=day))[0])


def _bucket_opens(lo_us: int, hi_us: int, days: int) -> np.ndarray:
    """Starts (us) of the buckets of `days` trading days from one at or before lo_us to one after hi_us.

    Buckets count from EPOCH's trading day, so several days or weeks line up the same in every query.
    """
    first = lo_us // DAY_US
    first -= (first - _EPOCH_DAY) % days
    return np.fromiter(map(_trading_day_open, range(first, hi_us // DAY_US + 2 + days, days)), dtype=np.int64)


def _bucket_around(t_us: int, days: int) -> tuple[int, int]:
    """Start and end (us, exclusive) of the bucket of `days` trading days containing t_us."""
    opens = _bucket_opens(t_us, t_us, days)
    i = int(np.searchsorted(opens, t_us, "right"))
    return int(opens[i - 1]), int(opens[i])


def trading_day_bounds(t_us: int) -> tuple[int, int]:
    """Start and end (us, exclusive) of the trading day containing t_us."""
    return _bucket_around(t_us, 1)


def bucket_end(t_us: int, unit: BarUnit, unit_number: int) -> int:
    """End (us, exclusive) of the aligned bucket containing t_us."""
    if unit in _TRADING_DAYS:
        return _bucket_around(t_us, _TRADING_DAYS[unit] * unit_number)[1]
    start = int(bucket_starts(np.array([t_us], dtype=np.int64), unit, unit_number)[0])
    if unit is BarUnit.MONTH:
        month = np.datetime64(start, "us").astype("datetime64[M]") + unit_number
        return int(month.astype("datetime64[us]").astype(np.int64))
    return start + _UNIT_SECONDS[unit] * unit_number * 1_000_000


def bucket_starts(times_us: np.ndarray, unit: BarUnit, unit_number: int) -> np.ndarray:
    """Start (us) of the aligned bucket each time falls in.

    Seconds, minutes and hours are aligned to the Unix epoch in UTC. A day is the CME trading day: it opens
    at 18:00 New York (DST-aware) and runs to the next 18:00, so it lasts 23, 24 or 25 hours. A week is seven
    whole trading days opening on Sunday at 18:00 New York (the Monday trading day), so daily bars nest in
    weekly ones; several days or weeks are counted from EPOCH's trading day. A month is a calendar month in
    UTC, so it does not nest whole trading days.
    """
    if unit in _TRADING_DAYS:
        if not len(times_us):
            return times_us
        opens = _bucket_opens(int(times_us.min()), int(times_us.max()), _TRADING_DAYS[unit] * unit_number)
        return opens[np.searchsorted(opens, times_us, "right") - 1]
    if unit is BarUnit.MONTH:
        months = times_us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
        months -= months % unit_number
        return months.astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)
    width = _UNIT_SECONDS[unit] * unit_number * 1_000_000
    return times_us - times_us % width
