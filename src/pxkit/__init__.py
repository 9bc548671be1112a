"""pxkit: async client, simulated gateway and Jupyter layer for the ProjectX Gateway API.

The public names, by what they are for (`__all__` itself is sorted):

- start here: TradingSuite (several instruments on one account), ProjectX (REST), ProjectXRealtimeClient (hubs),
  ProjectXConfig, LinkSettings, RiskConfig
- what a suite holds: InstrumentContext (`suite["MNQ"]`), Portfolio, OrderHandle, BracketHandle
- what calls return: Account, Contract, Bar, Quote, MarketTrade, DepthEntry, Order, Position, Trade, PlacedOrder,
  ReconcileReport
- events: EventBus, Event, EventType, PAYLOADS (each type's `event.data`: BarEvent, FeedStatus, RiskBreach,
  DepthPushed, ConnectionChanged, or a model); LinkState
- what the realtime client streams: the typed messages of `pxkit.messages` (`HubMessage`)
- values to pass and read: OrderSide, OrderType, OrderStatus, PositionType, TradeType, DomType, BarUnit
- errors: PxError and its subclasses

Wire request bodies stay in `pxkit.models`, the gateway's error-code enums in `pxkit.enums`.
"""

from importlib.metadata import PackageNotFoundError, version

from .client.http import ProjectX
from .client.hublink import LinkSettings
from .client.orders import PlacedOrder
from .client.realtime import ProjectXRealtimeClient
from .config import ProjectXConfig
from .enums import BarUnit, DomType, LinkState, OrderSide, OrderStatus, OrderType, PositionType, TradeType
from .errors import (
    AccountNotFoundError,
    AuthenticationError,
    CircuitOpenError,
    ClosedError,
    ConfigError,
    ConnectionLostError,
    ContractNotFoundError,
    GatewayError,
    InputError,
    InstrumentNotFoundError,
    InsufficientFundsError,
    InvalidRequestError,
    OrderEndedError,
    OrderEvictedError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateUnknownError,
    OrderTimeoutError,
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
from .events import PAYLOADS, Event, EventBus, EventType
from .instrument.brackets import BracketHandle, OrderHandle
from .instrument.context import InstrumentContext
from .messages import (
    ConnectionChanged,
    DepthPushed,
    ReconcileReport,
)
from .models import Account, Bar, Contract, DepthEntry, MarketTrade, Order, Position, Quote, Trade
from .payloads import BarEvent, FeedStatus, RiskBreach
from .portfolio import Portfolio
from .risk.limits import RiskConfig
from .suite import TradingSuite

try:
    __version__ = version("pxkit")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "PAYLOADS",
    "Account",
    "AccountNotFoundError",
    "AuthenticationError",
    "Bar",
    "BarEvent",
    "BarUnit",
    "BracketHandle",
    "CircuitOpenError",
    "ClosedError",
    "ConfigError",
    "ConnectionChanged",
    "ConnectionLostError",
    "Contract",
    "ContractNotFoundError",
    "DepthEntry",
    "DepthPushed",
    "DomType",
    "Event",
    "EventBus",
    "EventType",
    "FeedStatus",
    "GatewayError",
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
    "OrderEvictedError",
    "OrderHandle",
    "OrderNotFoundError",
    "OrderRejectedError",
    "OrderSide",
    "OrderStateUnknownError",
    "OrderStatus",
    "OrderTimeoutError",
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
    "RiskBreach",
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
