"""The reconciler: reads an account's truth from the gateway over REST after a reconnect (or at subscription)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from ..errors import PxError
from ..messages import AccountTruth
from ..models import Account, Order, Position, Trade

log = logging.getLogger(__name__)

TRADE_WINDOW_MARGIN = timedelta(minutes=1)  # fills and order ends are searched from this long before the last
# moment every fill was known (clock skew, and the local-to-gateway time conversion)
ORDER_WINDOW = timedelta(days=1)  # ended orders are looked for among those created this long back at least
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


class SyncedState(Protocol):
    """What the reconciler reads of the account's cached state (AccountState provides it)."""

    @property
    def known_until(self) -> datetime | None:
        """Gateway time up to which every fill and order end of the account is known (None before the first)."""


class StateReconciler:
    """Reads the gateway's truth of one account: open orders, positions, the account, and the order ends and fills
    since the last moment the cached state knew every fill (less a margin).

    It reads the cached state and never writes it: the truth travels through the user stream to the router, which
    compares it with the cache, installs it and reports the differences. A part whose push arrives while its read
    is in flight is read again, since the two cannot be ordered. A read that fails on REST (an outage, a partial
    answer) yields nothing and is tried again after each of `retry_delays`.
    """

    def __init__(self, source: UserStateSource, account_id: int, state: SyncedState, *,
                 pushes_received: Callable[[type], int], retry_delays: Sequence[float] = RETRY_DELAYS) -> None:
        self.source = source
        self.account_id = account_id
        self.state = state
        self.pushes_received = pushes_received  # decoded user pushes of a model type so far
        self.retry_delays = tuple(retry_delays)
        self.synced_at: datetime | None = None  # gateway time at which the last successful read began

    async def prime(self) -> AccountTruth:
        """The gateway's truth as the starting point: done once, when subscribing."""
        return await self._read(None)

    async def reconcile(self) -> AccountTruth:
        """The gateway's truth after a reconnect; REST failures are retried with back-off, the last one raised."""
        delays = iter(self.retry_delays)
        while True:
            try:
                return await self._read(self._window_start())
            except PxError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise
                log.warning("reconciling account %d failed (%s); trying again in %.1f s", self.account_id, exc,
                            delay)
                await asyncio.sleep(delay)

    def _window_start(self) -> datetime | None:
        """Gateway time from which order ends and fills are searched: the last moment every fill was known (the
        last push before the outage, or the last sync), less the margin."""
        known = self.state.known_until
        if known is not None:
            return known - TRADE_WINDOW_MARGIN
        return self.synced_at - TRADE_WINDOW_MARGIN if self.synced_at is not None else None

    async def _read_settled(self, kind: type, read: Callable[[], Awaitable[list[T]]]) -> tuple[list[T], float]:
        """One part of the gateway's state and the time its read ended. A push of that kind that arrives while the
        read is in flight cannot be ordered against the answer, so the part is read again (a few times at most)."""
        for _ in range(SETTLE_READS):
            before = self.pushes_received(kind)
            answer = await read()
            ended = time.time()
            if self.pushes_received(kind) == before:
                break
        return answer, ended

    async def _read(self, since: datetime | None) -> AccountTruth:
        """Read every part; without a window start (the prime) the window starts a margin before the read."""
        account_id, source = self.account_id, self.source
        started, gateway_started = time.time(), source.gateway_now()
        primed = since is None
        if since is None:
            since = gateway_started - TRADE_WINDOW_MARGIN
        orders, orders_at = await self._read_settled(Order, lambda: source.search_open_orders(account_id=account_id))
        positions, positions_at = await self._read_settled(Position, lambda: source.search_open_positions(
            account_id=account_id))
        accounts, account_at = await self._read_settled(Account, lambda: source.list_accounts(only_active=False))
        recent = await source.search_orders(min(since, gateway_started - ORDER_WINDOW), account_id=account_id)
        trades, trades_at = await self._read_settled(Trade, lambda: source.search_trades(since,
                                                                                         account_id=account_id))
        self.synced_at = gateway_started
        ended = tuple(o for o in recent if not o.status.is_working
                      and (o.update_timestamp is None or o.update_timestamp >= since))
        return AccountTruth(
            account_id, tuple(orders), tuple(positions), next((a for a in accounts if a.id == account_id), None),
            ended, tuple(sorted(trades, key=lambda t: (t.creation_timestamp, t.id))), started, gateway_started,
            orders_at, positions_at, account_at, trades_at, primed)
