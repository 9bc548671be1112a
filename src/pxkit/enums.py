"""Integer enums exactly as the ProjectX Gateway puts them on the wire, and the connection state of a hub."""

from __future__ import annotations

from enum import Enum, IntEnum


class OrderType(IntEnum):
    """Order type (`type` in Order/place and order payloads)."""

    UNKNOWN = 0
    LIMIT = 1
    MARKET = 2
    STOP_LIMIT = 3
    STOP = 4
    TRAILING_STOP = 5
    JOIN_BID = 6
    JOIN_ASK = 7


class OrderSide(IntEnum):
    """Order side: 0 bid (buy), 1 ask (sell)."""

    BUY = 0
    SELL = 1

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self is OrderSide.BUY else -1

    @property
    def opposite(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderStatus(IntEnum):
    """Order status; PENDING is what a market order shows before its fill."""

    NONE = 0
    OPEN = 1
    FILLED = 2
    CANCELLED = 3
    EXPIRED = 4
    REJECTED = 5
    PENDING = 6

    @property
    def is_working(self) -> bool:
        return self in (OrderStatus.OPEN, OrderStatus.PENDING)


class PositionType(IntEnum):
    """Net position direction; size is always positive on the wire."""

    UNDEFINED = 0
    LONG = 1
    SHORT = 2


class DomType(IntEnum):
    """Kind of a level-2 depth record."""

    UNKNOWN = 0
    ASK = 1
    BID = 2
    BEST_ASK = 3
    BEST_BID = 4
    TRADE = 5
    RESET = 6
    LOW = 7
    HIGH = 8
    NEW_BEST_BID = 9
    NEW_BEST_ASK = 10
    FILL = 11


class TradeType(IntEnum):
    """Aggressor side of a market trade (TradeLogType)."""

    BUY = 0
    SELL = 1


class BarUnit(IntEnum):
    """Bar unit for History/retrieveBars."""

    UNSPECIFIED = 0
    SECOND = 1
    MINUTE = 2
    HOUR = 3
    DAY = 4
    WEEK = 5
    MONTH = 6


class UserAction(IntEnum):
    """`action` of a wrapped user-hub event."""

    CREATED = 0
    UPDATED = 1
    DELETED = 2


class LoginError(IntEnum):
    """errorCode of Auth/loginKey and Auth/loginApp."""

    USER_NOT_FOUND = 1
    PASSWORD_VERIFICATION_FAILED = 2
    INVALID_CREDENTIALS = 3
    APP_NOT_FOUND = 4
    APP_VERIFICATION_FAILED = 5
    INVALID_DEVICE = 6
    AGREEMENTS_NOT_SIGNED = 7
    UNKNOWN_ERROR = 8
    API_SUBSCRIPTION_NOT_FOUND = 9
    API_KEY_AUTHENTICATION_DISABLED = 10


class ValidateError(IntEnum):
    """errorCode of Auth/validate."""

    INVALID_SESSION = 1
    SESSION_NOT_FOUND = 2
    EXPIRED_TOKEN = 3
    UNKNOWN_ERROR = 4


class ContractError(IntEnum):
    """errorCode of Contract/searchById."""

    CONTRACT_NOT_FOUND = 1


class BarsError(IntEnum):
    """errorCode of History/retrieveBars."""

    CONTRACT_NOT_FOUND = 1
    UNIT_INVALID = 2
    UNIT_NUMBER_INVALID = 3
    LIMIT_INVALID = 4


class SearchError(IntEnum):
    """errorCode of Order/search, Order/searchOpen, Position/searchOpen and Trade/search."""

    ACCOUNT_NOT_FOUND = 1


class PlaceOrderError(IntEnum):
    """errorCode of Order/place."""

    ACCOUNT_NOT_FOUND = 1
    ORDER_REJECTED = 2
    INSUFFICIENT_FUNDS = 3
    ACCOUNT_VIOLATION = 4
    OUTSIDE_TRADING_HOURS = 5
    ORDER_PENDING = 6
    UNKNOWN_ERROR = 7
    CONTRACT_NOT_FOUND = 8
    CONTRACT_NOT_ACTIVE = 9
    ACCOUNT_REJECTED = 10


class ModifyOrderError(IntEnum):
    """errorCode of Order/cancel and Order/modify (7 only on modify)."""

    ACCOUNT_NOT_FOUND = 1
    ORDER_NOT_FOUND = 2
    REJECTED = 3
    PENDING = 4
    UNKNOWN_ERROR = 5
    ACCOUNT_REJECTED = 6
    CONTRACT_NOT_FOUND = 7


class ClosePositionError(IntEnum):
    """errorCode of Position/closeContract."""

    ACCOUNT_NOT_FOUND = 1
    POSITION_NOT_FOUND = 2
    CONTRACT_NOT_FOUND = 3
    CONTRACT_NOT_ACTIVE = 4
    ORDER_REJECTED = 5
    ORDER_PENDING = 6
    UNKNOWN_ERROR = 7
    ACCOUNT_REJECTED = 8


class PartialCloseError(IntEnum):
    """errorCode of Position/partialCloseContract."""

    ACCOUNT_NOT_FOUND = 1
    POSITION_NOT_FOUND = 2
    CONTRACT_NOT_FOUND = 3
    CONTRACT_NOT_ACTIVE = 4
    INVALID_CLOSE_SIZE = 5
    ORDER_REJECTED = 6
    ORDER_PENDING = 7
    UNKNOWN_ERROR = 8
    ACCOUNT_REJECTED = 9


class LinkState(Enum):
    """Connection state of a hub, as reported to listeners."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    RECONNECTED = "reconnected"
