"""RealtimeDataManager: one contract's bars in many timeframes, preloaded over REST and then built from trades."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import operator
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

import polars as pl

from ..client.http import ProjectX
from ..codec import slot_filler
from ..errors import InputError, PxError
from ..events import EventBus, EventType
from ..hours import globex_open
from ..models import Bar, Contract, MarketTrade, Quote
from ..payloads import BarEvent, FeedStatus
from ..stats import ComponentStats
from ..times import from_us, to_us
from .bars import MultiTimeframeBars, Timeframe
from .progress import LoadProgress

log = logging.getLogger(__name__)

DEFAULT_DAYS = 1.0  # history preloaded when no initial_days is given, as far as max_bars allows


def check_history(initial_days: float | None, max_bars: int) -> None:
    """InputError unless `initial_days` is None or a number of days > 0 and `max_bars` a whole number >= 1."""
    if initial_days is not None and (isinstance(initial_days, bool) or not isinstance(initial_days, int | float)
                                     or not initial_days > 0):
        raise InputError(f"initial_days must be a number of days > 0 (or None), got {initial_days!r}")
    if isinstance(max_bars, bool) or not isinstance(max_bars, int) or max_bars < 1:
        raise InputError(f"max_bars must be a whole number >= 1, got {max_bars!r}")


def _check_count(count: int | None) -> None:
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise InputError(f"count must be a whole number of bars >= 1 (or None for all), got {count!r}")


_quote_values = operator.attrgetter(*(field.name for field in dataclasses.fields(Quote)))
_new_quote = slot_filler(Quote)


def _merged(last: Quote, pushed: Quote) -> Quote:
    """The last quote with the fields a partial push carries put in."""
    pairs = zip(_quote_values(pushed), _quote_values(last), strict=True)
    return _new_quote(*[old if new is None else new for new, old in pairs])


class RealtimeDataManager:
    """Bars of one contract: history per timeframe from REST, then every trade applied to every timeframe.

    - Trades build the bars (volume from trades only); quotes only move the last price.
    - Per trade the cost is O(timeframes); polars frames are built when read (`get_data`).
    - Events: TICK per trade and QUOTE_UPDATE per quote (only built when someone listens), BAR_UPDATED once per
      pushed batch and timeframe, NEW_BAR for each closed bar, STALE_FEED when the feed goes silent.
    - Trades that arrive before the history is loaded are kept and applied after it, in order: none is dropped.
    - Trades and quotes stamped more than `max_ahead` seconds ahead of the exchange `clock` are quarantined
      (counted in `quarantined`, a WARNING once per burst): one bogus stamp must not move bars into the future.
    """

    def __init__(self, client: ProjectX, contract: Contract, bus: EventBus, *, symbol: str,
                 timeframes: Sequence[str] = ("1min", "5min"), max_bars: int = 2000,
                 session: Callable[[datetime], bool] = globex_open, stale_after: float = 30.0,
                 stats: ComponentStats | None = None, clock: Callable[[], datetime] | None = None,
                 max_ahead: float = 60.0) -> None:
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
        self.clock = clock  # the exchange clock; None: stamps are not checked
        self.max_ahead = timedelta(seconds=max_ahead)
        self.quarantined = 0  # trades and quotes refused for a stamp too far ahead of the clock
        self._burst = 0  # quarantined since the last event stamped in range
        self.quote: Quote | None = None
        self.stale = False
        self.last_event = time.monotonic()  # monotonic time of the last market event of this contract
        # pushes held until history is loaded: trade batches, and quote prices as (price, exchange time)
        self._pending: list[list[MarketTrade] | tuple[float, datetime]] | None = []
        self._cut: dict[str, int] = {}  # per timeframe: held trades stamped from here on are not in its history
        self._dirty: dict[str, int] = {}  # per timeframe: bars of buckets that began before this are checked
        self._repairs: set[asyncio.Task[None]] = set()
        self._again = False  # a reconnect came during a load: reload once more after it
        self._gap: int | None = None  # the feed dropped: what is stamped from here (us) on may be missing

    # ------------------------------------------------------------------ start-up

    async def initialize(self, initial_days: float | None = None, *, clock: Callable[[], datetime] | None = None
                         ) -> dict[str, int]:
        """Load history for every timeframe (closed bars plus the one forming), then replay what the feed pushed
        meanwhile, in order. Returns the number of bars loaded per timeframe.

        Each timeframe loads `initial_days` of history, at most `max_bars` bars; None loads up to a day as far as
        `max_bars` allows. Days that `max_bars` cannot hold are not loaded, with one warning naming the numbers.

        Buffered trades stamped before the history was read are already in its forming bar and are skipped;
        the ones after it continue the bars (a trade in flight at that very moment may be counted twice or not
        at all: the gateway gives no sequence number to tell).
        """
        check_history(initial_days, self.max_bars)
        if initial_days is not None:
            self._warn_capped(initial_days)
        wanted = DEFAULT_DAYS if initial_days is None else initial_days

        def days(tf: Timeframe) -> float:
            return min(wanted, tf.seconds * (self.max_bars + 1) / 86_400)

        loaded = await self._load(days, clock, announce=False)
        finest = self.bars[self.timeframes[0]].bars(1, include_forming=True)
        if finest and self.bars.last_price is None:
            self.bars.on_quote(finest[-1].close, finest[-1].timestamp)
        self.release_pushes()
        if self._again:  # the feed reconnected while the history was read: the gap may be missing from it
            await self.resync(clock=clock)
        return {name: len(bars) for name, bars in loaded.items()}

    def _warn_capped(self, initial_days: float) -> None:
        """Warn (once per set of numbers) when `max_bars` holds less than `initial_days` of some timeframe."""
        finest = self.timeframes[0]
        need = int(initial_days * 86_400 / finest.seconds)
        if need <= self.max_bars:
            return
        held = self.max_bars * finest.seconds / 86_400
        warnings.warn(f"initial_days={initial_days:g} of {finest.name} bars is {need:,} bars, more than "
                      f"max_bars={self.max_bars:,}: {finest.name} keeps the newest {self.max_bars:,} ({held:.2g} days)"
                      f"; pass max_bars={need} to keep them all", UserWarning, stacklevel=3)

    async def resync(self, *, clock: Callable[[], datetime] | None = None) -> int | None:
        """After the market feed reconnected: reload every timeframe from its newest bar on, or from the bucket of
        the last event received before the feed was lost if older (the trades of the gap were never pushed),
        announce the bars that closed meanwhile with NEW_BAR, then replay the pushes held during the reload.
        Returns how many bars the gap closed.

        While a load runs (start-up or another reload) the call only queues one more reload after it and
        returns None: reconnects during a reload coalesce into that one. A queued reload still runs when the
        one before it fails."""
        if self._pending is not None:
            self._again = True
            return None
        closed = 0
        while True:
            self._again = False
            try:
                closed += await self._reload(clock)
            except PxError as exc:
                if not self._again:
                    raise
                log.warning("%s: reloading bars failed (%s); reloading again for the reconnect since", self.symbol,
                            exc)
                continue
            if not self._again:
                return closed

    def feed_lost(self) -> None:
        """The market feed dropped (called by the router, in order with the pushes): from the newest event received
        on, nothing is known until a reload. The next reload reads from that event's bucket on, however far live
        trades of the new connection have moved the bars before it, and bars closed until then are checked
        against the gateway's when they close."""
        if self._gap is not None:
            return
        held = [to_us(item[-1].timestamp) for item in self._pending or () if isinstance(item, list) and item]
        last = self.bars.last_ts
        known = [*held, *self._dirty.values(), *([to_us(last)] if last is not None else [])]  # _dirty: read times
        self._gap = max(known, default=None)

    async def _reload(self, clock: Callable[[], datetime] | None) -> int:
        self.hold_pushes()
        gap, self._gap = self._gap, None  # a drop during this reload marks a new gap, for the reload after it
        clock = clock or self.clock or self.client.gateway_now
        now = clock()

        def days(tf: Timeframe) -> float:
            series = self.bars[tf]
            newest = series.bars(1, include_forming=True)
            starts = [to_us(newest[-1].timestamp)] if newest else []
            if gap is not None:
                starts.append(series.bucket(gap)[0])
            since = (to_us(now) - min(starts)) / 1_000_000 if starts else 0.0
            return min(since + tf.seconds, tf.seconds * (self.max_bars + 1)) / 86_400

        try:
            closed = await self._load(days, lambda: now, announce=True, read_clock=clock)
        except BaseException:
            if gap is not None:
                self._gap = gap if self._gap is None else min(gap, self._gap)
            raise
        finally:
            self.release_pushes()
        self.stats.count("resyncs")
        return sum(len(bars) for bars in closed.values())

    async def _load(self, days: Callable[[Timeframe], float], clock: Callable[[], datetime] | None, *,
                    announce: bool, read_clock: Callable[[], datetime] | None = None) -> dict[str, list[Bar]]:
        """Read each timeframe's history up to now and install it; returns, per timeframe, the bars read
        (announce=False) or the bars it newly closed, which are announced with NEW_BAR (announce=True).

        A series' history holds the trades stamped before the end of its newest bucket and before the moment it
        was read; held trades from then on are replayed into it. What arrived between the gateway's answer and
        that moment cannot be told apart, so bars of buckets that began before it are fetched again, final,
        when they close.
        """
        clock = clock or self.clock or self.client.gateway_now
        now = clock()
        progress = LoadProgress(f"{self.symbol} history", len(self.timeframes))
        try:
            histories = await asyncio.gather(*(progress.track(self._history(tf, days(tf), now))
                                               for tf in self.timeframes))
        finally:
            progress.close()
        read_at = to_us((read_clock or clock)())
        result: dict[str, list[Bar]] = {}
        for tf, bars in zip(self.timeframes, histories, strict=True):
            series = self.bars[tf]
            fresh = series.restore(bars, now)
            self._cut[tf.name] = min(read_at, series.bucket(to_us(bars[-1].timestamp))[1]) if bars else read_at
            self._dirty[tf.name] = read_at
            result[tf.name] = fresh if announce else bars
            for bar in fresh if announce else ():
                self.bus.emit_nowait(EventType.NEW_BAR, BarEvent(tf.name, bar), source=self.symbol,
                                     timestamp=bar.timestamp)
        return result

    async def _history(self, tf: Timeframe, days: float, now: datetime) -> list[Bar]:
        frame = await self.client.get_bars(self.contract.id, days=days, end_time=now + timedelta(seconds=1),
                                           unit=tf.unit, interval=tf.count, limit=self.max_bars + 1, partial=True)
        return [Bar(*row) for row in frame.iter_rows()]

    def hold_pushes(self) -> None:
        """Keep the trades and quote prices pushed from now on, unapplied, until `release_pushes` (a load does this
        while it reads history). A new manager holds them until its first load."""
        if self._pending is None:
            self._pending = []

    def release_pushes(self) -> None:
        """Apply the pushes held, in order, each trade to the series whose history lacks it, and apply pushes as
        they come from then on. Releasing a manager that never loaded starts its bars from the first trade."""
        pending, self._pending = self._pending or [], None
        if pending:
            self.touch()  # live again from here
        ticks = self.bus.wants(EventType.TICK)
        cuts = [(name, series, self._cut.get(name, 0)) for name, series in self.bars.series.items()]
        for item in pending:
            if isinstance(item, tuple):
                self.bars.on_quote(*item)
                continue
            for trade in item:
                t = to_us(trade.timestamp)
                taken = [(name, series) for name, series, cut in cuts if t >= cut]
                for name, series in taken:
                    for kind, bar in series.on_trade(trade.price, trade.volume, t):
                        if kind == "closed":
                            self._announce(name, bar)
                if taken:
                    self.bars.on_quote(trade.price, t)
                    self.stats.count("trades")
                    if ticks:
                        self.bus.emit_nowait(EventType.TICK, trade, source=self.symbol, timestamp=trade.timestamp)

    def _announce(self, name: str, bar: Bar) -> None:
        """NEW_BAR for a closed bar; one whose bucket began before the history was read, or that closed while the
        feed was lost, is fetched again first."""
        if self._gap is not None or (self._dirty and to_us(bar.timestamp) < self._dirty.get(name, 0)):
            task = asyncio.get_running_loop().create_task(self._repair(name, bar), name=f"pxkit-bar-{self.symbol}")
            self._repairs.add(task)
            task.add_done_callback(self._repairs.discard)
        elif self.bus.wants(EventType.NEW_BAR):
            self.bus.emit_nowait(EventType.NEW_BAR, BarEvent(name, bar), source=self.symbol, timestamp=bar.timestamp)

    async def _repair(self, name: str, bar: Bar) -> None:
        series = self.bars[name]
        tf = series.timeframe
        end = series.bucket(to_us(bar.timestamp))[1]
        try:
            frame = await self.client.get_bars(self.contract.id, start_time=bar.timestamp, end_time=from_us(end),
                                               unit=tf.unit, interval=tf.count)
            exact = [Bar(*row) for row in frame.iter_rows() if row[0] == bar.timestamp]
            if exact and exact[0] != bar:
                series.restore(exact, end)
                self.stats.count("bars_repaired")
                bar = exact[0]
        except PxError as exc:  # the bar built here stands; it is announced anyway
            log.warning("%s %s bar at %s could not be checked against the gateway: %s", self.symbol, name,
                        bar.timestamp, exc)
        self.bus.emit_nowait(EventType.NEW_BAR, BarEvent(name, bar), source=self.symbol, timestamp=bar.timestamp)

    async def aclose(self) -> None:
        """Stop the bar checks still running."""
        for task in list(self._repairs):
            task.cancel()
        await asyncio.gather(*self._repairs, return_exceptions=True)

    # ------------------------------------------------------------------ input (called by the suite's router)

    def apply_trades(self, trades: Iterable[MarketTrade | None], received: float | None = None) -> list[MarketTrade]:
        """Apply one GatewayTrade batch: every timeframe, TICK events, then NEW_BAR / BAR_UPDATED. Returns the
        trades taken (held ones included): the batch less the quarantined."""
        batch = [t for t in trades if t is not None]
        if batch and self.clock is not None:
            batch = self._in_time(batch)
        self.touch()
        if self._pending is not None:
            self._pending.append(batch)
            return batch
        bus, bars, symbol = self.bus, self.bars, self.symbol
        ticks = bus.wants(EventType.TICK)
        for trade in batch:
            closed = bars.on_trade(trade.price, trade.volume, trade.timestamp)
            if ticks:
                bus.emit_nowait(EventType.TICK, trade, source=symbol, timestamp=trade.timestamp)
            for name, bar in closed:
                self._announce(name, bar)
        self.stats.count("trades", len(batch))
        if batch and bus.wants(EventType.BAR_UPDATED):
            for name, series in bars.series.items():
                bar = series.forming
                if bar is not None:
                    bus.emit_nowait(EventType.BAR_UPDATED, BarEvent(name, bar), source=symbol,
                                    timestamp=batch[-1].timestamp)
        if received is not None:
            self.stats.latency((time.time() - received) * 1000)
        return batch

    def apply_quote(self, quote: Quote, received: float | None = None) -> bool:
        """Merge a (possibly partial) quote into the last one; a last price it carries moves the current price.
        Returns False for a quote quarantined for its stamp (nothing of it is kept)."""
        pushed = quote
        own_stamp = quote.timestamp or quote.last_updated
        self.touch()
        if own_stamp is not None and self.clock is not None:
            if own_stamp > self.clock() + self.max_ahead:
                self._quarantine(own_stamp, "quote")
                return False
            self._in_range()
        if self.quote is not None:
            quote = _merged(self.quote, quote)
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
        return True

    def _in_time(self, batch: list[MarketTrade]) -> list[MarketTrade]:
        """The trades of a batch stamped no further than `max_ahead` past the exchange clock; the rest quarantined."""
        limit = self.clock() + self.max_ahead
        kept = [t for t in batch if t.timestamp <= limit]
        if len(kept) == len(batch):
            self._in_range()
            return batch
        for trade in batch:  # in order: a burst ends at the first trade in range
            if trade.timestamp > limit:
                self._quarantine(trade.timestamp, "trade")
            else:
                self._in_range()
        return kept

    def _quarantine(self, stamp: datetime, what: str) -> None:
        """Count an event stamped too far ahead of the exchange clock; the first of a burst is logged."""
        self.quarantined += 1
        self.stats.count("quarantined")
        if not self._burst:
            log.warning("%s: %s stamped %s, more than %.0f s ahead of the exchange clock, quarantined (so are the "
                        "ones after it until a stamp is in range)", self.symbol, what, stamp.isoformat(),
                        self.max_ahead.total_seconds())
        self._burst += 1

    def _in_range(self) -> None:
        if self._burst:
            log.info("%s: stamps in range again after %d quarantined", self.symbol, self._burst)
            self._burst = 0

    def touch(self) -> None:
        """Note that the contract's feed spoke (any market event, depth included). Not while its pushes are held
        for a load: bars and price stand still then, so the hold counts toward staleness."""
        if self._pending is not None:
            return
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
            self._announce(name, bar)
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
        _check_count(count)
        return self.bars.frame(timeframe, count, include_forming)

    async def get_mtf_data(self, count: int | None = None) -> dict[str, pl.DataFrame]:
        """Every timeframe's bars, by timeframe name."""
        _check_count(count)
        return {name: self.bars.frame(name, count, True) for name in self.bars}

    async def get_current_price(self) -> float | None:
        """The last trade or quote price, on the tick grid (None before any)."""
        return self.bars.last_price

    @property
    def last_price(self) -> float | None:
        return self.bars.last_price

    def __repr__(self) -> str:
        return f"RealtimeDataManager({self.symbol}, {[tf.name for tf in self.timeframes]}, last={self.last_price})"

