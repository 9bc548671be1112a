"""PositionManager: one contract's net position and P&L kept from user-hub pushes; close and partial close."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..client.http import ProjectX
from ..enums import PositionType, UserAction
from ..events import EventBus, EventType
from ..html import facts, fixed, panel, signed, table
from ..loops import on_loop, running_loop
from ..models import Contract, Position, Trade, tick_decimals

log = logging.getLogger(__name__)

MAX_FILLS = 1_000  # fills kept to book each once and take a voided one back out; older ones are only in the totals
PNL_COLUMNS = ("realised", "open", "fees", "net")


def pnl_cells(realized: float, unrealized: float, fees: float, net: float) -> tuple[object, ...]:
    """P&L as table cells (PNL_COLUMNS): money coloured by its sign; fees are a cost, shown plain."""
    return signed(realized), signed(unrealized), fixed(fees), signed(net)


def size_cell(size: int) -> str:
    """A signed size, `+2` long, `-1` short, or `flat`."""
    return f"{size:+d}" if size else "flat"


@dataclass(frozen=True, slots=True)
class PnL:
    """P&L of one contract in dollars: realised (the gateway's, before fees), unrealised, fees and the net."""

    realized: float
    unrealized: float
    fees: float
    net: float

    def _repr_html_(self) -> str:
        return table([pnl_cells(self.realized, self.unrealized, self.fees, self.net)], PNL_COLUMNS, align="")


class PositionManager:
    """Net position of one contract and account, realised P&L and fees from its fills, unrealised from a price.

    State changes only in `apply_position` and `apply_trade`, which the suite's router calls for each user-hub
    push (and with REST truth after start-up or a reconnect). Realised P&L is the gateway's `profitAndLoss` of
    closing fills, kept as running totals; unrealised P&L is ticks x tick value against `last_price()` or a given
    price. The latest MAX_FILLS fills are kept, so that a fill reported twice is booked once and one voided later
    is taken back out. Commands called from another thread's loop run on the loop the manager was made on (`loop`).
    """

    def __init__(self, client: ProjectX, contract: Contract, bus: EventBus, *, account_id: int, symbol: str,
                 last_price: Callable[[], float | None]) -> None:
        self.client = client
        self.contract = contract
        self.bus = bus
        self.account_id = account_id
        self.symbol = symbol
        self.last_price = last_price
        self._position: Position | None = None
        self._trades: OrderedDict[int, Trade] = OrderedDict()  # the latest MAX_FILLS fills, by id, latest state
        self._fill_listeners: list[Callable[[Trade], None]] = []
        self._realized = 0.0
        self._fees = 0.0
        self._last_fill: datetime | None = None
        self.loop = running_loop()  # the owner: the loop running at construction

    def _held(self) -> str:
        """`long 2 @ 21,000.25`, `short 1 @ ...` or `flat`."""
        size = self.size
        if not size:
            return "flat"
        average = fixed(self.average_price, tick_decimals(self.contract.tick_size))
        return f"{'long' if size > 0 else 'short'} {abs(size)} @ {average}"

    def __repr__(self) -> str:
        return (f"PositionManager({self.symbol!r}, account={self.account_id}, {self._held()}, "
                f"realized={self.realized_pnl}, fees={self.fees})")

    def _repr_html_(self) -> str:
        pnl = self.pnl()
        last = fixed(self.last_price(), tick_decimals(self.contract.tick_size))
        return panel(f"Position \u00b7 {self.symbol}", facts([("held", self._held()), ("last", last),
                                                              ("fills", len(self.trades))]),
                     table([(size_cell(self.size), *pnl_cells(pnl.realized, pnl.unrealized, pnl.fees, pnl.net))],
                           ("size", *PNL_COLUMNS), align=""), note=f"account {self.account_id}")

    # ------------------------------------------------------------------ the writers

    def apply_position(self, position: Position, action: UserAction) -> None:
        """Apply a position update: size 0 or a DELETED action closes it; emits POSITION_OPENED/CHANGED/CLOSED."""
        if position.contract_id != self.contract.id or position.account_id != self.account_id:
            return
        previous = self._position
        stamp = self._last_fill or position.creation_timestamp
        if position.size == 0 or action is UserAction.DELETED:
            if previous is not None:
                self._position = None
                self.bus.emit_nowait(EventType.POSITION_CLOSED, position, source=self.symbol, timestamp=stamp)
            return
        if previous == position:
            return
        self._position = position
        kind = EventType.POSITION_OPENED if previous is None else EventType.POSITION_CHANGED
        self.bus.emit_nowait(kind, position, source=self.symbol, timestamp=stamp)

    def apply_trade(self, trade: Trade) -> None:
        """Book a fill once (a repeated trade id is ignored); a fill voided later is taken back out. Every change
        of what is booked is told to the fill listeners."""
        if trade.contract_id != self.contract.id or trade.account_id != self.account_id:
            return
        known = self._trades.get(trade.id)
        if known is not None and known.voided == trade.voided:
            return
        if known is None and trade.voided and len(self._trades) >= MAX_FILLS and trade.id < next(iter(self._trades)):
            log.warning("%s: fill %d was voided after it left the latest %d fills; the totals still hold it",
                        self.symbol, trade.id, MAX_FILLS)
        if known is not None and not known.voided:
            self._book(known, -1)
        self._trades[trade.id] = trade
        self._trades.move_to_end(trade.id)
        if len(self._trades) > MAX_FILLS:
            self._trades.popitem(last=False)
        if not trade.voided:
            self._book(trade, 1)
            if self._last_fill is None or trade.creation_timestamp > self._last_fill:
                self._last_fill = trade.creation_timestamp
        for listener in list(self._fill_listeners):
            listener(trade)

    def on_fill(self, listener: Callable[[Trade], None]) -> None:
        """Call `listener(trade)` (on the manager's loop) whenever a fill is booked or a booked one is voided."""
        self._fill_listeners.append(listener)

    def off_fill(self, listener: Callable[[Trade], None]) -> None:
        """Stop calling a listener given to `on_fill`."""
        if listener in self._fill_listeners:
            self._fill_listeners.remove(listener)

    def _book(self, trade: Trade, sign: int) -> None:
        self._realized += sign * (trade.profit_and_loss or 0.0)
        self._fees += sign * trade.fees

    # ------------------------------------------------------------------ reads

    @property
    def position(self) -> Position | None:
        """The open position, or None when flat."""
        return self._position

    async def get_position(self) -> Position | None:
        return self._position

    @property
    def size(self) -> int:
        """Signed net size: positive long, negative short, 0 flat."""
        position = self._position
        if position is None:
            return 0
        return -position.size if position.type is PositionType.SHORT else position.size

    @property
    def average_price(self) -> float | None:
        return self._position.average_price if self._position else None

    @property
    def trades(self) -> list[Trade]:
        """The latest fills booked (up to MAX_FILLS, voided ones left out), in arrival order."""
        return [t for t in self._trades.values() if not t.voided]

    def sizes(self) -> dict[str, int]:
        """How many entries the manager keeps: fills (at most MAX_FILLS) and fill listeners."""
        return {"fills": len(self._trades), "fill_listeners": len(self._fill_listeners)}

    @property
    def realized_pnl(self) -> float:
        """Realised P&L of the closing fills, before fees."""
        return round(self._realized, 2)

    @property
    def fees(self) -> float:
        return round(self._fees, 2)

    def unrealized_pnl(self, price: float | None = None) -> float:
        """Open P&L at `price` (default: the live last price) in ticks x tick value; 0 when flat or unpriced."""
        position = self._position
        mark = self.last_price() if price is None else price
        if position is None or mark is None:
            return 0.0
        ticks = (mark - position.average_price) / self.contract.tick_size
        return round(ticks * self.contract.tick_value * self.size, 2)

    def pnl(self, price: float | None = None) -> PnL:
        """Realised, unrealised (at `price` or the last price), fees and net = realised + unrealised - fees."""
        realized, unrealized, fees = self.realized_pnl, self.unrealized_pnl(price), self.fees
        return PnL(realized, unrealized, fees, round(realized + unrealized - fees, 2))

    # ------------------------------------------------------------------ commands

    async def close_position(self) -> None:
        """Flatten the position with a market order (PositionNotFoundError when already flat)."""
        await on_loop(self.loop, self.client.close_position(self.contract.id, account_id=self.account_id))

    async def partially_close_position(self, size: int) -> None:
        """Reduce the position by `size` contracts with a market order (InputError for size <= 0, before the wire)."""
        await on_loop(self.loop, self.client.partially_close_position(self.contract.id, size,
                                                                      account_id=self.account_id))
