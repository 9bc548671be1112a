"""The simulated market: listed contracts, their seeded paths, the synthetic order book and quotes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ..enums import BarUnit, TradeType
from ..models import Bar, Contract, Quote, tick_decimals
from ..times import from_us
from .instruments import PRODUCTS, ProductSpec, listed_contracts
from .pricepath import BarArrays, PricePath, Ticks, bucket_starts

_MASK = 0xFFFFFFFF


def _mix(*values: int) -> int:
    """A small deterministic integer hash (stable across processes, unlike hash())."""
    x = 0x9E3779B9
    for v in values:
        x = ((x ^ (v & _MASK)) * 0x85EBCA6B) & _MASK
        x ^= x >> 13
        x = (x * 0xC2B2AE35) & _MASK
        x ^= x >> 16
    return x


@dataclass(frozen=True, slots=True)
class BookSide:
    """Resting levels of one side, best first: (price in ticks, size)."""

    levels: tuple[tuple[int, int], ...]

    @property
    def best(self) -> int:
        return self.levels[0][0]


@dataclass(frozen=True, slots=True)
class Book:
    """The synthetic book right after a trade: the aggressor's side was just lifted or hit."""

    bids: BookSide
    asks: BookSide


class Market:
    """Listed contracts, seeded per-product paths, books and quotes; a pure function of time."""

    def __init__(self, seed: int, listed_at: datetime, trades_per_minute: float = 60.0, depth_levels: int = 10):
        self.seed = seed
        self.depth_levels = depth_levels
        self._contracts: dict[str, tuple[ProductSpec, Contract]] = {
            c.id: (spec, c) for spec, c in listed_contracts(listed_at)
        }
        self._book = functools.lru_cache(maxsize=512)(self._build_book)  # recent books of the streamed contracts
        self._paths = {
            spec.root: PricePath(spec, seed, i, trades_per_minute) for i, spec in enumerate(PRODUCTS)
        }

    # ------------------------------------------------------------------ contracts

    @property
    def contracts(self) -> list[Contract]:
        return [c for _, c in self._contracts.values()]

    def contract(self, contract_id: str) -> Contract | None:
        entry = self._contracts.get(contract_id)
        return entry[1] if entry else None

    def spec(self, contract_id: str) -> ProductSpec:
        return self._contracts[contract_id][0]

    def path(self, contract_id: str) -> PricePath:
        return self._paths[self._contracts[contract_id][0].root]

    def search(self, text: str, limit: int = 20) -> list[Contract]:
        """Substring search over names, tickers, roots and descriptions, active contracts first."""
        needle = text.strip().upper()
        hits = [
            c for spec, c in self._contracts.values()
            if not needle or any(needle in field.upper() for field in (c.name, spec.ticker, spec.root, c.description))
        ]
        hits.sort(key=lambda c: (not c.active_contract, c.name))
        return hits[:limit]

    # ------------------------------------------------------------------ prices

    def price(self, contract_id: str, ticks: int) -> float:
        """Price of a tick count, rounded to the contract's grid."""
        return self._contracts[contract_id][1].round_price(ticks * self.spec(contract_id).tick_size)

    def last_trade(self, contract_id: str, t_us: int) -> tuple[int, int]:
        """(price in ticks, aggressor side) of the last trade at or before t_us."""
        return self.path(contract_id).last_tick_at(t_us)

    def ticks_between(self, contract_id: str, after_us: int, until_us: int) -> Ticks:
        return self.path(contract_id).ticks_between(after_us, until_us)

    def book(self, contract_id: str, price: int, side: int, t_us: int) -> Book:
        """Book after a trade at `price` by `side`; level sizes refresh every minute."""
        return self._book(self.spec(contract_id).root, price, side, t_us // 60_000_000)

    def _build_book(self, root: str, price: int, side: int, minute: int) -> Book:
        best_ask = price if side == TradeType.BUY else price + 1
        best_bid = best_ask - 1

        def level(p: int, depth: int) -> tuple[int, int]:
            return p, 1 + depth * 2 + _mix(self.seed, ord(root[0]), p, minute) % 20

        bids = tuple(level(best_bid - i, i) for i in range(self.depth_levels))
        asks = tuple(level(best_ask + i, i) for i in range(self.depth_levels))
        return Book(BookSide(bids), BookSide(asks))

    def prices(self, contract_id: str, ticks: np.ndarray) -> list[float]:
        """Prices of many tick counts at once, rounded to the contract's grid."""
        tick = self.spec(contract_id).tick_size
        return np.round(ticks * tick, tick_decimals(tick)).tolist()

    def book_at(self, contract_id: str, t_us: int) -> Book:
        return self.book(contract_id, *self.last_trade(contract_id, t_us), t_us)

    def quote(self, contract_id: str, t_us: int) -> Quote:
        """The full quote of a contract at t_us (session = the trading day, from 18:00 New York)."""
        spec = self._contracts[contract_id][0]
        path = self.path(contract_id)
        last, side = path.last_tick_at(t_us)
        book = self.book(contract_id, last, side, t_us)
        open_, high, low, volume = path.session_stats(t_us)
        when = from_us(t_us)
        return Quote(
            symbol=spec.symbol_id,
            symbol_name=spec.symbol_name,
            last_price=self.price(contract_id, last),
            best_bid=self.price(contract_id, book.bids.best),
            best_ask=self.price(contract_id, book.asks.best),
            change=self.price(contract_id, last - open_),
            change_percent=round((last - open_) / open_, 6),
            open=self.price(contract_id, open_),
            high=self.price(contract_id, high),
            low=self.price(contract_id, low),
            volume=float(volume),
            last_updated=when,
            timestamp=when,
        )

    # ------------------------------------------------------------------ history

    def bars(
        self, contract_id: str, start_us: int, end_us: int, now_us: int, unit: BarUnit, unit_number: int,
        include_partial: bool,
    ) -> list[Bar]:
        """Bars of the window, ascending; the bar still forming at now_us only when include_partial."""
        arrays: BarArrays = self.path(contract_id).bars(start_us, end_us, now_us, unit, unit_number)
        count = len(arrays.start)
        if count and not include_partial:
            forming = bucket_starts(np.array([now_us], dtype=np.int64), unit, unit_number)[0]
            if arrays.start[-1] == forming:
                count -= 1
        columns = [self.prices(contract_id, getattr(arrays, name)[:count]) for name in ("open", "high", "low", "close")]
        return [Bar(from_us(t), o, h, lo, c, v) for t, o, h, lo, c, v in
                zip(arrays.start[:count].tolist(), *columns, arrays.volume[:count].tolist(), strict=True)]
