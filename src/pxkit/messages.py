"""What the realtime client streams: every hub push decoded, connection changes and accounts read anew.

A closed set of frozen types; the codec builds the pushes, the realtime client the other two. The router
compares each AccountTruth with its cache and reports what the managers missed as a ReconcileReport.

| message           | from                               | carries                                        |
|-------------------|------------------------------------|------------------------------------------------|
| TradesPushed      | market hub, trades of a contract   | contract_id, trades (MarketTrade...)           |
| QuotePushed       | market hub, a (partial) quote      | contract_id, quote (Quote)                     |
| DepthPushed       | market hub, level-2 records        | contract_id, entries (DepthEntry...)           |
| OrderPushed       | user hub, an order changed         | order (Order), action                          |
| PositionPushed    | user hub, a position changed       | position (Position), action                    |
| UserTradePushed   | user hub, a fill of the user's     | trade (Trade), action                          |
| AccountPushed     | user hub, the account changed      | account (Account), action                      |
| ConnectionChanged | either hub's link                  | hub, state (LinkState), at                     |
| Reconciled        | user hub, subscribed or reconnected| hub, account_id, truth (AccountTruth)          |

Pushes carry `received_at`, the time.time() at which their frame arrived on the socket. A market push's
`contract_id` is None when the gateway sent its payload alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .enums import LinkState, UserAction
from .models import Account, DepthEntry, MarketTrade, Order, Position, Quote, Trade

_message = dataclass(frozen=True, slots=True)


@_message
class TradesPushed:
    """Trade prints of one contract, oldest first (records that could not be decoded are left out)."""

    contract_id: str | None
    trades: tuple[MarketTrade, ...]
    received_at: float


@_message
class QuotePushed:
    """A quote of one contract; only the fields that changed may be set."""

    contract_id: str | None
    quote: Quote
    received_at: float


@_message
class DepthPushed:
    """Level-2 records of one contract, in the gateway's order (undecodable records left out)."""

    contract_id: str | None
    entries: tuple[DepthEntry, ...]
    received_at: float


@_message
class OrderPushed:
    """An order of the user's, as the gateway reports it now."""

    order: Order
    action: UserAction
    received_at: float


@_message
class PositionPushed:
    """A position of the user's; size 0 or DELETED means it closed."""

    position: Position
    action: UserAction
    received_at: float


@_message
class UserTradePushed:
    """A fill of one of the user's orders."""

    trade: Trade
    action: UserAction
    received_at: float


@_message
class AccountPushed:
    """The user's account: balance and flags."""

    account: Account
    action: UserAction
    received_at: float


@_message
class ConnectionChanged:
    """A hub's connection state changed, at `at` (time.time())."""

    hub: str
    state: LinkState
    at: float


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What changed while the hub was away, found by comparing the cached state with the gateway's."""

    orders_closed: tuple[Order, ...] = ()  # ended while away (filled, cancelled...), in their final state
    orders_opened: tuple[Order, ...] = ()  # working on the gateway, unknown here
    orders_changed: tuple[Order, ...] = ()  # still working, but different (price, size, fills)
    positions_closed: tuple[Position, ...] = ()  # the cached positions that are gone
    positions_opened: tuple[Position, ...] = ()
    positions_changed: tuple[Position, ...] = ()
    account: Account | None = None  # the account, when its balance or flags changed
    trades: tuple[Trade, ...] = ()  # fills the hub never pushed (or whose voided flag changed), oldest first

    @property
    def missed_anything(self) -> bool:
        return any((self.orders_closed, self.orders_opened, self.orders_changed, self.positions_closed,
                    self.positions_opened, self.positions_changed, self.account, self.trades))


@_message
class AccountTruth:
    """One complete read of an account on the gateway, with the time.time() at which each part was in hand.

    A push that arrived after a part was read is newer than that part. `ended_orders` and `trades` reach back to
    the window's start, so every order end and fill since the last moment all of them were known is in them.
    `primed`: the first read, at subscription, which reports no order end or fill as missed.
    """

    account_id: int
    open_orders: tuple[Order, ...]
    positions: tuple[Position, ...]
    account: Account | None
    ended_orders: tuple[Order, ...]  # orders in a final state whose last change is inside the window
    trades: tuple[Trade, ...]
    started: float  # time.time() when the reads began
    known_until: datetime  # gateway time when the reads began: every fill and order end before it is known
    orders_read_at: float
    positions_read_at: float
    account_read_at: float
    trades_read_at: float
    primed: bool = False


@_message
class Reconciled:
    """An account's truth was read (at subscription, and after every reconnect of the user hub): it is in the
    user stream, in order with the pushes, for the router to compare with its cache."""

    hub: str
    account_id: int
    truth: AccountTruth


MarketPush = TradesPushed | QuotePushed | DepthPushed
UserPush = OrderPushed | PositionPushed | UserTradePushed | AccountPushed
HubPush = MarketPush | UserPush
HubMessage = HubPush | ConnectionChanged | Reconciled
