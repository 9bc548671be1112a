"""pxkit: async client, simulated gateway and Jupyter layer for the ProjectX Gateway API."""

from .enums import BarUnit, DomType, OrderSide, OrderStatus, OrderType, PositionType, TradeType, UserAction
from .errors import (
    AuthenticationError,
    ConfigError,
    GatewayError,
    InputError,
    PxError,
)

__all__ = [
    "AuthenticationError",
    "BarUnit",
    "ConfigError",
    "DomType",
    "GatewayError",
    "InputError",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PositionType",
    "PxError",
    "TradeType",
    "UserAction",
]
