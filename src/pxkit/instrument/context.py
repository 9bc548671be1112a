"""InstrumentContext: the managers and the event bus of one instrument, grouped under its symbol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..events import EventBus
from ..html import facts, fixed, panel, table
from ..models import Contract, tick_decimals
from .data import RealtimeDataManager
from .orderbook import OrderBook
from .orders import OrderManager
from .positions import PositionManager, size_cell


@dataclass(frozen=True, slots=True, eq=False)
class InstrumentContext:
    """Everything about one instrument of a suite: `suite["MNQ"].data`, `.orders`, `.positions`, ...

    `orderbook` and `risk_manager` are None unless their feature was asked for.
    """

    symbol: str
    instrument_info: Contract
    data: RealtimeDataManager
    orders: OrderManager
    positions: PositionManager
    event_bus: EventBus
    orderbook: OrderBook | None = None
    risk_manager: Any = None

    @property
    def contract_id(self) -> str:
        return self.instrument_info.id

    def book_top(self) -> tuple[float | None, float | None]:
        """(best bid, best ask): from the order book when the feature is on, else from the last quote."""
        if self.orderbook is not None:
            return self.orderbook.get_best_bid_ask()
        quote = self.data.quote
        return (None, None) if quote is None else (quote.best_bid, quote.best_ask)

    def _features(self) -> list[str]:
        return [name for name in ("orderbook", "risk_manager") if getattr(self, name) is not None]

    def __repr__(self) -> str:
        decimals = tick_decimals(self.instrument_info.tick_size)
        bid, ask = (fixed(price, decimals) for price in self.book_top())
        bars = " ".join(f"{name}:{len(self.data.bars[name])}" for name in self.data.bars)
        return (f"InstrumentContext({self.symbol!r}, {self.instrument_info.id}, "
                f"last {fixed(self.data.last_price, decimals)}, bid/ask {bid}/{ask}, bars {bars}, "
                f"position {size_cell(self.positions.size)}, features={self._features()})")

    def _repr_html_(self) -> str:
        info = self.instrument_info
        decimals = tick_decimals(info.tick_size)
        bid, ask = (fixed(price, decimals) for price in self.book_top())
        rows = []
        for name in self.data.bars:
            series = self.data.bars[name]
            bar = series.forming
            forming = ("", "", "", "", "", "") if bar is None else (
                f"{bar.timestamp:%H:%M:%S}", *(fixed(v, decimals) for v in (bar.open, bar.high, bar.low, bar.close)),
                f"{bar.volume:,}")
            rows.append((name, f"{len(series):,}", *forming))
        return panel(
            f"{self.symbol} \u00b7 {info.id}",
            facts([("last", fixed(self.data.last_price, decimals)), ("bid", bid), ("ask", ask),
                   ("position", size_cell(self.positions.size))]),
            facts([("tick", f"{fixed(info.tick_size, decimals)} = ${fixed(info.tick_value)}"),
                   ("features", ", ".join(self._features()) or "none")]),
            table(rows, ("timeframe", "closed bars", "forming since (UTC)", "open", "high", "low", "close", "volume")),
            note=info.description)
