"""RealtimeDataManager: one contract's bars in many timeframes, preloaded over REST and then built from trades."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from ..client.http import ProjectX
from ..codec import to_us
from ..events import EventBus, EventType
from ..models import Bar, Contract, MarketTrade, Quote
from ..stats import ComponentStats
from .bars import MultiTimeframeBars, Timeframe
from .sessions import globex_open

log = logging.getLogger(__name__)

TIMEFRAMES = ("1sec", "5sec", "15sec", "1min", "5min", "15min", "30min", "1hr", "4hr", "1day")


@dataclass(frozen=True, slots=True)
class BarEvent:
    """Payload of NEW_BAR (a bar closed) and BAR_UPDATED (the forming bar after a batch of trades)."""

    timeframe: str
    bar: Bar


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """Payload of STALE_FEED: sent when a feed goes silent during its session and again when it speaks."""

    stale: bool
    silent_for: float  # seconds since the last market event of the contract


class RealtimeDataManager:
    """Bars of one contract: history per timeframe from REST, then every trade applied to every timeframe.

    - Trades build the bars (volume from trades only); quotes only move the last price.
    - Per trade the cost is O(timeframes); polars frames are built when read (`get_data`).
    - Events: TICK per trade and QUOTE_UPDATE per quote (only built when someone listens), BAR_UPDATED once per
      pushed batch and timeframe, NEW_BAR for each closed bar, STALE_FEED when the feed goes silent.
    - Trades that arrive before the history is loaded are kept and applied after it, in order: none is dropped.
    """

    def __init__(self, client: ProjectX, contract: Contract, bus: EventBus, *, symbol: str,
                 timeframes: Sequence[str] = ("1min", "5min"), max_bars: int = 2000,
                 session: Callable[[datetime], bool] = globex_open, stale_after: float = 30.0,
                 stats: ComponentStats | None = None) -> None:
        self.client = client
        self.contract = contract
        self.bus = bus
        self.symbol = symbol
        self.timeframes = sorted({Timeframe.parse(tf) for tf in timeframes}, key=lambda tf: tf.seconds)
        self.bars = MultiTimeframeBars(self.timeframes, contract.tick_size, max_bars)
        self.max_bars = max_bars
        self.session = session
        self.stale_after = stale_after
        self.stats = stats or ComponentStats(f"data.{symbol}")
        self.quote: Quote | None = None
        self.stale = False
        self.last_event = time.monotonic()  # monotonic time of the last market event of this contract
        # pushes held until history is loaded: trade batches, and quote prices as (price, exchange time)
        self._pending: list[list[MarketTrade] | tuple[float, datetime]] | None = []

    # ------------------------------------------------------------------ start-up

    async def initialize(self, initial_days: float = 1.0, *, clock: Callable[[], datetime] | None = None
                         ) -> dict[str, int]:
        """Load history for every timeframe (closed bars plus the one forming), then replay what the feed pushed
        meanwhile, in order. Returns the number of bars loaded per timeframe.

        Buffered trades stamped before the history was read are already in its forming bar and are skipped;
        the ones after it continue the bars (a trade in flight at that very moment may be counted twice or not
        at all: the gateway gives no sequence number to tell).
        """
        clock = clock or self.client.gateway_now
        now = clock()
        loaded = await asyncio.gather(*(self._preload(tf, initial_days, now) for tf in self.timeframes))
        read_at = to_us(clock())
        finest = self.bars[self.timeframes[0]].bars(1, include_forming=True)
        if finest:
            self.bars.on_quote(finest[-1].close, finest[-1].timestamp)
        pending, self._pending = self._pending or [], None
        for item in pending:
            if isinstance(item, tuple):
                self.bars.on_quote(*item)
            else:
                self.apply_trades([t for t in item if to_us(t.timestamp) > read_at])
        return dict(zip([tf.name for tf in self.timeframes], loaded, strict=True))

    async def _preload(self, tf: Timeframe, initial_days: float, now: datetime) -> int:
        days = min(initial_days, tf.seconds * (self.max_bars + 1) / 86_400)
        frame = await self.client.get_bars(self.contract.id, days=days, end_time=now + timedelta(seconds=1),
                                           unit=tf.unit, interval=tf.count, limit=self.max_bars + 1, partial=True)
        bars = [Bar(*row) for row in frame.iter_rows()]
        if not bars:
            return 0
        series = self.bars[tf]
        *closed, last = bars
        if series.bucket(to_us(last.timestamp))[1] > to_us(now):  # still forming: live trades continue it
            series.seed(closed)
            series.resume(last)
        else:
            series.seed(bars)
        return len(bars)

    # ------------------------------------------------------------------ input (called by the suite's router)

    def apply_trades(self, trades: Iterable[MarketTrade | None], received: float | None = None) -> None:
        """Apply one GatewayTrade batch: every timeframe, TICK events, then NEW_BAR / BAR_UPDATED."""
        batch = [t for t in trades if t is not None]
        self.touch()
        if self._pending is not None:
            self._pending.append(batch)
            return
        bus, bars, symbol = self.bus, self.bars, self.symbol
        ticks = bus.wants(EventType.TICK)
        new_bar = bus.wants(EventType.NEW_BAR)
        for trade in batch:
            closed = bars.on_trade(trade.price, trade.volume, trade.timestamp)
            if ticks:
                bus.emit_nowait(EventType.TICK, trade, source=symbol, timestamp=trade.timestamp)
            if closed and new_bar:
                for name, bar in closed:
                    bus.emit_nowait(EventType.NEW_BAR, BarEvent(name, bar), source=symbol, timestamp=bar.timestamp)
        self.stats.count("trades", len(batch))
        if batch and bus.wants(EventType.BAR_UPDATED):
            for name, series in bars.series.items():
                bar = series.forming
                if bar is not None:
                    bus.emit_nowait(EventType.BAR_UPDATED, BarEvent(name, bar), source=symbol,
                                    timestamp=batch[-1].timestamp)
        if received is not None:
            self.stats.latency((time.time() - received) * 1000)

    def apply_quote(self, quote: Quote, received: float | None = None) -> None:
        """Merge a (possibly partial) quote into the last one; a last price it carries moves the current price."""
        self.touch()
        pushed = quote
        if self.quote is not None:
            changed = {f.name: v for f in dataclasses.fields(Quote) if (v := getattr(quote, f.name)) is not None}
            quote = dataclasses.replace(self.quote, **changed)
        self.quote = quote
        stamp = quote.timestamp or quote.last_updated
        if pushed.last_price is not None and stamp is not None:  # a merged-in older price must not come back
            if self._pending is not None:
                self._pending.append((pushed.last_price, stamp))
            else:
                self.bars.on_quote(pushed.last_price, stamp)
        self.stats.count("quotes")
        if self.bus.wants(EventType.QUOTE_UPDATE):
            self.bus.emit_nowait(EventType.QUOTE_UPDATE, quote, source=self.symbol, timestamp=stamp)

    def touch(self) -> None:
        """Note that the contract's feed spoke (any market event, depth included)."""
        self.last_event = time.monotonic()
        if self.stale:
            self.stale = False
            log.info("%s market feed is live again", self.symbol)
            self.bus.emit_nowait(EventType.STALE_FEED, FeedStatus(False, 0.0), source=self.symbol)

    # ------------------------------------------------------------------ timers (called by the suite)

    def close_due(self, now: datetime) -> int:
        """Close the forming bars whose time is over (a quiet minute still closes on time)."""
        if self._pending is not None:
            return 0
        closed = self.bars.close_due(now)
        for name, bar in closed:
            self.bus.emit_nowait(EventType.NEW_BAR, BarEvent(name, bar), source=self.symbol, timestamp=bar.timestamp)
        return len(closed)

    def check_stale(self, now: datetime, monotonic: float | None = None) -> bool:
        """Mark the feed stale when it has been silent for `stale_after` seconds while its session is open."""
        silent = (time.monotonic() if monotonic is None else monotonic) - self.last_event
        if not self.stale and silent >= self.stale_after and self.session(now):
            self.stale = True
            self.stats.count("stale")
            log.warning("%s market feed silent for %.0f s during its session", self.symbol, silent)
            self.bus.emit_nowait(EventType.STALE_FEED, FeedStatus(True, silent), source=self.symbol)
        return self.stale

    # ------------------------------------------------------------------ reading

    async def get_data(self, timeframe: str = "1min", count: int | None = None, *,
                       include_forming: bool = True) -> pl.DataFrame:
        """The newest `count` bars (all kept when None) as a polars DataFrame, ending with the forming bar."""
        return self.bars.frame(timeframe, count, include_forming)

    async def get_mtf_data(self, count: int | None = None) -> dict[str, pl.DataFrame]:
        """Every timeframe's bars, by timeframe name."""
        return {name: self.bars.frame(name, count, True) for name in self.bars}

    async def get_current_price(self) -> float | None:
        """The last trade or quote price, on the tick grid (None before any)."""
        return self.bars.last_price

    @property
    def last_price(self) -> float | None:
        return self.bars.last_price

    def __repr__(self) -> str:
        return f"RealtimeDataManager({self.symbol}, {[tf.name for tf in self.timeframes]}, last={self.last_price})"

