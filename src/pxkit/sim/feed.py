"""Market-hub payloads from the simulated market: trade batches, partial quotes and level-2 depth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..codec import to_wire
from ..enums import DomType
from ..models import DepthEntry
from ..times import format_us, from_us
from .market import Book, Market
from .pricepath import Ticks, trading_day_bounds

_QUOTE_FIELDS = ("lastPrice", "bestBid", "bestAsk", "change", "changePercent", "open", "high", "low", "volume")


@dataclass
class _Live:
    """What was last published for one contract."""

    book: Book
    quote: dict[str, Any] = field(default_factory=dict)
    vap: dict[int, int] = field(default_factory=dict)  # session volume at each price (ticks)
    session_end: int = 0  # end (us) of the trading day `vap` belongs to


@dataclass(slots=True)
class Pushes:
    """Argument payloads for one contract and one step (each list entry is one hub push)."""

    trades: list[list[dict[str, Any]]]
    quote: dict[str, Any] | None
    depth: list[list[dict[str, Any]]]


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class MarketFeed:
    """Turns ticks into GatewayTrade / GatewayQuote / GatewayDepth payloads, keeping per-contract state."""

    def __init__(self, market: Market, max_batch: int = 50) -> None:
        self.market = market
        self.max_batch = max(1, max_batch)
        self._live: dict[str, _Live] = {}

    def forget(self, contract_id: str) -> None:
        self._live.pop(contract_id, None)

    def _state(self, contract_id: str, t_us: int) -> _Live:
        live = self._live.get(contract_id)
        if live is None:
            live = self._live[contract_id] = _Live(self.market.book_at(contract_id, t_us))
        return live

    # ------------------------------------------------------------------ snapshots

    def quote_snapshot(self, contract_id: str, t_us: int) -> dict[str, Any]:
        """The full quote, which also becomes the base later partial quotes are diffed against."""
        full = to_wire(self.market.quote(contract_id, t_us), omit_none=True)
        self._state(contract_id, t_us).quote = dict(full)  # later diffs update this copy, not what was sent
        return full

    def depth_snapshot(self, contract_id: str, t_us: int) -> list[list[dict[str, Any]]]:
        """Reset, then every resting level with the bests, then the session's volume at price."""
        live = self._state(contract_id, t_us)
        live.book = self.market.book_at(contract_id, t_us)
        live.vap = self._session_volume_at_price(contract_id, t_us)
        live.session_end = trading_day_bounds(t_us)[1]
        stamp = from_us(t_us)
        levels = self._levels(contract_id, stamp, live.book)
        reset = [to_wire(DepthEntry(stamp, DomType.RESET, 0, 0, 0))]
        vap = [self._entry(contract_id, stamp, DomType.TRADE, p, v) for p, v in sorted(live.vap.items())]
        return [reset, levels, *(_chunks(vap, 1000))]

    def _levels(self, contract_id: str, stamp: Any, book: Book) -> list[dict[str, Any]]:
        out = [self._entry(contract_id, stamp, DomType.BID, p, s) for p, s in book.bids.levels]
        out.append(self._entry(contract_id, stamp, DomType.BEST_BID, *book.bids.levels[0]))
        out += [self._entry(contract_id, stamp, DomType.ASK, p, s) for p, s in book.asks.levels]
        out.append(self._entry(contract_id, stamp, DomType.BEST_ASK, *book.asks.levels[0]))
        return out

    def _session_volume_at_price(self, contract_id: str, t_us: int) -> dict[int, int]:
        """Each finished minute of the trading day spreads its volume evenly over its range."""
        _, _, high, low, _, volume = self.market.path(contract_id).session_minutes(t_us)
        if not len(volume):
            return {}
        counts = high - low + 1
        starts = np.repeat(low, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        weights = np.repeat(volume / counts, counts)
        base = int(low.min())
        totals = np.bincount(starts + offsets - base, weights=weights)
        return {base + int(i): round(v) for i, v in enumerate(totals) if v >= 0.5}

    def _entry(self, contract_id: str, stamp: Any, kind: DomType, price: int, volume: int,
               current: int = 0) -> dict[str, Any]:
        return to_wire(DepthEntry(stamp, kind, self.market.price(contract_id, price), volume, current))

    # ------------------------------------------------------------------ live steps

    def step(self, contract_id: str, ticks: Ticks, *, quotes: bool, trades: bool, depth: bool) -> Pushes:
        """Payloads for the ticks of one step (ticks must be non-empty)."""
        market = self.market
        live = self._state(contract_id, int(ticks.time[0]))
        symbol_id = market.spec(contract_id).symbol_id
        prices = ticks.price.tolist()
        sizes = ticks.size.tolist()
        sides = ticks.side.tolist()
        trade_pushes: list[list[dict[str, Any]]] = []
        if trades:  # timestamps are formatted only for what is sent
            times = [format_us(t) for t in ticks.time.tolist()]
            price_values = market.prices(contract_id, ticks.price)
            records = [
                {"symbolId": symbol_id, "price": p, "timestamp": ts, "type": s, "volume": v}
                for p, v, s, ts in zip(price_values, sizes, sides, times, strict=True)
            ]
            trade_pushes = _chunks(records, self.max_batch)
        last_us = int(ticks.time[-1])
        book = market.book(contract_id, prices[-1], sides[-1], last_us)
        depth_pushes: list[list[dict[str, Any]]] = []
        if depth:
            fresh = self._roll_session(live, ticks)
            depth_pushes = _chunks(self._depth_changes(contract_id, live, book, prices[fresh:], sizes[fresh:],
                                                      format_us(last_us)),
                                   self.max_batch)
        live.book = book
        quote = self._quote_changes(contract_id, live, last_us) if quotes else None
        return Pushes(trade_pushes, quote, depth_pushes)

    @staticmethod
    def _roll_session(live: _Live, ticks: Ticks) -> int:
        """Restart the volume at price when the ticks reach a new trading day; returns its first tick's index."""
        last_us = int(ticks.time[-1])
        if last_us < live.session_end:
            return 0
        start, live.session_end = trading_day_bounds(last_us)
        live.vap = {}
        return int(np.searchsorted(ticks.time, start))

    def _depth_changes(self, contract_id: str, live: _Live, book: Book, prices: list[int], sizes: list[int],
                       ts: str) -> list[dict[str, Any]]:
        market = self.market
        out: list[dict[str, Any]] = []
        last_at: dict[int, int] = {}
        for p, v in zip(prices, sizes, strict=True):
            live.vap[p] = live.vap.get(p, 0) + v
            last_at[p] = v

        def rec(kind: DomType, price: int, volume: int, current: int = 0) -> dict[str, Any]:
            return {"timestamp": ts, "type": int(kind), "price": market.price(contract_id, price),
                    "volume": volume, "currentVolume": current}

        out += [rec(DomType.TRADE, p, live.vap[p], v) for p, v in last_at.items()]
        for kind, best_kind, old, new in ((DomType.BID, DomType.BEST_BID, live.book.bids, book.bids),
                                          (DomType.ASK, DomType.BEST_ASK, live.book.asks, book.asks)):
            before, after = dict(old.levels), dict(new.levels)
            out += [rec(kind, p, 0) for p in before if p not in after]
            out += [rec(kind, p, s) for p, s in new.levels if before.get(p) != s]
            if old.levels[0] != new.levels[0]:
                out.append(rec(best_kind, *new.levels[0]))
        return out

    def _quote_changes(self, contract_id: str, live: _Live, t_us: int) -> dict[str, Any]:
        """Only the fields that changed since the last quote, plus symbol and timestamps."""
        full = to_wire(self.market.quote(contract_id, t_us), omit_none=True)
        changed = {k: full[k] for k in _QUOTE_FIELDS if k in full and live.quote.get(k) != full[k]}
        live.quote.update(full)
        return {"symbol": full["symbol"], **changed, "lastUpdated": full["lastUpdated"],
                "timestamp": full["timestamp"]}
