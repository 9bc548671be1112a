"""User state kept from hub events, and the reconciler that puts it right through REST after a reconnect."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from ..enums import UserAction
from ..errors import PxError
from ..messages import ReconcileReport
from ..models import Account, Order, Position, Trade

log = logging.getLogger(__name__)

TRADE_WINDOW_MARGIN = timedelta(minutes=1)  # fills are searched from this long before the last sync (clock skew)
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between the attempts of a reconciliation that failed on REST
SETTLE_READS = 3  # reads of one part at most while pushes of its kind keep arriving during the read
T = TypeVar("T")


class UserStateSource(Protocol):
    """The REST calls reconciliation needs (ProjectX provides them)."""

    async def search_open_orders(self, *, account_id: int | None = None) -> list[Order]: ...

    async def search_orders(self, start=None, end=None, *, account_id: int | None = None) -> list[Order]: ...

    async def search_open_positions(self, *, account_id: int | None = None) -> list[Position]: ...

    async def list_accounts(self, only_active: bool = True) -> list[Account]: ...

    async def search_trades(self, start: datetime | None = None, end: datetime | None = None, *,
                            account_id: int | None = None) -> list[Trade]: ...

    def gateway_now(self) -> datetime: ...


@dataclass
class UserState:
    """One account's working orders, open positions and balance, as the user hub reported them."""

    account_id: int
    orders: dict[int, Order] = field(default_factory=dict)  # working orders only
    positions: dict[str, Position] = field(default_factory=dict)  # open positions by contract
    account: Account | None = None
    trades: dict[int, Trade] = field(default_factory=dict)  # every fill seen, by id, in its latest state
    ended_orders: set[int] = field(default_factory=set)  # every order id seen in a final state (pushed or read)
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
            if model.status.is_working and action is not UserAction.DELETED:
                self.orders[model.id] = model
            else:
                self.orders.pop(model.id, None)
                self.ended_orders.add(model.id)
        elif isinstance(model, Position):
            if model.size > 0 and action is not UserAction.DELETED:
                self.positions[model.contract_id] = model
            else:
                self.positions.pop(model.contract_id, None)
        elif isinstance(model, Trade):
            self.trades[model.id] = model


@dataclass(frozen=True, slots=True)
class _Truth:
    """One complete read of the gateway's state (nothing of it is installed unless every part was read)."""

    open_orders: dict[int, Order]
    positions: dict[str, Position]
    account: Account | None
    recent: list[Order]
    trades: list[Trade]


class StateReconciler:
    """Fetches open orders, positions, the account and the fills since the last sync, reports the differences
    and installs the truth.

    Fills are searched from a little before the last successful sync (prime or reconcile): every fill of an
    outage is in that window, and the ones already pushed are told apart by id. A reconciliation that fails
    on REST (an outage, a partial answer) installs nothing and is tried again after each of `retry_delays`.
    """

    def __init__(self, source: UserStateSource, state: UserState, *,
                 retry_delays: Sequence[float] = RETRY_DELAYS) -> None:
        self.source = source
        self.state = state
        self.retry_delays = tuple(retry_delays)
        self.synced_at: datetime | None = None  # gateway time at which the last successful read began
        self.reports: list[ReconcileReport] = []

    async def prime(self) -> None:
        """Load the gateway's truth as the starting point (no report): done once, when subscribing."""
        await self._fetch_and_install(with_trades=False)

    async def reconcile(self) -> ReconcileReport:
        """Compare the cached state with the gateway's, install the gateway's, and report the differences;
        REST failures are retried with back-off, and the last one is raised."""
        delays = iter(self.retry_delays)
        while True:
            try:
                return await self._reconcile_once()
            except PxError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise
                log.warning("reconciling account %d failed (%s); trying again in %.1f s", self.state.account_id,
                            exc, delay)
                await asyncio.sleep(delay)

    async def _reconcile_once(self) -> ReconcileReport:
        state = self.state
        before_orders, before_positions, before_account = dict(state.orders), dict(state.positions), state.account
        ended, before_trades = set(state.ended_orders), dict(state.trades)
        truth = await self._fetch_and_install(with_trades=True)
        # what the cache holds now: the gateway's answers with the pushes that came after them applied on top, so a
        # report routed after those pushes never takes a position or an order back to an older state
        open_orders, positions, account = dict(state.orders), dict(state.positions), state.account
        # an order read working (placed during a read) but never pushed is not known ended: reported when it ends
        closed = [o for o in truth.recent if not o.status.is_working and (o.id in before_orders or o.id not in ended)]
        missed = [t for t in truth.trades if (seen := before_trades.get(t.id)) is None or seen.voided != t.voided]
        for trade in missed:  # unless the hub pushed a newer record of it meanwhile
            if state.trades.get(trade.id) is before_trades.get(trade.id):
                state.trades[trade.id] = trade
        report = ReconcileReport(
            orders_closed=tuple(closed),
            orders_opened=tuple(o for i, o in open_orders.items() if i not in before_orders),
            orders_changed=tuple(o for i, o in open_orders.items() if i in before_orders and before_orders[i] != o),
            positions_closed=tuple(p for c, p in before_positions.items() if c not in positions),
            positions_opened=tuple(p for c, p in positions.items() if c not in before_positions),
            positions_changed=tuple(p for c, p in positions.items()
                                    if c in before_positions and before_positions[c] != p),
            account=account if account is not None and account != before_account else None,
            trades=tuple(sorted(missed, key=lambda t: (t.creation_timestamp, t.id))),
        )
        self.reports.append(report)
        if report.missed_anything:
            log.info("reconciled account %d: %d orders closed, %d opened, %d positions closed, %d opened, "
                     "%d fills missed", state.account_id, len(report.orders_closed), len(report.orders_opened),
                     len(report.positions_closed), len(report.positions_opened), len(report.trades))
        return report

    async def _read_settled(self, kind: type, read: Callable[[], Awaitable[list[T]]]) -> tuple[list[T], float]:
        """One part of the gateway's state and the time its read ended. A push of that kind that arrives while the
        read is in flight cannot be ordered against the answer, so the part is read again (a few times at most)."""
        journal = self.state.journal if self.state.journal is not None else []
        for _ in range(SETTLE_READS):
            began = time.monotonic()
            answer = await read()
            ended = time.monotonic()
            if not any(began <= arrived <= ended and isinstance(model, kind) for arrived, model, _ in journal):
                break
        return answer, ended

    async def _fetch_and_install(self, *, with_trades: bool) -> _Truth:
        """Read the gateway's state and install it; hub events that arrived after a part was read are newer
        than that part, so they are applied again on top of it. A failed read installs nothing."""
        state, account_id, source = self.state, self.state.account_id, self.source
        started = source.gateway_now()
        since = self.synced_at - TRADE_WINDOW_MARGIN if self.synced_at is not None else None
        state.journal = []
        try:
            orders, read_orders = await self._read_settled(Order, lambda: source.search_open_orders(
                account_id=account_id))
            open_orders = {o.id: o for o in orders}
            listed, read_positions = await self._read_settled(Position, lambda: source.search_open_positions(
                account_id=account_id))
            positions = {p.contract_id: p for p in listed}
            accounts, read_account = await self._read_settled(Account, lambda: source.list_accounts(
                only_active=False))
            account = next((a for a in accounts if a.id == account_id), None)
            recent = await source.search_orders(account_id=account_id)
            trades = await source.search_trades(since, account_id=account_id) if with_trades else []
        finally:
            journal, state.journal = state.journal, None
        state.orders, state.positions = dict(open_orders), dict(positions)
        state.ended_orders.update(o.id for o in recent if not o.status.is_working)
        if account is not None:
            state.account = account
        read_at = {Order: read_orders, Position: read_positions, Account: read_account}
        for arrived, model, action in journal:
            if arrived > read_at[type(model)]:
                state.apply(model, action)
        self.synced_at = started
        return _Truth(open_orders, positions, account, recent, trades)
