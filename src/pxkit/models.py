"""Frozen, slotted data models for every gateway entity and request body (snake_case, UTC datetimes)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime

from .enums import BarUnit, DomType, OrderSide, OrderStatus, OrderType, PositionType, TradeType

_frozen = dataclass(frozen=True, slots=True)


@functools.lru_cache(maxsize=256)
def tick_decimals(tick_size: float) -> int:
    """Number of decimals needed to print prices on a tick grid (0.25 -> 2, 0.005 -> 3)."""
    text = f"{tick_size:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


# --------------------------------------------------------------------------- entities


@_frozen
class Account:
    """A trading account (Account/search, GatewayUserAccount)."""

    id: int
    name: str
    balance: float
    can_trade: bool
    is_visible: bool
    simulated: bool | None = None


@_frozen
class Contract:
    """A futures contract with its tick grid (Contract/search, searchById, available)."""

    id: str
    name: str
    description: str
    tick_size: float
    tick_value: float
    active_contract: bool
    symbol_id: str | None = None

    @property
    def root(self) -> str:
        """ProjectX product root, e.g. `ENQ` for `CON.F.US.ENQ.H26`."""
        return self.id.split(".")[3]

    def to_ticks(self, price: float) -> int:
        """Nearest whole number of ticks for a price."""
        return round(price / self.tick_size)

    def round_price(self, price: float) -> float:
        """The nearest price on this contract's tick grid."""
        return round(self.to_ticks(price) * self.tick_size, tick_decimals(self.tick_size))

    def on_grid(self, price: float) -> bool:
        """True when price lies on the tick grid (to float precision)."""
        return math.isclose(price, self.to_ticks(price) * self.tick_size, rel_tol=0.0, abs_tol=self.tick_size * 1e-6)


@_frozen
class Bar:
    """One OHLCV bar; `timestamp` is the bar's open time."""

    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int


@_frozen
class Quote:
    """A (possibly partial) quote; `symbol` is the symbolId, e.g. `F.US.EP`."""

    symbol: str
    symbol_name: str | None = None
    last_price: float | None = None
    best_bid: float | None = None
    best_ask: float | None = None
    change: float | None = None
    change_percent: float | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    volume: float | None = None
    last_updated: datetime | None = None
    timestamp: datetime | None = None


@_frozen
class MarketTrade:
    """A trade print on the market; `type` is the aggressor side."""

    symbol_id: str
    price: float
    timestamp: datetime
    type: TradeType
    volume: float


@_frozen
class DepthEntry:
    """One level-2 record of a GatewayDepth push."""

    timestamp: datetime
    type: DomType
    price: float
    volume: float
    current_volume: int = 0


@_frozen
class Order:
    """An order as the gateway reports it (Order/search, GatewayUserOrder)."""

    id: int
    account_id: int
    contract_id: str
    creation_timestamp: datetime
    status: OrderStatus
    type: OrderType
    side: OrderSide
    size: int
    symbol_id: str | None = None
    update_timestamp: datetime | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    fill_volume: int = 0
    filled_price: float | None = None
    custom_tag: str | None = None


@_frozen
class Position:
    """A net position in one contract; `size` 0 means closed."""

    id: int
    account_id: int
    contract_id: str
    creation_timestamp: datetime
    type: PositionType
    size: int
    average_price: float


@_frozen
class Trade:
    """A fill of one of the user's orders; `profit_and_loss` None = opening (half-turn) fill."""

    id: int
    account_id: int
    contract_id: str
    creation_timestamp: datetime
    price: float
    fees: float
    side: OrderSide
    size: int
    order_id: int
    profit_and_loss: float | None = None
    voided: bool = False


# --------------------------------------------------------------------------- request bodies


@_frozen
class LoginKeyRequest:
    """Body of Auth/loginKey."""

    user_name: str
    api_key: str

    def __repr__(self) -> str:
        return f"LoginKeyRequest(user_name={self.user_name!r}, api_key=***)"


@_frozen
class LoginAppRequest:
    """Body of Auth/loginApp."""

    user_name: str
    password: str
    device_id: str
    app_id: str
    verify_key: str

    def __repr__(self) -> str:
        return f"LoginAppRequest(user_name={self.user_name!r}, app_id={self.app_id!r}, password=***)"


@_frozen
class AccountSearchRequest:
    """Body of Account/search."""

    only_active_accounts: bool


@_frozen
class ContractSearchRequest:
    """Body of Contract/search; no `search_text` (or None) is an empty search."""

    live: bool
    search_text: str | None = None


@_frozen
class ContractByIdRequest:
    """Body of Contract/searchById."""

    contract_id: str


@_frozen
class ContractAvailableRequest:
    """Body of Contract/available."""

    live: bool = False


@_frozen
class BarsRequest:
    """Body of History/retrieveBars."""

    contract_id: str
    live: bool
    start_time: datetime
    end_time: datetime
    unit: BarUnit
    unit_number: int
    limit: int
    include_partial_bar: bool


@_frozen
class BracketSpec:
    """A native bracket leg: signed ticks from the entry fill and the leg's order type."""

    ticks: int
    type: OrderType


@_frozen
class PlaceOrderRequest:
    """Body of Order/place."""

    account_id: int
    contract_id: str
    type: OrderType
    side: OrderSide
    size: int
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None
    custom_tag: str | None = None
    linked_order_id: int | None = None
    stop_loss_bracket: BracketSpec | None = None
    take_profit_bracket: BracketSpec | None = None


@_frozen
class AccountRequest:
    """Body of Order/searchOpen and Position/searchOpen."""

    account_id: int


@_frozen
class WindowSearchRequest:
    """Body of Order/search (and of Trade/search as the client sends it)."""

    account_id: int
    start_timestamp: datetime
    end_timestamp: datetime | None = None


@_frozen
class TradeSearchRequest:
    """Body of Trade/search as the gateway binds it: no start means every trade."""

    account_id: int
    start_timestamp: datetime | None = None
    end_timestamp: datetime | None = None


@_frozen
class CancelOrderRequest:
    """Body of Order/cancel."""

    account_id: int
    order_id: int


@_frozen
class ModifyOrderRequest:
    """Body of Order/modify; None fields are left unchanged."""

    account_id: int
    order_id: int
    size: int | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None


@_frozen
class ClosePositionRequest:
    """Body of Position/closeContract."""

    account_id: int
    contract_id: str


@_frozen
class PartialCloseRequest:
    """Body of Position/partialCloseContract."""

    account_id: int
    contract_id: str
    size: int
