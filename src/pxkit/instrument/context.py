"""InstrumentContext: the managers and the event bus of one instrument, grouped under its symbol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..events import EventBus
from ..models import Contract
from .data import RealtimeDataManager
from .orderbook import OrderBook
from .orders import OrderManager
from .positions import PositionManager


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

    def __repr__(self) -> str:
        features = [name for name in ("orderbook", "risk_manager") if getattr(self, name) is not None]
        return f"InstrumentContext({self.symbol!r}, {self.instrument_info.id}, features={features})"
