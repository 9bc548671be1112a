"""A contract's prints replayed instead of generated: the price path's queries (ticks, last trade, session
statistics, bars) answered from recorded times, prices, sizes and aggressor sides."""

from __future__ import annotations

import numpy as np

from .instruments import ProductSpec
from .pricepath import DAY_MINUTES, EPOCH_US, MINUTE_US, MinuteBars, PricePath, Ticks

_NONE = Ticks(*(np.empty(0, dtype=t) for t in (np.int64, np.int64, np.int64, np.int8)))


class ReplayedPath(PricePath):
    """The path of a contract made of recorded prints (sorted by time); nothing trades outside them."""

    def __init__(self, spec: ProductSpec, ticks: Ticks) -> None:
        if not len(ticks):
            raise ValueError("a replayed path needs at least one print")
        if np.any(np.diff(ticks.time) < 0) or ticks.time[0] < EPOCH_US:
            raise ValueError("replayed prints must be in time order and after the simulator's epoch")
        super().__init__(spec, (0,), np.empty(0, dtype=np.int64), trades_per_minute=1.0)
        self.recorded = ticks
        self._minute_of = (ticks.time - EPOCH_US) // MINUTE_US

    @property
    def first_us(self) -> int:
        return int(self.recorded.time[0])

    def _slice(self, first_minute: int, end_minute: int) -> slice:
        lo, hi = np.searchsorted(self._minute_of, [first_minute, end_minute], "left")
        return slice(int(lo), int(hi))

    def _minutes(self, day: int) -> MinuteBars:
        part = self._slice(day * DAY_MINUTES, (day + 1) * DAY_MINUTES)
        rows = self._minute_of[part] - day * DAY_MINUTES
        price, size = self.recorded.price[part], self.recorded.size[part]
        count = np.bincount(rows, minlength=DAY_MINUTES).astype(np.int64)
        volume = np.bincount(rows, weights=size, minlength=DAY_MINUTES).astype(np.int64)
        open_, high, low, close = (np.zeros(DAY_MINUTES, dtype=np.int64) for _ in range(4))
        if len(rows):
            starts = np.flatnonzero(np.concatenate(([True], np.diff(rows) > 0)))
            ends = np.concatenate((starts[1:], [len(rows)])) - 1
            traded = rows[starts]
            open_[traded], close[traded] = price[starts], price[ends]
            high[traded] = np.maximum.reduceat(price, starts)
            low[traded] = np.minimum.reduceat(price, starts)
        return MinuteBars(open_, high, low, close, volume, count)

    def _ticks_of_minute(self, minute: int) -> Ticks:
        part = self._slice(minute, minute + 1)
        if part.start == part.stop:
            return _NONE
        return Ticks(*(getattr(self.recorded, name)[part] for name in ("time", "price", "size", "side")))

    def _traded_before(self, minute: int) -> int:
        index = int(np.searchsorted(self._minute_of, minute, "left")) - 1
        if index < 0:
            raise ValueError("no recorded print before this moment")
        return int(self._minute_of[index])
