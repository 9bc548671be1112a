"""Pure evaluation of the risk limits: pre-trade refusals, post-trade breaches, lockout length."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from ..enums import OrderSide, PositionType
from ..errors import InputError, RiskViolationError
from ..hours import NEW_YORK, trading_day
from ..models import PlaceOrderRequest, Position
from .limits import DAY_NAMES, RiskConfig, aware, trading_day_bounds


class Rule(StrEnum):
    """The risk rules, as named in violations, lockouts and the enforcement log."""

    DAILY_LOSS = "daily_loss"
    POSITION_SIZE = "position_size"
    TOTAL_POSITION_SIZE = "total_position_size"
    OPEN_ORDERS = "open_orders"
    TRADING_HOURS = "trading_hours"
    LOCKOUT = "lockout"


class Action(StrEnum):
    """What cures a violation: REFUSE the order (pre-trade), or for a breach FLATTEN (cancel every working order and
    close every position), REDUCE positions by `excess` contracts, CANCEL_ORDERS (`excess` working orders)."""

    REFUSE = "refuse"
    FLATTEN = "flatten"
    REDUCE = "reduce"
    CANCEL_ORDERS = "cancel_orders"


_MESSAGES = {
    Rule.DAILY_LOSS: "daily loss {value:.2f} reached the limit {limit:.2f}",
    Rule.POSITION_SIZE: "position of {value} contracts in {contract} exceeds the limit {limit}",
    Rule.TOTAL_POSITION_SIZE: "{value} contracts across all instruments exceed the limit {limit}",
    Rule.OPEN_ORDERS: "{value} working orders exceed the limit {limit}",
    Rule.TRADING_HOURS: "{value} New York is outside the trading hours ({limit})",
    Rule.LOCKOUT: "locked out until {limit:%Y-%m-%d %H:%M:%S} UTC",
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule broken: its limit, the value that broke it, the contract concerned and the cure."""

    rule: Rule
    limit: int | float | str | datetime
    value: int | float | str | datetime
    action: Action
    contract_id: str | None = None

    @property
    def excess(self) -> int:
        """Contracts or orders above the limit, for REDUCE and CANCEL_ORDERS; 0 for the other actions."""
        cures_excess = self.action in (Action.REDUCE, Action.CANCEL_ORDERS)
        if cures_excess and isinstance(self.value, int) and isinstance(self.limit, int):
            return self.value - self.limit
        return 0

    def __str__(self) -> str:
        return _MESSAGES[self.rule].format(value=self.value, limit=self.limit, contract=self.contract_id)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A proposed order as the rules see it: contract, side, size and how many working orders it may make at once
    (an entry with native bracket legs: one while it works, then one per leg)."""

    contract_id: str
    side: OrderSide
    size: int
    orders: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.contract_id, str) or not self.contract_id.strip():
            raise InputError(f"contract_id must be a contract id, got {self.contract_id!r}")
        if not isinstance(self.side, OrderSide):
            raise InputError(f"side must be an OrderSide, got {self.side!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size <= 0:
            raise InputError(f"size must be a whole number of contracts > 0, got {self.size!r}")
        if isinstance(self.orders, bool) or not isinstance(self.orders, int) or self.orders <= 0:
            raise InputError(f"orders must be a whole number > 0, got {self.orders!r}")

    @classmethod
    def from_request(cls, request: PlaceOrderRequest) -> OrderIntent:
        legs = (request.stop_loss_bracket is not None) + (request.take_profit_bracket is not None)
        return cls(request.contract_id, request.side, request.size, max(1, legs))

    def resulting_position(self, position: int) -> int:
        """The signed position once this order fills completely."""
        return position + self.side.sign * self.size

    def reduces(self, position: int) -> bool:
        """True when the order only brings the position towards flat (never through it)."""
        after = self.resulting_position(position)
        return after * position >= 0 and abs(after) < abs(position)


@dataclass(frozen=True, slots=True)
class RiskState:
    """A snapshot of one account: exchange time, signed positions per contract, working orders (with the orders
    admitted but not yet seen), the trading day's net P&L (realised - fees + unrealised), the end of the account's
    lockout if one was recorded, and per contract the (buy, sell) contracts that working orders and admitted
    orders may still add: the position can end anywhere between `worst(c, SELL)` and `worst(c, BUY)`."""

    now: datetime
    positions: Mapping[str, int] = field(default_factory=dict)
    open_orders: int = 0
    daily_pnl: float = 0.0
    lockout_until: datetime | None = None
    pending: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        aware("now", self.now)
        if self.lockout_until is not None:
            aware("lockout_until", self.lockout_until)

    def position(self, contract_id: str) -> int:
        return self.positions.get(contract_id, 0)

    @property
    def total_contracts(self) -> int:
        return sum(abs(size) for size in self.positions.values())

    def worst(self, contract_id: str, side: OrderSide) -> int:
        """The signed position if every pending order on `side` of the contract filled."""
        buys, sells = self.pending.get(contract_id, (0, 0))
        return self.position(contract_id) + (buys if side is OrderSide.BUY else -sells)

    def worst_size(self, contract_id: str) -> int:
        """The largest absolute position the contract can reach through its pending orders."""
        return max(abs(self.worst(contract_id, OrderSide.BUY)), abs(self.worst(contract_id, OrderSide.SELL)))

    @property
    def worst_total(self) -> int:
        """The most contracts the account can hold across instruments through its pending orders."""
        return sum(self.worst_size(contract) for contract in {*self.positions, *self.pending})


def signed_positions(positions: Iterable[Position]) -> dict[str, int]:
    """Signed net sizes per contract (long > 0, short < 0) from gateway positions; flat ones are left out."""
    signed: dict[str, int] = {}
    for position in positions:
        sign = {PositionType.LONG: 1, PositionType.SHORT: -1}.get(position.type, 0)
        if sign and position.size:
            signed[position.contract_id] = signed.get(position.contract_id, 0) + sign * position.size
    return {contract: size for contract, size in signed.items() if size}


class RiskRules:
    """The rules of one RiskConfig over RiskState snapshots; no I/O and no clock, so every answer is deterministic.

    A position limit is broken one contract over it, counting every pending order on the order's side as filled;
    the daily loss limit is reached at the limit itself. Orders that only reduce a position (even once the
    pending orders on their side have filled) are always allowed, even locked out, past the daily loss or
    outside trading hours, so the trader can always get flat; every other order must pass every rule.
    """

    def __init__(self, config: RiskConfig) -> None:
        self.config = config

    def in_trading_hours(self, now: datetime) -> bool:
        return not self.config.trading_hours or any(window.contains(now) for window in self.config.trading_hours)

    def order_violations(self, intent: OrderIntent, state: RiskState) -> tuple[Violation, ...]:
        """Every reason to refuse the order (empty when it is allowed)."""
        config, contract = self.config, intent.contract_id
        base = state.worst(contract, intent.side)  # where the pending orders on this side can take the position
        if not config.enabled or intent.reduces(base):
            return ()
        found: list[Violation] = []
        if state.lockout_until is not None and state.now < state.lockout_until:
            found.append(Violation(Rule.LOCKOUT, state.lockout_until.astimezone(UTC), state.now.astimezone(UTC),
                                   Action.REFUSE))
        found += self._daily_loss(state, Action.REFUSE) + self._hours(state, Action.REFUSE)
        after = abs(intent.resulting_position(base))
        limit = config.position_limit(contract)
        if limit is not None and after > limit:
            found.append(Violation(Rule.POSITION_SIZE, limit, after, Action.REFUSE, contract))
        other = abs(state.worst(contract, intent.side.opposite))
        total = state.worst_total - state.worst_size(contract) + max(after, other)
        if config.max_total_position_size is not None and total > config.max_total_position_size:
            found.append(Violation(Rule.TOTAL_POSITION_SIZE, config.max_total_position_size, total, Action.REFUSE))
        orders = state.open_orders + intent.orders
        if config.max_open_orders is not None and orders > config.max_open_orders:
            found.append(Violation(Rule.OPEN_ORDERS, config.max_open_orders, orders, Action.REFUSE))
        return tuple(found)

    def check_order(self, intent: OrderIntent, state: RiskState) -> None:
        """Raise RiskViolationError (naming the first rule broken and carrying all of them) unless allowed."""
        found = self.order_violations(intent, state)
        if found:
            first = found[0]
            reasons = "; ".join(str(violation) for violation in found)
            raise RiskViolationError(
                f"order refused ({intent.side.name} {intent.size} {intent.contract_id}): {reasons}",
                rule=first.rule, limit=first.limit, value=first.value, violations=found)

    def breaches(self, state: RiskState) -> tuple[Violation, ...]:
        """The rules the account breaks now (after a fill, a P&L change or a new order), each with its cure."""
        config = self.config
        if not config.enabled:
            return ()
        found = list(self._daily_loss(state, Action.FLATTEN))
        for contract, size in sorted(state.positions.items()):
            limit = config.position_limit(contract)
            if limit is not None and abs(size) > limit:
                found.append(Violation(Rule.POSITION_SIZE, limit, abs(size), Action.REDUCE, contract))
        if config.max_total_position_size is not None and state.total_contracts > config.max_total_position_size:
            found.append(Violation(Rule.TOTAL_POSITION_SIZE, config.max_total_position_size, state.total_contracts,
                                   Action.REDUCE))
        if config.max_open_orders is not None and state.open_orders > config.max_open_orders:
            found.append(Violation(Rule.OPEN_ORDERS, config.max_open_orders, state.open_orders,
                                   Action.CANCEL_ORDERS))
        if state.total_contracts:
            found += self._hours(state, Action.FLATTEN)
        return tuple(found)

    def lockout_until(self, breach: Violation, now: datetime) -> datetime | None:
        """End (UTC) of the lockout a breach starts: `lockout_minutes` after `now`, and for the daily loss not
        before the trading day ends; None for a refusal, or when lockout_minutes is 0 for other rules."""
        if breach.action is Action.REFUSE:
            return None
        cool_down = aware("now", now).astimezone(UTC) + timedelta(minutes=self.config.lockout_minutes)
        if breach.rule is Rule.DAILY_LOSS:
            return max(cool_down, trading_day_bounds(trading_day(now))[1])
        return cool_down if self.config.lockout_minutes else None

    def _daily_loss(self, state: RiskState, action: Action) -> list[Violation]:
        limit = self.config.max_daily_loss
        loss = round(-state.daily_pnl, 2)
        return [Violation(Rule.DAILY_LOSS, limit, loss, action)] if limit is not None and loss >= limit else []

    def _hours(self, state: RiskState, action: Action) -> list[Violation]:
        if self.in_trading_hours(state.now):
            return []
        windows = "; ".join(str(window) for window in self.config.trading_hours)
        local = state.now.astimezone(NEW_YORK)
        return [Violation(Rule.TRADING_HOURS, windows, f"{DAY_NAMES[local.weekday()]} {local:%H:%M}", action)]
