"""Live tick-to-bar aggregation: exchange-stamped, aligned OHLCV bars for many timeframes, O(1) per trade."""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from ..client.bars import BAR_SCHEMA, UNIT_SPELLINGS, unit_named
from ..enums import BarUnit
from ..errors import InputError
from ..models import Bar, tick_decimals
from ..times import UNIX_EPOCH, from_us, to_us

_log = logging.getLogger(__name__)

_NEVER = -(1 << 62)  # bucket bounds before the first trade: every trade opens a bucket
_SECONDS = {BarUnit.SECOND: 1, BarUnit.MINUTE: 60, BarUnit.HOUR: 3600, BarUnit.DAY: 86400}  # units built live
_PATTERN = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s*$")
# Trades no bar can hold are refused (counted in `rejected`): prices beyond 2**53 ticks or not finite, sizes below
# 0 or beyond 2**31 contracts, times outside 1900-9000 (a trading day's bounds must exist as datetimes).
_MAX_TICKS = 2**53
_MAX_SIZE = 2**31
_MIN_US, _MAX_US = to_us(datetime(1900, 1, 1, tzinfo=UTC)), to_us(datetime(9000, 1, 1, tzinfo=UTC))

Event = tuple[Literal["closed", "updated"], Bar]


def _refused(price: float, size: float, t: int, price_limit: float, where: str) -> bool:
    """True (and logged) for a trade or quote no bar can hold; NaN fails every comparison, so it is refused too."""
    if -price_limit < price < price_limit and 0 <= size <= _MAX_SIZE and _MIN_US <= t < _MAX_US:
        return False
    _log.warning("%s: refused a trade or quote no bar can hold (price %r, size %r, time %d us)", where, price, size, t)
    return True

_Raw = tuple[int, int, int, int, int, float]  # bucket start (us), open, high, low, close (ticks), volume


class Timeframe(NamedTuple):
    """A bar size: unit, count and nominal length in seconds (a trading day is 86,400 nominally)."""

    unit: BarUnit
    count: int
    seconds: int

    @property
    def name(self) -> str:
        """Canonical spelling: `1sec`, `5min`, `4hr`, `1day`."""
        return f"{self.count}{UNIT_SPELLINGS[self.unit][0]}"

    @classmethod
    def parse(cls, spec: str | Timeframe) -> Timeframe:
        """`"5min"` -> Timeframe(MINUTE, 5, 300): a count and a unit spelled as `get_bars` takes it
        (client.bars.UNIT_SPELLINGS), from seconds to `1day`."""
        if isinstance(spec, Timeframe):
            return spec
        match = _PATTERN.match(spec) if isinstance(spec, str) else None
        if match is None or int(match.group(1)) < 1:
            raise InputError(f"unknown timeframe {spec!r}; use e.g. '1sec', '5min', '4hr' or '1day'")
        try:
            count, unit = int(match.group(1)), unit_named(match.group(2))
        except InputError as exc:
            raise InputError(f"timeframe {spec!r}: {exc}") from None
        if unit not in _SECONDS:
            raise InputError(f"timeframe {spec!r}: bars are built live up to '1day'; weekly and monthly bars come "
                             f"from get_bars(unit={unit.name.lower()!r})")
        seconds = _SECONDS[unit]
        if unit is BarUnit.DAY and count != 1:
            raise InputError(f"timeframe {spec!r}: only '1day' is supported (trading days are not contiguous)")
        return cls(unit, count, seconds * count)


class BarSeries:
    """Closed bars of one timeframe in a bounded ring, plus the bar forming now.

    - Bars are stamped with their bucket start derived from the trade's own (exchange) timestamp; the wall
      clock is never read. Intraday buckets are multiples of their length since the Unix epoch (UTC), as
      the gateway and the simulator align them; `1day` buckets start at `day_start` in `day_tz`
      (18:00 America/New_York by default, DST-correct, as the gateway and the simulator do; other zones
      and starts, e.g. `day_tz="UTC", day_start=time(0)`, give calendar days).
    - A bucket without trades yields no bar (the gateway has none either); `close_due` closes the forming
      bar once its end has passed, so quiet periods close on time.
    - Late trades: a trade stamped inside the forming bucket is applied whatever its arrival order (close
      follows the latest timestamp); one stamped before it belongs to a bar already closed, so it is not
      applied (closed bars are final) but counted in `late` / `late_volume` and logged at debug.
    - Prices are kept as integer ticks and rounded to the tick grid on the way out; quotes only set
      `last_price`. Per trade the work is a few integer compares; polars is touched only by `frame()`.
    """

    __slots__ = ("_c", "_decimals", "_dyadic", "_end", "_h", "_l", "_last", "_live", "_o", "_open", "_price_limit",
                 "_ring", "_start", "_start_dt", "_t", "_v", "_width", "day_start", "day_tz", "late", "late_volume",
                 "max_bars", "rejected", "tick_size", "timeframe")

    def __init__(self, timeframe: str | Timeframe, max_bars: int, tick_size: float, *, day_start: time = time(18, 0),
                 day_tz: str = "America/New_York") -> None:
        if not isinstance(max_bars, int) or max_bars < 1:
            raise InputError(f"max_bars must be a whole number >= 1, got {max_bars!r}")
        if not tick_size or tick_size <= 0:
            raise InputError(f"tick_size must be positive, got {tick_size!r}")
        try:
            self.day_tz = ZoneInfo(day_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone {day_tz!r}") from None
        self.timeframe = Timeframe.parse(timeframe)
        self.max_bars = max_bars
        self.tick_size = float(tick_size)
        self.day_start = day_start
        self._decimals = tick_decimals(self.tick_size)
        self._price_limit = _MAX_TICKS * self.tick_size
        den = self.tick_size.as_integer_ratio()[1]
        self._dyadic = den & (den - 1) == 0 and den <= 1 << 16  # ticks * 0.25 is exact: no rounding needed
        self._width = 0 if self.timeframe.unit is BarUnit.DAY else self.timeframe.seconds * 1_000_000
        self._ring: deque[_Raw] = deque(maxlen=max_bars)
        self._start = self._end = _NEVER  # bucket of the forming bar (start == end once closed)
        self._start_dt = UNIX_EPOCH
        self._open = self._live = False
        self._o = self._h = self._l = self._c = self._t = 0
        self._v: float = 0
        self._last: tuple[int, int] | None = None  # (price in ticks, us) of the last trade or quote
        self.late = 0
        self.late_volume: float = 0
        self.rejected = 0  # trades and quotes refused (see _refused)

    # ------------------------------------------------------------------ alignment

    def bucket(self, t_us: int) -> tuple[int, int]:
        """[start, end) in microseconds of the bucket containing t_us."""
        width = self._width
        if width:
            start = t_us - t_us % width
            return start, start + width
        local = from_us(t_us).astimezone(self.day_tz)
        day = local.date()
        start = to_us(datetime.combine(day, self.day_start, self.day_tz))
        if start > t_us:
            day -= timedelta(days=1)
            start = to_us(datetime.combine(day, self.day_start, self.day_tz))
        return start, to_us(datetime.combine(day + timedelta(days=1), self.day_start, self.day_tz))

    # ------------------------------------------------------------------ input

    def add(self, p: int, size: float, t: int) -> _Raw | Literal[False] | None:
        """Hot path: price in ticks, timestamp in us. Returns the raw bar it closed, None, or False if late."""
        if t >= self._end or t < self._start:
            return self._edge(p, size, t)
        if p > self._h:
            self._h = p
        elif p < self._l:
            self._l = p
        if t >= self._t:
            self._c = p
            self._t = t
        self._v += size
        return None

    def _edge(self, p: int, size: float, t: int) -> _Raw | Literal[False] | None:
        if t < self._start:
            self.late += 1
            self.late_volume += size
            _log.debug("%s: late trade at %s before bucket %s ignored (%d so far)", self.timeframe.name,
                       from_us(t), from_us(self._start), self.late)
            return False
        closed = self._close() if self._open else None
        self._live = True
        self._start, self._end = self.bucket(t)
        self._start_dt = from_us(self._start)
        self._o = self._h = self._l = self._c = p
        self._t = t
        self._v = size
        self._open = True
        return closed

    def _close(self) -> _Raw:
        raw = (self._start, self._o, self._h, self._l, self._c, self._v)
        self._ring.append(raw)
        self._open = False
        self._start = self._end  # anything older than the closed bucket's end is late now
        return raw

    def on_trade(self, price: float, size: float, ts: datetime | int) -> list[Event]:
        """Apply one trade (exchange timestamp); returns ("closed", bar) if a bar closed, then ("updated", bar).

        A trade no bar can hold (see `_refused`) is counted in `rejected` and changes nothing.
        """
        t = to_us(ts)
        if _refused(price, size, t, self._price_limit, self.timeframe.name):
            self.rejected += 1
            return []
        p = round(price / self.tick_size)
        self._last = (p, t)
        closed = self.add(p, size, t)
        if closed is False:
            return []
        forming = self._forming_bar()
        if closed is None:
            return [("updated", forming)]
        return [("closed", self._bar(closed)), ("updated", forming)]

    def on_quote(self, price: float, ts: datetime | int) -> None:
        """Record the last price of a quote; bars (high, low, volume) are built from trades only."""
        t = to_us(ts)
        if _refused(price, 0, t, self._price_limit, self.timeframe.name):
            self.rejected += 1
            return
        self._last = (round(price / self.tick_size), t)

    def close_due(self, now_ts: datetime | int) -> list[Bar]:
        """Close the forming bar if its bucket ended at or before now (pass exchange/gateway time, not ahead)."""
        if self._open and to_us(now_ts) >= self._end:
            return [self._bar(self._close())]
        return []

    def seed(self, bars: Iterable[Bar]) -> int:
        """Preload closed history older than anything built live; returns how many bars were taken.

        Bars must be aligned to this series' buckets; bars at or after the first live bucket are skipped
        (live data wins), and trades stamped before the end of the newest seeded bar count as late.
        """
        limit = self._start if self._live else None
        merged = {raw[0]: raw for raw in self._ring}
        taken = 0
        for bar in bars:
            start = to_us(bar.timestamp)
            if self.bucket(start)[0] != start:
                raise InputError(f"bar at {bar.timestamp.isoformat()} is not aligned to {self.timeframe.name}")
            if (limit is not None and start >= limit) or start in merged:
                continue
            ticks = [round(x / self.tick_size) for x in (bar.open, bar.high, bar.low, bar.close)]
            merged[start] = (start, *ticks, bar.volume)
            taken += 1
        self._ring.clear()
        self._ring.extend(sorted(merged.values())[-self.max_bars:])
        if not self._live and self._ring:
            self._start = self._end = self.bucket(self._ring[-1][0])[1]
        return taken

    def restore(self, bars: Iterable[Bar], now: datetime | int) -> list[Bar]:
        """Take the gateway's history (ascending, the bar forming at `now` last if any) as the truth for the
        buckets it covers: closed bars replace what was built for them, a forming one becomes the bar that live
        trades continue. Used at start-up and after a reconnect, when live trades may have been missed.
        Only the newest bar can be forming: one followed by a newer bar is closed, even when its bucket ends
        after `now` (the gateway answered later than `now`, when the next bucket had begun).
        Returns the bars closed by the history that were not closed here before (NEW_BAR candidates).
        """
        now_us = to_us(now)
        merged = {raw[0]: raw for raw in self._ring}
        newest = self._ring[-1][0] if self._ring else _NEVER
        fresh: list[Bar] = []
        history = list(bars)
        forming: _Raw | None = None
        for i, bar in enumerate(history):
            start = to_us(bar.timestamp)
            begin, end = self.bucket(start)
            if begin != start:
                raise InputError(f"bar at {bar.timestamp.isoformat()} is not aligned to {self.timeframe.name}")
            raw = (start, *(round(x / self.tick_size) for x in (bar.open, bar.high, bar.low, bar.close)), bar.volume)
            if end > now_us and i == len(history) - 1:
                forming = raw
                continue
            if start > newest and start not in merged:
                fresh.append(bar)
            merged[start] = raw
        self._ring.clear()
        self._ring.extend(sorted(merged.values())[-self.max_bars:])
        covered = self.bucket(self._ring[-1][0])[1] if self._ring else _NEVER
        if forming is not None:
            self._start, self._end = self.bucket(forming[0])
            self._start_dt = from_us(forming[0])
            _, self._o, self._h, self._l, self._c, self._v = forming
            self._t = forming[0]
            self._open = True
        elif self._open and self._start < covered:  # the bar forming here is closed in the history
            self._open = False
            self._start = self._end = covered
        elif not self._open:
            self._start = self._end = max(self._end, covered)
        self._live = True
        return fresh

    # ------------------------------------------------------------------ output

    @property
    def last_price(self) -> float | None:
        """Price of the last trade or quote given to this series, on the tick grid."""
        return None if self._last is None else self._price(self._last[0])

    @property
    def last_ts(self) -> datetime | None:
        """Exchange timestamp of the last trade or quote given to this series."""
        return None if self._last is None else from_us(self._last[1])

    def _price(self, ticks: int) -> float:
        return ticks * self.tick_size if self._dyadic else round(ticks * self.tick_size, self._decimals)

    def _bar(self, raw: _Raw, start: datetime | None = None) -> Bar:
        stamp = from_us(raw[0]) if start is None else start
        if self._dyadic:
            size = self.tick_size
            return Bar(stamp, raw[1] * size, raw[2] * size, raw[3] * size, raw[4] * size, int(raw[5]))
        price = self._price
        return Bar(stamp, price(raw[1]), price(raw[2]), price(raw[3]), price(raw[4]), int(raw[5]))

    def _forming_bar(self) -> Bar:
        return self._bar((self._start, self._o, self._h, self._l, self._c, self._v), self._start_dt)

    @property
    def forming(self) -> Bar | None:
        """The bar still forming, or None (before the first trade, or after close_due closed it)."""
        return self._forming_bar() if self._open else None

    def __len__(self) -> int:
        return len(self._ring)

    def bars(self, count: int | None = None, include_forming: bool = False) -> list[Bar]:
        """The newest `count` bars (all when None), ascending, optionally ending with the forming bar."""
        raws = self._raws(count, include_forming)
        return [self._bar(raw) for raw in raws]

    def _raws(self, count: int | None, include_forming: bool) -> list[_Raw]:
        raws = list(self._ring)
        if include_forming and self._open:
            raws.append((self._start, self._o, self._h, self._l, self._c, self._v))  # a copy, not a view
        if count is not None:
            raws = raws[-count:] if count > 0 else []
        return raws

    def frame(self, count: int | None = None, include_forming: bool = False) -> pl.DataFrame:
        """The newest `count` bars as a polars DataFrame (BAR_SCHEMA), materialised now, ascending."""
        raws = self._raws(count, include_forming)
        cols = list(zip(*raws, strict=True)) if raws else [()] * 6
        names = list(BAR_SCHEMA)
        frame = pl.DataFrame({name: list(col) for name, col in zip(names, cols, strict=True)},
                             schema={"timestamp": pl.Int64, **dict.fromkeys(names[1:5], pl.Int64),
                                     "volume": pl.Float64})
        return frame.select(
            pl.col("timestamp").cast(BAR_SCHEMA["timestamp"]),
            *((pl.col(n) * self.tick_size).round(self._decimals).cast(pl.Float64) for n in names[1:5]),
            pl.col("volume").round(0).cast(pl.Int64),
        )


class MultiTimeframeBars:
    """One BarSeries per timeframe fed from the same trades: conversions once per trade, O(k) fan-out.

    `on_trade` returns only the bars it closed as (timeframe name, Bar); forming bars are read on demand
    (`forming`, `frame(..., include_forming=True)`), so nothing is materialised per tick.
    """

    def __init__(self, timeframes: Iterable[str | Timeframe], tick_size: float, max_bars: int = 2000, *,
                 day_start: time = time(18, 0), day_tz: str = "America/New_York") -> None:
        parsed = [Timeframe.parse(tf) for tf in timeframes]
        if not parsed:
            raise InputError("give at least one timeframe")
        self.series: dict[str, BarSeries] = {}
        for tf in parsed:
            self.series.setdefault(tf.name, BarSeries(tf, max_bars, tick_size, day_start=day_start, day_tz=day_tz))
        self.tick_size = float(tick_size)
        self._price_limit = _MAX_TICKS * self.tick_size
        self._fanout = [(name, s.add, s._bar) for name, s in self.series.items()]
        self._decimals = tick_decimals(self.tick_size)
        self._last_p: int | None = None  # last trade or quote: price in ticks, time in us
        self._last_t = 0
        self.rejected = 0  # trades and quotes refused (see _refused), for every timeframe at once

    def __getitem__(self, timeframe: str | Timeframe) -> BarSeries:
        name = Timeframe.parse(timeframe).name
        try:
            return self.series[name]
        except KeyError:
            raise InputError(f"timeframe {name} is not built here; have {sorted(self.series)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.series)

    def __len__(self) -> int:
        return len(self.series)

    def on_trade(self, price: float, size: float, ts: datetime | int) -> list[tuple[str, Bar]]:
        """Apply one trade to every timeframe; returns the bars it closed, in timeframe order.

        A trade no bar can hold (see `_refused`) is counted in `rejected` and changes nothing.
        """
        t = ts if type(ts) is int else to_us(ts)
        if _refused(price, size, t, self._price_limit, "bars"):
            self.rejected += 1
            return []
        p = round(price / self.tick_size)
        self._last_p = p
        self._last_t = t
        closed: list[tuple[str, Bar]] = []
        for name, add, bar in self._fanout:
            raw = add(p, size, t)
            if raw:
                closed.append((name, bar(raw)))
        return closed

    def on_quote(self, price: float, ts: datetime | int) -> None:
        """Record the last price of a quote; bars (high, low, volume) are built from trades only."""
        t = to_us(ts)
        if _refused(price, 0, t, self._price_limit, "bars"):
            self.rejected += 1
            return
        self._last_p = round(price / self.tick_size)
        self._last_t = t

    @property
    def last_price(self) -> float | None:
        """Price of the last trade or quote, on the tick grid."""
        return None if self._last_p is None else round(self._last_p * self.tick_size, self._decimals)

    @property
    def last_ts(self) -> datetime | None:
        """Exchange timestamp of the last trade or quote."""
        return None if self._last_p is None else from_us(self._last_t)

    def close_due(self, now_ts: datetime | int) -> list[tuple[str, Bar]]:
        """Close every forming bar whose bucket has ended by now."""
        now = to_us(now_ts)
        return [(name, bar) for name, series in self.series.items() for bar in series.close_due(now)]

    def seed(self, timeframe: str | Timeframe, bars: Iterable[Bar]) -> int:
        """Preload history for one timeframe (see BarSeries.seed)."""
        return self[timeframe].seed(bars)

    def restore(self, timeframe: str | Timeframe, bars: Iterable[Bar], now: datetime | int) -> list[Bar]:
        """Install the gateway's history for one timeframe (see BarSeries.restore)."""
        return self[timeframe].restore(bars, now)

    def forming(self, timeframe: str | Timeframe) -> Bar | None:
        return self[timeframe].forming

    def frame(self, timeframe: str | Timeframe, count: int | None = None, include_forming: bool = False
              ) -> pl.DataFrame:
        return self[timeframe].frame(count, include_forming)

    @property
    def late(self) -> dict[str, int]:
        """Late trades per timeframe (stamped before that timeframe's forming bar)."""
        return {name: series.late for name, series in self.series.items()}
