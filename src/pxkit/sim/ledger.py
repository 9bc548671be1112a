"""The simulator's books of record: accounts, net positions, fills (trades), fees and realised P&L."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..enums import OrderSide, PositionType
from ..models import Account, Position, Trade
from ..times import from_us
from .instruments import ProductSpec


@dataclass(slots=True)
class AccountState:
    """Mutable state of one account."""

    id: int
    name: str
    balance: float
    can_trade: bool = True
    is_visible: bool = True
    simulated: bool = True

    def model(self) -> Account:
        return Account(self.id, self.name, round(self.balance, 2), self.can_trade, self.is_visible, self.simulated)


@dataclass(slots=True)
class PositionState:
    """Mutable net position: signed size (long > 0) and average entry in ticks."""

    id: int
    account_id: int
    contract_id: str
    created_us: int
    size: int = 0
    average_ticks: float = 0.0

    def model(self, tick_size: float) -> Position:
        kind = PositionType.LONG if self.size > 0 else PositionType.SHORT if self.size < 0 else PositionType.UNDEFINED
        return Position(self.id, self.account_id, self.contract_id, from_us(self.created_us), kind, abs(self.size),
                        round(self.average_ticks * tick_size, 9))


DEFAULT_ACCOUNTS = (
    AccountState(1001, "PRAC-V2-SIM-50K-1", 50_000.0),
    AccountState(1002, "PRAC-V2-SIM-150K-2", 150_000.0),
    AccountState(1003, "EVAL-SIM-LOCKED-3", 25_000.0, can_trade=False),
    AccountState(1004, "PRAC-V2-SIM-ARCHIVED-4", 0.0, can_trade=False, is_visible=False),
)


@dataclass(slots=True)
class FillResult:
    """What one fill did to the books."""

    trade: Trade
    position: Position
    account: Account
    opened: bool  # the fill opened a position from flat


@dataclass
class Ledger:
    """Accounts, positions and trades; applies fills with P&L in ticks x tick value."""

    accounts: dict[int, AccountState] = field(default_factory=dict)
    positions: dict[tuple[int, str], PositionState] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    _next_position_id: int = 50_001
    _next_trade_id: int = 900_001

    @classmethod
    def with_accounts(cls, accounts: tuple[AccountState, ...] = DEFAULT_ACCOUNTS) -> Ledger:
        return cls(accounts={a.id: AccountState(a.id, a.name, a.balance, a.can_trade, a.is_visible, a.simulated)
                             for a in accounts})

    def position(self, account_id: int, contract_id: str) -> int:
        """Signed net size (0 when flat)."""
        state = self.positions.get((account_id, contract_id))
        return state.size if state else 0

    def open_positions(self, account_id: int) -> list[PositionState]:
        return [p for (acc, _), p in self.positions.items() if acc == account_id and p.size != 0]

    def apply_fill(
        self, account_id: int, contract_id: str, spec: ProductSpec, order_id: int, side: OrderSide,
        price_ticks: int, qty: int, price: float, t_us: int,
    ) -> FillResult:
        """Book one fill: move the position, realise P&L on the closing part, charge fees."""
        key = (account_id, contract_id)
        state = self.positions.get(key)
        opened = state is None or state.size == 0
        if opened:
            state = self.positions[key] = PositionState(self._next_position_id, account_id, contract_id, t_us)
            self._next_position_id += 1
        signed = qty * side.sign
        realised_ticks: float | None = None
        if state.size == 0 or (state.size > 0) == (signed > 0):
            total = abs(state.size) + qty
            state.average_ticks = (state.average_ticks * abs(state.size) + price_ticks * qty) / total
            state.size += signed
        else:
            closed = min(qty, abs(state.size))
            realised_ticks = (price_ticks - state.average_ticks) * closed * (1 if state.size > 0 else -1)
            state.size += signed
            if state.size != 0 and (state.size > 0) == (signed > 0):  # flipped through zero
                state.average_ticks = float(price_ticks)
        pnl = None if realised_ticks is None else round(realised_ticks * spec.tick_value, 2)
        fees = round(spec.fee * qty, 2)
        account = self.accounts[account_id]
        account.balance += (pnl or 0.0) - fees
        trade = Trade(self._next_trade_id, account_id, contract_id, from_us(t_us), price, fees, side, qty,
                      order_id, pnl, False)
        self._next_trade_id += 1
        self.trades.append(trade)
        return FillResult(trade, state.model(spec.tick_size), account.model(), opened)

    def margin_in_use(self, account_id: int, margins: dict[str, float]) -> float:
        return sum(abs(p.size) * margins[p.contract_id] for p in self.open_positions(account_id))
