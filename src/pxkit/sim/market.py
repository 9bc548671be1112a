"""The simulated market: contracts listed as time goes by, their seeded paths, the synthetic order book and quotes.

Each contract has its own path, keyed by (seed, product index, expiry): its daily opens are the product's seeded
daily levels times (1 + carry * days to that contract's expiry / 365), so a contract converges to the product's
level at its expiry and the next one trades at the carry over the months between them; its prints (times, sizes,
prices within the day) are its own. Paths are built on first use and the least recently used ones dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ..enums import BarUnit, TradeType
from ..models import Bar, Contract, Quote, tick_decimals
from ..times import from_us, to_us
from .instruments import (
    PRODUCTS,
    Expiry,
    ProductSpec,
    contract_for,
    first_listed_us,
    listed_expiries,
    parse_contract_id,
)
from .pricepath import DAY_US, EPOCH_US, MAX_DAYS, BarArrays, PricePath, Ticks, bucket_starts
from .replayed import ReplayedPath

_MASK = 0xFFFFFFFF
_PATHS_KEPT = 48  # contract paths cached at once: every listed contract (3 per product at most) and a few more
_INDEX = {spec.root: i for i, spec in enumerate(PRODUCTS)}


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


@functools.lru_cache(maxsize=len(PRODUCTS))
def product_levels(seed: int, index: int) -> np.ndarray:
    """The product's seeded daily levels in ticks (one per UTC day from EPOCH), shared by all its contracts."""
    spec = PRODUCTS[index]
    rng = np.random.default_rng([seed & _MASK, index, 0])
    log_dev = np.empty(MAX_DAYS)
    log_dev[0] = rng.normal(0.0, spec.daily_vol * 3)
    shocks = rng.normal(0.0, spec.daily_vol, MAX_DAYS)
    for day in range(1, MAX_DAYS):  # mean-reverting around the base price
        log_dev[day] = 0.985 * log_dev[day - 1] + shocks[day]
    levels = spec.base_price / spec.tick_size * np.exp(log_dev)
    levels.flags.writeable = False
    return levels


def contract_day_opens(seed: int, index: int, expiry: Expiry) -> np.ndarray:
    """A contract's daily opens in ticks: the product's levels plus the carry to its expiry (none once expired)."""
    days_left = np.maximum((expiry.expires_us - EPOCH_US) // DAY_US - np.arange(MAX_DAYS), 0)
    return np.rint(product_levels(seed, index) * (1 + PRODUCTS[index].carry * days_left / 365)).astype(np.int64)


class Market:
    """Contracts listed at the simulated time, their seeded paths, books and quotes; prices are a pure function of time.

    `now` is the simulated time: a fixed moment or a function returning it in microseconds (a SimClock's now_us).
    """

    def __init__(self, seed: int, now: datetime | Callable[[], int], trades_per_minute: float = 60.0,
                 depth_levels: int = 10):
        self.seed = seed
        self.depth_levels = depth_levels
        self.trades_per_minute = trades_per_minute
        self._now_us = now if callable(now) else functools.partial(to_us, now)
        self._book = functools.lru_cache(maxsize=512)(self._build_book)  # recent books of the streamed contracts
        self._path = functools.lru_cache(maxsize=_PATHS_KEPT)(self._build_path)
        self.replayed: dict[str, ReplayedPath] = {}  # contract id -> recorded prints standing in for its path

    # ------------------------------------------------------------------ contracts

    def listed(self) -> list[tuple[ProductSpec, Contract]]:
        """Every contract listed now, product by product, oldest expiry first."""
        expiries = listed_expiries(self._now_us())
        return [(spec, contract_for(spec, expiry, active)) for spec in PRODUCTS for expiry, active in expiries]

    @property
    def contracts(self) -> list[Contract]:
        return [c for _, c in self.listed()]

    def contract(self, contract_id: str) -> Contract | None:
        """A contract listed now (None once it has expired or before it is listed)."""
        parsed = parse_contract_id(contract_id)
        if parsed is None:
            return None
        active = dict(listed_expiries(self._now_us())).get(parsed[1])
        return None if active is None else contract_for(parsed[0], parsed[1], active)

    def contract_with_history(self, contract_id: str) -> Contract | None:
        """A contract listed now or in the past: an expired one keeps its history."""
        parsed = parse_contract_id(contract_id)
        if parsed is None or first_listed_us(parsed[1]) > self._now_us():
            return None
        return self.contract(contract_id) or contract_for(*parsed, active=False)

    def spec(self, contract_id: str) -> ProductSpec:
        parsed = parse_contract_id(contract_id)
        if parsed is None:
            raise KeyError(contract_id)
        return parsed[0]

    def path(self, contract_id: str) -> PricePath:
        replayed = self.replayed.get(contract_id)
        if replayed is not None:
            return replayed
        parsed = parse_contract_id(contract_id)
        if parsed is None:
            raise KeyError(contract_id)
        return self._path(parsed[0].root, parsed[1])

    def replay(self, contract_id: str, times_us: np.ndarray, prices: np.ndarray, sizes: np.ndarray,
               sides: np.ndarray) -> ReplayedPath:
        """Let recorded prints (prices in money, time order) be a contract's market from now on: its trades,
        quotes, book, history and fills follow them."""
        spec = self.spec(contract_id)
        in_ticks = np.rint(np.asarray(prices) / spec.tick_size).astype(np.int64)
        ticks = Ticks(np.asarray(times_us, dtype=np.int64), in_ticks, np.asarray(sizes, dtype=np.int64),
                      np.asarray(sides, dtype=np.int8))
        path = self.replayed[contract_id] = ReplayedPath(spec, ticks)
        return path

    def _build_path(self, root: str, expiry: Expiry) -> PricePath:
        index = _INDEX[root]
        key = (self.seed & _MASK, index, expiry.year * 12 + expiry.month)
        return PricePath(PRODUCTS[index], key, contract_day_opens(self.seed, index, expiry), self.trades_per_minute)

    def search(self, text: str, limit: int = 20) -> list[Contract]:
        """Substring search over names, tickers, roots and descriptions of the active contracts."""
        needle = text.strip().upper()
        hits = [
            c for spec, c in self.listed()
            if c.active_contract and any(needle in f.upper() for f in (c.name, spec.ticker, spec.root, c.description))
        ]
        hits.sort(key=lambda c: c.name)
        return hits[:limit]

    # ------------------------------------------------------------------ prices

    def price(self, contract_id: str, ticks: int) -> float:
        """Price of a tick count, rounded to the contract's grid."""
        tick = self.spec(contract_id).tick_size
        return round(ticks * tick, tick_decimals(tick))

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
        spec = self.spec(contract_id)
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
            volume=volume,  # a JSON integer, as the gateway sends it
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
