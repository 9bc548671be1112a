"""Level-2 order book of one contract: O(1) depth updates into plain dicts, polars frames built only on read."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from ..enums import TradeType
from ..html import BAD, BID, fixed, muted, panel, span, table
from ..models import Contract, DepthEntry, MarketTrade, tick_decimals

logger = logging.getLogger(__name__)

BOOK_SCHEMA = {"side": pl.String, "price": pl.Float64, "size": pl.Int64}
PROFILE_SCHEMA = {"price": pl.Float64, "volume": pl.Int64}

# DomType values as plain ints: the hot loop compares against these (IntEnum == int is a C-level compare).
_ASK, _BID, _BEST_ASK, _BEST_BID, _TRADE, _RESET, _LOW, _HIGH, _NEW_BEST_BID, _NEW_BEST_ASK, _FILL = range(1, 12)
_MAX_EXACT = 2**53  # sizes and prices in ticks beyond this would not survive a float, nor fit a frame's Int64
_BID_SIDE, _ASK_SIDE = 0, 1
_SIGN = (1, -1)  # a side's key is sign x ticks: the larger key is the better price on both sides
_LEVEL_SIDE = {_BID: _BID_SIDE, _ASK: _ASK_SIDE}
_BEST_SIDE = {_BEST_BID: _BID_SIDE, _NEW_BEST_BID: _BID_SIDE, _BEST_ASK: _ASK_SIDE, _NEW_BEST_ASK: _ASK_SIDE}


@dataclass(frozen=True, slots=True)
class TradeFlow:
    """Aggressor-side totals of the recent trades in a window; `vwap` is None when nothing traded."""

    buy_volume: float
    sell_volume: float
    count: int
    buy_count: int
    sell_count: int
    vwap: float | None

    @property
    def delta(self) -> float:
        """Buy volume minus sell volume."""
        return self.buy_volume - self.sell_volume


class OrderBook:
    """Pure level-2 state of one contract (no I/O, no events); prices are kept as whole ticks internally.

    Each side is a dict tick -> size; the best price of each side is tracked incrementally (recomputed
    lazily only after the best level itself is removed), and sorted views are built on demand and cached
    until the next change.
    """

    def __init__(self, contract: Contract, *, max_trades: int = 10_000) -> None:
        self.contract = contract
        self._tick = contract.tick_size
        self._decimals = tick_decimals(contract.tick_size)
        # Both sides keyed so that a larger key is a better price: bids by +ticks, asks by -ticks (see _SIGN).
        self._levels: tuple[dict[int, float], dict[int, float]] = ({}, {})
        self._best: list[int | None] = [None, None]  # best key per side, valid unless _stale says otherwise
        self._stale = [False, False]
        self._sorted: tuple[list[tuple[int, float]], list[tuple[int, float]]] | None = None
        self._volume_at_price: dict[int, float] = {}  # cumulative session volume (DomType 5)
        self.last_print_price: float | None = None  # last DomType 5 record
        self.last_print_size: int = 0
        self.session_low: float | None = None
        self.session_high: float | None = None
        self.last_update: datetime | None = None
        self._trades: deque[MarketTrade] = deque(maxlen=max_trades)
        self.buy_volume = 0.0  # aggressor totals over every trade applied (not only the retained ones)
        self.sell_volume = 0.0
        self.trades_applied = 0
        self.entries_applied = 0
        self.resets = 0
        self.vap_updates = 0
        self.fills = 0
        self.unknown = 0
        self.nulls = 0
        self.rejected = 0  # entries whose price or volume no book can hold (not finite, absurdly large)

    def __repr__(self) -> str:
        bids, asks = self._sides()
        top = [f"{name} {self._shown(levels[0][0])} x {levels[0][1]:,.0f}" if levels else f"{name} none"
               for name, levels in (("bid", bids), ("ask", asks))]
        return f"OrderBook({self.contract.id}, {', '.join(top)}, levels {len(bids)}/{len(asks)})"

    def _shown(self, ticks: int) -> str:
        return fixed(self._price(ticks), self._decimals)

    def _repr_html_(self, levels: int = 5) -> str:
        """The top `levels` of each side as a ladder: bid size | price | ask size, asks above, best prices meeting
        in the middle."""
        bids, asks = self._sides()

        def size(value: float, colour: str) -> object:
            return span(f"{value:,.0f}", f"color: {colour}; font-weight: 600;")

        def price(ticks: int, best: bool) -> object:
            return span(self._shown(ticks), "font-weight: 700;") if best else self._shown(ticks)

        rows = [("", price(t, i == 0), size(s, BAD)) for i, (t, s) in reversed(list(enumerate(asks[:levels])))]
        rows += [(size(s, BID), price(t, i == 0), "") for i, (t, s) in enumerate(bids[:levels])]
        spread = self.get_spread()
        note = "empty" if not rows else (f"spread {fixed(spread, self._decimals)}" if spread is not None else
                                        "one-sided")
        ladder = table(rows, ("bid size", "price", "ask size"), align="rcl") if rows else muted("no levels yet")
        return panel(f"Book \u00b7 {self.contract.name}", ladder,
                     muted(f"imbalance {self.get_market_imbalance(levels):+.2f} over the top {levels} levels"),
                     note=note)

    # ------------------------------------------------------------------ updates

    def apply_depth(self, entries: Iterable[DepthEntry | None]) -> None:
        """Apply one GatewayDepth batch in order; None records and entries with a price or volume no book can hold
        (NaN, infinite, beyond 2**53 ticks or contracts) are skipped and counted, the others all applied.

        One code path serves both sides: on its side's keys (larger is better) a bid and an ask are the same.
        """
        tick = self._tick
        books, best, stale = self._levels, self._best, self._stale
        price_limit = _MAX_EXACT * tick
        applied = 0
        last = None
        try:
            for e in entries:
                if e is None:
                    self.nulls += 1
                    continue
                if not (-price_limit < e.price < price_limit and -_MAX_EXACT < e.volume < _MAX_EXACT):
                    self.rejected += 1
                    continue
                applied += 1
                last = e
                k = e.type
                side = _LEVEL_SIDE.get(k)
                if side is not None:  # a level's size changed
                    key = round(e.price / tick) * _SIGN[side]
                    levels, v = books[side], e.volume
                    if v > 0:
                        levels[key] = v
                        if not stale[side] and (best[side] is None or key > best[side]):
                            best[side] = key
                    else:
                        levels.pop(key, None)
                        if key == best[side]:
                            stale[side] = True
                    continue
                side = _BEST_SIDE.get(k)
                if side is not None:  # a new best level: better ones on its side are gone, crossed ones opposite
                    key = round(e.price / tick) * _SIGN[side]
                    levels, v = books[side], e.volume
                    if v <= 0:  # a best level with no size: treat as a removal
                        levels.pop(key, None)
                        stale[side] = True
                        continue
                    levels[key] = v
                    if stale[side]:
                        best[side] = max(levels)
                    top = best[side]
                    if top is not None and top > key:
                        for p in [p for p in levels if p > key]:
                            del levels[p]
                    best[side], stale[side] = key, False
                    other = 1 - side
                    opposite = books[other]
                    if stale[other]:
                        best[other], stale[other] = (max(opposite) if opposite else None), False
                    top = best[other]
                    if top is not None and top >= -key:  # the opposite key of the same price is -key
                        for p in [p for p in opposite if p >= -key]:
                            del opposite[p]
                        best[other] = max(opposite) if opposite else None
                elif k == _TRADE:
                    t = round(e.price / tick)
                    self._volume_at_price[t] = e.volume
                    self.last_print_price = self._price(t)
                    self.last_print_size = e.current_volume
                    self.vap_updates += 1
                elif k == _RESET:
                    for levels in books:
                        levels.clear()
                    self._volume_at_price.clear()  # the server resends the session's volume at price after a Reset
                    best[:] = [None, None]
                    stale[:] = [False, False]
                    self.resets += 1
                    logger.debug("order book reset for %s", self.contract.id)
                elif k == _LOW:
                    self.session_low = self._price(round(e.price / tick))
                elif k == _HIGH:
                    self.session_high = self._price(round(e.price / tick))
                elif k == _FILL:
                    self.fills += 1
                else:
                    self.unknown += 1
        finally:
            self._sorted = None
            self.entries_applied += applied
            if last is not None:
                self.last_update = last.timestamp

    def apply_trade(self, trades: Iterable[MarketTrade | None]) -> None:
        """Record market prints (GatewayTrade) with their aggressor side."""
        keep = self._trades.append
        buy = sell = 0.0
        count = 0
        for trade in trades:
            if trade is None:
                continue
            keep(trade)
            count += 1
            if trade.type == TradeType.BUY:
                buy += trade.volume
            else:
                sell += trade.volume
        self.buy_volume += buy
        self.sell_volume += sell
        self.trades_applied += count

    def clear(self) -> None:
        """Forget the book, the volume profile and the trade flow (counters are kept)."""
        for levels in self._levels:
            levels.clear()
        self._volume_at_price.clear()
        self._best[:] = [None, None]
        self._stale[:] = [False, False]
        self._sorted = None
        self._trades.clear()

    # ------------------------------------------------------------------ queries

    def _price(self, ticks: int) -> float:
        return round(ticks * self._tick, self._decimals)

    def _top(self, side: int) -> int | None:
        """The best price of a side, in ticks (None for an empty side)."""
        if self._stale[side]:
            levels = self._levels[side]
            self._best[side] = max(levels) if levels else None
            self._stale[side] = False
        key = self._best[side]
        return None if key is None else key * _SIGN[side]

    def _sides(self) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Both sides best first as (ticks, size), cached until the next depth batch."""
        if self._sorted is None:
            bids, asks = (sorted(levels.items(), reverse=True) for levels in self._levels)
            self._sorted = (bids, [(-key, size) for key, size in asks])
        return self._sorted

    def get_best_bid_ask(self) -> tuple[float | None, float | None]:
        """(best bid, best ask) prices; a side without levels gives None."""
        bid, ask = self._top(_BID_SIDE), self._top(_ASK_SIDE)
        return (None if bid is None else self._price(bid)), (None if ask is None else self._price(ask))

    def get_spread(self) -> float | None:
        """Best ask minus best bid (on the tick grid), None unless both sides have levels."""
        bid, ask = self._top(_BID_SIDE), self._top(_ASK_SIDE)
        return None if bid is None or ask is None else self._price(ask - bid)

    def get_mid_price(self) -> float | None:
        """Midpoint of the best bid and ask, None unless both sides have levels."""
        bid, ask = self._top(_BID_SIDE), self._top(_ASK_SIDE)
        return None if bid is None or ask is None else round((bid + ask) * self._tick / 2, self._decimals + 1)

    def _frame(self, rows: Iterable[tuple[str, int, float]]) -> pl.DataFrame:
        sides, prices, sizes = [], [], []
        for side, t, size in rows:
            sides.append(side)
            prices.append(self._price(t))
            sizes.append(int(size))
        return pl.DataFrame({"side": sides, "price": prices, "size": sizes}, schema=BOOK_SCHEMA)

    def get_orderbook_snapshot(self, levels: int = 10) -> pl.DataFrame:
        """Top `levels` of each side as (side, price, size): bids best first, then asks best first."""
        bids, asks = self._sides()
        return self._frame([*(("bid", t, s) for t, s in bids[:levels]), *(("ask", t, s) for t, s in asks[:levels])])

    def get_liquidity_levels(self, min_volume: float, levels: int | None = None) -> pl.DataFrame:
        """Levels resting at least `min_volume` (within the top `levels` of each side if given), best first."""
        bids, asks = self._sides()
        if levels is not None:
            bids, asks = bids[:levels], asks[:levels]
        return self._frame([*(("bid", t, s) for t, s in bids if s >= min_volume),
                            *(("ask", t, s) for t, s in asks if s >= min_volume)])

    def sizes_between(self, high: float, low: float) -> list[tuple[float, float, float]]:
        """(price, bid size, ask size) at every tick from `high` down to `low`, 0 where a side rests nothing: a
        window of the book read by direct lookups, no sort and no frame."""
        bids, asks = self._levels
        top, bottom = round(high / self._tick), round(low / self._tick)
        return [(self._price(t), bids.get(t, 0), asks.get(-t, 0)) for t in range(top, bottom - 1, -1)]

    def get_market_imbalance(self, levels: int = 5) -> float:
        """(bid size - ask size) / (bid size + ask size) over the top `levels`; 0.0 for an empty book."""
        bids, asks = self._sides()
        bid = sum(s for _, s in bids[:levels])
        ask = sum(s for _, s in asks[:levels])
        total = bid + ask
        return 0.0 if total <= 0 else (bid - ask) / total

    def get_volume_profile(self) -> pl.DataFrame:
        """Session volume traded at each price (from DomType 5 records), ascending by price."""
        items = sorted(self._volume_at_price.items())
        return pl.DataFrame({"price": [self._price(t) for t, _ in items], "volume": [int(v) for _, v in items]},
                            schema=PROFILE_SCHEMA)

    def get_trade_flow(self, window: timedelta | None = None, *, now: datetime | None = None) -> TradeFlow:
        """Buy/sell volume, counts and VWAP of the retained trades newer than `now - window`.

        `now` defaults to the newest trade's timestamp (the book keeps no clock); no window = all retained trades.
        """
        trades = self._trades
        cutoff = None
        if window is not None and trades:
            cutoff = (now or trades[-1].timestamp) - window
        buy = sell = notional = 0.0
        buys = sells = 0
        for trade in reversed(trades):
            if cutoff is not None and trade.timestamp < cutoff:
                break
            notional += trade.price * trade.volume
            if trade.type == TradeType.BUY:
                buy += trade.volume
                buys += 1
            else:
                sell += trade.volume
                sells += 1
        volume = buy + sell
        vwap = notional / volume if volume > 0 else None
        return TradeFlow(buy, sell, buys + sells, buys, sells, vwap)

    def recent_trades(self) -> list[MarketTrade]:
        """The retained trades, oldest first."""
        return list(self._trades)

    def stats(self) -> dict[str, Any]:
        """Counters and sizes, for health displays and tests."""
        return {
            "entries_applied": self.entries_applied, "resets": self.resets, "vap_updates": self.vap_updates,
            "fills": self.fills, "unknown": self.unknown, "nulls": self.nulls, "rejected": self.rejected,
            "trades_applied": self.trades_applied,
            "bid_levels": len(self._levels[_BID_SIDE]), "ask_levels": len(self._levels[_ASK_SIDE]),
            "profile_prices": len(self._volume_at_price), "retained_trades": len(self._trades),
        }
