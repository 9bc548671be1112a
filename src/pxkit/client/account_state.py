"""AccountState: one account's state as the router applied it, and the recent fills and order ends that tell a
reconciliation what the hub missed."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime

from ..enums import UserAction
from ..messages import AccountTruth, ReconcileReport
from ..models import Account, Order, Position, Trade
from .reconcile import TRADE_WINDOW_MARGIN

KEEP = 2 * TRADE_WINDOW_MARGIN  # fills and order ends are kept this long (gateway time) before `known_until`: a
# reconciliation searches from a margin before it, so older ones are never compared again
MAX_TRADES = 2_000  # fills kept at most, however many arrive inside KEEP
MAX_ENDED = 2_000  # order ends kept at most, likewise
_NEVER = float("-inf")


class AccountState:
    """Working orders, open positions and the account of one account, written only by its router.

    Every user push is applied with the time.time() its frame arrived, kept per order, contract and the account,
    so that a reconciliation's truth, whose parts were read at known times, gives way to the pushes that came
    after each part was read. `known_until` is the gateway time (`clock`) up to which every fill and order end is
    known: it follows the pushes while the user hub is in sync, stops when the hub is lost, and goes on from the
    reconciliation that follows. Fills and order ends are kept from KEEP before it, within their caps.
    """

    def __init__(self, account: Account, clock: Callable[[], datetime]) -> None:
        self.account_id = account.id
        self.account = account
        self.clock = clock
        self.orders: dict[int, Order] = {}  # working orders by id
        self.positions: dict[str, Position] = {}  # open positions by contract
        self.trades: dict[int, Trade] = {}  # recent fills by id, in their latest state (KEEP, MAX_TRADES)
        self.ended: dict[int, datetime] = {}  # recent order ids seen in a final state -> when (KEEP, MAX_ENDED)
        self.known_until: datetime | None = None
        self._at: dict[Hashable, float] = {}  # when each held or ended order, contract and the account was applied
        self._trade_at: dict[int, float] = {}  # when each kept fill was applied
        self._in_sync = False
        self._lost_at = _NEVER

    def __repr__(self) -> str:
        return (f"AccountState({self.account_id}, orders={len(self.orders)}, positions={len(self.positions)}, "
                f"trades={len(self.trades)}, ended={len(self.ended)})")

    def sizes(self) -> dict[str, int]:
        """How many entries each part holds: orders, positions, trades, ended, and the times kept of them."""
        return {"orders": len(self.orders), "positions": len(self.positions), "trades": len(self.trades),
                "ended": len(self.ended), "times": len(self._at) + len(self._trade_at)}

    # ------------------------------------------------------------------ pushes

    def apply(self, model: Order | Position | Account | Trade, action: UserAction, received_at: float) -> bool:
        """Apply one user push; returns False (nothing applied) for another account's."""
        if isinstance(model, Account):
            if model.id != self.account_id:
                return False
            self.account = model
            self._at[Account] = received_at
        elif model.account_id != self.account_id:
            return False
        elif isinstance(model, Order):
            self._order(model, action is not UserAction.DELETED and model.status.is_working, received_at)
        elif isinstance(model, Position):
            self._position(model, action is not UserAction.DELETED and model.size > 0, received_at)
        else:
            self._trade(model, received_at)
        if self._in_sync:
            now = self.clock()
            self.known_until = now if self.known_until is None else max(self.known_until, now)
        self._prune()
        return True

    def lost(self, at: float) -> None:
        """The user hub was lost at `at` (time.time()): fills may be missed until a reconciliation is installed."""
        self._in_sync = False
        self._lost_at = at

    def _order(self, order: Order, working: bool, at: float) -> None:
        self._at[order.id] = at
        if working:
            self.orders[order.id] = order
        else:
            self.orders.pop(order.id, None)
            self.ended.pop(order.id, None)  # re-inserted: the dict stays oldest first
            self.ended[order.id] = self.clock()

    def _position(self, position: Position, open_: bool, at: float) -> None:
        if open_:
            self.positions[position.contract_id] = position
        else:
            self.positions.pop(position.contract_id, None)
        self._at[position.contract_id] = at

    def _trade(self, trade: Trade, at: float) -> None:
        self.trades.pop(trade.id, None)  # re-inserted: the dict stays oldest first
        self.trades[trade.id] = trade
        self._trade_at[trade.id] = at

    # ------------------------------------------------------------------ reconciliation

    def install(self, truth: AccountTruth) -> ReconcileReport:
        """Install the gateway's truth, where no push came after its part was read, and report what changed.

        The report is what the managers have not seen: working orders and positions opened, changed or closed,
        orders that ended and fills made while the hub was away (none for the first read), the account if it
        changed. Every push that arrived before the truth was complete is applied already, so the ones that came
        after a part's read are exactly those applied later than it.
        """
        at = self._at.get
        before_orders, before_positions, before_account = self.orders, self.positions, self.account
        orders = {o.id: o for o in truth.open_orders if at(o.id, _NEVER) <= truth.orders_read_at}
        orders.update((i, o) for i, o in before_orders.items() if at(i, _NEVER) > truth.orders_read_at)
        positions = {p.contract_id: p for p in truth.positions if at(p.contract_id, _NEVER) <= truth.positions_read_at}
        positions.update((c, p) for c, p in before_positions.items() if at(c, _NEVER) > truth.positions_read_at)
        account = before_account
        if truth.account is not None and at(Account, _NEVER) <= truth.account_read_at:
            account = truth.account
        closed = [] if truth.primed else [
            o for o in truth.ended_orders if o.id not in orders and (o.id in before_orders or o.id not in self.ended)]
        fills = [t for t in truth.trades if self._trade_at.get(t.id, _NEVER) <= truth.trades_read_at
                 and ((seen := self.trades.get(t.id)) is None or seen.voided != t.voided)]

        self.orders, self.positions, self.account = orders, positions, account
        for order_id in orders:
            self._at[order_id] = max(at(order_id, _NEVER), truth.orders_read_at)
        gone = [o for i, o in before_orders.items() if i not in orders]  # ended while away
        for order in [*truth.ended_orders, *gone]:
            if order.id not in orders:
                self._order(order, False, max(at(order.id, _NEVER), truth.orders_read_at))
        for contract in {*before_positions, *positions, *(p.contract_id for p in truth.positions)}:
            self._at[contract] = max(at(contract, _NEVER), truth.positions_read_at)
        self._at[Account] = max(at(Account, _NEVER), truth.account_read_at)
        for trade in fills if not truth.primed else truth.trades:
            self._trade(trade, truth.trades_read_at)
        if self._lost_at < truth.started:  # not lost since the reads began: every fill is known from here
            self._in_sync = True
            self.known_until = truth.known_until if self.known_until is None else max(self.known_until,
                                                                                      truth.known_until)
        self._prune(truth.started)
        return ReconcileReport(
            orders_closed=tuple(closed),
            orders_opened=tuple(o for i, o in orders.items() if i not in before_orders),
            orders_changed=tuple(o for i, o in orders.items() if i in before_orders and before_orders[i] != o),
            positions_closed=tuple(p for c, p in before_positions.items() if c not in positions),
            positions_opened=tuple(p for c, p in positions.items() if c not in before_positions),
            positions_changed=tuple(p for c, p in positions.items()
                                    if c in before_positions and before_positions[c] != p),
            account=account if account != before_account else None,
            trades=() if truth.primed else tuple(fills),
        )

    # ------------------------------------------------------------------ bounds

    def _prune(self, read_from: float | None = None) -> None:
        """Forget fills made and order ends seen more than KEEP before `known_until` (and beyond their caps); with
        `read_from` (a truth's start), also the times of closed contracts applied before it, which no later
        truth can be compared with."""
        cutoff = self.known_until - KEEP if self.known_until is not None else None
        trades = self.trades
        while trades:
            oldest, trade = next(iter(trades.items()))
            if len(trades) <= MAX_TRADES and (cutoff is None or trade.creation_timestamp >= cutoff):
                break
            del trades[oldest], self._trade_at[oldest]
        ended = self.ended
        while ended:
            oldest, when = next(iter(ended.items()))
            if len(ended) <= MAX_ENDED and (cutoff is None or when >= cutoff):
                break
            del ended[oldest]
            self._at.pop(oldest, None)
        if read_from is not None:
            self._at = {key: when for key, when in self._at.items() if when >= read_from or key is Account
                        or key in self.orders or key in self.positions or key in self.ended}

