"""`lab.chart(ctx)`: a live candlestick chart of one instrument: volume, indicator lines, own fills, average price."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import traitlets

from ..errors import InputError
from ..events import Event, EventType
from ..hours import DAY_OPEN, NEW_YORK, trading_day
from ..indicators import add_indicators, on_price_scale, vwap
from ..instrument.context import InstrumentContext
from ..models import Trade
from ..payloads import BarEvent
from ..times import to_us
from .widget import INTERVAL, STATIC, LabWidget, Message, side_text

MAX_MARKERS = 300  # fill markers kept, the newest
DEFAULT_INDICATORS = ("sma_50", "ema_20", "bollinger", "vwap")  # the 20-bar SMA is the Bollinger middle already
TIME_ZONE = "America/New_York"  # the zone of the trading day: 18:00 opens it
BASE = ("open", "high", "low", "close", "volume")
OSCILLATORS = ("rsi", "macd", "stoch", "adx", "plus_di", "minus_di", "atr", "obv")  # drawn under the candles
_POSITION_EVENTS = (EventType.POSITION_OPENED, EventType.POSITION_CHANGED, EventType.POSITION_CLOSED)


def chart(ctx: InstrumentContext, timeframe: str = "1min", indicators: Iterable[str | pl.Expr] = DEFAULT_INDICATORS,
          bars: int = 500, time_zone: str = TIME_ZONE) -> Chart:
    """A live chart of `ctx`'s `timeframe` bars (one the suite builds), the newest `bars` of them.

    `indicators` are `pxkit.indicators` specs as `add_indicators` takes them ("sma", "ema_50", "bollinger", "rsi",
    expressions...); "vwap" is the session VWAP, restarting at each 18:00 New York trading day. Price-like lines
    are drawn over the candles, oscillators (RSI, MACD, ...) in a pane below. The time axis reads in `time_zone`
    (an IANA name such as "America/Chicago" or "UTC"). Display the returned widget.
    """
    return Chart(ctx, timeframe, indicators, bars, time_zone)


class Chart(LabWidget):
    """The widget `lab.chart` returns: candles and volume of one timeframe, the indicator lines, the user's fills as
    buy/sell markers and a line at the position's average price.

    The page gets the whole chart as two binary buffers (times, values) when it says hello, then deltas: only the
    bars changed since the last one (the forming bar, bars just closed or repaired), at most one per INTERVAL, each
    with its `seq` and `origin_ms` (wall-clock ms when its first change reached the chart). `updates_sent` counts
    them.
    """

    _esm = STATIC / "chart.js"
    _css = STATIC / "chart.css"
    symbol = traitlets.Unicode().tag(sync=True)
    timeframe = traitlets.Unicode().tag(sync=True)
    bars = traitlets.Int().tag(sync=True)
    tick_size = traitlets.Float().tag(sync=True)
    time_zone = traitlets.Unicode().tag(sync=True)

    def __init__(self, ctx: InstrumentContext, timeframe: str = "1min",
                 indicators: Iterable[str | pl.Expr] = DEFAULT_INDICATORS, bars: int = 500,
                 time_zone: str = TIME_ZONE) -> None:
        if isinstance(bars, bool) or not isinstance(bars, int) or bars < 1:
            raise InputError(f"bars must be a whole number >= 1, got {bars!r}")
        _check_zone(time_zone)
        if isinstance(indicators, str | pl.Expr):
            indicators = [indicators]
        name = ctx.data.bars[timeframe].timeframe.name  # InputError for a timeframe the suite does not build
        self.ctx = ctx
        self._specs = [vwap(by="day") if isinstance(spec, str) and spec == "vwap" else spec for spec in indicators]
        self._closed: tuple[tuple[int, datetime | None], pl.DataFrame] | None = None  # (its key, closed bars)
        empty = add_indicators(_with_day(ctx.data.bars.frame(name, 0)), *self._specs)  # InputError if unknown
        lines = [c for c in empty.columns if c not in ("timestamp", "day", *BASE)]
        self.lines: tuple[str, ...] = tuple(lines)
        self.updates_sent = 0
        self._seq = 0  # of the last delta sent
        self._greeted = False  # a view has asked for the state: deltas are worth sending from then on
        self._since: datetime | None = None  # the earliest bar changed since the last message
        self._origin_ms: float | None = None
        self._fills: dict[int, dict[str, Any]] = {}  # marker changes since the last message, by fill id
        self._markers: OrderedDict[int, dict[str, Any]] = OrderedDict()
        super().__init__(ctx.positions.loop, symbol=ctx.symbol, timeframe=name, bars=bars,
                         tick_size=ctx.instrument_info.tick_size, time_zone=time_zone)
        self._throttle = self.throttle(INTERVAL, self._flush)
        for trade in ctx.positions.trades:
            self._markers[trade.id] = self._marker(trade)
        self._trim_markers()
        for kind in (EventType.NEW_BAR, EventType.BAR_UPDATED):
            self.listen(ctx.event_bus, kind, self._on_bar)
        for kind in _POSITION_EVENTS:
            self.listen(ctx.event_bus, kind, self._on_position)
        ctx.positions.on_fill(self._on_fill)
        self.on_close(lambda: ctx.positions.off_fill(self._on_fill))

    def __repr__(self) -> str:
        return f"Chart({self.symbol} {self.timeframe}, {self.bars} bars)"

    # ------------------------------------------------------------------ what the page is sent

    def frame(self) -> pl.DataFrame:
        """The bars shown, oldest first, ending with the forming bar, with one column per indicator line."""
        return self._shown()

    def _shown(self) -> pl.DataFrame:
        bars = self._closed_bars()
        forming = self.ctx.data.bars[self.timeframe].forming
        if forming is not None:
            row = (forming.timestamp, forming.open, forming.high, forming.low, forming.close, forming.volume,
                   trading_day(forming.timestamp))
            bars = pl.concat([bars, pl.DataFrame([row], schema=bars.schema, orient="row")])
        return add_indicators(bars, *self._specs).tail(self.bars).drop("day")  # eager: 6x faster than lazy here

    def _closed_bars(self) -> pl.DataFrame:
        """Every closed bar kept, with its trading day; built again only when a bar closes or is repaired."""
        series = self.ctx.data.bars[self.timeframe]
        newest = series.bars(1)
        key = (len(series), newest[0].timestamp if newest else None)
        if self._closed is None or self._closed[0] != key:
            self._closed = (key, _with_day(series.frame()))
        return self._closed[1]

    def state_message(self) -> Message:
        """Every bar shown, the markers and the average price; what was pending goes with it."""
        self._greeted = True
        self._since, self._origin_ms = None, None
        self._fills.clear()
        series = [{"name": name, "pane": _pane(name)} for name in self.lines]
        content, buffers = self._table(self._shown())
        content.update(kind="state", seq=self._seq, series=series, limit=self.bars,
                       markers=list(self._markers.values()), avg_price=self.ctx.positions.average_price)
        return content, buffers

    def _table(self, shown: pl.DataFrame) -> Message:
        """Bar times (epoch seconds) as one float64 buffer, the other columns as one float32 buffer, column by
        column, NaN where no value: half the bytes of float64, and prices come back on the tick grid on the page."""
        columns = ["time", *BASE, *self.lines]
        table = (shown.select(pl.col("timestamp").dt.epoch("s").alias("time"), *BASE, *self.lines)
                 .cast(pl.Float64).fill_null(math.nan))
        times = table["time"].to_numpy().tobytes()
        values = b"".join(table[name].cast(pl.Float32).to_numpy().tobytes() for name in columns[1:])
        return {"columns": columns, "rows": table.height}, [times, values]

    def _flush(self) -> bool:
        """Send what changed since the last message as one delta; whether there was any."""
        if self.closed or self._origin_ms is None:  # nothing changed since the last message
            return False
        shown = self._shown()
        content, buffers = self._table(shown.clear() if self._since is None else
                                       shown.filter(pl.col("timestamp") >= self._since))
        self._seq += 1
        content.update(kind="delta", seq=self._seq, origin_ms=self._origin_ms, markers=list(self._fills.values()),
                       avg_price=self.ctx.positions.average_price)
        self._since, self._origin_ms = None, None
        self._fills.clear()
        self.send(content, buffers)
        self.updates_sent += 1
        return True

    def _changed(self) -> None:
        """Something shown changed: send it with the next delta, at most one per INTERVAL."""
        if self._origin_ms is None:
            self._origin_ms = time.time() * 1000
        if self._greeted:
            self._throttle.poke()

    # ------------------------------------------------------------------ what the suite tells the chart

    def _on_bar(self, event: Event[BarEvent]) -> None:
        if event.data.timeframe != self.timeframe:
            return
        if event.type is EventType.NEW_BAR:  # closed, or repaired: the closed bars are read again
            self._closed = None
        stamp = event.data.bar.timestamp
        if self._since is None or stamp < self._since:
            self._since = stamp
        self._changed()

    def _on_position(self, _event: Event[Any]) -> None:
        self._changed()  # the average price goes with every message

    def _on_fill(self, trade: Trade) -> None:
        if trade.voided:
            self._markers.pop(trade.id, None)
            self._fills[trade.id] = {"id": trade.id, "void": True}
        else:
            self._markers[trade.id] = self._fills[trade.id] = self._marker(trade)
            self._trim_markers()
        self._changed()

    def _marker(self, trade: Trade) -> dict[str, Any]:
        """A fill as the page draws it: on the bar its time falls in."""
        start_us = self.ctx.data.bars[self.timeframe].bucket(to_us(trade.creation_timestamp))[0]
        return {"id": trade.id, "time": start_us // 1_000_000, "side": side_text(trade.side),
                "size": trade.size, "price": trade.price}

    def _trim_markers(self) -> None:
        while len(self._markers) > MAX_MARKERS:
            self._markers.popitem(last=False)


def _pane(line: str) -> int:
    """0 for a line drawn over the candles, 1 for one in the pane below: pxkit's oscillators and the TA-Lib
    outputs not on the price's scale."""
    return 1 if line.startswith(OSCILLATORS) or on_price_scale(line) is False else 0


def _check_zone(name: object) -> None:
    """The page formats times in the zone: refuse a name no time zone database knows."""
    try:
        ZoneInfo(name)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZoneInfoNotFoundError):
        raise InputError(f"time_zone must be an IANA time zone name such as 'America/Chicago', got {name!r}") from None


def _with_day(bars: pl.DataFrame) -> pl.DataFrame:
    """`bars` with the trading day of each, as `sessions.trading_day` gives it (18:00 New York opens the next one,
    the weekend belongs to Monday): "vwap" restarts with each day."""
    day = (pl.col("timestamp").dt.convert_time_zone(NEW_YORK.key) + pl.duration(hours=24 - DAY_OPEN.hour)).dt.date()
    weekday = day.dt.weekday()  # Monday 1 .. Sunday 7
    return bars.with_columns((day + pl.duration(days=pl.when(weekday >= 6).then(8 - weekday).otherwise(0)))
                             .alias("day"))
