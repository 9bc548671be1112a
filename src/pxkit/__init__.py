"""pxkit: async client, simulated gateway and Jupyter layer for the ProjectX Gateway API.

The public names, by what they are for (`__all__` itself is sorted):

- start here: TradingSuite (several instruments on one account), ProjectX (REST), ProjectXRealtimeClient (hubs),
  ProjectXConfig, LinkSettings, RiskConfig
- what a suite holds: InstrumentContext (`suite["MNQ"]`), Portfolio, OrderHandle, BracketHandle
- what calls return: Account, Contract, Bar, Quote, MarketTrade, DepthEntry, Order, Position, Trade, PlacedOrder,
  ReconcileReport
- events: EventBus, Event, EventType; from the hubs HubEvent, ConnectionEvent, LinkState
- values to pass and read: OrderSide, OrderType, OrderStatus, PositionType, TradeType, DomType, BarUnit
- errors: PxError and its subclasses

Wire request bodies stay in `pxkit.models`, the gateway's error-code enums in `pxkit.enums`.
"""

from importlib.metadata import PackageNotFoundError, version

from .client.http import ProjectX
from .client.hublink import LinkSettings, LinkState
from .client.orders import PlacedOrder
from .client.realtime import ConnectionEvent, HubEvent, ProjectXRealtimeClient
from .client.reconcile import ReconcileReport
from .config import ProjectXConfig
from .enums import BarUnit, DomType, OrderSide, OrderStatus, OrderType, PositionType, TradeType
from .errors import (
    AccountNotFoundError,
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    ConnectionLostError,
    ContractNotFoundError,
    GatewayError,
    InputError,
    InstrumentNotFoundError,
    InsufficientFundsError,
    InvalidRequestError,
    OrderEndedError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateUnknownError,
    PositionNotFoundError,
    ProtocolError,
    PxError,
    RateLimitError,
    RequestTimeoutError,
    RiskStateError,
    RiskViolationError,
    ServerError,
    TransportError,
    UnprotectedPositionError,
)
from .events import Event, EventBus, EventType
from .instrument.context import InstrumentContext
from .instrument.orders import BracketHandle, OrderHandle
from .models import Account, Bar, Contract, DepthEntry, MarketTrade, Order, Position, Quote, Trade
from .portfolio import Portfolio
from .risk.limits import RiskConfig
from .suite import TradingSuite

try:
    __version__ = version("pxkit")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Account",
    "AccountNotFoundError",
    "AuthenticationError",
    "Bar",
    "BarUnit",
    "BracketHandle",
    "CircuitOpenError",
    "ConfigError",
    "ConnectionEvent",
    "ConnectionLostError",
    "Contract",
    "ContractNotFoundError",
    "DepthEntry",
    "DomType",
    "Event",
    "EventBus",
    "EventType",
    "GatewayError",
    "HubEvent",
    "InputError",
    "InstrumentContext",
    "InstrumentNotFoundError",
    "InsufficientFundsError",
    "InvalidRequestError",
    "LinkSettings",
    "LinkState",
    "MarketTrade",
    "Order",
    "OrderEndedError",
    "OrderHandle",
    "OrderNotFoundError",
    "OrderRejectedError",
    "OrderSide",
    "OrderStateUnknownError",
    "OrderStatus",
    "OrderType",
    "PlacedOrder",
    "Portfolio",
    "Position",
    "PositionNotFoundError",
    "PositionType",
    "ProjectX",
    "ProjectXConfig",
    "ProjectXRealtimeClient",
    "ProtocolError",
    "PxError",
    "Quote",
    "RateLimitError",
    "ReconcileReport",
    "RequestTimeoutError",
    "RiskConfig",
    "RiskStateError",
    "RiskViolationError",
    "ServerError",
    "Trade",
    "TradeType",
    "TradingSuite",
    "TransportError",
    "UnprotectedPositionError",
]
