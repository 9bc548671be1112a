"""User state kept from hub events, and the reconciler that puts it right through REST after a reconnect."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from ..enums import UserAction
from ..models import Account, Order, Position, Trade

log = logging.getLogger(__name__)


class UserStateSource(Protocol):
    """The REST calls reconciliation needs (ProjectX provides them)."""

    async def search_open_orders(self, *, account_id: int | None = None) -> list[Order]: ...

    async def search_orders(self, start=None, end=None, *, account_id: int | None = None) -> list[Order]: ...

    async def search_open_positions(self, *, account_id: int | None = None) -> list[Position]: ...

    async def list_accounts(self, only_active: bool = True) -> list[Account]: ...


@dataclass
class UserState:
    """One account's working orders, open positions and balance, as the user hub reported them."""

    account_id: int
    orders: dict[int, Order] = field(default_factory=dict)  # working orders only
    positions: dict[str, Position] = field(default_factory=dict)  # open positions by contract
    account: Account | None = None
    trades: list[Trade] = field(default_factory=list)
    known_orders: set[int] = field(default_factory=set)  # every order id seen, in any state
    journal: list[tuple[float, Order | Position | Account, UserAction]] | None = None  # kept while reconciling

    def apply(self, model: Order | Position | Account | Trade, action: UserAction) -> None:
        """Apply one user-hub event (events of other accounts are ignored)."""
        if self.journal is not None and not isinstance(model, Trade):
            self.journal.append((time.monotonic(), model, action))
        if isinstance(model, Account):
            if model.id == self.account_id:
                self.account = model
        elif model.account_id != self.account_id:
            return
        elif isinstance(model, Order):
            self.known_orders.add(model.id)
            if model.status.is_working and action is not UserAction.DELETED:
                self.orders[model.id] = model
            else:
                self.orders.pop(model.id, None)
        elif isinstance(model, Position):
            if model.size > 0 and action is not UserAction.DELETED:
                self.positions[model.contract_id] = model
            else:
                self.positions.pop(model.contract_id, None)
        elif isinstance(model, Trade):
            self.trades.append(model)


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

    @property
    def missed_anything(self) -> bool:
        return any((self.orders_closed, self.orders_opened, self.orders_changed, self.positions_closed,
                    self.positions_opened, self.positions_changed, self.account))


class StateReconciler:
    """Fetches open orders, positions and the account, reports the differences and installs the truth."""

    def __init__(self, source: UserStateSource, state: UserState) -> None:
        self.source = source
        self.state = state
        self.reports: list[ReconcileReport] = []

    async def prime(self) -> None:
        """Load the gateway's truth as the starting point (no report): done once, when subscribing."""
        await self._fetch_and_install()

    async def reconcile(self) -> ReconcileReport:
        """Compare the cached state with the gateway's, install the gateway's, and report the differences."""
        state = self.state
        before_orders, before_positions, before_account = dict(state.orders), dict(state.positions), state.account
        known = set(state.known_orders)
        open_orders, positions, account, recent = await self._fetch_and_install()
        closed = [o for o in recent if not o.status.is_working and (o.id in before_orders or o.id not in known)]
        report = ReconcileReport(
            orders_closed=tuple(closed),
            orders_opened=tuple(o for i, o in open_orders.items() if i not in before_orders),
            orders_changed=tuple(o for i, o in open_orders.items() if i in before_orders and before_orders[i] != o),
            positions_closed=tuple(p for c, p in before_positions.items() if c not in positions),
            positions_opened=tuple(p for c, p in positions.items() if c not in before_positions),
            positions_changed=tuple(p for c, p in positions.items()
                                    if c in before_positions and before_positions[c] != p),
            account=account if account is not None and account != before_account else None,
        )
        self.reports.append(report)
        if report.missed_anything:
            log.info("reconciled account %d: %d orders closed, %d opened, %d positions closed, %d opened",
                     state.account_id, len(report.orders_closed), len(report.orders_opened),
                     len(report.positions_closed), len(report.positions_opened))
        return report

    async def _fetch_and_install(self) -> tuple[dict[int, Order], dict[str, Position], Account | None, list[Order]]:
        """Read the gateway's state and install it; hub events that arrived after a part was read are newer
        than that part, so they are applied again on top of it."""
        state, account_id = self.state, self.state.account_id
        state.journal = []
        try:
            open_orders = {o.id: o for o in await self.source.search_open_orders(account_id=account_id)}
            read_orders = time.monotonic()
            positions = {p.contract_id: p for p in await self.source.search_open_positions(account_id=account_id)}
            read_positions = time.monotonic()
            account = next((a for a in await self.source.list_accounts(only_active=False) if a.id == account_id),
                           None)
            read_account = time.monotonic()
            recent = await self.source.search_orders(account_id=account_id)
        finally:
            journal, state.journal = state.journal, None
        state.orders, state.positions = dict(open_orders), dict(positions)
        state.known_orders.update(o.id for o in recent)
        state.known_orders.update(open_orders)
        if account is not None:
            state.account = account
        read_at = {Order: read_orders, Position: read_positions, Account: read_account}
        for arrived, model, action in journal:
            if arrived > read_at[type(model)]:
                state.apply(model, action)
        return open_orders, positions, account, recent
